/* support: helpers for the cmocka integration tests.
 *
 * The servers are started by tests/run.sh (through tests/servers.sh), which exports:
 *   CT_SERVERS             absolute path of tests/servers.sh (see ct_servers())
 *   CT_SERVERS_DIR         the servers' state folder
 *   CT_DOCKER_HOST         unix:///.../docker.sock of the private engine (DOCKER_HOST too)
 *   CT_RABBITMQ_HOST       127.0.0.1
 *   CT_RABBITMQ_PORT       AMQP port of the private node (guest/guest)
 *   CT_RABBITMQ_MGMT_PORT  its management HTTP port
 *   CT_RABBITMQ_NODE       its node name (for rabbitmqctl -n)
 *   CT_TMP                 a scratch folder for test files (world-readable)
 * and the engine holds the test images of tests/images/build.sh (ct-ok, ct-separator,
 * ct-stderr, ct-fail, ct-invalid, ct-sleeper, ct-memhog, ct-echo, ct-notmp, ct-badcmd,
 * ct-shell, ct-badvolume).
 *
 * Everything here is blocking and bounded by a timeout. A helper that cannot do its job fails
 * the current test with fail_msg() (so include it from a cmocka test), unless its comment says
 * it returns NULL or an error. Returned strings and json_t references belong to the caller
 * (free() / json_decref()). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ environment, files */

/* The value of an environment variable; fails the test when it is unset or empty. */
const char *ct_env(const char *name);

/* A name unique to this process and call: "<prefix>-<pid>-<counter>-<random hex>", for queue
 * names, labels and files that must not collide between tests. */
char *ct_unique(const char *prefix);

/* Writes data to $CT_TMP/<name> (mode 0644, replaced if present); returns the path. */
char *ct_tmpfile(const char *name, const void *data, size_t len);

/* The whole file, NUL-terminated (len without the NUL); NULL if it cannot be read. */
char *ct_read_file(const char *path, size_t *len);

/* Parses JSON; fails the test on a syntax error. */
json_t *ct_json(const char *s);

/* ------------------------------------------------------------------ processes */

/* Starts path with argv; the child's environment is ours plus extra_env ("NAME=VALUE"
 * entries, NULL-terminated, overriding ours; extra_env may be NULL); stdin is /dev/null and
 * stdout+stderr are appended to log_path (created if needed). The child is the leader of its
 * own process group. */
pid_t ct_spawn(const char *path, char *const argv[], char *const extra_env[], const char *log_path);

/* Waits for the child to exit, at most timeout_ms: 0 with its wait status in *status (may be
 * NULL; use WIFEXITED/WEXITSTATUS), or -ETIMEDOUT (the child still runs), or -ECHILD. */
int ct_wait_exit(pid_t pid, int timeout_ms, int *status);

/* kill(pid, sig); a child that has already gone is not an error. */
void ct_kill(pid_t pid, int sig);

/* Cleanup helper for a child of ct_spawn: SIGTERM, wait up to timeout_ms, then SIGKILL, and
 * reap. Returns the wait status, or -1 when it is no longer our child (already reaped: then it
 * sends nothing). */
int ct_terminate(pid_t pid, int timeout_ms);

/* Runs "$CT_SERVERS <action>" (start/stop are run.sh's business; tests use docker-stop,
 * docker-start, rabbitmq-stop-app, rabbitmq-start-app, status); returns its exit status, or -1
 * if it could not run. */
int ct_servers(const char *action);

/* ------------------------------------------------------------------ waiting */

/* Calls cond(ud) every ~50 ms until it returns true (true) or timeout_ms has passed (false,
 * after one last call). */
bool ct_wait_until(bool (*cond)(void *ud), void *ud, int timeout_ms);

/* A TCP port free now on 127.0.0.1 (the kernel's choice). */
int ct_free_port(void);

/* Milliseconds of a monotonic clock. */
int64_t ct_now_ms(void);

/* ------------------------------------------------------------------ AMQP (blocking rabbitmq-c)
 * Each call opens its own connection to CT_RABBITMQ_HOST:CT_RABBITMQ_PORT as guest/guest and
 * closes it, so a broker outage in between leaves nothing stale. */

struct ct_msg {
    char *body; /* NUL-terminated */
    size_t len; /* without the NUL */
    bool redelivered;
    char *message_id;   /* NULL when absent */
    char *content_type; /* NULL when absent */
    int delivery_mode;  /* 0 when absent, 2 = persistent */
    json_t *headers;    /* object: strings, integers, booleans, reals; {} when none */
    uint64_t timestamp; /* the timestamp property, 0 when absent */
};
void ct_msg_free(struct ct_msg *m);

/* The virtual host of the ct_amqp_* calls from now on (NULL: "/", the default). */
void ct_amqp_use_vhost(const char *vhost);

void ct_amqp_declare(const char *queue); /* durable, not exclusive, not auto-delete */
void ct_amqp_purge(const char *queue);
void ct_amqp_delete(const char *queue); /* absent is fine */

/* Publishes to queue on the default exchange: content_type application/json, persistent,
 * message_id if not NULL, mandatory, and waits for the broker's confirm (fails the test on a
 * nack or a return: the queue must exist). */
