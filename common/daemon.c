#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hostlist.h"
#include "qtype.h"
#include "log.h"
#include "metrics.h"
#include "metrics_server.h"
#include "msg.h"
#include "names.h"
#include "text.h"

static const struct config_doc common_docs[] = {
    {"RABBITMQ_HOST", "localhost",
     "RabbitMQ host, or nodes of a cluster: host[:port],... (tried in turn)"},
    {"RABBITMQ_PORT", "5672", "RabbitMQ AMQP port"},
    {"RABBITMQ_USER", "guest", "RabbitMQ user"},
    {"RABBITMQ_PASSWORD", "guest", "RabbitMQ password"},
    {"RABBITMQ_VHOST", "/", "RabbitMQ virtual host"},
    {"RABBITMQ_HEARTBEAT", "30", "AMQP heartbeat in seconds (0: off)"},
    {"MAX_MESSAGE_BYTES", "1m", "largest queue message accepted"},
    {"QUEUE_TYPE", "classic",
     "queues declared as classic or quorum (a cluster's replicated queues; every daemon and "
     "the broker's definitions must agree)"},
    {"QUEUE_DELIVERY_LIMIT", "20",
     "quorum: deliveries of a message before it is parked in <queue>.invalid"},
    {"LOG_LEVEL", "info", "debug, info, warn or error"},
    {"HEALTH_FILE", "/tmp/<program>.health",
     "touched every 5 s while ready, as /readyz says (--health-check)"},
    {"METRICS_LISTEN", "",
     "address:port of GET /metrics (Prometheus), /healthz and /readyz; empty: off"},
};

static bool ready;

/* What the metrics endpoint needs, read with the common configuration. */
static const char *metrics_listen;
static bool needs_docker;

static struct metric m_build_info =
    METRIC_GAUGE("correctomatic_build_info", "1, labelled with the daemon and its version.",
                 "daemon", "version");

void daemon_set_ready(bool r)
{
    ready = r;
    METRIC_SET(&metrics_ready, r ? 1 : 0, "rabbitmq");
}

/* ---- a stage's way out (see stage_stop in daemon.h) ---- */

static void on_stop_finish(uv_timer_t *t)
{
    struct stage_stop *st = t->data;
    st->finish(st->stage);
}

static void on_stop_timeout(uv_timer_t *t)
{
    struct stage_stop *st = t->data;
    if (st->timed_out)
        st->timed_out(st->stage);
    st->finish(st->stage);
}

void stage_stop_init(struct stage_stop *st, uv_loop_t *loop, void *stage,
                     void (*finish)(void *stage), void (*timed_out)(void *stage))
{
    *st = (struct stage_stop){.stage = stage, .finish = finish, .timed_out = timed_out};
    uv_timer_init(loop, &st->timer);
    st->timer.data = st;
}

bool stage_stop_begin(struct stage_stop *st, uint64_t timeout_ms, void (*done)(void *ud), void *ud)
{
    if (st->stopping)
        return false;
    st->stopping = true;
    st->done = done;
    st->done_ud = ud;
    uv_timer_start(&st->timer, on_stop_timeout, timeout_ms, 0);
    return true;
}

void stage_stop_check(struct stage_stop *st, bool idle)
{
    if (st->stopping && !st->finished && idle)
        uv_timer_start(&st->timer, on_stop_finish, 0, 0);
}

bool stage_stop_finishing(struct stage_stop *st)
{
    if (st->finished)
        return false;
    st->finished = true;
    uv_timer_stop(&st->timer);
    return true;
}

void stage_stop_done(struct stage_stop *st)
{
    uv_close((uv_handle_t *)&st->timer, NULL);
    if (st->done)
        st->done(st->done_ud);
}

static char refused[512]; /* see daemon_set_refused; "" when not */

void daemon_set_refused(const char *why)
{
    if (why)
        text_utf8_copy(refused, sizeof(refused), why, strlen(why));
    else
        refused[0] = '\0';
    METRIC_SET(&metrics_ready, why ? 0 : 1, "settings");
}

