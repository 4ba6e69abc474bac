/* Tests for http.c against a tiny HTTP server on the same loop (127.0.0.1, ephemeral port):
 * Retry-After capture, no redirects, timeouts, refused connections, body limits, streaming,
 * cancellation from inside callbacks, freeing with requests in flight. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "http.h"

#define WAIT_MS 10000
#define BIG_LEN 200000

static struct {
    uv_loop_t loop;
    uv_timer_t guard;
    uv_tcp_t server;
    int port;
    unsigned accepted; /* connections the server accepted */
    char base[64];
    http *h;
} T;

/* ---- the server: one canned response per path, then close ---- */

struct conn {
    uv_tcp_t tcp;
    char req[4096];
    size_t len;
    bool answered;
};

static void conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
    struct conn *c = w->data;

    (void)status;
    free(w);
    conn_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;

    (void)hint;
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void respond(struct conn *c)
{
    static char big[BIG_LEN + 256];
    const char *resp;
    size_t len;
    uv_write_t *w;
    uv_buf_t buf;

    c->req[c->len] = '\0';
    if (strncmp(c->req, "GET /retry ", 11) == 0)
        resp = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n"
               "Connection: close\r\n\r\nbusy";
    else if (strncmp(c->req, "GET /redirect ", 14) == 0)
        resp = "HTTP/1.1 302 Found\r\nLocation: /retry\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n";
    else if (strncmp(c->req, "GET /big ", 9) == 0) {
        int n =
            snprintf(big, sizeof(big),
                     "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", BIG_LEN);
        memset(big + n, 'x', BIG_LEN);
        big[n + BIG_LEN] = '\0';
        resp = big;
    } else if (strncmp(c->req, "POST /echo ", 11) == 0) {
        /* Answers with the request as received (headers and body). */
        static char echo[sizeof(c->req) + 128];
        snprintf(echo, sizeof(echo),
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(c->req), c->req);
        resp = echo;
    } else if (strncmp(c->req, "GET /hang ", 10) == 0)
        return; /* never answers */
    else
        resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    len = strlen(resp);
    w = malloc(sizeof(*w));
    assert_non_null(w);
    w->data = c;
    buf = uv_buf_init((char *)resp, (unsigned)len);
    c->answered = true;
    assert_int_equal(uv_write(w, (uv_stream_t *)&c->tcp, &buf, 1, written), 0);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    char *end;

    (void)buf;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    end = strstr(c->req, "\r\n\r\n");
    if (!c->answered && end) {
        const char *cl = strstr(c->req, "Content-Length: ");
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
        if (c->len >= (size_t)(end + 4 - c->req) + body)
            respond(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct conn *c = calloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    assert_non_null(c);
    assert_int_equal(uv_tcp_init(&T.loop, &c->tcp), 0);
    c->tcp.data = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    T.accepted++;
    assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read), 0);
}

