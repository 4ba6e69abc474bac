/* http: libcurl's multi interface on a libuv loop.
 *
 * The standard integration: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION,
 * one uv_poll_t per socket) and when to wake it up (CURLMOPT_TIMERFUNCTION, one uv_timer_t);
 * the loop calls curl_multi_socket_action back. Finished transfers are collected with
 * curl_multi_info_read after each action.
 *
 * Re-entrancy: user callbacks may cancel requests, start new ones or free the handle. While
 * we are inside curl (socket_action) or dispatching callbacks, `depth` is non-zero and such
 * operations only mark the request (or the handle); the outermost frame carries them out
 * once it is safe to call curl_multi_remove_handle / uv_close. Likewise a request started
 * from inside curl (an on_chunk callback, say: curl refuses curl_multi_add_handle there with
 * CURLM_RECURSIVE_API_CALL) is added by the outermost frame. */
#include "http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlist.h"

/* A Retry-After value is a number of seconds or an HTTP date: a few dozen bytes. */
#define HTTP_RETRY_AFTER_MAX 128

struct http_sock {
    uv_poll_t poll;
    http *h;
    curl_socket_t fd;
    struct http_sock *prev, *next;
};

struct http_req {
    http *h;
    CURL *easy;
    struct curl_slist *headers;
    http_done_cb done;
    http_chunk_cb on_chunk;
    void *userdata;
    char *body;
    size_t body_len, body_cap, max_body;
    size_t streamed;
    bool too_big;       /* the body went over max_body */
    bool chunk_aborted; /* on_chunk asked to stop */
    bool nomem;         /* the body could not grow */
    bool cancelled;     /* no callback any more; destroyed as soon as it is safe */
    bool in_multi;
    bool add_later; /* started from inside curl: added when the outermost frame leaves */
    http_addr_check check_addr;
    char errbuf[CURL_ERROR_SIZE];
    char retry_after[HTTP_RETRY_AFTER_MAX];
    struct http_req *prev, *next;
};

struct http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct http_req *reqs;   /* every request not yet destroyed */
    struct http_sock *socks; /* every poll handle not yet closing */
    unsigned depth;          /* > 0 while inside curl or dispatching callbacks */
    unsigned closing;        /* uv handles whose close callback is pending */
    bool reap;               /* some request was cancelled while depth > 0 */
    bool add_pending;        /* some request was started from inside curl */
    bool free_requested;     /* http_free was called while depth > 0 */
    bool freed;              /* waiting for the close callbacks, then free */
};

static void http_maybe_release(http *h)
{
    if (h->freed && h->closing == 0)
        free(h);
}

static void sock_close_cb(uv_handle_t *handle)
{
    struct http_sock *s = handle->data;
    http *h = s->h;

    free(s);
    h->closing--;
    http_maybe_release(h);
}

static void timer_close_cb(uv_handle_t *handle)
{
    http *h = handle->data;

    h->closing--;
    http_maybe_release(h);
}

static void sock_close(struct http_sock *s)
{
    http *h = s->h;

    DLIST_UNLINK(h->socks, s);
    uv_poll_stop(&s->poll);
    h->closing++;
    uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

/* Removes the request from curl and from the handle, and frees it. Never called from
 * inside a curl callback. */
static void req_destroy(http_req *r)
{
    http *h = r->h;

    if (r->in_multi) {
        curl_multi_remove_handle(h->multi, r->easy);
        r->in_multi = false;
    }
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    DLIST_UNLINK(h->reqs, r);
    free(r);
}

static void http_destroy(http *h)
{
    while (h->reqs)
        req_destroy(h->reqs);
    /* Closing cached connections may call the socket callback with CURL_POLL_REMOVE. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->socks)
        sock_close(h->socks);
    uv_timer_stop(&h->timer);
    h->closing++;
    uv_close((uv_handle_t *)&h->timer, timer_close_cb);
    h->freed = true;
    http_maybe_release(h);
}

static void http_enter(http *h)
{
    h->depth++;
}

static void req_finish(http_req *r, CURLcode code);
static void add_pending(http *h);

/* Leaves a frame; the outermost one destroys what was cancelled meanwhile. The handle may
 * be gone when this returns. */
static void http_leave(http *h)
{
    assert(h->depth > 0);
    if (--h->depth > 0)
        return;
    if (h->reap) {
        h->reap = false;
        for (http_req *r = h->reqs, *next; r; r = next) {
            next = r->next;
            if (r->cancelled)
                req_destroy(r);
        }
    }
    if (h->free_requested) {
        http_destroy(h);
        return;
    }
    if (h->add_pending)
        add_pending(h);
}

/* Adds the requests started from inside curl, at depth 0. One that curl still refuses
 * completes with an error (its callback runs, as for any request that was accepted). */
static void add_pending(http *h)
{
    h->add_pending = false;
    http_enter(h);
    for (http_req *r = h->reqs, *next; r; r = next) {
        next = r->next;
        if (!r->add_later)
            continue;
        r->add_later = false;
        if (r->cancelled)
            continue;
        if (curl_multi_add_handle(h->multi, r->easy) == CURLM_OK) {
            r->in_multi = true;
        } else {
            r->nomem = true;
            req_finish(r, CURLE_OUT_OF_MEMORY);
            if (h->free_requested)
                break;
        }
    }
    http_leave(h);
}

static int map_curl_error(http_req *r, CURLcode code)
{
    long oserr = 0;

    if (r->too_big)
        return -EFBIG;
    if (r->chunk_aborted)
        return -ECANCELED;
    if (r->nomem)
        return -ENOMEM;
    switch (code) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        /* A Unix socket path that does not exist is not a refusal; say so. */
        if (curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr) == CURLE_OK && oserr == ENOENT)
            return -ENOENT;
        return -ECONNREFUSED;
    case CURLE_FILESIZE_EXCEEDED:
        return -EFBIG;
    default:
        return -EIO;
    }
}

