/* docker: a Docker Engine API client on the libuv loop (through http.h).
 *
 * DOCKER_HOST is unix:///path (default unix:///var/run/docker.sock) or tcp://host:port, with
 * TLS when DOCKER_TLS_VERIFY is set, using DOCKER_CERT_PATH/{ca,cert,key}.pem as the docker
 * CLI does. Every call is pinned to API version DOCKER_API_VERSION ("v1.41") or, on an engine
 * that serves only older ones, its newest; has a timeout and a bounded response. Each call is
 * a request with one completion callback.
 *
 * The client learns what it talks to (Docker or Podman, and its API version) from GET
 * /version before its first call, and again after the engine went away (a call got no answer,
 * or the events stream ended): calls and events streams started meanwhile wait for that
 * answer (or its failure, then they go as they are). What differs on Podman is handled here
 * (docker_compat.h): the stages see Docker's API either way. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "docker_compat.h"
#include "http.h"
#include "error.h"

#define DOCKER_API_VERSION "v1.41"
#define DOCKER_DEFAULT_HOST "unix:///var/run/docker.sock"
#define DOCKER_DEFAULT_TIMEOUT_MS 30000
#define DOCKER_DEFAULT_MAX_RESPONSE (4u * 1024 * 1024)
#define DOCKER_DEFAULT_MAX_CALLS 32u

typedef struct docker docker;

struct docker_config {
    const char *host;          /* DOCKER_HOST; NULL: unix:///var/run/docker.sock */
    bool tls_verify;           /* DOCKER_TLS_VERIFY */
    const char *cert_path;     /* DOCKER_CERT_PATH; NULL: ~/.docker */
    uint64_t timeout_ms;       /* per call (not for the events stream), default 30000 */
    size_t max_response_bytes; /* default 4 MiB */
    unsigned max_calls;        /* calls in flight at once (not the events stream); more wait
                                  in a queue, in order. Default 32 */
};
void docker_config_defaults(struct docker_config *cfg);
/* Reads DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH from the environment into cfg
 * (pointers into the environment). -EINVAL with a message on a bad value. */
int docker_config_from_env(struct docker_config *cfg, struct ct_error *err);

struct docker_result {
    int err;             /* transport: 0, or -ETIMEDOUT/-ECONNREFUSED/-ENOENT(socket)/-EIO/-EFBIG */
    long status;         /* HTTP status when err == 0 */
    const char *message; /* Docker's {"message": ...} on an error status, or the transport
                            error; never NULL (may be "") */
    json_t *json;        /* parsed JSON body when there is one, else NULL; borrowed */
    const char *body;    /* raw body (e.g. logs), NUL-terminated; borrowed */
    size_t body_len;
};
typedef void (*docker_cb)(const struct docker_result *res, void *userdata);

/* 0 with the client in *ret; or a negative errno with why in err (which may be NULL): a
 * DOCKER_HOST that is not one, a TLS file missing, no memory. */
int docker_new(uv_loop_t *loop, const struct docker_config *cfg, docker **ret,
               struct ct_error *err);
void docker_free(docker *d); /* cancels pending calls without callbacks */
/* Cancels every call made with this userdata, in flight or waiting its turn: no callback of
 * theirs runs after this (a call answered already has had its callback). What the engine was
 * asked before the cancel may still be done. Safe from inside any docker or events callback;
 * runs no callback itself. How many calls it cancelled. The events stream is not a call
 * (docker_events_stop). */
unsigned docker_cancel(docker *d, const void *userdata);

/* The raw call: path starts with "/" and is put after the version ("/containers/json?..."). */
int docker_call(docker *d, const char *method, const char *path, const char *content_type,
                const void *body, size_t body_len, docker_cb cb, void *userdata);

int docker_ping(docker *d, docker_cb cb, void *userdata);
/* The engine as last learnt (Docker until an engine answered GET /version): for tests that
 * assert what each engine can do, and for logs. */
enum docker_engine docker_engine(const docker *d);
/* POST /containers/create?name=...; body is the create config (not stolen). 201 {"Id":...};
 * 404 no such image; 409 name in use. */
int docker_container_create(docker *d, const char *name, json_t *config, docker_cb cb,
                            void *userdata);
/* PUT /containers/{id}/archive?path=... with a tar stream. */
int docker_container_upload(docker *d, const char *id, const char *path, const void *tar,
                            size_t tar_len, docker_cb cb, void *userdata);
int docker_container_start(docker *d, const char *id, docker_cb cb, void *userdata); /* 204/304 */
/* HEAD /containers/{id}/archive?path=...: 200 when path exists in the container, 404 when it
 * does not (or the container does not); no body either way. */
int docker_container_stat(docker *d, const char *id, const char *path, docker_cb cb,
                          void *userdata);
int docker_container_inspect(docker *d, const char *id, docker_cb cb, void *userdata);
/* What GET /containers/{id}/logs reads. */
struct docker_logs {
    bool out, err;     /* the streams: stdout, stderr (neither: both) */
    unsigned tail;     /* the last lines only; 0: all */
    const char *since; /* NULL or "": from the start; else unix seconds, "S" or "S.fraction" */
    size_t max_bytes;  /* 0: the client's max_response_bytes */
    bool timestamps;   /* each line led by its time (RFC 3339, dtime.h) and a space */
};
/* The raw (multiplexed) stream in body, at most max_bytes (err -EFBIG beyond, with the first
 * max_bytes kept in body). -EINVAL for an id or a since that is not one. */
int docker_container_logs(docker *d, const char *id, const struct docker_logs *what, docker_cb cb,
                          void *userdata);
int docker_container_kill(docker *d, const char *id, const char *signal, docker_cb cb,
                          void *userdata);
