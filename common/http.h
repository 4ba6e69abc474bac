/* http: libcurl's multi interface on a libuv loop, for the Docker client and the callbacks.
 *
 * A handle (http_new/http_free) owns one CURLM driven by curl_multi_socket_action from
 * uv_poll_t and a uv_timer_t; connections are kept alive and reused. A request is one
 * transfer with a completion callback, called exactly once unless the request is cancelled.
 * Response bodies are bounded: past max_body_bytes the transfer is aborted and the result
 * says -EFBIG. */
#pragma once
#include <curl/curl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http http;
typedef struct http_req http_req;

struct http_result {
    int err;                /* 0 when an HTTP response arrived, else -ETIMEDOUT, -ECONNREFUSED,
                               -ENOENT (Unix socket path missing), -EFBIG (body over the limit;
                               body holds the first max_body_bytes), -ECANCELED (on_chunk
                               stopped it), -ENOMEM, -EIO (other) */
    const char *err_detail; /* curl's message when err != 0 */
    long status;            /* HTTP status, 0 when err != 0 */
    const char *body;       /* NUL-terminated, len excludes it; valid during the callback */
    size_t body_len;
    const char *retry_after; /* value of a Retry-After header, or NULL */
};
typedef void (*http_done_cb)(http_req *req, const struct http_result *res, void *userdata);
/* Streaming: called for each chunk as it arrives (then done_cb at the end, body empty).
 * Return 0 to go on, non-zero to abort the transfer (done_cb gets -ECANCELED). */
typedef int (*http_chunk_cb)(http_req *req, const char *data, size_t len, void *userdata);

/* Where an address check is made: before a socket is opened to the address (curl tries the
 * addresses of a name in turn: a refused one is skipped, the next tried), and before a
 * connection to it (new, or reused from an earlier request) carries the request (refused:
 * the request ends, -EIO). */
enum http_addr_step { HTTP_ADDR_OPEN, HTTP_ADDR_USE };
/* NULL to allow the address, else why it is refused (a static string). Runs on the loop,
 * from inside libcurl: it must not start or cancel requests. */
typedef const char *(*http_addr_check)(enum http_addr_step step, const struct sockaddr *addr,
                                       void *userdata);

struct http_req_opts {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    const char *url;
    const char *unix_socket;    /* optional: talk HTTP over this Unix socket */
    const char *const *headers; /* optional, NULL-terminated "Name: value" */
    const void *body;           /* optional; copied */
    size_t body_len;
    uint64_t connect_timeout_ms; /* 0: none */
    uint64_t timeout_ms;         /* whole transfer, 0: none (streams) */
    size_t max_body_bytes;       /* 0: unlimited (only for streams); with on_chunk it bounds
                                    the total streamed */
    http_chunk_cb on_chunk;      /* optional: stream instead of buffering */
    /* TLS (tcp:// Docker with DOCKER_TLS_VERIFY, https callbacks) */
    const char *ca_file, *cert_file, *key_file;
    http_addr_check check_addr; /* optional: every address is checked (HTTP_ADDR_*) */
    /* NULL: libcurl's default (the environment's http_proxy, https_proxy, ALL_PROXY and
     * NO_PROXY); "": no proxy whatever the environment says; else this proxy, for every host */
    const char *proxy;
};

http *http_new(uv_loop_t *loop);
/* Cancels every pending request (no callbacks) and frees the handle once libuv released its
 * handles (run the loop afterwards). */
void http_free(http *h);
/* 0 and *ret_req (optional) or -ENOMEM/-EINVAL. The callbacks never run from inside this
 * call. */
int http_request(http *h, const struct http_req_opts *opts, http_done_cb done, void *userdata,
                 http_req **ret_req);
/* No callback after this. Safe to call from inside the request's own callbacks. */
void http_req_cancel(http_req *req);
/* The HTTP status of the response being received (valid from inside on_chunk), 0 before the
 * status line arrived. */
long http_req_status(const http_req *req);
size_t http_active(const http *h);