void ct_amqp_publish(const char *queue, const char *body, const char *message_id);

struct ct_publish_opts {
    const char *content_type; /* NULL: none */
    const char *message_id;   /* NULL: none */
    bool transient;           /* false: delivery_mode 2 */
    json_t *headers;          /* NULL or an object of string/integer/boolean/real values */
    uint64_t timestamp;       /* the timestamp property (unix seconds); 0: none */
};
/* Same, with any body bytes and properties. */
void ct_amqp_publish_ex(const char *queue, const void *body, size_t len,
                        const struct ct_publish_opts *opts);

/* basic.get with auto-ack, retried every ~50 ms until a message comes or timeout_ms passes
 * (NULL). timeout_ms 0 tries once. */
struct ct_msg *ct_amqp_get(const char *queue, int timeout_ms);

/* Ready messages (passive declare); -1 if the queue does not exist. */
int ct_amqp_count(const char *queue);

/* ------------------------------------------------------------------ management HTTP API */

/* Any management API call: path after "/api" ("/queues/%2F/q"); body JSON or NULL. Returns the
 * parsed JSON body (NULL if none or not JSON) and the HTTP status in *status (0 when the API did
 * not answer). */
json_t *ct_mgmt(const char *method, const char *path, const char *body_json, long *status);

/* GET /api/queues/%2F/<queue>: the object (messages_ready, messages_unacknowledged,
 * consumers, ...), NULL if the queue does not exist. The statistics lag by up to ~0.5 s: poll
 * them with ct_wait_until. */
json_t *ct_mgmt_queue(const char *queue);

/* The queue's field as an integer (0 when absent, -1 when the queue does not exist). */
long ct_mgmt_queue_int(const char *queue, const char *field);

/* ------------------------------------------------------------------ Docker Engine API
 * libcurl over the unix socket of CT_DOCKER_HOST, API v1.41. */

/* Any call: path after the version ("/containers/json?all=1"); body JSON or NULL. Returns the
 * parsed JSON body (NULL if none or not JSON) and the HTTP status in *status (0 when the engine
 * did not answer, e.g. during docker-stop). */
json_t *ct_docker(const char *method, const char *path, const char *body_json, long *status);
/* Whether the test engine is Podman (its Docker-compatible API), as the Docker client tells
 * it from GET /version (docker_compat_engine), asked once. For the tests that assert what
 * an engine can do where Podman differs (docker_compat.h and the README's "Running against
 * Podman" say what and why). */
bool ct_engine_is_podman(void);

/* Same, raw: any body (content_type may be NULL), returns the body bytes NUL-terminated (NULL
 * when the engine did not answer). */
char *ct_docker_raw(const char *method, const char *path, const char *content_type,
                    const void *body, size_t body_len, long *status, size_t *len);

/* GET /containers/{id}/json; NULL on 404. */
json_t *ct_docker_inspect(const char *id_or_name);

/* All containers (running or not) with the label ("key" or "key=value"): the array of
 * GET /containers/json?all=1&filters={"label":[label_filter]}. */
json_t *ct_docker_list(const char *label_filter);

/* Force-removes (with volumes) every container with the label; for test cleanup. */
void ct_docker_remove_labelled(const char *label);

/* Creates (not starts) a container of image; env NULL-terminated "NAME=VALUE" or NULL; labels
 * a JSON object or NULL; host_config a JSON object or NULL. Returns its id. */
char *ct_docker_create(const char *image, const char *const env[], json_t *labels,
                       json_t *host_config);
void ct_docker_start(const char *id);

/* POST /containers/{id}/wait, at most timeout_ms: the exit code, or -ETIMEDOUT. */
int ct_docker_wait(const char *id, int timeout_ms);

/* The container's logs (demultiplexed), stdout and/or stderr, NUL-terminated. */
char *ct_docker_logs(const char *id, bool out, bool err, size_t *len);

/* The bytes of the regular file at path in the container (GET /containers/{id}/archive), NUL
 * added; NULL if absent or not a regular file. */
char *ct_docker_read_file(const char *container, const char *path, size_t *len);

/* Puts a regular file dir/name (mode 0644) into the container (PUT /containers/{id}/archive);
 * returns the HTTP status (200 on success, 404 when dir does not exist). */
long ct_docker_put_file(const char *container, const char *dir, const char *name, const void *data,
                        size_t len);

/* GET url (10 s at most): the body, "" when empty, NULL when no answer; the status in
 * *status (0: no answer). */
char *ct_http_get(const char *url, long *status);

/* The image exists in the engine. */
bool ct_docker_image_exists(const char *image);

/* The engine's "oom" events from two seconds before ct_oom_watch_start on (`docker events
 * --since`, which replays the engine's recent events, so none is missed while it connects),
 * written by a child process to a file. The engine loses a few OOM kills under load (the
 * kernel's event read after the container's cgroup is gone): a test of an out-of-memory verdict
 * asks what the engine saw. */
