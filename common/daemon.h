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
};

/* Reads RABBITMQ_*, MAX_MESSAGE_BYTES, LOG_LEVEL (applied at once) and, with docker,
 * DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_TIMEOUT and RUNNING_QUEUE (the
 * starter and the completer of one Docker host share it). The AMQP connection is named
 * "<prog> <version> on <host name>, pid <pid>" (the broker's connection_name). */
int daemon_load_common(struct daemon_common *c, const char *prog, bool with_docker,
                       struct config_err *e);

/* Handles argv: --help (the common variables, then docs), --version, --health-check (exit 0
 * when the health file was touched in the last 30 s: for container health checks). Returns
 * -1 to go on, else the exit code. */
int daemon_args(int argc, char **argv, const char *prog, const char *summary, bool with_docker,
                const struct config_doc *docs, size_t n_docs);

/* Runs the loop until the stage is shut down: SIGTERM/SIGINT call shutdown(stage, done, ..)
 * once; the loop ends when every handle is closed. While the stage says it is ready, the
 * health file (HEALTH_FILE, default /tmp/<prog>.health) is touched every 5 s. */
typedef void (*daemon_shutdown_fn)(void *stage, void (*done)(void *), void *ud);
void daemon_run(uv_loop_t *loop, const char *prog, void *stage, daemon_shutdown_fn shutdown);

/* A stage as main() runs it. */
struct daemon_stage {
    const char *prog; /* "correctomatic-starter" */
    /* Its handle on the loop from the configuration, or NULL with a reason in err. */
    void *(*create)(uv_loop_t *loop, void *cfg, char *err, size_t errlen);
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