/* /readyz: connected to RabbitMQ and, for the stages that drive it, Docker answers and takes
 * the container settings. */
static bool is_ready(char *why, size_t whylen, void *ud)
{
    (void)ud;
    if (!ready) {
        snprintf(why, whylen, "not connected to RabbitMQ");
        return false;
    }
    if (needs_docker && metric_value(&metrics_ready, METRIC_VALUES("docker")) < 1) {
        snprintf(why, whylen, "the Docker engine does not answer");
        return false;
    }
    if (refused[0]) {
        snprintf(why, whylen, "%s", refused);
        return false;
    }
    return true;
}

static void health_path(const char *prog, char *buf, size_t len)
{
    const char *f = getenv("HEALTH_FILE");
    if (f && *f)
        snprintf(buf, len, "%s", f);
    else
        snprintf(buf, len, "/tmp/%s.health", prog);
}

void daemon_link_event(enum amqp_link_event ev, const char *detail)
{
    switch (ev) {
    case AMQP_LINK_UP:
        daemon_set_ready(true);
        log_kv(LOG_INFO, "connected to RabbitMQ", "node", detail, NULL);
        break;
    case AMQP_LINK_DOWN:
        daemon_set_ready(false);
        log_kv(LOG_WARN, "lost RabbitMQ, reconnecting", "error", detail, NULL);
        break;
    case AMQP_LINK_ERROR:
        log_kv(LOG_ERROR, "RabbitMQ problem", "error", detail, NULL);
        break;
    case AMQP_LINK_RETRY:
        log_kv(LOG_WARN, "cannot connect to RabbitMQ, retrying", "error", detail, NULL);
        break;
    case AMQP_LINK_REJECTED:
        log_kv(LOG_WARN, "message parked", "reason", detail, NULL);
        break;
    }
}

static int health_check(const char *prog)
{
    char path[512];
    struct stat st;
    health_path(prog, path, sizeof(path));
    if (stat(path, &st) < 0) {
        fprintf(stderr, "%s: not healthy: %s: %s\n", prog, path, strerror(errno));
        return 1;
    }
    time_t age = time(NULL) - st.st_mtime;
    if (age > 30) {
        fprintf(stderr, "%s: not healthy: %s is %lld s old\n", prog, path, (long long)age);
        return 1;
    }
    return 0;
}

static const struct config_doc docker_docs[] = {
    {"DOCKER_HOST", "unix:///var/run/docker.sock", "Docker engine (unix:// or tcp://)"},
    {"DOCKER_TLS_VERIFY", "", "use TLS with tcp:// (certificates from DOCKER_CERT_PATH)"},
    {"DOCKER_CERT_PATH", "~/.docker", "folder with ca.pem, cert.pem, key.pem"},
    {"DOCKER_TIMEOUT", "30s", "timeout of each Docker API call"},
    {"RUNNING_QUEUE", "running_corrections",
     "started corrections' queue: one per Docker host, shared by its starter and completer"},
    {"HOST_LOST_GRACE", "10m",
     "a correction whose host's completer has not taken it by its time limit plus this is "
     "reported 'host lost' by another completer"},
};

