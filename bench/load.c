/* ct-bench-load: publishes benchmark jobs to RabbitMQ (common/amqp_link.h) and receives their
 * callbacks on a built-in HTTP/1.1 keep-alive sink, on one libuv loop.
 *
 *   ct-bench-load --mode MODE --jobs N [options]
 *
 * Modes
 *   pipeline  N jobs {work_id, image, file, callback} to pending_corrections; waits for the N
 *             callbacks. With --serial, one job at a time (the next is published when the
 *             callback of the previous one arrived): per-job publish-to-callback latency.
 *   finished  N results to finished_corrections, then prints "loaded" on stderr and waits for
 *             the N callbacks (start the notifier after "loaded": the time counts from there).
 *   gone      N running messages whose container does not exist to running_corrections;
 *             waits for the N callbacks (completer -> notifier).
 *   publish   N pending jobs (as pipeline) and exits once the broker confirmed them all.
 *   broker    N results to a private queue, then consumes and acks them (no HTTP): the
 *             broker alone, with the same messages and --prefetch as the notifier.
 *   sink      no broker: serves the callback URL (printed on stderr as "listening URL") and
 *             waits for N callbacks; the time counts from SIGUSR1 (the start signal, sent by
 *             whoever submits the jobs, e.g. bench/original/submit.cjs), or from the first
 *             callback without one.
 *
 * Options: --image IMG, --file PATH (pipeline/publish), --prefetch P (broker, default 50),
 * --timeout S (default 600), --tag T (work_id prefix, default "b").
 * RabbitMQ from RABBITMQ_HOST/RABBITMQ_PORT (guest/guest); QUEUE_TYPE=quorum declares quorum
 * queues, as the daemons do with it.
 *
 * Output: one JSON object on stdout with "seconds" (first publish, or "loaded" for finished,
 * or first consume for broker, or SIGUSR1 for sink, to the last callback), "per_s",
 * "publish_seconds", "callbacks", "requests" (every HTTP request the sink answered),
 * "first_after_s" (the same start to the first callback), "successes" (callbacks
 * saying "success":true: the others report a failed correction) and, with --serial, "latency_ms".
 * Exit 1 when not everything arrived in time. */
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "amqp_link.h"

#define WINDOW 200 /* publishes awaiting confirm */

enum mode { M_PIPELINE, M_FINISHED, M_GONE, M_PUBLISH, M_BROKER, M_SINK };

static struct {
    uv_loop_t *loop;
    amqp_link *link;
    enum mode mode;
    bool serial;
    int jobs, prefetch;
    const char *image, *file, *tag;
    char queue[128];
    char callback[128];
    int published, confirmed, callbacks, consumed, successes;
    long requests;
    bool *seen;
    double *t_pub, *lat;
    int n_lat;
    double t_up, t_start, t_published, t_end, t_first_cb;
    bool up, loaded, done, failed;
    uv_tcp_t server;
    uv_timer_t timeout;
    uv_signal_t start_signal;
} B;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish(bool ok);

/* ------------------------------------------------------------------------------ sink */

struct conn {
    uv_tcp_t tcp;
    char *buf;
    size_t len, cap;
};

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    free(c->buf);
    free(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)hint;
    if (c->cap - c->len < 16384) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->buf = realloc(c->buf, c->cap);
        if (!c->buf)
            abort();
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

/* The index of a "work_id":"<tag>-<n>" in the body, or -1. */
static int work_index(const char *body, size_t len)
{
    char pat[80];
    int n = snprintf(pat, sizeof(pat), "\"work_id\":\"%s-", B.tag);
    const char *p = memmem(body, len, pat, (size_t)n);
    if (!p)
        return -1;
    long i = strtol(p + n, NULL, 10);
    return i >= 0 && i < B.jobs ? (int)i : -1;
}

static void publish_next(void);

