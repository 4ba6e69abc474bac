/* daemon: what the three daemons share around their stage: the common configuration
 * (RabbitMQ, Docker, logging), --help/--version, and the signal handling of main(). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "amqp_link.h"
#include "config.h"
#include "docker.h"

struct daemon_common {
    struct amqp_link_config amqp;
    struct docker_config docker;
    const char *running_queue; /* RUNNING_QUEUE, read with the Docker settings */
    /* HOST_LOST_GRACE: a running message not taken by its host's completer by its job's time
     * limit plus this is dead-lettered (running_corrections.lost): the host is gone */
    uint64_t host_lost_grace_ms;
};

/* Reads RABBITMQ_*, MAX_MESSAGE_BYTES, LOG_LEVEL (applied at once) and, with docker,
 * DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_TIMEOUT, RUNNING_QUEUE and
 * HOST_LOST_GRACE (the starter and the completer of one Docker host share them). The AMQP connection is named
 * "<prog> <version> on <host name>, pid <pid>" (the broker's connection_name). */
int daemon_load_common(struct daemon_common *c, const char *prog, bool with_docker,
                       struct ct_error *e);

/* Handles argv: --help (the common variables, then docs), --version, --health-check (exit 0
 * when the health file was touched in the last 30 s: for container health checks). Returns
 * -1 to go on, else the exit code. */
int daemon_args(int argc, char **argv, const char *prog, const char *summary, bool with_docker,
                const struct config_doc *docs, size_t n_docs);

/* Runs the loop until the stage is shut down: SIGTERM/SIGINT call shutdown(stage, done, ..)
 * once; the loop ends when every handle is closed. While the stage says it is ready, the
 * health file (HEALTH_FILE, default /tmp/<prog>.health) is touched every 5 s: ready is what
 * /readyz says (RabbitMQ, and for the stages that drive it, Docker and the container settings). */
typedef void (*daemon_shutdown_fn)(void *stage, void (*done)(void *), void *ud);
void daemon_run(uv_loop_t *loop, const char *prog, void *stage, daemon_shutdown_fn shutdown);

/* A stage's way out, the same for the three. stage_stop_begin (from the stage's shutdown, once it
 * has stopped taking work) waits for the work in hand at most timeout_ms; the stage calls
 * stage_stop_check whenever its work may have ended (idle: none left). Then the stage's finish
 * runs, from this timer: never from inside a callback of the link or the Docker client, which
 * finishing frees. At the timeout, timed_out (may be NULL) runs first: what the stage gives up.
 * finish frees what the stage runs on and ends with stage_stop_done, which closes the timer and
 * tells the caller of shutdown. */
struct stage_stop {
    uv_timer_t timer;
    bool stopping; /* stage_stop_begin was called */
    bool finished; /* finish has begun: callbacks that come later do nothing */
    void *stage;
    void (*finish)(void *stage);
    void (*timed_out)(void *stage);
    void (*done)(void *ud);
    void *done_ud;
};
/* (uv_timer_init cannot fail: libuv returns 0) */
void stage_stop_init(struct stage_stop *st, uv_loop_t *loop, void *stage,
                     void (*finish)(void *stage), void (*timed_out)(void *stage));
/* false when it was called before (the second call does nothing) */
bool stage_stop_begin(struct stage_stop *st, uint64_t timeout_ms, void (*done)(void *ud), void *ud);
void stage_stop_check(struct stage_stop *st, bool idle);
/* At the top of the stage's finish: true once (then it tears down), false after. */
bool stage_stop_finishing(struct stage_stop *st);
void stage_stop_done(struct stage_stop *st);

/* A stage as main() runs it. */
struct daemon_stage {
    const char *prog; /* "correctomatic-starter" */
    /* Its handle on the loop from the configuration in *ret: 0, or a negative errno with a
     * reason in err. */
    int (*create)(uv_loop_t *loop, void *cfg, void **ret, struct ct_error *err);
    int (*start)(void *stage); /* 0 or a negative errno */
    daemon_shutdown_fn shutdown;
    void (*destroy)(void *stage);
    void (*announce)(const void *cfg); /* its "running" log line, once started */
};

/* The adapters a stage `p` (a handle `p *`, and p_start, p_shutdown, p_free) needs for
 * struct daemon_stage: p_stage_start, p_stage_shutdown, p_stage_free. */
#define DAEMON_STAGE_ADAPTERS(p)                                                                   \
    static int p##_stage_start(void *stage)                                                        \
    {                                                                                              \
        return p##_start(stage);                                                                   \
    }                                                                                              \
    static void p##_stage_shutdown(void *stage, void (*done)(void *), void *ud)                    \
    {                                                                                              \
        p##_shutdown(stage, done, ud);                                                             \
    }                                                                                              \
    static void p##_stage_free(void *stage)                                                        \
    {                                                                                              \
        p##_free(stage);                                                                           \
    }

/* main() once the configuration is read: creates and starts the stage on the default loop,
 * announces it, runs it until it is shut down (daemon_run), frees it and closes the loop. The
 * exit code: 0, or 1 when the stage could not start (logged; a stage that failed to start is
 * left as it is, for the process to exit). */
int daemon_serve(const struct daemon_stage *stage, void *cfg);

/* A configuration that cannot be used: said on stderr and in the log. The exit code, 2. */
int daemon_bad_config(const char *prog, const char *msg);

/* The stage's readiness (connected to RabbitMQ), for the health file. */
void daemon_set_ready(bool ready);

/* The engine refuses the stage's own container settings (common/refusal): why, for /readyz,
 * which says not ready until it is cleared (NULL), and correctomatic_ready{dependency="settings"}
 * 0. The health file is not touched: a restart does not mend a setting. */
void daemon_set_refused(const char *why);

/* What every stage does with a link event: log it once, and follow readiness (up/down).
 * The stage then does its own part (a lost link returns its deliveries to the queue). */
void daemon_link_event(enum amqp_link_event ev, const char *detail);
