#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static const struct config_doc common_docs[] = {
    {"RABBITMQ_HOST", "localhost", "RabbitMQ host"},
    {"RABBITMQ_PORT", "5672", "RabbitMQ AMQP port"},
    {"RABBITMQ_USER", "guest", "RabbitMQ user"},
    {"RABBITMQ_PASSWORD", "guest", "RabbitMQ password"},
    {"RABBITMQ_VHOST", "/", "RabbitMQ virtual host"},
    {"RABBITMQ_HEARTBEAT", "30", "AMQP heartbeat in seconds (0: off)"},
    {"MAX_MESSAGE_BYTES", "1m", "largest queue message accepted"},
    {"LOG_LEVEL", "info", "debug, info, warn or error"},
};

static const struct config_doc docker_docs[] = {
    {"DOCKER_HOST", "unix:///var/run/docker.sock", "Docker engine (unix:// or tcp://)"},
    {"DOCKER_TLS_VERIFY", "", "use TLS with tcp:// (certificates from DOCKER_CERT_PATH)"},
    {"DOCKER_CERT_PATH", "~/.docker", "folder with ca.pem, cert.pem, key.pem"},
    {"DOCKER_TIMEOUT", "30s", "timeout of each Docker API call"},
};

int daemon_load_common(struct daemon_common *c, bool with_docker, struct config_err *e)
{
    uint64_t port, heartbeat, max_msg;
    const char *level;
    amqp_link_config_defaults(&c->amqp);
    docker_config_defaults(&c->docker);
    if (config_str("RABBITMQ_HOST", "localhost", &c->amqp.host, e) < 0 ||
        config_uint("RABBITMQ_PORT", 5672, 1, 65535, &port, e) < 0 ||
        config_str("RABBITMQ_USER", "guest", &c->amqp.user, e) < 0 ||
        config_str("RABBITMQ_PASSWORD", "guest", &c->amqp.password, e) < 0 ||
        config_str("RABBITMQ_VHOST", "/", &c->amqp.vhost, e) < 0 ||
        config_uint("RABBITMQ_HEARTBEAT", 30, 0, 3600, &heartbeat, e) < 0 ||
        config_bytes("MAX_MESSAGE_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024, &max_msg, e) < 0 ||
        config_str("LOG_LEVEL", "info", &level, e) < 0)
        return -EINVAL;
    c->amqp.port = (int)port;
    c->amqp.heartbeat_s = (unsigned)heartbeat;
    c->amqp.max_message_bytes = (size_t)max_msg;
    c->amqp.max_unconfirmed = 4096;
    enum log_level lvl;
    if (log_level_parse(level, &lvl) < 0) {
        snprintf(e->msg, sizeof(e->msg),
                 "invalid LOG_LEVEL=\"%.32s\": expected debug, info, warn or error", level);
        return -EINVAL;
    }
    log_set_level(lvl);
    if (with_docker &&
        (docker_config_from_env(&c->docker, e->msg, sizeof(e->msg)) < 0 ||
         config_duration_ms("DOCKER_TIMEOUT", 30000, 100, 3600000, &c->docker.timeout_ms, e) < 0))
        return -EINVAL;
    return 0;
}

int daemon_args(int argc, char **argv, const char *prog, const char *summary, bool with_docker,
                const struct config_doc *docs, size_t n_docs)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_print_help(prog, summary, common_docs,
                              sizeof(common_docs) / sizeof(common_docs[0]));
            if (with_docker)
                config_print_help(NULL, NULL, docker_docs,
                                  sizeof(docker_docs) / sizeof(docker_docs[0]));
            config_print_help(NULL, NULL, docs, n_docs);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", prog, CT_VERSION);
            return 0;
        }
        fprintf(stderr, "%s: unknown argument '%s' (see --help)\n", prog, argv[i]);
        return 2;
    }
    return -1;
}

struct run {
    uv_signal_t sigterm, sigint;
    void *stage;
    daemon_shutdown_fn shutdown;
    bool stopping;
};

static void on_done(void *ud)
{
    struct run *run = ud;
    uv_close((uv_handle_t *)&run->sigterm, NULL);
    uv_close((uv_handle_t *)&run->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct run *run = h->data;
    log_kv(LOG_INFO, signum == SIGTERM ? "SIGTERM received" : "SIGINT received", NULL);
    if (run->stopping)
        return;
    run->stopping = true;
    run->shutdown(run->stage, on_done, run);
}

void daemon_run(uv_loop_t *loop, void *stage, daemon_shutdown_fn shutdown)
{
    struct run run = {.stage = stage, .shutdown = shutdown};
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &run.sigterm);
    uv_signal_init(loop, &run.sigint);
    run.sigterm.data = run.sigint.data = &run;
    uv_signal_start(&run.sigterm, on_signal, SIGTERM);
    uv_signal_start(&run.sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
}
