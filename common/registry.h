/* registry: the pure logic of pulling images from registries - image references, registry
 * credentials (the Engine API's X-Registry-Auth), the image allowlist, and what a failed pull
 * means. No I/O: the daemon reads the variables and the file, this module checks and uses them.
 *
 * Credentials never appear in an error message written by this module. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "error.h"

/* The host of Docker Hub, as registry_ref_parse reports it and as credentials name it
 * ("index.docker.io", "registry-1.docker.io" and "https://index.docker.io/v1/" are accepted as
 * its aliases in credentials). */
#define REGISTRY_DOCKER_HUB "docker.io"
/* Longest image reference accepted (Docker's limit on a repository name is 255). */
#define REGISTRY_MAX_REF 512

/* An image reference "[host[:port]/]path[:tag][@digest]", split for a pull. */
struct registry_ref {
    char name[REGISTRY_MAX_REF + 1]; /* everything before :tag / @digest: the pull's fromImage */
    char tag[REGISTRY_MAX_REF + 1];  /* the pull's tag: the digest when there is one (Docker
                                        pulls by digest then), else the tag, else "latest" */
    char host[REGISTRY_MAX_REF + 1]; /* registry host[:port], REGISTRY_DOCKER_HUB when the
                                        first path component is not a host */
    bool has_digest;
};
/* 0, or -EINVAL when ref is empty, too long, has blanks or control characters, an empty path
 * component, or an empty tag or digest. ret untouched on failure. The registry host is the
 * first path component when it contains '.' or ':' or is "localhost", as Docker decides; Docker
 * Hub's other names (index.docker.io, registry-1.docker.io) give REGISTRY_DOCKER_HUB, so that
 * credentials given for the Hub under any of its names apply. */
int registry_ref_parse(const char *ref, struct registry_ref *ret);

/* ---- credentials: {"host[:port]": {"username": "...", "password": "..."}, ...} */

typedef struct registry_creds registry_creds;

/* An empty set (no registry has credentials). NULL on ENOMEM. */
registry_creds *registry_creds_new(void);
/* Adds the entries of a JSON text. source names it in messages (the variable, or the variable
 * and the file). 0; -EINVAL with a message in err on bad JSON, a bad entry, or a host already
 * given (by this text or an earlier one); -ENOMEM. Nothing is added on failure. */
int registry_creds_add_json(registry_creds *c, const char *json, size_t len, const char *source,
                            struct ct_error *err);
size_t registry_creds_count(const registry_creds *c);
/* Wipes the passwords and frees; NULL is fine. */
void registry_creds_free(registry_creds *c);

/* The X-Registry-Auth value for host (a registry_ref host): base64url (with padding) of
 * {"username","password","serveraddress"}. 0 and *ret (malloc'd; wipe and free it with
 * registry_auth_free), 1 when there are no credentials for host (*ret NULL), -ENOMEM. */
int registry_auth_header(const registry_creds *c, const char *host, char **ret);
void registry_auth_free(char *auth);

/* Base64url with padding ("-" and "_" for "+" and "/"), as Docker decodes X-Registry-Auth.
 * malloc'd or NULL. */
char *registry_base64url(const void *data, size_t len);

/* ---- the allowlist: ALLOWED_IMAGES, comma-separated glob patterns
 *
 * A pattern matches a reference as written in the job (and, when it has neither tag nor
 * digest, the same with ":latest"); a pattern without a tag or digest also matches any tag or
 * digest of the repositories it names ("ct/java" matches "ct/java:17"). '*', '?' and [...]
 * never match '/', so "correction-*"
 * matches "correction-java:3" but not "correction-x.evil/y"; a pattern ending in a '/' and a
 * '*' matches everything below that prefix, at any depth (registry.example/<star> matches
 * "registry.example/team/java:3"). */

typedef struct registry_allowlist registry_allowlist;

/* 0 and *ret; -EINVAL with a message naming source in err when the list has no pattern or a
 * pattern has blanks; -ENOMEM. Blank entries (",,") are skipped. */
int registry_allowlist_parse(const char *list, const char *source, registry_allowlist **ret,
                             struct ct_error *err);
bool registry_allowlist_match(const registry_allowlist *a, const char *ref);
size_t registry_allowlist_count(const registry_allowlist *a);
void registry_allowlist_free(registry_allowlist *a);

/* ---- what a failed pull means */

enum registry_pull_fault {
    REGISTRY_PULL_NOT_FOUND, /* no such repository or tag, or an invalid reference: the job's */
    REGISTRY_PULL_DENIED,    /* the registry refused our credentials (or asked for some) */
    REGISTRY_PULL_INFRA,     /* unreachable, timed out, engine failing: try again later */
};
/* From the Engine's answer to POST /images/create: the transport error (0 when an answer
 * came), the HTTP status, and the error message (of the answer, or of the stream's
 * {"error"} object in a 200 answer). */
enum registry_pull_fault registry_pull_classify(int err, long status, const char *message);