struct ct_oom_watch {
    pid_t pid;
    char *path;
};
void ct_oom_watch_start(struct ct_oom_watch *w);
/* An oom event came for the container id, or (id NULL) for a container whose label has value. */
bool ct_oom_watch_saw(const struct ct_oom_watch *w, const char *id, const char *label,
                      const char *value);
void ct_oom_watch_stop(struct ct_oom_watch *w);

/* ------------------------------------------------------------------ processes of a test
 * Children a test started, killed by ct_kill_tracked() (call it from teardown) when the test
 * failed half-way and left them running. */
void ct_track(pid_t pid);
void ct_untrack(pid_t pid);
void ct_kill_tracked(void);

/* Counts the occurrences of needle in the file (0 when unreadable). */
int ct_file_count(const char *path, const char *needle);

/* ------------------------------------------------------------------ our daemons */

struct ct_daemon {
    pid_t pid;
    char log[512];
};

/* Starts build/bin/correctomatic-<program> ("starter", "completer", "notifier") with the test
 * servers (RABBITMQ_HOST/PORT, DOCKER_HOST), LOG_LEVEL=debug, RABBITMQ_HEARTBEAT=2, a health
 * file in CT_TMP and (the starter) EXERCISE_DIR=$CT_TMP, then extra_env ("NAME=VALUE",
 * NULL-terminated, may be NULL; they win over those). Its output goes to
 * $CT_TMP/<program>-<name>.log (emptied first). Tracked. */
void ct_daemon_start(struct ct_daemon *d, const char *program, const char *name,
                     const char *const *extra_env);
/* SIGTERM, then waits up to 20 s (fails the test past that, after a SIGKILL). Returns the
 * wait status. Untracked. */
int ct_daemon_stop(struct ct_daemon *d);
/* SIGKILL, reaped. */
void ct_daemon_kill(struct ct_daemon *d);
/* Waits until needle appears count times in the daemon's log (fails the test after
 * timeout_ms). */
void ct_daemon_wait_log(const struct ct_daemon *d, const char *needle, int count, int timeout_ms);
/* The same counting lines: those holding needle and, unless also is NULL, also. */
void ct_daemon_wait_lines(const struct ct_daemon *d, const char *needle, const char *also,
                          int count, int timeout_ms);
/* How many lines of the file hold needle and, unless also is NULL, also. */
int ct_file_count_lines(const char *path, const char *needle, const char *also);
/* ct_daemon_start with the caller's own defaults ("NAME=VALUE", NULL-terminated) under
 * extra_env: a name in extra_env wins over the same name in defaults. */
void ct_daemon_start_over(struct ct_daemon *d, const char *program, const char *name,
                          const char *const *defaults, const char *const *extra_env);
/* How a daemon is started beyond its settings: one argument (e.g. "--replay-failed"; NULL for
 * none) and a network namespace to run it in (netns.h; NULL for this one). */
struct ct_netns;
struct ct_daemon_how {
    const char *arg;
    const struct ct_netns *ns;
};
/* ct_daemon_start_over so (how may be NULL). */
void ct_daemon_start_how(struct ct_daemon *d, const char *program, const char *name,
                         const struct ct_daemon_how *how, const char *const *defaults,
                         const char *const *extra_env);

/* ------------------------------------------------------------------ a callback receiver
 * tests/support/receiver.py (see its header for how it answers each path). */

struct ct_receiver {
    pid_t pid;
    int port;
    char log[512];
    char port_file[512];
    char out[512];
};

/* Starts it on 127.0.0.1:port (0: a free one); with fresh, the request log of an earlier
 * receiver of the same name is dropped. Tracked. */
void ct_receiver_start(struct ct_receiver *r, const char *name, int port, bool fresh);
void ct_receiver_stop(struct ct_receiver *r);
/* "http://127.0.0.1:<port><path>" */
void ct_receiver_url(char *buf, size_t len, const struct ct_receiver *r, const char *path);
/* Every request so far, in arrival order: objects {time, method, path, headers, body, status}. */
json_t *ct_receiver_requests(const struct ct_receiver *r);
/* Requests to path (exactly; NULL: any) answered with status (-1: any). */
int ct_receiver_count(const struct ct_receiver *r, const char *path, long status);
/* Waits until ct_receiver_count(r, path, status) >= n (fails the test after timeout_ms). */
void ct_receiver_wait(const struct ct_receiver *r, const char *path, long status, int n,
                      int timeout_ms);
/* The same for a batch on a machine of unknown load: waits as long as requests keep coming
 * (fails when none came for stall_ms, or after max_ms in all). */
void ct_receiver_wait_progress(const struct ct_receiver *r, const char *path, long status, int n,
                               int stall_ms, int max_ms);
/* The path of receiver.py, for other modes (verify). */
const char *ct_receiver_script(void);

/* ------------------------------------------------------------------ the pipeline's state */

/* What every pipeline test starts and ends from: the processes a failed test left killed
 * (ct_kill_tracked), the pipeline's queues (pending, running, finished and their .invalid,
 * failed_callbacks) declared and empty, and no correction container (label
 * correctomatic.job_id). */
void ct_reset_pipeline(void);
/* ct_reset_pipeline as cmocka setup and teardown functions. */
int ct_reset_pipeline_fixture(void **state);