static void guard_tick(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(const bool *flag, uint64_t timeout_ms)
{
    uint64_t deadline;

    uv_update_time(&T.loop);
    deadline = uv_now(&T.loop) + timeout_ms;
    while (!*flag && uv_now(&T.loop) < deadline) {
        uv_run(&T.loop, UV_RUN_ONCE);
        uv_update_time(&T.loop);
    }
    return *flag;
}

static int setup(void **state)
{
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof(name);

    (void)state;
    if (uv_loop_init(&T.loop) < 0 || uv_timer_init(&T.loop, &T.guard) < 0 ||
        uv_timer_start(&T.guard, guard_tick, 20, 20) < 0 || uv_tcp_init(&T.loop, &T.server) < 0 ||
        uv_ip4_addr("127.0.0.1", 0, &addr) < 0 ||
        uv_tcp_bind(&T.server, (const struct sockaddr *)&addr, 0) < 0 ||
        uv_listen((uv_stream_t *)&T.server, 64, on_connection) < 0 ||
        uv_tcp_getsockname(&T.server, (struct sockaddr *)&name, &namelen) < 0)
        return -1;
    T.port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    snprintf(T.base, sizeof(T.base), "http://127.0.0.1:%d", T.port);
    T.h = http_new(&T.loop);
    return T.h ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    http_free(T.h);
    uv_close((uv_handle_t *)&T.guard, NULL);
    uv_close((uv_handle_t *)&T.server, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    return uv_loop_close(&T.loop) == 0 ? 0 : -1;
}

/* ---- client side ---- */

struct checks;

struct res {
    bool done;
    int calls;
    int err;
    long status;
    char body[512];
    size_t body_len;
    char retry_after[64];
    bool has_retry_after;
    size_t chunks, chunk_bytes;
    int chunk_ret;
    bool cancel_in_chunk, cancel_in_done;
    http_req *req;
    struct checks *checks; /* test_check_addr */
};

static void on_done(http_req *req, const struct http_result *r, void *userdata)
{
    struct res *x = userdata;

    x->calls++;
    x->done = true;
    x->err = r->err;
    x->status = r->status;
    x->body_len = r->body_len;
    assert_non_null(r->body);
    assert_int_equal(r->body[r->body_len], '\0');
    snprintf(x->body, sizeof(x->body), "%s", r->body);
    if (r->err)
        assert_non_null(r->err_detail);
    if (r->retry_after) {
        x->has_retry_after = true;
        snprintf(x->retry_after, sizeof(x->retry_after), "%s", r->retry_after);
    }
    if (x->cancel_in_done)
        http_req_cancel(req); /* harmless: it is finishing */
}

static int on_chunk(http_req *req, const char *data, size_t len, void *userdata)
{
    struct res *x = userdata;

    (void)data;
    assert_int_equal(http_req_status(req), 200);
    x->chunks++;
    x->chunk_bytes += len;
    if (x->cancel_in_chunk) {
        http_req_cancel(req);
        x->done = true;
    }
    return x->chunk_ret;
}

static int get(const char *path, struct res *x, const struct http_req_opts *extra)
{
    char url[128];
    struct http_req_opts o = {0};

    if (extra)
        o = *extra;
    snprintf(url, sizeof(url), "%s%s", T.base, path);
    o.method = o.method ? o.method : "GET";
    o.url = url;
    if (!o.max_body_bytes && !o.on_chunk)
        o.max_body_bytes = 1 << 20;
    return http_request(T.h, &o, on_done, x, &x->req);
}

/* One more round trip, so that a stray callback would have shown up. */
static void round_trip(void)
{
    struct res x = {0};

    assert_int_equal(get("/", &x, NULL), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.status, 200);
}

static void test_simple_get(void **state)
{
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/", &x, NULL), 0);
    assert_false(x.done); /* never from inside http_request */
    assert_int_equal(http_active(T.h), 1);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, 0);
    assert_int_equal(x.status, 200);
    assert_string_equal(x.body, "ok");
    assert_false(x.has_retry_after);
    assert_int_equal(http_active(T.h), 0);
}

static void test_post_body_and_headers(void **state)
{
    static const char body[] = "{\"a\":1}";
    const char *headers[] = {"Content-Type: application/json", "X-Test: yes", NULL};
    struct http_req_opts o = {
        .method = "POST", .headers = headers, .body = body, .body_len = strlen(body)};
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/echo", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.status, 200);
    assert_non_null(strstr(x.body, "POST /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(x.body, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(x.body, "X-Test: yes\r\n"));
    assert_non_null(strstr(x.body, "Content-Length: 7\r\n"));
    assert_null(strstr(x.body, "Expect:"));
    assert_non_null(strstr(x.body, "\r\n\r\n{\"a\":1}"));
}

static void test_retry_after(void **state)
{
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/retry", &x, NULL), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, 0);
    assert_int_equal(x.status, 503);
    assert_string_equal(x.body, "busy");
    assert_true(x.has_retry_after);
    assert_string_equal(x.retry_after, "7");
}

static void test_no_redirect(void **state)
{
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/redirect", &x, NULL), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, 0);
    assert_int_equal(x.status, 302);
}

static void test_body_limit(void **state)
{
    struct http_req_opts o = {.max_body_bytes = 100};
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/big", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, -EFBIG);
    assert_int_equal(x.status, 0);
    assert_int_equal(x.body_len, 100); /* the first bytes are kept */
}

static void test_stream(void **state)
{
    struct http_req_opts o = {.on_chunk = on_chunk};
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/big", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, 0);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.body_len, 0);
    assert_int_equal(x.chunk_bytes, BIG_LEN);
    assert_true(x.chunks >= 1);
}

static void test_stream_limit(void **state)
{
    struct http_req_opts o = {.on_chunk = on_chunk, .max_body_bytes = 1000};
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/big", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, -EFBIG);
    assert_int_equal(x.chunk_bytes, 1000);
}

static void test_stream_abort(void **state)
{
    struct http_req_opts o = {.on_chunk = on_chunk};
    struct res x = {.chunk_ret = 1};

    (void)state;
    assert_int_equal(get("/big", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, -ECANCELED);
    assert_int_equal(x.chunks, 1);
    assert_int_equal(x.calls, 1);
}

static void test_cancel_inside_chunk(void **state)
{
    struct http_req_opts o = {.on_chunk = on_chunk};
    struct res x = {.cancel_in_chunk = true};

    (void)state;
    assert_int_equal(get("/big", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    round_trip();
    assert_int_equal(x.calls, 0);
    assert_int_equal(x.chunks, 1);
    assert_int_equal(http_active(T.h), 0);
}

/* A request started from inside a streaming callback (the starter recounts its containers
 * on each Docker event) is carried out: curl refuses curl_multi_add_handle there, so http.c
 * adds it once curl has returned. */
struct nested {
    struct res outer, inner;
    int started, start_ret;
};

static int on_chunk_start(http_req *req, const char *data, size_t len, void *userdata)
{
    struct nested *n = userdata;

    (void)req;
    (void)data;
    (void)len;
    if (n->started++ == 0)
        n->start_ret = get("/", &n->inner, NULL);
    return 0;
}

static void on_done_nested(http_req *req, const struct http_result *r, void *userdata)
{
    struct nested *n = userdata;

    on_done(req, r, &n->outer);
}

static void test_start_inside_chunk(void **state)
{
    char url[128];
    struct nested n = {0};
    struct http_req_opts o = {.method = "GET", .url = url, .on_chunk = on_chunk_start};

    (void)state;
    snprintf(url, sizeof(url), "%s/big", T.base);
    assert_int_equal(http_request(T.h, &o, on_done_nested, &n, NULL), 0);
    assert_true(run_until(&n.outer.done, WAIT_MS));
    assert_int_equal(n.start_ret, 0);
    assert_true(run_until(&n.inner.done, WAIT_MS));
    assert_int_equal(n.inner.calls, 1);
    assert_int_equal(n.inner.err, 0);
    assert_int_equal(n.inner.status, 200);
    assert_string_equal(n.inner.body, "ok");
    assert_int_equal(http_active(T.h), 0);
}

static void test_cancel_inside_done(void **state)
{
    struct res x = {.cancel_in_done = true};

    (void)state;
    assert_int_equal(get("/", &x, NULL), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    round_trip();
    assert_int_equal(x.calls, 1);
}

static void test_cancel_before_start(void **state)
{
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/", &x, NULL), 0);
    http_req_cancel(x.req);
    assert_int_equal(http_active(T.h), 0);
    round_trip();
    assert_int_equal(x.calls, 0);
}

static void test_timeout(void **state)
{
    struct http_req_opts o = {.timeout_ms = 200};
    struct res x = {0};

    (void)state;
    assert_int_equal(get("/hang", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, -ETIMEDOUT);
    assert_int_equal(x.status, 0);
}

static void test_refused(void **state)
{
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof(name), port;
    uv_tcp_t tmp;
    char url[64];
    struct http_req_opts o = {.method = "GET", .max_body_bytes = 100};
    struct res x = {0};

    (void)state;
    /* A port that was just free: bound, never listened on, closed. */
    assert_int_equal(uv_tcp_init(&T.loop, &tmp), 0);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&tmp, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&tmp, (struct sockaddr *)&name, &namelen), 0);
    port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    uv_close((uv_handle_t *)&tmp, NULL);
    uv_run(&T.loop, UV_RUN_NOWAIT);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    o.url = url;
    assert_int_equal(http_request(T.h, &o, on_done, &x, NULL), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, -ECONNREFUSED);
}

/* The address check sees every address before a socket is opened to it and every connection
 * before it is used; a refusal means no connection at all. */
struct checks {
    int opens, uses;
    bool refuse;
    char family_ok;
};

static const char *check_loopback(enum http_addr_step step, const struct sockaddr *sa, void *ud)
{
    struct checks *c = ((struct res *)ud)->checks;
    if (step == HTTP_ADDR_OPEN)
        c->opens++;
    else
        c->uses++;
    if (sa->sa_family == AF_INET &&
        ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
        c->family_ok = 1;
    return c->refuse ? "refused by the test" : NULL;
}

static void test_check_addr(void **state)
{
    struct checks c = {0};
    struct res x = {.checks = &c};
    struct http_req_opts o = {.check_addr = check_loopback};

    (void)state;
    assert_int_equal(get("/", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.status, 200);
    assert_int_equal(c.opens, 1);
    assert_int_equal(c.uses, 1);
    assert_true(c.family_ok);

    struct checks c2 = {.refuse = true};
    struct res y = {.checks = &c2};
    unsigned before = T.accepted;
    assert_int_equal(get("/", &y, &o), 0);
    assert_true(run_until(&y.done, WAIT_MS));
    assert_int_equal(y.err, -ECONNREFUSED);
    assert_int_equal(c2.opens, 1);
    assert_int_equal(c2.uses, 0);
    round_trip();                             /* the server would have seen a connection by now */
    assert_int_equal(T.accepted, before + 1); /* the round trip's only */
}

/* proxy "": no proxy whatever the environment says (the notifier's default). */
static void test_no_proxy_from_environment(void **state)
{
    struct res x = {0};
    struct http_req_opts o = {.proxy = ""};

    (void)state;
    assert_int_equal(setenv("http_proxy", "http://127.0.0.1:9", 1), 0);
    assert_int_equal(get("/", &x, &o), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    struct res y = {0};
    assert_int_equal(get("/", &y, NULL), 0); /* libcurl's default: the environment's proxy */
    assert_true(run_until(&y.done, WAIT_MS));
    assert_int_equal(unsetenv("http_proxy"), 0);
    assert_int_equal(x.status, 200);
    assert_int_not_equal(y.status, 200);
}

static void test_missing_unix_socket(void **state)
{
    struct http_req_opts o = {.method = "GET",
                              .url = "http://localhost/_ping",
                              .unix_socket = "/nonexistent-ct-dir/docker.sock",
                              .max_body_bytes = 100};
    struct res x = {0};

    (void)state;
    assert_int_equal(http_request(T.h, &o, on_done, &x, NULL), 0);
    assert_true(run_until(&x.done, WAIT_MS));
    assert_int_equal(x.err, -ENOENT);
}

static void test_bad_args(void **state)
{
    struct http_req_opts o = {.method = "GET"};
    struct res x = {0};

    (void)state;
    assert_int_equal(http_request(T.h, &o, on_done, &x, NULL), -EINVAL);
    o.url = T.base;
    assert_int_equal(http_request(T.h, &o, NULL, &x, NULL), -EINVAL);
    o.body_len = 3;
    assert_int_equal(http_request(T.h, &o, on_done, &x, NULL), -EINVAL);
}

static void test_many_concurrent(void **state)
{
    struct res x[40];
    bool all = false;
    uint64_t deadline;

    (void)state;
    memset(x, 0, sizeof(x));
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(get(i % 2 ? "/" : "/retry", &x[i], NULL), 0);
    uv_update_time(&T.loop);
    deadline = uv_now(&T.loop) + WAIT_MS;
    while (!all && uv_now(&T.loop) < deadline) {
        uv_run(&T.loop, UV_RUN_ONCE);
        uv_update_time(&T.loop);
        all = true;
        for (size_t i = 0; i < 40; i++)
            all = all && x[i].done;
    }
    assert_true(all);
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(x[i].status, i % 2 ? 200 : 503);
}

/* http_free with requests in flight, from inside a callback, on its own loop handle. */
static void on_done_free(http_req *req, const struct http_result *r, void *userdata)
{
    struct res *x = userdata;

    (void)req;
    (void)r;
    x->calls++;
    x->done = true;
    http_free(T.h);
    T.h = NULL;
}

static void test_free_inside_callback(void **state)
{
    struct res first = {0}, others[5];
    char url[128];
    struct http_req_opts o = {.method = "GET", .url = url, .max_body_bytes = 100};

    (void)state;
    memset(others, 0, sizeof(others));
    snprintf(url, sizeof(url), "%s/", T.base);
    assert_int_equal(http_request(T.h, &o, on_done_free, &first, NULL), 0);
    snprintf(url, sizeof(url), "%s/hang", T.base);
    for (int i = 0; i < 5; i++)
        assert_int_equal(http_request(T.h, &o, on_done, &others[i], NULL), 0);
    assert_true(run_until(&first.done, WAIT_MS));
    assert_null(T.h);
    T.h = http_new(&T.loop);
    assert_non_null(T.h);
    round_trip();
    for (int i = 0; i < 5; i++)
        assert_int_equal(others[i].calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_post_body_and_headers),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_no_redirect),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_limit),
        cmocka_unit_test(test_stream_abort),
        cmocka_unit_test(test_cancel_inside_chunk),
        cmocka_unit_test(test_start_inside_chunk),
        cmocka_unit_test(test_cancel_inside_done),
        cmocka_unit_test(test_cancel_before_start),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_missing_unix_socket),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_check_addr),
        cmocka_unit_test(test_no_proxy_from_environment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
