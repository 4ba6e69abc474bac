/* The daemons' metrics, read by a real Prometheus (Debian's package, started here on a private
 * port with a scrape config naming the three daemons): after a mixed batch, the counters
 * Prometheus holds match the jobs, reason by reason; the histograms saw them; `up` is 1 for
 * each daemon. While the batch runs, the metrics ports get malformed, oversized, slow and too
 * many requests: each is answered 4xx or closed, and the daemons go on (the batch completes,
 * /healthz answers). The dashboard's and the alert rules' queries are checked against the
 * metric names the daemons really serve (tests/monitoring_check.py). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support.h"

/* The value of a PromQL query that yields one sample; -1 when it yields none. */
static double prom_query(int port, const char *query)
{
    CURL *c = curl_easy_init();
    char *q = curl_easy_escape(c, query, 0);
    char url[2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s", port, q);
    curl_free(q);
    curl_easy_cleanup(c);
    long status;
    char *body = ct_http_get(url, &status);
    if (!body || status != 200) {
        free(body);
        return -1;
    }
    json_t *j = ct_json(body);
    free(body);
    json_t *result = json_object_get(json_object_get(j, "data"), "result");
    double v = -1;
    if (json_array_size(result) == 1) {
        const char *s = json_string_value(
            json_array_get(json_object_get(json_array_get(result, 0), "value"), 1));
        if (s)
            v = strtod(s, NULL);
    }
    json_decref(j);
    return v;
}

struct expect {
    int port;
    const char *query;
    double value;
    double last;
};

static bool prom_is(void *ud)
{
    struct expect *e = ud;
    e->last = prom_query(e->port, e->query);
    return e->last == e->value;
}

static void expect_prom(int port, const char *query, double value)
{
    struct expect e = {port, query, value, -2};
    if (!ct_wait_until(prom_is, &e, 60000))
        fail_msg("Prometheus: %s = %g, expected %g", query, e.last, value);
}

/* A raw exchange with a metrics port: sends what is given (optionally in pieces), then reads
 * until the server closes or 15 s pass. The first line of the answer into line ("" when it
 * closed without a word). Returns whether the server closed the connection. */
static bool raw_exchange(int port, const void *data, size_t len, char *line, size_t linelen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 15};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* closed on us while sending: fine */
        off += (size_t)n;
    }
    char got[4096];
    size_t have = 0;
    bool closed = false;
    for (;;) {
        ssize_t n = recv(fd, got + have, sizeof(got) - 1 - have, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            closed = true;
            break;
        }
        if (n < 0)
            break; /* timed out */
        have += (size_t)n;
        if (have >= sizeof(got) - 1)
            have = 0; /* keep reading to the end; only the first line matters */
    }
    got[have] = '\0';
    close(fd);
    size_t l = strcspn(got, "\r\n");
    snprintf(line, linelen, "%.*s", (int)l, got);
    return closed;
}