/* DELETE /containers/{id}?force=..&v=1: with its anonymous volumes (a correction image with a
 * VOLUME would otherwise leak one volume per job; named volumes are never removed). */
int docker_container_remove(docker *d, const char *id, bool force, docker_cb cb, void *userdata);
/* GET /containers/json?all=..&filters=<json>; filters is a JSON object like
 * {"label":["correctomatic.job_id"],"status":["running"]} (not stolen). */
int docker_container_list(docker *d, bool all, json_t *filters, docker_cb cb, void *userdata);
/* The same, the answer left unparsed in body (json NULL): for long lists read with
 * docker_scan_list, without building a tree of every container. */
int docker_container_list_raw(docker *d, bool all, json_t *filters, docker_cb cb, void *userdata);

/* Walks a container list answer (a JSON array of objects) and calls fn with each object's
 * top-level "Id" and "State" strings (not NUL-terminated; NULL/0 when absent or escaped),
 * skipping everything else without building it. 0, or -EBADMSG when it is not such JSON. */
typedef void (*docker_scan_fn)(const char *id, size_t id_len, const char *state, size_t state_len,
                               void *userdata);
int docker_scan_list(const char *body, size_t len, docker_scan_fn fn, void *userdata);
int docker_image_inspect(docker *d, const char *ref, docker_cb cb, void *userdata);
/* POST /images/create?fromImage=<from_image>&tag=<tag>: pulls an image. tag is required (without
 * one Docker would pull every tag of the repository): a tag, or a digest ("sha256:...").
 * registry_auth is the X-Registry-Auth value (base64url JSON credentials) or NULL. timeout_ms
 * bounds the whole pull (0: none) instead of the per-call timeout.
 * The answer is a stream of JSON progress objects, read as it comes and not kept (a line over
 * DOCKER_EVENTS_MAX_LINE ends the call with -EFBIG). A pull can fail inside a 200 stream with
 * {"error": "...", "errorDetail": {...}}: then res.message is that error text and res.json the
 * error object. So a pull succeeded exactly when err == 0, status == 200 and message is "";
 * res.json is then the last object of the stream. */
int docker_image_pull(docker *d, const char *from_image, const char *tag, const char *registry_auth,
                      uint64_t timeout_ms, docker_cb cb, void *userdata);

/* The events stream (GET /events?since=..&filters=..), one callback per event object;
 * since <= 0 means from now on, filters may be NULL (kept, not stolen: do not change it
 * afterwards). The events are Docker's whatever the engine: an engine's other names of the
 * actions and the filters it cannot apply are handled here (docker_compat.h).
 * on_end is called once when the stream ends for any reason (err/status say why), unless
 * the stream was stopped with docker_events_stop. Lines longer than 64 KiB end the stream
 * with -EFBIG. */
typedef struct docker_events docker_events;
typedef void (*docker_event_cb)(json_t *event, void *userdata); /* borrowed */
/* A container event's action ("start", "die"...) and full container id (64 hex digits), from
 * either form the engine writes (Action / status, Actor.ID / id): 0, or -EINVAL when the event
 * has no action or no container id. Both point into event. */
int docker_event_container(json_t *event, const char **action, const char **id);
typedef void (*docker_events_end_cb)(const struct docker_result *res, void *userdata);
int docker_events_start(docker *d, int64_t since, json_t *filters, docker_event_cb on_event,
                        docker_events_end_cb on_end, void *userdata, docker_events **ret);
void docker_events_stop(docker_events *ev);
#define DOCKER_EVENTS_MAX_LINE (64 * 1024)

/* POST /containers/{id}/wait?condition=... ("not-running", "next-exit", "removed"; NULL: the
 * engine's default). 200 {"StatusCode":n}. It lasts as long as the container runs, so it has
 * its own timeout_ms (0: none) instead of the per-call one. */
int docker_container_wait(docker *d, const char *id, const char *condition, uint64_t timeout_ms,
                          docker_cb cb, void *userdata);

/* Pure helpers, exposed for the tests. */

/* DOCKER_HOST resolved to what http.h needs. */
struct docker_endpoint {
    char *base_url;    /* "http://localhost" (unix), "http://host:2375", "https://host:2376" */
    char *unix_socket; /* the socket path for unix://, else NULL */
};
/* host NULL or "": unix:///var/run/docker.sock. tcp:// without a port gets 2376 with TLS,
 * 2375 without. 0, -ENOMEM, or -EINVAL with a message naming DOCKER_HOST in err. */
int docker_endpoint_parse(const char *host, bool tls, struct docker_endpoint *ret,
                          struct ct_error *err);
void docker_endpoint_clear(struct docker_endpoint *ep);
/* Percent-encodes every byte but RFC 3986 unreserved ones (A-Z a-z 0-9 - . _ ~). malloc'd,
 * NULL on ENOMEM. */
char *docker_url_encode(const char *s);
/* The bounded name of an API call for metrics ("containers/create", "containers/logs", "ping",
 * "other"...): the path's shape, never its ids. path as given to docker_call. */
const char *docker_api_label(const char *method, const char *path);
/* base_url + "/" DOCKER_API_VERSION + path. malloc'd, NULL on ENOMEM. */
char *docker_url_join(const char *base_url, const char *path);
/* base_url + "/" version + path. malloc'd, NULL on ENOMEM. */
char *docker_url_join_version(const char *base_url, const char *version, const char *path);
/* prefix + encoded(id) + suffix, e.g. ("/containers/", id, "/json"). malloc'd or NULL. */
char *docker_path_for(const char *prefix, const char *id, const char *suffix);
/* Appends "?key=value" (or "&key=value" when *path already has a query) to the malloc'd
 * *path, value encoded. 0 or -ENOMEM (*path untouched). */
int docker_query_add(char **path, const char *key, const char *value);