static void on_callback(int idx, bool success)
{
    double t = now_s();
    if (idx < 0 || B.seen[idx])
        return;
    B.seen[idx] = true;
    B.successes += success;
    if (!B.callbacks++) {
        B.t_first_cb = t;
        if (B.mode == M_SINK && B.t_start == 0)
            B.t_start = t; /* no start signal: count from the first callback */
    }
    if (B.serial) {
        B.lat[B.n_lat++] = (t - B.t_pub[idx]) * 1000.0;
        publish_next();
    }
    if (B.callbacks == B.jobs)
        finish(true);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    c->len += (size_t)nread;
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return;
        size_t hlen = (size_t)(end - c->buf) + 4, clen = 0;
        for (char *p = c->buf; p < end; p++) {
            if (*p == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0) {
                clen = strtoul(p + 16, NULL, 10);
                break;
            }
        }
        if (c->len < hlen + clen)
            return;
        B.requests++;
        uv_buf_t r = uv_buf_init((char *)RESPONSE, sizeof(RESPONSE) - 1);
        int w = uv_try_write(s, &r, 1);
        if (w == UV_EAGAIN || (w >= 0 && (size_t)w < r.len)) {
            uv_write_t *req = malloc(sizeof(*req));
            if (w > 0) {
                r.base += w;
                r.len -= (size_t)w;
            }
            if (!req || uv_write(req, s, &r, 1, on_written) < 0)
                free(req);
        }
        int idx = work_index(c->buf + hlen, clen);
        bool success = memmem(c->buf + hlen, clen, "\"success\":true", 14) != NULL;
        memmove(c->buf, c->buf + hlen + clen, c->len - hlen - clen);
        c->len -= hlen + clen;
        on_callback(idx, success);
        if (uv_is_closing((uv_handle_t *)s))
            return;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    uv_tcp_init(B.loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int sink_start(void)
{
    struct sockaddr_in addr;
    struct sockaddr_storage got;
    int len = sizeof(got);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(B.loop, &B.server);
    if (uv_tcp_bind(&B.server, (struct sockaddr *)&addr, 0) < 0 ||
        uv_listen((uv_stream_t *)&B.server, 1024, on_connection) < 0 ||
        uv_tcp_getsockname(&B.server, (struct sockaddr *)&got, &len) < 0)
        return -1;
    snprintf(B.callback, sizeof(B.callback), "http://127.0.0.1:%d/cb",
             ntohs(((struct sockaddr_in *)&got)->sin_port));
    return 0;
}

/* ------------------------------------------------------------------------------ publishing */

static char *job_body(int i)
{
    char *s = NULL;
    int r = -1;
    switch (B.mode) {
    case M_PIPELINE:
    case M_PUBLISH:
        r = asprintf(&s,
                     "{\"work_id\":\"%s-%d\",\"image\":\"%s\",\"file\":\"%s\",\"callback\":\"%s\"}",
                     B.tag, i, B.image, B.file, B.callback);
        break;
    case M_FINISHED:
    case M_BROKER:
        r = asprintf(&s,
                     "{\"work_id\":\"%s-%d\",\"error\":false,\"correction_data\":{\"success\":true,"
                     "\"grade\":10,\"comments\":[\"well done\"]},\"callback\":\"%s\"}",
                     B.tag, i, B.callback);
        break;
    case M_SINK:
        break;
    case M_GONE: {
        /* a container id that no engine has: 64 hex digits from the index */
        r = asprintf(&s,
                     "{\"work_id\":\"%s-%d\",\"container_id\":\"%056x%08x\",\"callback\":\"%s\"}",
                     B.tag, i, 0xbe, (unsigned)i, B.callback);
        break;
    }
    }
    return r < 0 ? NULL : s;
}

static void on_delivery(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    (void)ud;
    if (!B.consumed++)
        B.t_first_cb = now_s();
    amqp_link_ack(link, d->generation, d->delivery_tag);
    if (B.consumed == B.jobs)
        finish(true);
}

static void on_confirm(amqp_link *link, int status, void *ud)
{
    (void)link;
    (void)ud;
    if (status != 0) {
        fprintf(stderr, "ct-bench-load: publish not confirmed (%d)\n", status);
        finish(false);
        return;
    }
    B.confirmed++;
    if (B.confirmed == B.jobs) {
        B.t_published = now_s();
        if (B.mode == M_PUBLISH) {
            finish(true);
            return;
        }
        if (B.mode == M_FINISHED) {
            B.loaded = true;
            B.t_start = now_s();
            fprintf(stderr, "loaded\n");
        }
        if (B.mode == M_BROKER) {
            B.t_start = now_s();
            amqp_link_consume(B.link, B.queue, on_delivery, NULL);
            return;
        }
    }
    if (!B.serial)
        publish_next();
}

static void publish_next(void)
{
    if (B.done)
        return;
    while (B.published < B.jobs && B.published - B.confirmed < WINDOW) {
        int i = B.published;
        char *body = job_body(i);
        if (!body)
            abort();
        B.t_pub[i] = now_s();
        int r = amqp_link_publish(B.link, B.queue, body, strlen(body), NULL, on_confirm, NULL);
        free(body);
        if (r < 0) {
            fprintf(stderr, "ct-bench-load: publish: %s\n", strerror(-r));
            finish(false);
            return;
        }
        B.published++;
        if (B.serial)
            return;
    }
}

static void on_link(amqp_link *link, enum amqp_link_event ev, const char *detail, void *ud)
{
    (void)link;
    (void)ud;
    if (ev == AMQP_LINK_UP && !B.up) {
        B.up = true;
        B.t_up = B.t_start = now_s();
        publish_next();
    } else if (ev != AMQP_LINK_UP) {
        fprintf(stderr, "ct-bench-load: amqp: %s\n", detail ? detail : "?");
        if (ev == AMQP_LINK_DOWN)
            finish(false);
    }
}

/* ------------------------------------------------------------------------------ main */

/* Closes our handles: the sink's TCP handles and the timeout (the link closes its own). */
static void closer(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&B.server || h == (uv_handle_t *)&B.timeout ||
        h == (uv_handle_t *)&B.start_signal)
        uv_close(h, NULL);
    else if (h->type == UV_TCP)
        uv_close(h, conn_closed);
}

static void finish(bool ok)
{
    if (B.done)
        return;
    B.done = true;
    B.failed = !ok;
    B.t_end = now_s();
    amqp_link_free(B.link);
    B.link = NULL;
    uv_walk(B.loop, closer, NULL);
}

static void on_start_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    if (B.t_start == 0)
        B.t_start = B.t_up = now_s();
    uv_signal_stop(s);
}

