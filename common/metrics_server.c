#include "metrics_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <h2o.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dlist.h"
#include "metrics.h"

/* One accepted connection: the uv handle h2o's socket wraps (first member: h2o hands the
 * handle back to close_cb). */
struct conn {
    uv_tcp_t tcp;
    metrics_server *srv;
    struct conn *prev, *next;
};

struct handler {
    h2o_handler_t super;
    metrics_server *srv;
};

struct metrics_server {
    uv_loop_t *loop;
    struct metrics_server_config cfg;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_idle_t step, last; /* closed after h2o's own handles: the last frees the memory */
    struct conn *conns;
    unsigned n_conns;
    bool listener_open, closing, disposed;
};

static struct metric m_http_requests = METRIC_COUNTER(
    "correctomatic_metrics_http_requests_total",
    "Requests to this daemon's metrics endpoint, by path and status.", "path", "status");
static struct metric m_http_refused =
    METRIC_COUNTER("correctomatic_metrics_http_refused_total",
                   "Connections to the metrics endpoint closed at once: too many open.");

int metrics_server_parse_listen(const char *listen, struct sockaddr_storage *ret,
                                struct ct_error *err)
{
    char host[128];
    const char *colon = strrchr(listen ? listen : "", ':');
    if (!listen || !colon || !colon[1]) {
        ct_error_set(err, -EINVAL, "\"%.64s\": expected host:port", listen ? listen : "");
        return -EINVAL;
    }
    size_t hlen = (size_t)(colon - listen);
    const char *h = listen;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        ct_error_set(err, -EINVAL, "\"%.64s\": host too long", listen);
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || errno || port > 65535 || colon[1] == '-' || colon[1] == '+') {
        ct_error_set(err, -EINVAL, "\"%.64s\": invalid port", listen);
        return -EINVAL;
    }
    memset(ret, 0, sizeof(*ret));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ret;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ret;
    if (!host[0] || strcmp(host, "*") == 0) {
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
    } else {
        /* A name would need a resolver on the loop: an address is enough to listen on. */
        ct_error_set(err, -EINVAL, "\"%.64s\": the host must be an IP address (or empty for all)",
                     listen);
        return -EINVAL;
    }
    return 0;
}

static void count(const char *path, int status)
{
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    METRIC_INC(&m_http_requests, path, code);
}