static bool valid_queue_name(const char *q)
{
    size_t n = strlen(q);
    if (n == 0 || n > 200 || (n >= 8 && strcmp(q + n - 8, ".invalid") == 0))
        return false;
    for (const char *p = q; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-' || *p == ':'))
            return false;
    return true;
}

/* Shown by the broker for our connection (the management UI's Connections and Consumers
 * pages): which program, which version, where. */
static char connection_name[320];

int daemon_load_common(struct daemon_common *c, const char *prog, bool with_docker,
                       struct ct_error *e)
{
    uint64_t port, heartbeat, max_msg, delivery_limit;
    const char *level, *queue_type;
    amqp_link_config_defaults(&c->amqp);
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        snprintf(host, sizeof(host), "unknown host");
    snprintf(connection_name, sizeof(connection_name), "%s %s on %s, pid %ld", prog, CT_VERSION,
             host, (long)getpid());
    c->amqp.connection_name = connection_name;
    docker_config_defaults(&c->docker);
    needs_docker = with_docker;
    if (config_str("METRICS_LISTEN", "", &metrics_listen, e) < 0)
        return -EINVAL;
    if (*metrics_listen) {
        struct sockaddr_storage addr;
        if (metrics_server_parse_listen(metrics_listen, &addr, e) < 0) {
            char why[sizeof(e->msg)];
            snprintf(why, sizeof(why), "%s", e->msg);
            ct_error_set(e, -EINVAL, "invalid METRICS_LISTEN=%.400s", why);
            return -EINVAL;
        }
    }
    if (config_str("RABBITMQ_HOST", "localhost", &c->amqp.host, e) < 0 ||
        config_uint("RABBITMQ_PORT", 5672, 1, 65535, &port, e) < 0 ||
        config_str("RABBITMQ_USER", "guest", &c->amqp.user, e) < 0 ||
        config_str("RABBITMQ_PASSWORD", "guest", &c->amqp.password, e) < 0 ||
        config_str("RABBITMQ_VHOST", "/", &c->amqp.vhost, e) < 0 ||
        config_uint("RABBITMQ_HEARTBEAT", 30, 0, 3600, &heartbeat, e) < 0 ||
        config_bytes("MAX_MESSAGE_BYTES", 1024 * 1024, MSG_MIN_MESSAGE_BYTES, 64 * 1024 * 1024,
                     &max_msg, e) < 0 ||
        config_str("QUEUE_TYPE", "classic", &queue_type, e) < 0 ||
        config_uint("QUEUE_DELIVERY_LIMIT", QTYPE_DELIVERY_LIMIT_DEFAULT, 1, 10000, &delivery_limit,
                    e) < 0 ||
        config_str("LOG_LEVEL", "info", &level, e) < 0)
        return -EINVAL;
    c->amqp.port = (int)port;
    enum qtype qt;
    if (qtype_parse(queue_type, &qt) < 0) {
        ct_error_set(e, -EINVAL, "invalid QUEUE_TYPE=\"%.32s\": expected classic or quorum",
                     queue_type);
        return -EINVAL;
    }
    c->amqp.quorum = qt == QTYPE_QUORUM;
    c->amqp.delivery_limit = (unsigned)delivery_limit;
    struct hostlist hosts;
    char why[200];
    if (hostlist_parse(c->amqp.host, c->amqp.port, &hosts, why, sizeof(why)) < 0) {
        ct_error_set(e, -EINVAL, "invalid RABBITMQ_HOST=\"%.200s\": %s", c->amqp.host, why);
        return -EINVAL;
    }
    c->amqp.heartbeat_s = (unsigned)heartbeat;
    c->amqp.max_message_bytes = (size_t)max_msg;
    c->amqp.max_unconfirmed = 4096;
    enum log_level lvl;
    if (log_level_parse(level, &lvl) < 0) {
        ct_error_set(e, -EINVAL, "invalid LOG_LEVEL=\"%.32s\": expected debug, info, warn or error",
                     level);
        return -EINVAL;
    }
    log_set_level(lvl);
    c->running_queue = QUEUE_RUNNING;
    if (!with_docker)
        return 0;
    if (docker_config_from_env(&c->docker, e) < 0 ||
        config_duration_ms("DOCKER_TIMEOUT", 30000, 100, 3600000, &c->docker.timeout_ms, e) < 0 ||
        config_str("RUNNING_QUEUE", QUEUE_RUNNING, &c->running_queue, e) < 0 ||
        config_duration_ms("HOST_LOST_GRACE", 600000, 1000, 7 * 24 * 3600000ULL,
                           &c->host_lost_grace_ms, e) < 0)
        return -EINVAL;
    if (!valid_queue_name(c->running_queue)) {
        ct_error_set(e, -EINVAL,
                     "invalid RUNNING_QUEUE=\"%.64s\": letters, digits and . _ - : only, at most "
                     "200 bytes, not ending in .invalid",
                     c->running_queue);
        return -EINVAL;
    }
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
        if (strcmp(argv[i], "--health-check") == 0)
            return health_check(prog);
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
    uv_timer_t health;
    metrics_server *metrics;
    char health_path[512];
    void *stage;
    daemon_shutdown_fn shutdown;
    bool stopping;
};

static void on_done(void *ud)
{
    struct run *run = ud;
    uv_close((uv_handle_t *)&run->sigterm, NULL);
    uv_close((uv_handle_t *)&run->sigint, NULL);
    uv_close((uv_handle_t *)&run->health, NULL);
    metrics_server_free(run->metrics);
    run->metrics = NULL;
    unlink(run->health_path);
}

/* A tiny bounded write on the loop: creating or touching one local file. */
static void on_health(uv_timer_t *t)
{
    struct run *run = t->data;
    char why[600]; /* room for any reason (a Release build checks snprintf's truncation) */
    if (!is_ready(why, sizeof(why), NULL)) /* what /readyz says, metrics served or not */
        return;
    int fd = open(run->health_path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return;
    if (futimens(fd, NULL) < 0)
        log_kv(LOG_DEBUG, "cannot touch the health file", "error", strerror(errno), NULL);
    close(fd);
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

void daemon_run(uv_loop_t *loop, const char *prog, void *stage, daemon_shutdown_fn shutdown)
{
    struct run run = {.stage = stage, .shutdown = shutdown};
    if (metrics_listen && *metrics_listen) {
        struct metrics_server_config mc = {
            .listen = metrics_listen, .ready = is_ready, .userdata = NULL};
        struct ct_error err = {0};
        int r = metrics_server_new(loop, &mc, &err, &run.metrics);
        if (r < 0)
            log_kv(LOG_ERROR, "cannot serve metrics, going on without", "error", err.msg, NULL);
        else
            log_kv(LOG_INFO, "serving metrics", "listen", metrics_listen, NULL);
    }
    health_path(prog, run.health_path, sizeof(run.health_path));
    uv_timer_init(loop, &run.health);
    run.health.data = &run;
    uv_timer_start(&run.health, on_health, 200, 5000);
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &run.sigterm);
    uv_signal_init(loop, &run.sigint);
    run.sigterm.data = run.sigint.data = &run;
    uv_signal_start(&run.sigterm, on_signal, SIGTERM);
    uv_signal_start(&run.sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
}

int daemon_serve(const struct daemon_stage *st, void *cfg)
{
    uv_loop_t *loop = uv_default_loop();
    METRIC_SET(&m_build_info, 1, st->prog, CT_VERSION);
    metrics_register(&metrics_ready);
    if (!ready)
        METRIC_SET(&metrics_ready, 0, "rabbitmq");
    if (needs_docker && metric_value(&metrics_ready, METRIC_VALUES("docker")) < 1)
        METRIC_SET(&metrics_ready, 0, "docker");
    struct ct_error err = {0};
    void *stage;
    if (st->create(loop, cfg, &stage, &err) < 0) {
        log_kv(LOG_ERROR, "cannot start", "error", err.msg, NULL);
        return 1;
    }
    int r = st->start(stage);
    if (r < 0) {
        log_kv(LOG_ERROR, "cannot start", "error", strerror(-r), NULL);
        return 1;
    }
    if (st->announce)
        st->announce(cfg);
    daemon_run(loop, st->prog, stage, st->shutdown);
    st->destroy(stage);
    if (uv_loop_close(loop) != 0)
        log_kv(LOG_WARN, "event loop closed with handles open", NULL);
    metrics_reset();
    return 0;
}

int daemon_bad_config(const char *prog, const char *msg)
{
    fprintf(stderr, "%s: %s\n", prog, msg);
    log_kv(LOG_ERROR, "bad configuration", "error", msg, NULL);
    return 2;
}