static void req_finish(http_req *r, CURLcode code)
{
    struct http_result res = {0};
    struct curl_header *hdr = NULL;
    char detail[128];

    r->in_multi = false;
    curl_multi_remove_handle(r->h->multi, r->easy);
    if (r->cancelled)
        goto out;

    res.err = map_curl_error(r, code);
    if (res.err == 0) {
        if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status) != CURLE_OK)
            res.status = 0;
        if (curl_easy_header(r->easy, "Retry-After", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK &&
            hdr->value) {
            snprintf(r->retry_after, sizeof(r->retry_after), "%s", hdr->value);
            res.retry_after = r->retry_after;
        }
    } else if (res.err == -EFBIG && r->too_big) {
        snprintf(detail, sizeof(detail), "response body over %zu bytes", r->max_body);
        res.err_detail = detail;
    } else if (res.err == -ECANCELED && r->chunk_aborted) {
        res.err_detail = "transfer aborted by the chunk callback";
    } else if (res.err == -ENOENT || res.err == -ENOMEM) {
        res.err_detail = strerror(-res.err);
    } else {
        res.err_detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
    }
    res.body = r->body ? r->body : "";
    res.body_len = r->body_len;
    if (r->on_chunk) {
        res.body = "";
        res.body_len = 0;
    }
    r->done(r, &res, r->userdata);
out:
    req_destroy(r);
}

static void check_multi_info(http *h)
{
    CURLMsg *msg;
    int left;

    while (!h->free_requested && (msg = curl_multi_info_read(h->multi, &left))) {
        http_req *r = NULL;
        CURLcode code = msg->data.result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r) != CURLE_OK || !r)
            continue;
        req_finish(r, code); /* msg is invalid from here on */
    }
}

static void socket_action(http *h, curl_socket_t fd, int flags)
{
    int running = 0;

    http_enter(h);
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_multi_info(h);
    http_leave(h);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct http_sock *s = handle->data;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    /* s may be closed during the action: read it before. */
    socket_action(s->h, s->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
    socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    http *h = userp;
    struct http_sock *s = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->h = h;
        s->fd = fd;
        DLIST_PUSH(h->socks, s);
        if (curl_multi_assign(h->multi, fd, s) != CURLM_OK) {
            sock_close(s);
            return -1;
        }
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (uv_poll_start(&s->poll, events, on_poll) < 0)
        return -1;
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    http *h = userp;

    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
        return 0;
    }
    /* Even a zero timeout goes through the loop: curl must not be re-entered from here and
     * no callback may run inside http_request. */
    if (uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0) < 0)
        return -1;
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    http_req *r = userp;
    size_t n = size * nmemb, keep;

    if (r->cancelled || r->h->free_requested)
        return 0;
    if (r->max_body && n > r->max_body - r->streamed) {
        keep = r->max_body - r->streamed;
        r->too_big = true;
    } else
        keep = n;

    if (r->on_chunk) {
        r->streamed += keep;
        if (keep > 0 && r->on_chunk(r, data, keep, r->userdata) != 0)
            r->chunk_aborted = !r->cancelled;
        if (r->cancelled || r->chunk_aborted || r->too_big)
            return 0;
        return n;
    }

    if (r->body_len + keep + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        char *p;

        while (cap < r->body_len + keep + 1)
            cap *= 2;
        if (r->max_body && cap > r->max_body + 1)
            cap = r->max_body + 1;
        p = realloc(r->body, cap);
        if (!p) {
            r->nomem = true;
            return 0;
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, keep);
    r->body_len += keep;
    r->body[r->body_len] = '\0';
    r->streamed += keep;
    return r->too_big ? 0 : n;
}