static void respond(h2o_req_t *req, int status, const char *reason, const char *type,
                    const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    metrics_server *srv = ((struct handler *)self)->srv;
    static const char text[] = "text/plain; charset=utf-8";
    const char *path = NULL;
    if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/metrics")))
        path = "/metrics";
    else if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/healthz")))
        path = "/healthz";
    else if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/readyz")))
        path = "/readyz";
    if (!path) {
        count("other", 404);
        respond(req, 404, "Not Found", text,
                H2O_STRLIT("not found: /metrics, /healthz, /readyz\n"));
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        count(path, 405);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        respond(req, 405, "Method Not Allowed", text, H2O_STRLIT("only GET\n"));
        return 0;
    }
    if (strcmp(path, "/healthz") == 0) {
        count(path, 200);
        respond(req, 200, "OK", text, H2O_STRLIT("ok\n"));
        return 0;
    }
    if (strcmp(path, "/readyz") == 0) {
        char why[200] = "";
        bool ok = !srv->cfg.ready || srv->cfg.ready(why, sizeof(why), srv->cfg.userdata);
        if (ok) {
            count(path, 200);
            respond(req, 200, "OK", text, H2O_STRLIT("ready\n"));
        } else {
            char body[256];
            int n = snprintf(body, sizeof(body), "not ready: %s\n", why);
            count(path, 503);
            respond(req, 503, "Service Unavailable", text, body,
                    n < 0                      ? 0
                    : (size_t)n < sizeof(body) ? (size_t)n
                                               : sizeof(body) - 1);
        }
        return 0;
    }
    char *body;
    size_t len;
    if (metrics_render(&body, &len) < 0) {
        count(path, 500);
        respond(req, 500, "Internal Server Error", text, H2O_STRLIT("out of memory\n"));
        return 0;
    }
    respond(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
    free(body); /* h2o_send_inline copied it */
    count(path, 200);
    return 0;
}

static void finish(metrics_server *srv);

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    metrics_server *srv = c->srv;
    DLIST_UNLINK(srv->conns, c);
    srv->n_conns--;
    free(c);
    if (srv->closing)
        finish(srv);
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    metrics_server *srv = listener->data;
    if (status < 0 || srv->closing)
        return;
    if (srv->n_conns >= srv->cfg.max_connections) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t || uv_tcp_init(srv->loop, t) < 0) {
            free(t);
            return;
        }
        if (uv_accept(listener, (uv_stream_t *)t) == 0)
            metric_add(&m_http_refused, 1, NULL);
        uv_close((uv_handle_t *)t, on_refused_closed);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    if (uv_tcp_init(srv->loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    DLIST_PUSH(srv->conns, c);
    srv->n_conns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    h2o_accept(&srv->accept_ctx, sock);
}

static void on_last_closed(uv_handle_t *h)
{
    metrics_server *srv = h->data;
    h2o_config_dispose(&srv->config);
    free(srv);
}

/* Runs in the same turn of the loop as the closes of h2o's own handles: closing the last
 * handle from here puts its close in the next turn, after theirs. */
static void on_step_closed(uv_handle_t *h)
{
    metrics_server *srv = h->data;
    uv_close((uv_handle_t *)&srv->last, on_last_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
    metrics_server *srv = h->data;
    srv->listener_open = false;
    finish(srv);
}

/* Once the listener and every connection are closed: h2o's context goes (its timers close),
 * and the memory once libuv is done with all of them. */
static void finish(metrics_server *srv)
{
    if (srv->listener_open || srv->n_conns > 0 || srv->disposed)
        return;
    srv->disposed = true;
    h2o_context_dispose(&srv->ctx);
    uv_idle_init(srv->loop, &srv->step);
    uv_idle_init(srv->loop, &srv->last);
    srv->step.data = srv->last.data = srv;
    uv_close((uv_handle_t *)&srv->step, on_step_closed);
}

static void on_unused_closed(uv_handle_t *h)
{
    free(h->data);
}

int metrics_server_new(uv_loop_t *loop, const struct metrics_server_config *cfg,
                       struct ct_error *err, metrics_server **ret)
{
    struct sockaddr_storage addr;
    int r = metrics_server_parse_listen(cfg->listen, &addr, err);
    if (r < 0)
        return r;
    metrics_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        ct_error_set(err, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->cfg.listen = NULL;
    if (!srv->cfg.max_connections)
        srv->cfg.max_connections = 16;
    if (!srv->cfg.request_timeout_ms)
        srv->cfg.request_timeout_ms = 5000;
    r = uv_tcp_init(loop, &srv->listener);
    if (r < 0) {
        ct_error_set(err, r, "%s", uv_strerror(r));
        free(srv);
        return r;
    }
    srv->listener.data = srv;
    srv->listener_open = true;
    r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, 64, on_accept);
    if (r < 0) {
        ct_error_set(err, r, "cannot listen on %.64s: %s", cfg->listen, uv_strerror(r));
        uv_close((uv_handle_t *)&srv->listener, on_unused_closed); /* frees srv */
        return r;
    }
    h2o_config_init(&srv->config);
    srv->config.max_request_entity_size = 1024;
    srv->config.http1.req_timeout = srv->cfg.request_timeout_ms;
    srv->config.http1.upgrade_to_http2 = 0;
    srv->config.http2.idle_timeout = srv->cfg.request_timeout_ms;
    h2o_hostconf_t *host =
        h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct handler *h = (struct handler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    h2o_context_init(&srv->ctx, loop, &srv->config);
    srv->accept_ctx.ctx = &srv->ctx;
    srv->accept_ctx.hosts = srv->config.hosts;
    metrics_register(&m_http_requests);
    metrics_register(&m_http_refused);
    *ret = srv;
    return 0;
}

void metrics_server_free(metrics_server *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    /* Each open connection is shut down under h2o: it reads the end, closes the connection
     * itself, and on_conn_closed counts it out. */
    for (struct conn *c = srv->conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
}
