/* correctomatic-starter: pending_corrections -> started correction containers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "starter.h"

static const struct config_doc docs[] = {
    {"RABBITMQ_HOST", "localhost", "RabbitMQ host"},
    {"RABBITMQ_PORT", "5672", "RabbitMQ AMQP port"},
    {"RABBITMQ_USER", "guest", "RabbitMQ user"},
    {"RABBITMQ_PASSWORD", "guest", "RabbitMQ password"},
    {"RABBITMQ_VHOST", "/", "RabbitMQ virtual host"},
    {"RABBITMQ_HEARTBEAT", "30", "AMQP heartbeat in seconds (0: off)"},
    {"DOCKER_HOST", "unix:///var/run/docker.sock", "Docker engine (unix:// or tcp://)"},
    {"DOCKER_TLS_VERIFY", "", "use TLS with tcp:// (certificates from DOCKER_CERT_PATH)"},
    {"DOCKER_CERT_PATH", "~/.docker", "folder with ca.pem, cert.pem, key.pem"},
    {"DOCKER_TIMEOUT", "30s", "timeout of each Docker API call"},
    {"LOG_LEVEL", "info", "debug, info, warn or error"},
    {"MAX_RUNNING", "8", "correction containers running at once on the Docker host"},
    {"CORRECTION_NETWORK", "none", "network of correction containers"},
    {"CORRECTION_MEMORY", "512m", "memory limit of a correction container (no extra swap)"},
    {"CORRECTION_CPUS", "1", "CPUs of a correction container"},
    {"CORRECTION_PIDS", "256", "process limit of a correction container"},
    {"CORRECTION_CAP_ADD", "", "capabilities to give back (comma-separated); all are dropped"},
    {"CORRECTION_LOG_SIZE", "4m", "cap of a correction container's json-file log"},
    {"CORRECTION_TIMEOUT", "180s", "time limit of a correction (written in the deadline label)"},
    {"MAX_EXERCISE_BYTES", "10m", "largest submission file"},
    {"EXERCISE_DIR", "", "when set, submission files must resolve inside this folder"},
    {"DELETE_EXERCISE_FILE", "false", "delete the submission once it is in the container"},
    {"DONT_START_CONTAINER", "false", "create containers without starting them (testing)"},
    {"MAX_MESSAGE_BYTES", "1m", "largest pending message accepted"},
    {"RETRY_MIN", "500ms", "first retry delay after a Docker or broker fault"},
    {"RETRY_MAX", "30s", "longest retry delay"},
    {"RECONCILE_INTERVAL", "5s", "how often the running count is re-read from Docker"},
    {"SHUTDOWN_TIMEOUT", "10s", "on SIGTERM, how long in-flight jobs may take to finish"},
};

#define GiB (1024ULL * 1024 * 1024)

static int load_config(struct starter_config *c, struct config_err *e)
{
    uint64_t port, heartbeat, u;
    const char *level;
    amqp_link_config_defaults(&c->amqp);
    docker_config_defaults(&c->docker);
    if (config_str("RABBITMQ_HOST", "localhost", &c->amqp.host, e) < 0 ||
        config_uint("RABBITMQ_PORT", 5672, 1, 65535, &port, e) < 0 ||
        config_str("RABBITMQ_USER", "guest", &c->amqp.user, e) < 0 ||
        config_str("RABBITMQ_PASSWORD", "guest", &c->amqp.password, e) < 0 ||
        config_str("RABBITMQ_VHOST", "/", &c->amqp.vhost, e) < 0 ||
        config_uint("RABBITMQ_HEARTBEAT", 30, 0, 3600, &heartbeat, e) < 0 ||
        config_bytes("MAX_MESSAGE_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024, &u, e) < 0)
        return -EINVAL;
    c->amqp.port = (int)port;
    c->amqp.heartbeat_s = (unsigned)heartbeat;
    c->amqp.max_message_bytes = (size_t)u;
    if (docker_config_from_env(&c->docker, e->msg, sizeof(e->msg)) < 0 ||
        config_duration_ms("DOCKER_TIMEOUT", 30000, 100, 3600000, &c->docker.timeout_ms, e) < 0)
        return -EINVAL;
    if (config_str("LOG_LEVEL", "info", &level, e) < 0)
        return -EINVAL;
    enum log_level lvl;
    if (log_level_parse(level, &lvl) < 0) {
        snprintf(e->msg, sizeof(e->msg),
                 "invalid LOG_LEVEL=\"%.32s\": expected debug, info, warn or error", level);
        return -EINVAL;
    }
    log_set_level(lvl);
    const char *exercise_dir;
    if (config_uint("MAX_RUNNING", 8, 1, 10000, &c->max_running, e) < 0 ||
        config_str("CORRECTION_NETWORK", "none", &c->network, e) < 0 ||
        config_bytes("CORRECTION_MEMORY", 512ULL * 1024 * 1024, 6 * 1024 * 1024, 1024 * GiB,
                     &c->memory_bytes, e) < 0 ||
        config_nanocpus("CORRECTION_CPUS", 1000000000ULL, &c->nanocpus, e) < 0 ||
        config_uint("CORRECTION_PIDS", 256, 1, 4194304, &c->pids, e) < 0 ||
        config_str("CORRECTION_CAP_ADD", NULL, &c->cap_add, e) < 0 ||
        config_str("CORRECTION_LOG_SIZE", "4m", &c->log_max_size, e) < 0 ||
        config_duration_ms("CORRECTION_TIMEOUT", 180000, 1000, 7 * 24 * 3600 * 1000ULL,
                           &c->correction_timeout_ms, e) < 0 ||
        config_bytes("MAX_EXERCISE_BYTES", 10 * 1024 * 1024, 0, 1 * GiB, &c->max_exercise_bytes,
                     e) < 0 ||
        config_str("EXERCISE_DIR", NULL, &exercise_dir, e) < 0 ||
        config_bool("DELETE_EXERCISE_FILE", false, &c->delete_file, e) < 0 ||
        config_bool("DONT_START_CONTAINER", false, &c->dont_start, e) < 0 ||
        config_duration_ms("RETRY_MIN", 500, 10, 3600000, &c->retry_min_ms, e) < 0 ||
        config_duration_ms("RETRY_MAX", 30000, 10, 24 * 3600000ULL, &c->retry_max_ms, e) < 0 ||
        config_duration_ms("RECONCILE_INTERVAL", 5000, 100, 3600000, &c->reconcile_ms, e) < 0 ||
        config_duration_ms("SHUTDOWN_TIMEOUT", 10000, 0, 3600000, &c->shutdown_timeout_ms, e) < 0)
        return -EINVAL;
    c->exercise_dir = exercise_dir;
    uint64_t logsize;
    if (config_parse_bytes(c->log_max_size, &logsize) < 0 || logsize < 4096) {
        snprintf(
            e->msg, sizeof(e->msg),
            "invalid CORRECTION_LOG_SIZE=\"%.32s\": expected a size of at least 4k, such as 4m",
            c->log_max_size);
        return -EINVAL;
    }
    for (const char *p = c->network; *p; p++) {
        if (!(*p == '-' || *p == '_' || *p == '.' || *p == ':' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
            snprintf(e->msg, sizeof(e->msg),
                     "invalid CORRECTION_NETWORK=\"%.64s\": not a network name", c->network);
            return -EINVAL;
        }
    }
    if (c->retry_max_ms < c->retry_min_ms) {
        snprintf(e->msg, sizeof(e->msg), "invalid RETRY_MAX: shorter than RETRY_MIN");
        return -EINVAL;
    }
    return 0;
}

struct app {
    uv_signal_t sigterm, sigint;
    starter *s;
    bool stopping;
};

static void on_done(void *ud)
{
    struct app *app = ud;
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    log_kv(LOG_INFO, signum == SIGTERM ? "SIGTERM received" : "SIGINT received", NULL);
    if (app->stopping)
        return;
    app->stopping = true;
    starter_shutdown(app->s, on_done, app);
}

int main(int argc, char **argv)
{
    log_set_app("starter");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_print_help(
                "correctomatic-starter",
                "Takes jobs from pending_corrections, starts a locked-down correction "
                "container for each\nand announces it on running_corrections.",
                docs, sizeof(docs) / sizeof(docs[0]));
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("correctomatic-starter %s\n", CT_VERSION);
            return 0;
        }
        fprintf(stderr, "correctomatic-starter: unknown argument '%s' (see --help)\n", argv[i]);
        return 2;
    }
    struct starter_config cfg = {0};
    struct config_err e = {{0}};
    if (load_config(&cfg, &e) < 0) {
        fprintf(stderr, "correctomatic-starter: %s\n", e.msg);
        log_kv(LOG_ERROR, "bad configuration", "error", e.msg, NULL);
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    char err[256];
    struct app app = {0};
    app.s = starter_new(loop, &cfg, err, sizeof(err));
    if (!app.s) {
        log_kv(LOG_ERROR, "cannot start", "error", err, NULL);
        return 1;
    }
    uv_signal_init(loop, &app.sigterm);
    uv_signal_init(loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    int r = starter_start(app.s);
    if (r < 0) {
        log_kv(LOG_ERROR, "cannot start", "error", strerror(-r), NULL);
        return 1;
    }
    char running[32];
    snprintf(running, sizeof(running), "%llu", (unsigned long long)cfg.max_running);
    log_kv(LOG_INFO, "starter running", "version", CT_VERSION, "max_running", running, "network",
           cfg.network, "dont_start", cfg.dont_start ? "true" : "false", NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    starter_free(app.s);
    r = uv_loop_close(loop);
    if (r != 0)
        log_kv(LOG_WARN, "event loop closed with handles open", NULL);
    return 0;
}