http *http_new(uv_loop_t *loop)
{
    http *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi)
        goto fail;
    if (uv_timer_init(loop, &h->timer) < 0)
        goto fail;
    h->timer.data = h;
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
        /* The timer is initialised: it must be closed, the loop frees h. */
        http_destroy(h);
        return NULL;
    }
    return h;
fail:
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h);
    return NULL;
}

void http_free(http *h)
{
    if (!h || h->free_requested || h->freed)
        return;
    h->free_requested = true;
    for (http_req *r = h->reqs; r; r = r->next)
        r->cancelled = true;
    if (h->depth > 0)
        return; /* the outermost frame destroys it */
    http_destroy(h);
}

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    http_req *r = ud;
    (void)purpose;
    if (r->check_addr(HTTP_ADDR_OPEN, &addr->addr, r->userdata))
        return CURL_SOCKET_BAD; /* curl goes on with the next address, if any */
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* A connection is ready (new or reused): checked once more, which also covers a reused one,
 * whose socket did not come from open_socket for this request. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    http_req *r = ud;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, primary_ip, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, primary_ip, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    return r->check_addr(HTTP_ADDR_USE, (struct sockaddr *)&ss, r->userdata) ? CURL_PREREQFUNC_ABORT
                                                                             : CURL_PREREQFUNC_OK;
}

static int setup_easy(http_req *r, const struct http_req_opts *o)
{
    CURL *e = r->easy;
    bool has_body = o->body || strcmp(o->method, "POST") == 0 || strcmp(o->method, "PUT") == 0;
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, o->url);
    SET(CURLOPT_PRIVATE, (char *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    if (o->unix_socket)
        SET(CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
    if (o->connect_timeout_ms)
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    if (o->timeout_ms)
        SET(CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    if (o->ca_file)
        SET(CURLOPT_CAINFO, o->ca_file);
    if (o->cert_file)
        SET(CURLOPT_SSLCERT, o->cert_file);
    if (o->key_file)
        SET(CURLOPT_SSLKEY, o->key_file);
    if (o->proxy) {
        SET(CURLOPT_PROXY, o->proxy);
        if (*o->proxy)
            SET(CURLOPT_NOPROXY, ""); /* no host is exempt */
    }
    if (o->check_addr) {
        r->check_addr = o->check_addr;
        SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
        SET(CURLOPT_OPENSOCKETDATA, r);
        SET(CURLOPT_PREREQFUNCTION, on_prereq);
        SET(CURLOPT_PREREQDATA, r);
    }
    if (has_body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        SET(CURLOPT_COPYPOSTFIELDS, o->body ? (const char *)o->body : "");
        if (strcmp(o->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, o->method);
    } else if (strcmp(o->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(o->method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, o->method);
    }
#undef SET
    if (rc != CURLE_OK)
        return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;

    for (const char *const *hp = o->headers; hp && *hp; hp++) {
        struct curl_slist *l = curl_slist_append(r->headers, *hp);
        if (!l)
            return -ENOMEM;
        r->headers = l;
    }
    if (has_body) {
        /* No "Expect: 100-continue" round trip for large bodies. */
        struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
        if (!l)
            return -ENOMEM;
        r->headers = l;
    }
    if (r->headers && curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK)
        return -EINVAL;
    return 0;
}

int http_request(http *h, const struct http_req_opts *opts, http_done_cb done, void *userdata,
                 http_req **ret_req)
{
    http_req *r;
    int err;

    if (!h || !opts || !opts->url || !opts->method || !done || h->free_requested || h->freed)
        return -EINVAL;
    if (opts->body_len && !opts->body)
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->h = h;
    r->done = done;
    r->on_chunk = opts->on_chunk;
    r->userdata = userdata;
    r->max_body = opts->max_body_bytes;
    r->easy = curl_easy_init();
    if (!r->easy) {
        err = -ENOMEM;
        goto fail;
    }
    err = setup_easy(r, opts);
    if (err < 0)
        goto fail;
    CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
    if (mc == CURLM_RECURSIVE_API_CALL) {
        r->add_later = true;
        h->add_pending = true;
    } else if (mc != CURLM_OK) {
        err = -ENOMEM;
        goto fail;
    } else {
        r->in_multi = true;
    }
    DLIST_PUSH(h->reqs, r);
    if (ret_req)
        *ret_req = r;
    return 0;
fail:
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r);
    return err;
}

void http_req_cancel(http_req *req)
{
    http *h;

    if (!req || req->cancelled)
        return;
    h = req->h;
    req->cancelled = true;
    if (h->depth > 0) {
        h->reap = true; /* maybe inside curl: destroy it when leaving */
        return;
    }
    req_destroy(req);
}

long http_req_status(const http_req *req)
{
    long status = 0;

    if (!req || curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        return 0;
    return status;
}

size_t http_active(const http *h)
{
    size_t n = 0;

    if (!h)
        return 0;
    for (const http_req *r = h->reqs; r; r = r->next)
        if (!r->cancelled)
            n++;
    return n;
}