static int status_of(const char *line)
{
    int code = 0;
    if (sscanf(line, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

/* Abuse of one metrics port: each is refused with a 4xx or closed, none stalls the daemon. */
static void abuse(int port)
{
    char line[256];
    /* not HTTP */
    static const char garbage[] = "\x01\x02 hello \xff\xfe\r\n\r\n";
    bool closed = raw_exchange(port, garbage, sizeof(garbage) - 1, line, sizeof(line));
    assert_true(closed);
    assert_true(line[0] == '\0' || (status_of(line) >= 400 && status_of(line) < 500));
    /* a request head of 1 MiB (h2o's bound is about 400 KiB) */
    size_t big = 1024 * 1024;
    char *req = malloc(big + 64);
    assert_non_null(req);
    int n = snprintf(req, big + 64, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    closed = raw_exchange(port, req, (size_t)n + big + 4, line, sizeof(line));
    free(req);
    assert_true(closed);
    assert_true(line[0] == '\0' || (status_of(line) >= 400 && status_of(line) < 500));
    /* a body where none belongs */
    static const char post[] =
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    raw_exchange(port, post, sizeof(post) - 1, line, sizeof(line));
    assert_int_equal(status_of(line), 405);
    /* a slow client: half a request, then nothing; closed by the server's request timeout */
    static const char half[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    closed = raw_exchange(port, half, sizeof(half) - 1, line, sizeof(line));
    assert_true(closed);
    /* too many at once: 40 connections, the ones past the cap closed at once; the daemon
     * still answers once they go */
    int fds[40];
    for (int i = 0; i < 40; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
    }
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
    long status = 0;
    for (int tries = 0; tries < 100 && status != 200; tries++) {
        char *body = ct_http_get(url, &status);
        free(body);
        if (status != 200)
            usleep(100000);
    }
    assert_int_equal(status, 200);
}

/* The jobs of the batch, by what they end in. */
#define N_OK 8          /* graded */
#define N_FAIL 3        /* graded: the image's own {"success": false} */
#define N_INVALID 3     /* error: no response found */
#define N_NO_IMAGE 2    /* error: image not found */
#define N_NO_FILE 2     /* error: file not allowed */
#define N_NO_CALLBACK 1 /* parked: invalid callback */
#define N_GONE 1        /* graded, callback parked: 410 Gone */

static void publish_job(const char *wid, const char *image, const char *file, const char *cb)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"work_id\":\"%s\",\"image\":\"%s\",\"file\":\"%s\",\"callback\":\"%s\"}", wid,
             image, file, cb);
    /* with a timestamp property, as a platform may set it: the queue wait is measured */
    struct ct_publish_opts o = {.content_type = "application/json",
                                .timestamp = (uint64_t)time(NULL)};
    ct_amqp_publish_ex("pending_corrections", body, strlen(body), &o);
}

static void save(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static void test_prometheus(void **state)
{
    (void)state;
    const char *tmp = ct_env("CT_TMP");
    char *good = ct_tmpfile("metrics-good.txt", "anything", 8);
    struct ct_receiver rcv;
    ct_receiver_start(&rcv, "metrics", 0, true);
    char ok_cb[256], gone_cb[256];
    ct_receiver_url(ok_cb, sizeof(ok_cb), &rcv, "/ok");
    ct_receiver_url(gone_cb, sizeof(gone_cb), &rcv, "/gone");

    int ports[3] = {ct_free_port(), ct_free_port(), ct_free_port()};
    static const char *const names[3] = {"starter", "completer", "notifier"};
    char listen[3][64];
    for (int i = 0; i < 3; i++)
        snprintf(listen[i], sizeof(listen[i]), "METRICS_LISTEN=127.0.0.1:%d", ports[i]);
    char exdir[600];
    snprintf(exdir, sizeof(exdir), "EXERCISE_DIR=%s", tmp);
    struct ct_daemon d[3];
    ct_daemon_start(&d[0], "starter", "metrics",
                    (const char *const[]){exdir, listen[0], "MAX_RUNNING=4", NULL});
    ct_daemon_start(&d[1], "completer", "metrics", (const char *const[]){listen[1], NULL});
    ct_daemon_start(&d[2], "notifier", "metrics",
                    (const char *const[]){listen[2], "CALLBACK_RETRY_DELAYS=1s", NULL});
    for (int i = 0; i < 3; i++)
        ct_daemon_wait_log(&d[i], "serving metrics", 1, 30000);

    /* Prometheus, scraping the three every second */
    char dir[700], cfg[800], data[800], plog[800];
    snprintf(dir, sizeof(dir), "%s/prometheus-%d", tmp, (int)getpid());
    mkdir(dir, 0755);
    snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(plog, sizeof(plog), "%s/prometheus.log", dir);
    char yml[2048];
    int off = snprintf(yml, sizeof(yml),
                       "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                       "scrape_configs:\n");
    for (int i = 0; i < 3; i++)
        off += snprintf(yml + off, sizeof(yml) - (size_t)off,
                        "  - job_name: %s\n    static_configs:\n      - targets: "
                        "['127.0.0.1:%d']\n",
                        names[i], ports[i]);
    save(cfg, yml);
    int prom_port = ct_free_port();
    char a_cfg[900], a_data[900], a_listen[64];
    snprintf(a_cfg, sizeof(a_cfg), "--config.file=%s", cfg);
    snprintf(a_data, sizeof(a_data), "--storage.tsdb.path=%s", data);
    snprintf(a_listen, sizeof(a_listen), "--web.listen-address=127.0.0.1:%d", prom_port);
    char *argv[] = {"/usr/bin/prometheus", a_cfg, a_data, a_listen, NULL};
    pid_t prom = ct_spawn(argv[0], argv, NULL, plog);
    ct_track(prom);
    for (int i = 0; i < 3; i++) {
        char q[64];
        snprintf(q, sizeof(q), "up{job=\"%s\"}", names[i]);
        expect_prom(prom_port, q, 1);
    }

    /* the batch */
    int n = 0;
    char wid[64];
    for (int i = 0; i < N_OK; i++, n++) {
        snprintf(wid, sizeof(wid), "m-ok-%d", i);
        publish_job(wid, "ct-ok:latest", good, ok_cb);
    }
    for (int i = 0; i < N_FAIL; i++, n++) {
        snprintf(wid, sizeof(wid), "m-fail-%d", i);
        publish_job(wid, "ct-fail:latest", good, ok_cb);
    }
    for (int i = 0; i < N_INVALID; i++, n++) {
        snprintf(wid, sizeof(wid), "m-invalid-%d", i);
        publish_job(wid, "ct-invalid:latest", good, ok_cb);
    }
    for (int i = 0; i < N_NO_IMAGE; i++, n++) {
        snprintf(wid, sizeof(wid), "m-noimage-%d", i);
        publish_job(wid, "ct-no-such-image:latest", good, ok_cb);
    }
    for (int i = 0; i < N_NO_FILE; i++, n++) {
        snprintf(wid, sizeof(wid), "m-nofile-%d", i);
        publish_job(wid, "ct-ok:latest", "/nonexistent/x.txt", ok_cb);
    }
    publish_job("m-nocb-0", "ct-ok:latest", good, "ftp://127.0.0.1/x");
    publish_job("m-gone-0", "ct-ok:latest", good, gone_cb);

    /* while the jobs flow: abuse every metrics port */
    for (int i = 0; i < 3; i++)
        abuse(ports[i]);

    ct_receiver_wait_progress(&rcv, "/ok", 200, n, 60000, 600000);
    ct_receiver_wait(&rcv, "/gone", 410, 1, 60000);

    /* What Prometheus holds matches the jobs. */
    const int graded = N_OK + N_FAIL + N_GONE, containers = graded + N_INVALID;
    char q[256];
    snprintf(q, sizeof(q), "sum(correctomatic_jobs_finished_total{outcome=\"graded\"})");
    expect_prom(prom_port, q, graded);
    expect_prom(prom_port, "sum(correctomatic_jobs_finished_total{reason=\"no response found\"})",
                N_INVALID);
    expect_prom(prom_port, "sum(correctomatic_jobs_finished_total{reason=\"image not found\"})",
                N_NO_IMAGE);
    expect_prom(prom_port, "sum(correctomatic_jobs_finished_total{reason=\"file not allowed\"})",
                N_NO_FILE);
    expect_prom(prom_port,
                "sum(correctomatic_jobs_finished_total{outcome=\"parked\",reason=\"invalid "
                "callback\"})",
                N_NO_CALLBACK);
    expect_prom(prom_port, "sum(correctomatic_jobs_finished_total{outcome=\"error\"})",
                N_INVALID + N_NO_IMAGE + N_NO_FILE);
    expect_prom(prom_port, "correctomatic_jobs_taken_total{job=\"starter\"}", n + 2);
    expect_prom(prom_port, "correctomatic_jobs_started_total", containers);
    expect_prom(prom_port, "correctomatic_container_run_seconds_count", containers);
    expect_prom(prom_port, "correctomatic_callbacks_delivered_total", n);
    expect_prom(prom_port, "correctomatic_callbacks_parked_total{reason=\"gone\"}", 1);
    expect_prom(prom_port, "correctomatic_callbacks_total{status=\"4xx\"}", 1);
    expect_prom(prom_port, "correctomatic_callbacks_total{status=\"2xx\"}", n);
    expect_prom(prom_port, "correctomatic_end_to_end_seconds_count", n);
    expect_prom(prom_port, "correctomatic_callback_delivery_seconds_count", n);
    expect_prom(prom_port, "correctomatic_queue_wait_seconds_count", containers);
    expect_prom(prom_port,
                "correctomatic_messages_parked_total{queue=\"pending_corrections.invalid\"}",
                N_NO_CALLBACK);
    expect_prom(prom_port, "correctomatic_messages_parked_total{queue=\"failed_callbacks\"}",
                N_GONE);
    expect_prom(prom_port, "sum(correctomatic_ready)", 3 + 2); /* rabbitmq x3, docker x2 */
    expect_prom(prom_port, "correctomatic_running_corrections", 0);
    expect_prom(prom_port, "correctomatic_max_running", 4);
    expect_prom(prom_port,
                "sum(correctomatic_docker_requests_total{endpoint=\"containers/create\","
                "status=\"2xx\"})",
                containers);
    expect_prom(prom_port, "count(process_resident_memory_bytes > 0)", 3);
    expect_prom(prom_port, "count(correctomatic_build_info)", 3);
    expect_prom(prom_port, "count(correctomatic_metrics_http_refused_total > 0)", 3);

    /* The daemons' own scrapes, for the dashboard's and the rules' names. */
    char files[3][800];
    for (int i = 0; i < 3; i++) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", ports[i]);
        long status;
        char *body = ct_http_get(url, &status);
        assert_non_null(body);
        assert_int_equal(status, 200);
        snprintf(files[i], sizeof(files[i]), "%s/%s.metrics", dir, names[i]);
        save(files[i], body);
        free(body);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", ports[i]);
        free(ct_http_get(url, &status));
        assert_int_equal(status, 200);
    }
    char script[700], out[800];
    snprintf(script, sizeof(script), "%s/tests/monitoring_check.py", CT_SOURCE_DIR);
    snprintf(out, sizeof(out), "%s/monitoring_check.log", dir);
    char m0[820], m1[820], m2[820];
    snprintf(m0, sizeof(m0), "%s", files[0]);
    snprintf(m1, sizeof(m1), "%s", files[1]);
    snprintf(m2, sizeof(m2), "%s", files[2]);
    char *cargv[] = {"/usr/bin/python3", script, "--metrics", m0, "--metrics", m1,
                     "--metrics",        m2,     NULL};
    int st = -1;
    assert_int_equal(ct_wait_exit(ct_spawn(cargv[0], cargv, NULL, out), 120000, &st), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char *log = ct_read_file(out, NULL);
        fail_msg("monitoring_check.py failed:\n%s", log ? log : "");
    }

    ct_terminate(prom, 10000);
    ct_untrack(prom);
    for (int i = 2; i >= 0; i--)
        assert_int_equal(ct_daemon_stop(&d[i]), 0);
    ct_receiver_stop(&rcv);
    free(good);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prometheus, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}