static void on_timeout(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "ct-bench-load: timeout: %d of %d callbacks, %d consumed\n", B.callbacks,
            B.jobs, B.consumed);
    finish(false);
}

static int report(const char *mode);

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"mode", required_argument, NULL, 'm'},
                                         {"jobs", required_argument, NULL, 'n'},
                                         {"image", required_argument, NULL, 'i'},
                                         {"file", required_argument, NULL, 'f'},
                                         {"serial", no_argument, NULL, 's'},
                                         {"prefetch", required_argument, NULL, 'p'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"tag", required_argument, NULL, 'g'},
                                         {NULL, 0, NULL, 0}};
    const char *mode = "pipeline";
    double timeout = 600;
    int o;

    B.jobs = 100;
    B.prefetch = 50;
    B.image = "ct-ok";
    B.tag = "b";
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            mode = optarg;
            break;
        case 'n':
            B.jobs = atoi(optarg);
            break;
        case 'i':
            B.image = optarg;
            break;
        case 'f':
            B.file = optarg;
            break;
        case 's':
            B.serial = true;
            break;
        case 'p':
            B.prefetch = atoi(optarg);
            break;
        case 't':
            timeout = atof(optarg);
            break;
        case 'g':
            B.tag = optarg;
            break;
        default:
            return 2;
        }
    }
    if (!strcmp(mode, "pipeline"))
        B.mode = M_PIPELINE;
    else if (!strcmp(mode, "finished"))
        B.mode = M_FINISHED;
    else if (!strcmp(mode, "gone"))
        B.mode = M_GONE;
    else if (!strcmp(mode, "publish"))
        B.mode = M_PUBLISH;
    else if (!strcmp(mode, "broker"))
        B.mode = M_BROKER;
    else if (!strcmp(mode, "sink"))
        B.mode = M_SINK;
    else {
        fprintf(stderr, "ct-bench-load: unknown --mode %s\n", mode);
        return 2;
    }
    if (B.jobs <= 0 || ((B.mode == M_PIPELINE || B.mode == M_PUBLISH) && !B.file)) {
        fprintf(stderr, "ct-bench-load: a positive --jobs (and --file for pipeline/publish)\n");
        return 2;
    }
    const char *queues[] = {"pending_corrections", "pending_corrections", "finished_corrections",
                            "running_corrections", NULL};
    if (B.mode == M_BROKER)
        snprintf(B.queue, sizeof(B.queue), "ct-bench-broker-%d", (int)getpid());
    else
        snprintf(B.queue, sizeof(B.queue), "%s",
                 B.mode == M_FINISHED ? queues[2]
                 : B.mode == M_GONE   ? queues[3]
                                      : queues[0]);

    B.loop = uv_default_loop();
    B.seen = calloc((size_t)B.jobs, sizeof(bool));
    B.t_pub = calloc((size_t)B.jobs, sizeof(double));
    B.lat = calloc((size_t)B.jobs, sizeof(double));
    if (!B.seen || !B.t_pub || !B.lat)
        return 1;
    if (B.mode != M_BROKER && sink_start() < 0) {
        fprintf(stderr, "ct-bench-load: cannot listen\n");
        return 1;
    }
    if (B.mode == M_BROKER)
        snprintf(B.callback, sizeof(B.callback), "http://127.0.0.1:9/cb");
    if (B.mode == M_SINK) {
        if (uv_signal_init(B.loop, &B.start_signal) != 0 ||
            uv_signal_start(&B.start_signal, on_start_signal, SIGUSR1) != 0) {
            fprintf(stderr, "ct-bench-load: cannot watch SIGUSR1\n");
            return 1;
        }
        uv_timer_init(B.loop, &B.timeout);
        uv_timer_start(&B.timeout, on_timeout, (uint64_t)(timeout * 1000), 0);
        fprintf(stderr, "listening %s\n", B.callback);
        fflush(stderr);
        uv_run(B.loop, UV_RUN_DEFAULT);
        return report(mode);
    }

    struct amqp_link_config cfg;
    amqp_link_config_defaults(&cfg);
    if (getenv("RABBITMQ_HOST"))
        cfg.host = getenv("RABBITMQ_HOST");
    if (getenv("RABBITMQ_PORT"))
        cfg.port = atoi(getenv("RABBITMQ_PORT"));
    /* declares as the daemons do (QUEUE_TYPE=quorum: bench/cluster.sh) */
    cfg.quorum = getenv("QUEUE_TYPE") && strcmp(getenv("QUEUE_TYPE"), "quorum") == 0;
    cfg.prefetch = (unsigned)B.prefetch;
    cfg.max_unconfirmed = WINDOW * 2;
    struct ct_error err = {0};
    if (amqp_link_new(B.loop, &cfg, on_link, NULL, &B.link, &err) < 0) {
        fprintf(stderr, "ct-bench-load: %s\n", err.msg);
        return 1;
    }
    if (B.mode == M_BROKER) {
        struct amqp_link_header ttl = {.key = "x-expires", .num = 600000};
        amqp_link_declare_queue(B.link, B.queue, &ttl, 1);
    } else {
        for (int i = 1; queues[i]; i++)
            amqp_link_declare_queue(B.link, queues[i], NULL, 0);
    }
    amqp_link_start(B.link);
    uv_timer_init(B.loop, &B.timeout);
    uv_timer_start(&B.timeout, on_timeout, (uint64_t)(timeout * 1000), 0);
    uv_run(B.loop, UV_RUN_DEFAULT);
    return report(mode);
}

static int report(const char *mode)
{
    int got = B.mode == M_BROKER ? B.consumed : B.mode == M_PUBLISH ? B.confirmed : B.callbacks;
    double secs = B.t_end - B.t_start;
    printf("{\"mode\":\"%s\",\"jobs\":%d,\"done\":%d,\"seconds\":%.4f,\"per_s\":%.2f,"
           "\"publish_seconds\":%.4f,\"requests\":%ld,\"first_after_s\":%.4f,\"successes\":%d",
           mode, B.jobs, got, secs, secs > 0 ? got / secs : 0.0,
           B.t_published > 0 ? B.t_published - B.t_up : 0.0, B.requests,
           B.t_first_cb > 0 ? B.t_first_cb - B.t_start : 0.0, B.successes);
    if (B.serial) {
        printf(",\"latency_ms\":[");
        for (int i = 0; i < B.n_lat; i++)
            printf("%s%.3f", i ? "," : "", B.lat[i]);
        printf("]");
    }
    printf("}\n");
    free(B.seen);
    free(B.t_pub);
    free(B.lat);
    return B.failed ? 1 : 0;
}
