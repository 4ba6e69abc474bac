/* metrics_server: the daemon's own HTTP endpoint, on its loop: GET /metrics (the registry of
 * metrics.h, text format 0.0.4), GET /healthz (200 while the loop runs) and GET /readyz (200
 * when ready() says so, else 503 with the reason). Any other method 405, any other path 404.
 *
 * A handle. HTTP is h2o's (libh2o, built for libuv): request parsing, keep-alive and limits
 * are a well-kept server's, not ours. What a peer can make it hold is bounded: at most
 * max_connections at once (more are closed as soon as accepted), a request head within h2o's
 * bound (H2O_MAX_REQLEN, 8 KiB plus 4 KiB per header it allows: about 400 KiB; larger: 4xx and
 * closed), a body of at most 1 KiB (none is read: GET only), and a connection that has not
 * sent a whole request within request_timeout_ms is closed. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "error.h"

typedef struct metrics_server metrics_server;

struct metrics_server_config {
    const char *listen;          /* "host:port", "[v6]:port" or ":port" (all addresses) */
    unsigned max_connections;    /* 0: 16 */
    uint64_t request_timeout_ms; /* 0: 5000 */
    /* Readiness: true, or false with a short reason written to why. */
    bool (*ready)(char *why, size_t whylen, void *userdata);
    void *userdata;
};

/* Parses "host:port": 0, or -EINVAL with a reason in err. */
int metrics_server_parse_listen(const char *listen, struct sockaddr_storage *ret,
                                struct ct_error *err);

/* Listens at once. 0 and *ret; -EINVAL (bad address), -EADDRINUSE and the like, -ENOMEM; a
 * reason in err. */
int metrics_server_new(uv_loop_t *loop, const struct metrics_server_config *cfg,
                       struct ct_error *err, metrics_server **ret);

/* Stops listening, closes every connection and frees the handle once libuv has released its
 * handles (the loop must run). NULL does nothing. */
void metrics_server_free(metrics_server *srv);
