/* docker_compat: what differs between engines that speak the Docker Engine API, made to look
 * like Docker behind the client (docker.c), so the stages never ask which engine they talk to.
 * Pure: no I/O; tests/unit/test_docker_compat.c holds the answers it was written from.
 *
 * Podman's compatible API (4.3, `podman system service`) differs from Docker 20.10 in:
 *   - /events filters: an "event" value is matched against Podman's own name of the action
 *     ("died" for die, "remove" for destroy) while the event reports Docker's "die" (and
 *     Podman's "remove"); a "label" value without "=" (the label is there, any value) matches
 *     nothing; several "label" values are OR'ed (Docker: AND'ed);
 *   - error statuses: a container name in use answers 500 (Docker: 409), a kill of a
 *     container that is not running answers 500 (Docker: 409), a create naming a network
 *     that does not exist answers 500 (Docker: 201, then 404 to the start), an image name
 *     that is not one answers 500 (Docker: 400); Podman says which
 *     in a "cause" field that Docker never sends;
 *   - HostConfig.Runtime of a create body is ignored (the container runs under the engine's
 *     default runtime, whatever the body asked for: a correction meant for gVisor would run
 *     under runc);
 *   - logs: one json-file log (k8s-file), emptied when it reaches max-size (max-file is
 *     ignored; Docker rotates its files), and the inspect shows no log options; its tail
 *     joins partial lines across frames and streams, and answers nothing when the last line
 *     of the asked stream is partial (the client keeps the tail itself: log_tail.h);
 *   - rootless on cgroup v1 (GET /info: Rootless, CgroupVersion "1"): a container's memory,
 *     CPU and pids limits are dropped, and its answers say nothing (Warnings empty, the
 *     inspect shows 0s): creates asking for them are refused here instead (fail closed);
 *   - ulimits: a create body with HostConfig.Ulimits replaces containers.conf's
 *     default_ulimits altogether, and Podman then sets nproc (and nofile) itself to 1048576,
 *     which a host whose hard limit is lower refuses at start ("error setting rlimit type 7").
 * The client learns which engine it talks to from GET /version (docker_compat_engine) before
 * its first call and again after the engine went away, and applies these rules to Podman
 * only: what Docker is sent and answers is left exactly as it is. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum docker_engine {
    DOCKER_ENGINE_DOCKER = 0, /* Docker, or any engine not recognised: no rewriting */
    DOCKER_ENGINE_PODMAN,     /* Podman's Docker-compatible API */
};

/* The engine that wrote this GET /version answer (parsed; NULL: Docker): Podman when one of
 * its "Components" is named "Podman Engine" (Podman 4.x) or its "Platform" "Name" says
 * Podman (3.x: "Podman Engine"). Anything else is Docker. */
enum docker_engine docker_compat_engine(json_t *version);
/* "Docker" or "Podman". */
const char *docker_compat_engine_name(enum docker_engine e);

/* The API version to put in every path ("v1.41") for this GET /version answer, into buf:
 * `preferred` (e.g. DOCKER_API_VERSION), unless the engine's "ApiVersion" is older, then the
 * engine's own (as the docker CLI negotiates): an engine is never asked for a version it does
 * not serve. NULL version or no readable ApiVersion: preferred. */
void docker_compat_api_version(json_t *version, const char *preferred, char *buf, size_t len);

/* The filters to send to the engine for the filters the caller asked for (not stolen): each
 * wanted "event" also under the other engine's name of it, and only "key=value" labels (a
 * label the engine may not understand is checked here instead: docker_compat_event_wanted).
 * NULL filters: NULL and 0. 0 and *ret (a new reference), or -ENOMEM. */
int docker_compat_events_filters(json_t *filters, json_t **ret);

/* Whether an event matches every "label" of the filters the caller asked for (AND, as Docker
 * does): "key" when Actor.Attributes has key, "key=value" when it has that value. NULL
 * filters, or none with a label: true. */
bool docker_compat_event_wanted(json_t *event, json_t *filters);

/* Rewrites an event's action names to Docker's ("died" to "die", a container's "remove" to
 * "destroy"), in "Action" and "status", and gives a die event Docker's "exitCode" attribute
 * when it has only Podman's "containerExitCode". */
void docker_compat_event_normalize(json_t *event);

/* The status Docker would have answered for this error answer (json: its parsed body, may be
 * NULL; create: the answer to a container create): 409 for Podman's "that name is already in
 * use" and "container state improper" 500s; 400 for its "invalid reference format" 500 (an
 * image name that is not one); 400 for its "network not found" 500 to a create
 * (Docker creates the container and refuses the start with 404 "network ... not found"; a
 * 404 to a create would say "no such image"); any other status as it is. */
long docker_compat_status(long status, json_t *json, bool create);

/* The create body to send to Podman for this one (not stolen), in *ret (a new reference), or
 * *ret NULL when it is to be sent as it is. Changed:
 *   - when HostConfig.Ulimits is a non-empty list without "nproc" and HostConfig.PidsLimit is
 *     above 0, {"Name":"nproc","Soft":PidsLimit,"Hard":PidsLimit} is added;
 *   - a json-file LogConfig with max-size and max-file (2 or more) gets a max-size of both
 *     multiplied, in bytes (Podman keeps one file, emptied when full).
 * 0, or -ENOMEM. */
int docker_compat_create_config(json_t *config, json_t **ret);

/* Whether this GET /info answer (parsed; NULL: no) is a rootless Podman on cgroup v1
 * ("Rootless": true, "CgroupVersion": "1"), which ignores every resource limit of a container
 * (memory, CPUs, pids) without a word in its answers: it runs them unlimited. */
bool docker_compat_limits_ignored(json_t *info);

/* Whether Podman must not be sent this create body, because it would ignore what the body
 * asks instead of refusing it: a non-empty HostConfig.Runtime; with limits_ignored
 * (docker_compat_limits_ignored), a Memory, NanoCpus or PidsLimit above 0. Then buf holds
 * the message to answer as Docker's 400: for a runtime, Docker's own ("Unknown runtime
 * specified <name>"), with why. */
bool docker_compat_create_refused(json_t *config, bool limits_ignored, char *buf, size_t len);
