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
 * starter and the completer of one Docker host share it). */
int daemon_load_common(struct daemon_common *c, bool with_docker, struct config_err *e);

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

/* The stage's readiness (connected to RabbitMQ), for the health file. */
void daemon_set_ready(bool ready);

/* What every stage does with a link event: log it once, and follow readiness (up/down).
 * The stage then does its own part (a lost link returns its deliveries to the queue). */
void daemon_link_event(enum amqp_link_event ev, const char *detail);
