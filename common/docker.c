/* docker: the Docker Engine API over http.h.
 *
 * Every call is a `struct docker_call` linked into the client so docker_free can cancel it;
 * it is unlinked before its callback runs, so the callback may free the client. The events
 * stream parses newline-delimited JSON from the chunks as they arrive. */
/* Why one file of about 1,400 lines: the calls, their queue (max_calls in flight), the events
 * stream and the probe that learns the engine (GET /version, before the first call and after
 * each reconnect, whose answer shapes the calls queued behind it) share the client's
 * connection state and its list of what is in flight, which docker_free and docker_cancel
 * walk in one place. The parts that need none of it live apart: docker_endpoint.c
 * (configuration, DOCKER_HOST, URLs), docker_scan.c (the container list read without a tree),
 * docker_compat.c and log_tail.c (what another engine's answers mean) and lines.c (the line
 * splitter). */
#include "docker.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlist.h"
#include "docker_compat.h"
#include "ids.h"
#include "lines.h"
#include "log_tail.h"
#include "metrics.h"
#include "text.h"

/* The first bytes of an error body kept as the message when it is not Docker's JSON. */
#define DOCKER_MAX_ERROR_TEXT 512
/* GET /version's answer: a few hundred bytes from Docker, 1.5 KiB from Podman; its /info 3 KiB. */
#define DOCKER_MAX_VERSION_BYTES (256 * 1024)

struct docker {
    uv_loop_t *loop;
    http *http;
    char *host; /* as configured, for messages */
    struct docker_endpoint ep;
    char *ca_file, *cert_file, *key_file;
    uint64_t timeout_ms;
    size_t max_response;
    struct docker_call *calls;
    struct docker_events *events;
    /* Calls beyond max_calls wait here (FIFO) holding only what they need to start: each
     * call in flight costs a connection and curl's buffers, so a burst of a thousand
     * inspects must not open a thousand of them. */
    struct docker_call *queue_head, *queue_tail;
    unsigned in_flight, max_calls;
    /* What the client talks to (docker_compat.h), learnt from GET /version before the first
     * call and again after the engine went away (a call without an answer, the events stream
     * ended): calls and events streams wait meanwhile, in the queue and unlaunched. */
    enum { PROBE_NEEDED, PROBE_RUNNING, PROBE_DONE } probe;
    http_req *probe_req;
    enum docker_engine engine;
    bool limits_ignored;  /* Podman's GET /info: rootless on cgroup v1 (docker_compat.h) */
    bool probe_info;      /* probe_req is GET /info (after /version said Podman) */
    char api_version[16]; /* in every path: DOCKER_API_VERSION, or the engine's if older */
    /* Calls answered here instead of by the engine (docker_compat_create_refused), from a
     * timer of their own: a call is never answered from inside the docker_* call that made
     * it. Not in flight; the timer is freed by its close callback. */
    struct docker_call *local_head;
    uv_timer_t *local_timer;
};

struct docker_call {
    docker *d;
    http_req *req;
    docker_cb cb;
    void *userdata;
    bool raw; /* keep the body as it is (logs), no JSON */
    size_t max_bytes;
    struct json_stream *js; /* a streamed answer of JSON lines (a pull), else NULL */
    struct docker_call *prev, *next;
    /* what starting it takes (kept while it waits in the queue) */
    const char *method;
    char *path, *url, *ctype, *header; /* url: made at launch, with the API version */
    bool create;                       /* a create body (docker_compat_create_config) */
    enum docker_engine engine;         /* the engine when launched */
    void *body;
    size_t body_len;
    uint64_t timeout_ms;
    struct docker_call *queue_next;
    const char *label;    /* docker_api_label: for metrics */
    uint64_t launched_ns; /* uv_hrtime() when handed to http.c */
    char *local_message;  /* answered here with 400 and this message (d->local_head) */
    /* logs with a tail, on Podman: podman_path (without tail=) is sent instead of path, and
     * the end of the stream kept here (log_tail.h); tail_err holds an error body */
    char *podman_path;
    unsigned tail, streams;
    struct log_tail *log_tail;
    struct lines tail_err;
    bool tail_nomem;
    bool logs; /* a logs call: its body made valid UTF-8 on Podman (log_tail_utf8) */
};

/* The state of a streamed answer of JSON lines: the incomplete line (or the error body on an
 * error status), the last object and the first {"error"} object. */
struct json_stream {
    struct lines lines; /* the incomplete line, or the error body on an error status */
    json_t *last;
    json_t *error;
    bool too_long;
};

struct docker_events {
    docker *d;
    http_req *req;
    docker_event_cb on_event;
    docker_events_end_cb on_end;
    void *userdata;
    json_t *filters; /* as the caller asked (the engine may not apply all): see events_line */
    char *path;      /* "/events?since=..", the filters added at launch */
    enum docker_engine engine; /* when launched; until then req is NULL (the probe runs) */
    struct lines lines;        /* the incomplete line, or the error body on an error status */
    int end_err;
    const char *end_msg;
    bool in_event; /* inside on_event: docker_events_stop must not free */
    bool stopped;
    bool ending; /* inside on_end */
    struct docker_events *prev, *next;
};

/* ---- results ---- */

/* The message of a result: Docker's {"message"} on an error status, else the start of the
 * body, else "HTTP <status>". Written to buf when it is not a string in json. */
static const char *error_message(long status, json_t *json, const char *body, size_t len, char *buf,
                                 size_t buflen)
{
    const char *m;

    if (status < 400)
        return "";
    m = json_string_value(json_object_get(json, "message"));
    if (m)
        return m;
    while (len > 0 && isspace((unsigned char)body[len - 1]))
        len--;
    if (len > 0)
        snprintf(buf, buflen, "HTTP %ld: %.*s", status,
                 (int)(len < DOCKER_MAX_ERROR_TEXT ? len : DOCKER_MAX_ERROR_TEXT), body);
    else
        snprintf(buf, buflen, "HTTP %ld", status);
    return buf;
}

static void transport_message(const docker *d, const struct http_result *hr, size_t max_bytes,
                              char *buf, size_t buflen)
{
    switch (hr->err) {
    case -ECONNREFUSED:
    case -ENOENT:
        snprintf(buf, buflen, "cannot connect to Docker at %s: %s", d->host, strerror(-hr->err));
        break;
    case -ETIMEDOUT:
        snprintf(buf, buflen, "Docker at %s: timed out (%s)", d->host,
                 hr->err_detail ? hr->err_detail : "");
        break;
    case -EFBIG:
        snprintf(buf, buflen, "Docker at %s: response over %zu bytes", d->host, max_bytes);
        break;
    default:
        snprintf(buf, buflen, "Docker at %s: %s", d->host,
                 hr->err_detail ? hr->err_detail : strerror(-hr->err));
        break;
    }
}

static json_t *parse_json(const char *body, size_t len)
{
    size_t i = 0;

    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i == len || (body[i] != '{' && body[i] != '['))
        return NULL;
    return json_loadb(body, len, JSON_DECODE_ANY, NULL);
}

/* ---- calls ---- */

static void call_unlink(struct docker_call *c)
{
    DLIST_UNLINK(c->d->calls, c);
}

static void json_stream_free(struct json_stream *js)
{
    if (!js)
        return;
    lines_free(&js->lines);
    json_decref(js->last);
    json_decref(js->error);
    free(js);
}

static void call_free(struct docker_call *c)
{
    json_stream_free(c->js);
    free(c->path);
    free(c->podman_path);
    log_tail_free(c->log_tail);
    lines_free(&c->tail_err);
    free(c->local_message);
    free(c->url);
    free(c->ctype);
    free(c->header);
    free(c->body);
    free(c);
}

static int json_stream_line(const char *line, size_t len, void *ud)
{
    struct json_stream *js = ud;
    json_t *obj = json_loadb(line, len, 0, NULL);

    if (!json_is_object(obj)) { /* blank or not JSON: not ours to judge, skipped */
        json_decref(obj);
        return 0;
    }
    if (!js->error && json_object_get(obj, "error"))
        js->error = json_incref(obj);
    json_decref(js->last);
    js->last = obj;
    return 0;
}

static int json_stream_chunk(http_req *req, const char *data, size_t len, void *userdata)
{
    struct json_stream *js = ((struct docker_call *)userdata)->js;

    if (http_req_status(req) >= 300) { /* an error body, kept (bounded) for the message */
        lines_keep(&js->lines, data, len);
        return 0;
    }
    if (lines_feed(&js->lines, data, len, json_stream_line, js) < 0) {
        js->too_long = true;
        return 1;
    }
    return 0;
}

static int log_tail_chunk(http_req *req, const char *data, size_t len, void *userdata)
{
    struct docker_call *c = userdata;

    if (http_req_status(req) >= 300) { /* an error body, kept (bounded) for the message */
        lines_keep(&c->tail_err, data, len);
        return 0;
    }
    if (log_tail_feed(c->log_tail, data, len) < 0) {
        c->tail_nomem = true;
        return 1;
    }
    return 0;
}

/* The result of a streamed call that got an answer (err == 0). */
static void json_stream_result(struct json_stream *js, const struct http_result *hr,
                               struct docker_result *res, char *msg, size_t msglen)
{
    size_t len;
    const char *rest = lines_rest(&js->lines, &len);
    res->status = hr->status;
    if (hr->status >= 300) {
        res->body = rest;
        res->body_len = len;
        res->json = parse_json(rest, len);
        res->message = error_message(hr->status, res->json, rest, len, msg, msglen);
        return;
    }
    if (len > 0) /* a last line without its newline */
        json_stream_line(rest, len, js);
    res->body = "";
    if (js->error) {
        json_t *e = json_object_get(js->error, "error");
        const char *text = json_string_value(e);
        if (!text || !*text)
            text = json_string_value(
                json_object_get(json_object_get(js->error, "errorDetail"), "message"));
        snprintf(msg, msglen, "%s", text && *text ? text : "error in the answer stream");
        res->message = msg;
        res->json = json_incref(js->error);
    } else {
        res->message = "";
        res->json = json_incref(js->last);
    }
}

static void pump(docker *d, bool may_answer);

/* The engine may have gone (and another come in its place): learnt again before the next
 * call. */
static void engine_gone(docker *d)
{
    if (d && d->probe == PROBE_DONE)
        d->probe = PROBE_NEEDED;
}

static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1,    2.5,   5,    10,  30};
static struct metric m_requests =
    METRIC_COUNTER("correctomatic_docker_requests_total",
                   "Docker API calls ended, by endpoint and status class (error: no answer).",
                   "endpoint", "status");
static struct metric m_latency = METRIC_HISTOGRAM(
    "correctomatic_docker_request_duration_seconds",
    "Time from sending a Docker API call to its whole answer.", latency_bounds, "endpoint");

/* A call ended: counted, and whether the engine answered. */
static void count_call(const struct docker_call *c, const struct http_result *hr)
{
    METRIC_INC(&m_requests, c->label, metrics_status_class(hr->status));
    METRIC_OBSERVE(&m_latency, (double)(uv_hrtime() - c->launched_ns) / 1e9, c->label);
    /* too large, cut off by our limit: the engine did answer */
    bool answered = !hr->err || hr->err == -EFBIG || hr->status >= 100;
    METRIC_SET(&metrics_ready, answered ? 1 : 0, "docker");
}

static void call_done(http_req *req, const struct http_result *hr, void *userdata)
{
    struct docker_call *c = userdata;
    struct docker_result res = {0};
    char msg[DOCKER_MAX_ERROR_TEXT + 256];

    (void)req;
    count_call(c, hr);
    res.err = hr->err;
    res.status = hr->status;
    res.body = hr->body;
    res.body_len = hr->body_len;
    char *tail_body = NULL;
    if (c->log_tail &&
        (c->tail_nomem || (!hr->err && hr->status < 300 &&
                           log_tail_result(c->log_tail, &tail_body, &res.body_len) < 0))) {
        res.err = -ENOMEM;
        res.message = "Docker: out of memory for the end of a log";
        res.body = "";
        res.body_len = 0;
    } else if (c->log_tail && !hr->err) {
        res.body = tail_body;
        if (hr->status >= 300) {
            res.body = lines_rest(&c->tail_err, &res.body_len);
            res.json = parse_json(res.body, res.body_len);
        }
        res.message = error_message(hr->status, res.json, res.body, res.body_len, msg, sizeof(msg));
    } else if (c->js && c->js->too_long) {
        res.err = -EFBIG;
        res.message = "Docker: a line of the answer stream is over 64 KiB";
        res.body = "";
    } else if (c->js && !hr->err) {
        json_stream_result(c->js, hr, &res, msg, sizeof(msg));
    } else if (hr->err) {
        transport_message(c->d, hr, c->max_bytes, msg, sizeof(msg));
        res.message = msg;
    } else {
        if (!c->raw)
            res.json = parse_json(hr->body, hr->body_len);
        res.message = error_message(hr->status, res.json, hr->body, hr->body_len, msg, sizeof(msg));
        if (c->engine == DOCKER_ENGINE_PODMAN) /* after the message */
            res.status = docker_compat_status(res.status, res.json, c->create);
    }
    if (hr->err && hr->err != -EFBIG)
        engine_gone(c->d);
    char *utf8_body = NULL;
    if (c->logs && c->engine == DOCKER_ENGINE_PODMAN && res.status == 200 &&
        (!res.err || res.err == -EFBIG)) {
        /* Podman keeps the bytes as they came, Docker's json-file log valid UTF-8 */
        if (log_tail_utf8(res.body, res.body_len, &utf8_body, &res.body_len) < 0) {
            res.err = -ENOMEM;
            res.message = "Docker: out of memory for a log";
            res.body = "";
            res.body_len = 0;
        } else {
            res.body = utf8_body;
        }
    }
    /* Unlinked first, and the next queued call started: the callback may free the client. */
    call_unlink(c);
    c->d->in_flight--;
    pump(c->d, true);
    c->cb(&res, c->userdata);
    json_decref(res.json);
    free(tail_body);
    free(utf8_body);
    call_free(c);
}

struct call_opts {
    const char *method;
    const char *path;
    const char *content_type;
    const void *body;
    size_t body_len;
    uint64_t timeout_ms;
    size_t max_bytes;
    bool raw;
    const char *header;      /* one more "Name: value" header, or NULL */
    const char *podman_path; /* logs with a tail: the path without it, for Podman */
    unsigned tail, streams;
    bool logs;
    bool json_stream; /* stream the answer as JSON lines (struct json_stream) */
    bool create;      /* a create body */
};

static void base_opts(const docker *d, struct http_req_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->unix_socket = d->ep.unix_socket;
    o->connect_timeout_ms = d->timeout_ms;
    o->ca_file = d->ca_file;
    o->cert_file = d->cert_file;
    o->key_file = d->key_file;
}

/* A create body for Podman (docker_compat_create_config) in place of c's, or the refusal of
 * one it must not be sent in c->local_message (docker_compat_create_refused). 0 or -ENOMEM. */
static int compat_create_body(struct docker_call *c)
{
    json_t *cfg = json_loadb(c->body, c->body_len, 0, NULL), *fixed = NULL;
    char *body = NULL, msg[DOCKER_MAX_ERROR_TEXT];
    int r = -ENOMEM;

    if (!cfg)
        return 0; /* not ours to judge: the engine answers it */
    if (docker_compat_create_refused(cfg, c->d->limits_ignored, msg, sizeof(msg))) {
        c->local_message = strdup(msg);
        r = c->local_message ? 0 : -ENOMEM;
        goto out;
    }
    if (docker_compat_create_config(cfg, &fixed) < 0)
        goto out;
    r = 0;
    if (!fixed)
        goto out;
    body = json_dumps(fixed, JSON_COMPACT);
    if (!body) {
        r = -ENOMEM;
        goto out;
    }
    free(c->body);
    c->body = body;
    c->body_len = strlen(body);
out:
    json_decref(cfg);
    json_decref(fixed);
    return r;
}

static void on_local_timer(uv_timer_t *t)
{
    docker *d = t->data;
    struct docker_call *c = d->local_head;
    if (!c)
        return;
    d->local_head = c->queue_next;
    if (d->local_head)
        uv_timer_start(d->local_timer, on_local_timer, 0, 0); /* one per turn: cb may free d */
    struct docker_result res = {.status = 400, .message = c->local_message, .body = ""};
    c->cb(&res, c->userdata);
    call_free(c);
}

/* Hands a prepared call to http.c; 0 or a negative errno (the call is then not linked). A
 * call answered here instead (local_message) goes to d->local_head: 0. */
static int launch(docker *d, struct docker_call *c)
{
    struct http_req_opts o;
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n_headers = 0;
    c->engine = d->engine;
    bool tail_here = c->tail && c->podman_path && c->engine == DOCKER_ENGINE_PODMAN;
    free(c->url);
    c->url = docker_url_join_version(d->ep.base_url, d->api_version,
                                     tail_here ? c->podman_path : c->path);
    if (!c->url)
        return -ENOMEM;
    if (tail_here && !c->log_tail) {
        /* Podman 4.3's tail joins partial lines across frames and streams, and answers
         * nothing when the asked stream's last line is partial: the whole stream is read
         * and its end kept here, as Docker's tail keeps its last entries (log_tail.h) */
        c->log_tail = log_tail_new(c->tail, c->max_bytes > 8 ? c->max_bytes : 9, c->streams);
        if (!c->log_tail || lines_init(&c->tail_err, DOCKER_MAX_ERROR_TEXT) < 0)
            return -ENOMEM;
    }
    if (c->create && c->engine == DOCKER_ENGINE_PODMAN && compat_create_body(c) < 0)
        return -ENOMEM;
    if (c->local_message) {
        struct docker_call **pp = &d->local_head;
        while (*pp)
            pp = &(*pp)->queue_next;
        c->queue_next = NULL;
        *pp = c;
        uv_timer_start(d->local_timer, on_local_timer, 0, 0);
        return 0;
    }
    if (c->ctype)
        headers[n_headers++] = c->ctype;
    if (c->header)
        headers[n_headers++] = c->header;
    base_opts(d, &o);
    o.method = c->method;
    o.url = c->url;
    o.headers = headers;
    o.body = c->body;
    o.body_len = c->body_len;
    o.timeout_ms = c->timeout_ms;
    o.max_body_bytes = c->max_bytes;
    if (c->js)
        o.on_chunk = json_stream_chunk;
    if (c->log_tail) {
        o.on_chunk = log_tail_chunk;
        o.max_body_bytes = 0; /* bounded by log_tail: the whole stream goes through */
    }
    c->launched_ns = uv_hrtime();
    int r = http_request(d->http, &o, call_done, c, &c->req);
    if (r < 0)
        return r;
    /* http.c copied the body: ours is not needed any more. */
    free(c->body);
    c->body = NULL;
    DLIST_PUSH(d->calls, c);
    d->in_flight++;
    return 0;
}

/* Starts queued calls while there is room. One that cannot start is answered with its error
 * (from here, never from inside the docker_* call that made it) when may_answer; else it
 * stays first in the queue, for the next pump (a call's end, a new call). */
static void pump(docker *d, bool may_answer)
{
    while (d->queue_head && d->in_flight < d->max_calls && d->probe != PROBE_RUNNING) {
        struct docker_call *c = d->queue_head, *next = c->queue_next;
        int r = launch(d, c); /* may put c in d->local_head, through queue_next */
        if (r < 0 && !may_answer)
            return;
        d->queue_head = next;
        if (!d->queue_head)
            d->queue_tail = NULL;
        if (r < 0) {
            struct docker_result res = {.err = r, .message = "cannot start the Docker call"};
            res.body = "";
            c->cb(&res, c->userdata);
            call_free(c);
        }
    }
}

/* ---- what the client talks to ---- */

static void events_launch_waiting(docker *d);

static int probe_send(docker *d, const char *path);

static void probe_done(http_req *req, const struct http_result *hr, void *userdata)
{
    docker *d = userdata;

    (void)req;
    d->probe_req = NULL;
    if (d->probe_info) {
        /* Podman's GET /info: whether it applies limits. No answer: none known, as before */
        json_t *info = !hr->err && hr->status == 200 ? parse_json(hr->body, hr->body_len) : NULL;
        d->limits_ignored = docker_compat_limits_ignored(info);
        json_decref(info);
        d->probe_info = false;
        d->probe = PROBE_DONE;
    } else if (!hr->err) {
        /* an engine that answers, but not /version as Docker does, is taken for Docker */
        json_t *v = hr->status == 200 ? parse_json(hr->body, hr->body_len) : NULL;
        d->engine = docker_compat_engine(v);
        docker_compat_api_version(v, DOCKER_API_VERSION, d->api_version, sizeof(d->api_version));
        json_decref(v);
        d->probe = PROBE_DONE;
        d->limits_ignored = false;
        if (d->engine == DOCKER_ENGINE_PODMAN) {
            char path[32];
            snprintf(path, sizeof(path), "/%s/info", d->api_version);
            d->probe_info = true;
            if (probe_send(d, path) == 0) {
                d->probe = PROBE_RUNNING;
                return; /* what waits goes once /info has answered */
            }
            d->probe_info = false;
        }
    } else {
        /* no engine: what waits goes as it is (its own error says why, as before), and the
         * next call asks again */
        d->probe = PROBE_NEEDED;
    }
    events_launch_waiting(d);
    pump(d, true);
}

/* GET base_url + path for the probe. 0 or a negative errno. */
static int probe_send(docker *d, const char *path)
{
    struct http_req_opts o;
    char *url = text_printf("%s%s", d->ep.base_url, path);
    if (!url)
        return -ENOMEM;
    base_opts(d, &o);
    o.method = "GET";
    o.url = url;
    o.timeout_ms = d->timeout_ms;
    o.max_body_bytes = DOCKER_MAX_VERSION_BYTES;
    int r = http_request(d->http, &o, probe_done, d, &d->probe_req);
    free(url);
    return r;
}

/* GET /version (unversioned: every engine serves it), when the engine is not known and not
 * being asked already; then, on Podman, GET /info. Left PROBE_NEEDED when it cannot start:
 * then nothing waits for it. */
static void probe_start(docker *d)
{
    if (d->probe != PROBE_NEEDED)
        return;
    if (probe_send(d, "/version") == 0)
        d->probe = PROBE_RUNNING;
}

enum docker_engine docker_engine(const docker *d)
{
    return d ? d->engine : DOCKER_ENGINE_DOCKER;
}

static int call_start(docker *d, const struct call_opts *co, docker_cb cb, void *userdata)
{
    struct docker_call *c = NULL;
    int r;

    if (!d || !co->path || co->path[0] != '/' || !cb)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->d = d;
    c->cb = cb;
    c->userdata = userdata;
    c->raw = co->raw;
    c->max_bytes = co->max_bytes;
    c->method = co->method;
    c->label = docker_api_label(co->method, co->path);
    c->timeout_ms = co->timeout_ms;
    c->create = co->create;
    c->tail = co->tail;
    c->streams = co->streams;
    c->logs = co->logs;
    c->path = strdup(co->path);
    if (!c->path || (co->podman_path && !(c->podman_path = strdup(co->podman_path))) ||
        (co->content_type && !(c->ctype = text_printf("Content-Type: %s", co->content_type))) ||
        (co->header && !(c->header = strdup(co->header)))) {
        r = -ENOMEM;
        goto fail;
    }
    if (co->body_len) {
        if (!(c->body = malloc(co->body_len))) {
            r = -ENOMEM;
            goto fail;
        }
        memcpy(c->body, co->body, co->body_len);
        c->body_len = co->body_len;
    }
    if (co->json_stream) {
        c->js = calloc(1, sizeof(*c->js));
        if (!c->js || lines_init(&c->js->lines, DOCKER_EVENTS_MAX_LINE) < 0) {
            r = -ENOMEM;
            goto fail;
        }
    }
    if (d->probe == PROBE_DONE && d->in_flight < d->max_calls && !d->queue_head) {
        r = launch(d, c);
        if (r < 0)
            goto fail;
        return 0;
    }
    if (d->queue_tail)
        d->queue_tail->queue_next = c;
    else
        d->queue_head = c;
    d->queue_tail = c;
    probe_start(d); /* when the engine is not known: the call waits for it */
    pump(d, false); /* room left by a call that could not start before */
    return 0;
fail:
    call_free(c);
    return r;
}

/* call_start with a path made by the caller, whose ownership it takes (NULL: -ENOMEM). */
static int call_start_path(docker *d, struct call_opts *co, char *path, docker_cb cb,
                           void *userdata)
{
    if (!path)
        return -ENOMEM;
    co->path = path;
    int r = call_start(d, co, cb, userdata);
    free(path);
    return r;
}

int docker_call(docker *d, const char *method, const char *path, const char *content_type,
                const void *body, size_t body_len, docker_cb cb, void *userdata)
{
    struct call_opts co = {
        .method = method,
        .path = path,
        .content_type = content_type,
        .body = body,
        .body_len = body_len,
    };

    if (!d || !method)
        return -EINVAL;
    co.timeout_ms = d->timeout_ms;
    co.max_bytes = d->max_response;
    return call_start(d, &co, cb, userdata);
}

/* A call whose path is made here; takes ownership of path (NULL: -ENOMEM). */
static int call_path(docker *d, const char *method, char *path, docker_cb cb, void *userdata)
{
    int r;

    if (!path)
        return -ENOMEM;
    r = docker_call(d, method, path, NULL, NULL, 0, cb, userdata);
    free(path);
    return r;
}

static bool valid_id(const char *id)
{
    return id && *id;
}

int docker_ping(docker *d, docker_cb cb, void *userdata)
{
    return docker_call(d, "GET", "/_ping", NULL, NULL, 0, cb, userdata);
}

int docker_container_create(docker *d, const char *name, json_t *config, docker_cb cb,
                            void *userdata)
{
    char *path = strdup("/containers/create"), *body = NULL;
    int r = -ENOMEM;

    if (!d || !json_is_object(config)) {
        free(path);
        return -EINVAL;
    }
    if (!path)
        goto out;
    if (name && *name && docker_query_add(&path, "name", name) < 0)
        goto out;
    body = json_dumps(config, JSON_COMPACT);
    if (!body)
        goto out;
    struct call_opts co = {.method = "POST",
                           .path = path,
                           .content_type = "application/json",
                           .body = body,
                           .body_len = strlen(body),
                           .timeout_ms = d->timeout_ms,
                           .max_bytes = d->max_response,
                           .create = true};
    r = call_start(d, &co, cb, userdata);
out:
    free(path);
    free(body);
    return r;
}

/* /containers/{id}/archive?path=...: a tar stream put in (PUT) or a path looked up (HEAD). */
static int archive_call(docker *d, const char *method, const char *id, const char *path,
                        const char *ctype, const void *tar, size_t tar_len, docker_cb cb,
                        void *userdata)
{
    if (!valid_id(id) || !path || !*path)
        return -EINVAL;
    char *p = docker_path_for("/containers/", id, "/archive");
    if (!p)
        return -ENOMEM;
    int r = docker_query_add(&p, "path", path);
    if (r == 0)
        r = docker_call(d, method, p, ctype, tar, tar_len, cb, userdata);
    free(p);
    return r;
}

int docker_container_upload(docker *d, const char *id, const char *path, const void *tar,
                            size_t tar_len, docker_cb cb, void *userdata)
{
    if (!tar && tar_len)
        return -EINVAL;
    return archive_call(d, "PUT", id, path, "application/x-tar", tar, tar_len, cb, userdata);
}

int docker_container_start(docker *d, const char *id, docker_cb cb, void *userdata)
{
    if (!valid_id(id))
        return -EINVAL;
    return call_path(d, "POST", docker_path_for("/containers/", id, "/start"), cb, userdata);
}

int docker_container_stat(docker *d, const char *id, const char *path, docker_cb cb, void *userdata)
{
    return archive_call(d, "HEAD", id, path, NULL, NULL, 0, cb, userdata);
}

int docker_container_inspect(docker *d, const char *id, docker_cb cb, void *userdata)
{
    if (!valid_id(id))
        return -EINVAL;
    return call_path(d, "GET", docker_path_for("/containers/", id, "/json"), cb, userdata);
}

/* GET .../logs's path: the streams asked, the last tail entries (0: all), timestamps, since.
 * NULL when out of memory. */
static char *logs_path(const char *id, bool out, bool err, unsigned tail, bool timestamps,
                       const char *since)
{
    char *p = docker_path_for("/containers/", id, "/logs");
    char n[16];
    snprintf(n, sizeof(n), "%u", tail);
    if (p && (docker_query_add(&p, "stdout", out ? "1" : "0") < 0 ||
              docker_query_add(&p, "stderr", err ? "1" : "0") < 0 ||
              (tail && docker_query_add(&p, "tail", n) < 0) ||
              (timestamps && docker_query_add(&p, "timestamps", "1") < 0) ||
              (*since && docker_query_add(&p, "since", since) < 0))) {
        free(p);
        return NULL;
    }
    return p;
}

int docker_container_logs(docker *d, const char *id, const struct docker_logs *what, docker_cb cb,
                          void *userdata)
{
    struct call_opts co = {.method = "GET", .raw = true, .logs = true};
    const char *since = what && what->since ? what->since : "";

    if (!d || !valid_id(id) || strlen(since) > 24 || strspn(since, "0123456789.") != strlen(since))
        return -EINVAL;
    bool both = !what || (!what->out && !what->err);
    bool out = both || what->out, err = both || what->err;
    bool timestamps = what && what->timestamps;
    unsigned tail = what ? what->tail : 0;
    co.timeout_ms = d->timeout_ms;
    co.max_bytes = what && what->max_bytes ? what->max_bytes : d->max_response;
    char *p = logs_path(id, out, err, tail, timestamps, since);
    /* with a tail, for an engine whose tail is done here (launch): both streams without tail=,
     * as Docker's tail counts the last entries of the log, then keeps the asked streams' */
    char *podman = tail ? logs_path(id, true, true, 0, timestamps, since) : NULL;
    if (!p || (tail && !podman)) {
        free(p);
        free(podman);
        return -ENOMEM;
    }
    if (tail) {
        co.tail = tail;
        co.streams = (out ? 1u << 1 : 0) | (err ? 1u << 2 : 0);
        co.podman_path = podman;
    }
    int r = call_start_path(d, &co, p, cb, userdata);
    free(podman);
    return r;
}

int docker_container_kill(docker *d, const char *id, const char *signal, docker_cb cb,
                          void *userdata)
{
    char *p;

    if (!valid_id(id))
        return -EINVAL;
    p = docker_path_for("/containers/", id, "/kill");
    if (p && signal && *signal && docker_query_add(&p, "signal", signal) < 0) {
        free(p);
        return -ENOMEM;
    }
    return call_path(d, "POST", p, cb, userdata);
}

int docker_container_remove(docker *d, const char *id, bool force, docker_cb cb, void *userdata)
{
    if (!valid_id(id))
        return -EINVAL;
    return call_path(d, "DELETE",
                     docker_path_for("/containers/", id, force ? "?force=1&v=1" : "?force=0&v=1"),
                     cb, userdata);
}

static int list_call(docker *d, bool all, json_t *filters, bool raw, docker_cb cb, void *userdata)
{
    struct call_opts co = {.method = "GET", .raw = raw};

    if (!d)
        return -EINVAL;
    char *p = strdup(all ? "/containers/json?all=1" : "/containers/json?all=0");
    if (p && filters) {
        char *f = json_dumps(filters, JSON_COMPACT);
        if (!f || docker_query_add(&p, "filters", f) < 0) {
            free(f);
            free(p);
            return -ENOMEM;
        }
        free(f);
    }
    co.timeout_ms = d->timeout_ms;
    co.max_bytes = d->max_response;
    return call_start_path(d, &co, p, cb, userdata);
}

int docker_container_list(docker *d, bool all, json_t *filters, docker_cb cb, void *userdata)
{
    return list_call(d, all, filters, false, cb, userdata);
}

int docker_container_list_raw(docker *d, bool all, json_t *filters, docker_cb cb, void *userdata)
{
    return list_call(d, all, filters, true, cb, userdata);
}

int docker_image_inspect(docker *d, const char *ref, docker_cb cb, void *userdata)
{
    if (!valid_id(ref))
        return -EINVAL;
    return call_path(d, "GET", docker_path_for("/images/", ref, "/json"), cb, userdata);
}

int docker_image_pull(docker *d, const char *from_image, const char *tag, const char *registry_auth,
                      uint64_t timeout_ms, docker_cb cb, void *userdata)
{
    struct call_opts co = {.method = "POST", .timeout_ms = timeout_ms, .json_stream = true};
    char *p = NULL, *header = NULL;
    int r = -ENOMEM;

    if (!d || !valid_id(from_image) || !valid_id(tag))
        return -EINVAL;
    p = strdup("/images/create");
    if (!p || docker_query_add(&p, "fromImage", from_image) < 0 ||
        docker_query_add(&p, "tag", tag) < 0)
        goto out;
    if (registry_auth && *registry_auth) {
        header = text_printf("X-Registry-Auth: %s", registry_auth);
        if (!header)
            goto out;
        co.header = header;
    }
    co.path = p;
    r = call_start(d, &co, cb, userdata);
out:
    free(p);
    if (header) {
        explicit_bzero(header, strlen(header));
        free(header);
    }
    return r;
}

int docker_container_wait(docker *d, const char *id, const char *condition, uint64_t timeout_ms,
                          docker_cb cb, void *userdata)
{
    struct call_opts co = {.method = "POST", .timeout_ms = timeout_ms};
    char *p;

    if (!d || !valid_id(id))
        return -EINVAL;
    p = docker_path_for("/containers/", id, "/wait");
    if (p && condition && *condition && docker_query_add(&p, "condition", condition) < 0) {
        free(p);
        return -ENOMEM;
    }
    co.max_bytes = d->max_response;
    return call_start_path(d, &co, p, cb, userdata);
}

/* ---- events ---- */

static void events_unlink(docker_events *ev)
{
    docker *d = ev->d;

    if (!d)
        return;
    DLIST_UNLINK(d->events, ev);
    ev->d = NULL;
}

static void events_free(docker_events *ev)
{
    json_decref(ev->filters);
    free(ev->path);
    lines_free(&ev->lines);
    free(ev);
}

/* One complete line: -EIO when it is not JSON, 1 when the stream was stopped from on_event
 * (ev is freed then). */
static int events_line(const char *line, size_t len, void *ud)
{
    docker_events *ev = ud;
    json_t *obj;
    size_t i = 0;

    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i == len)
        return 0;
    obj = json_loadb(line + i, len - i, 0, NULL);
    if (!obj)
        return -EIO;
    /* in Docker's words, and what the engine could not filter (docker_compat.h) */
    if (ev->engine == DOCKER_ENGINE_PODMAN) {
        docker_compat_event_normalize(obj);
        if (!docker_compat_event_wanted(obj, ev->filters)) {
            json_decref(obj);
            return 0;
        }
    }
    ev->in_event = true;
    ev->on_event(obj, ev->userdata);
    ev->in_event = false;
    json_decref(obj);
    if (ev->stopped) {
        events_free(ev); /* stopped from on_event; the request is cancelled */
        return 1;
    }
    return 0;
}

static int events_chunk(http_req *req, const char *data, size_t len, void *userdata)
{
    docker_events *ev = userdata;

    if (http_req_status(req) >= 300) { /* an error body, kept for the message */
        lines_keep(&ev->lines, data, len);
        return 0;
    }
    int r = lines_feed(&ev->lines, data, len, events_line, ev);
    if (r == 1)
        return 1; /* ev is gone */
    if (r == -EFBIG) {
        ev->end_err = -EFBIG;
        ev->end_msg = "Docker events: line over 64 KiB";
        return 1;
    }
    if (r < 0) {
        ev->end_err = r;
        ev->end_msg = "Docker events: invalid JSON";
        return 1;
    }
    return 0;
}

static void events_done(http_req *req, const struct http_result *hr, void *userdata)
{
    docker_events *ev = userdata;
    struct docker_result res = {0};
    char msg[DOCKER_MAX_ERROR_TEXT + 256];

    (void)req;
    engine_gone(ev->d); /* the engine ended it: it may be going, or another coming */
    METRIC_INC(&m_requests, "events", metrics_status_class(hr->status)); /* when it ends */
    if (hr->err && hr->err != -EFBIG && hr->status < 100)
        METRIC_SET(&metrics_ready, 0, "docker");
    if (ev->end_err) {
        res.err = ev->end_err;
        res.message = ev->end_msg;
    } else if (hr->err) {
        res.err = hr->err;
        transport_message(ev->d, hr, 0, msg, sizeof(msg));
        res.message = msg;
    } else {
        size_t len;
        const char *rest = lines_rest(&ev->lines, &len);
        res.status = hr->status;
        if (hr->status >= 300) {
            res.body = rest;
            res.body_len = len;
            res.json = parse_json(rest, len);
        }
        res.message = error_message(hr->status, res.json, rest, len, msg, sizeof(msg));
    }
    if (!res.body)
        res.body = "";
    events_unlink(ev);
    ev->ending = true;
    ev->on_end(&res, ev->userdata);
    json_decref(res.json);
    events_free(ev);
}

int docker_event_container(json_t *event, const char **action, const char **id)
{
    const char *a = json_string_value(json_object_get(event, "Action"));
    if (!a)
        a = json_string_value(json_object_get(event, "status"));
    const char *i = json_string_value(json_object_get(json_object_get(event, "Actor"), "ID"));
    if (!i)
        i = json_string_value(json_object_get(event, "id"));
    if (!a || !i || !ids_is_container_id(i))
        return -EINVAL;
    *action = a;
    *id = i;
    return 0;
}

/* Sends the events request of ev (linked, not launched), with the filters for the engine now
 * known. 0 or a negative errno. */
static int events_launch(docker_events *ev)
{
    docker *d = ev->d;
    struct http_req_opts o;
    char *path = strdup(ev->path), *url = NULL, *f = NULL;
    json_t *engine_filters = NULL;
    int r = -ENOMEM;

    ev->engine = d->engine;
    if (!path)
        goto out;
    if (ev->filters) {
        json_t *sent = ev->filters;
        if (ev->engine == DOCKER_ENGINE_PODMAN) {
            if (docker_compat_events_filters(ev->filters, &engine_filters) < 0)
                goto out;
            sent = engine_filters;
        }
        f = json_dumps(sent, JSON_COMPACT);
        if (!f || docker_query_add(&path, "filters", f) < 0)
            goto out;
    }
    url = docker_url_join_version(d->ep.base_url, d->api_version, path);
    if (!url)
        goto out;
    base_opts(d, &o);
    o.method = "GET";
    o.url = url;
    o.on_chunk = events_chunk;
    r = http_request(d->http, &o, events_done, ev, &ev->req);
out:
    free(path);
    free(url);
    free(f);
    json_decref(engine_filters);
    return r;
}

/* The streams that waited for the engine to be known, sent; one that cannot be is ended with
 * its error (as a call that cannot start is answered by pump). */
static void events_launch_waiting(docker *d)
{
    for (docker_events *ev = d->events; ev;) {
        if (ev->req) {
            ev = ev->next;
            continue;
        }
        int r = events_launch(ev);
        if (r == 0) {
            ev = ev->next;
            continue;
        }
        struct docker_result res = {.err = r, .message = "cannot start the Docker events stream"};
        res.body = "";
        events_unlink(ev);
        ev->ending = true;
        ev->on_end(&res, ev->userdata);
        events_free(ev);
        ev = d->events; /* on_end may have stopped others: from the start again */
    }
}

int docker_events_start(docker *d, int64_t since, json_t *filters, docker_event_cb on_event,
                        docker_events_end_cb on_end, void *userdata, docker_events **ret)
{
    docker_events *ev = NULL;
    char num[32];
    int r = -ENOMEM;

    if (!d || !on_event || !on_end)
        return -EINVAL;
    ev = calloc(1, sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    ev->path = strdup("/events");
    if (!ev->path)
        goto fail;
    if (since > 0) {
        snprintf(num, sizeof(num), "%" PRId64, since);
        if (docker_query_add(&ev->path, "since", num) < 0)
            goto fail;
    }
    if (lines_init(&ev->lines, DOCKER_EVENTS_MAX_LINE) < 0)
        goto fail;
    ev->d = d;
    ev->on_event = on_event;
    ev->on_end = on_end;
    ev->userdata = userdata;
    ev->filters = json_incref(filters);
    probe_start(d); /* when the engine is not known: the stream waits for it */
    if (d->probe != PROBE_RUNNING) {
        r = events_launch(ev);
        if (r < 0)
            goto fail;
    }
    DLIST_PUSH(d->events, ev);
    if (ret)
        *ret = ev;
    return 0;
fail:
    ev->d = NULL;
    events_free(ev);
    return r;
}

void docker_events_stop(docker_events *ev)
{
    if (!ev || ev->stopped || ev->ending)
        return;
    ev->stopped = true;
    events_unlink(ev);
    http_req_cancel(ev->req);
    if (!ev->in_event)
        events_free(ev); /* else events_chunk frees it when on_event returns */
}

/* ---- the client ---- */

static int tls_file(const char *dir, const char *name, char **ret, struct ct_error *err)
{
    char *p = text_printf("%s/%s", dir, name);

    if (!p)
        return ct_error_set(err, -ENOMEM, "out of memory");
    /* A short, bounded check at start, so a missing certificate is reported clearly. */
    if (access(p, R_OK) < 0) {
        int e = errno;
        ct_error_set(err, -e, "DOCKER_CERT_PATH: cannot read %s: %s", p, strerror(e));
        free(p);
        return -e;
    }
    *ret = p;
    return 0;
}

int docker_new(uv_loop_t *loop, const struct docker_config *cfg, docker **ret, struct ct_error *err)
{
    struct ct_error scratch;
    docker *d;
    char *home_docker = NULL;
    const char *cert_dir;

    if (!err)
        err = &scratch;
    if (!ret)
        return ct_error_set(err, -EINVAL, "docker_new: nowhere to put the client");
    *ret = NULL;
    if (!loop || !cfg)
        return ct_error_set(err, -EINVAL, "docker_new: no loop or configuration");
    metrics_register(&m_requests);
    metrics_register(&m_latency);
    d = calloc(1, sizeof(*d));
    if (!d)
        return ct_error_set(err, -ENOMEM, "out of memory");
    d->loop = loop;
    d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DOCKER_DEFAULT_TIMEOUT_MS;
    d->max_response =
        cfg->max_response_bytes ? cfg->max_response_bytes : DOCKER_DEFAULT_MAX_RESPONSE;
    d->max_calls = cfg->max_calls ? cfg->max_calls : DOCKER_DEFAULT_MAX_CALLS;
    snprintf(d->api_version, sizeof(d->api_version), "%s", DOCKER_API_VERSION);
    d->host = strdup(cfg->host && *cfg->host ? cfg->host : DOCKER_DEFAULT_HOST);
    if (!d->host) {
        ct_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if (docker_endpoint_parse(d->host, cfg->tls_verify, &d->ep, err) < 0)
        goto fail;
    if (cfg->tls_verify && !d->ep.unix_socket) {
        cert_dir = cfg->cert_path;
        if (!cert_dir || !*cert_dir) {
            const char *home = getenv("HOME");
            if (!home || !*home) {
                ct_error_set(err, -EINVAL,
                             "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME is");
                goto fail;
            }
            home_docker = text_printf("%s/.docker", home);
            if (!home_docker) {
                ct_error_set(err, -ENOMEM, "out of memory");
                goto fail;
            }
            cert_dir = home_docker;
        }
        if (tls_file(cert_dir, "ca.pem", &d->ca_file, err) < 0 ||
            tls_file(cert_dir, "cert.pem", &d->cert_file, err) < 0 ||
            tls_file(cert_dir, "key.pem", &d->key_file, err) < 0)
            goto fail;
    }
    d->local_timer = malloc(sizeof(*d->local_timer));
    if (!d->local_timer) {
        ct_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    uv_timer_init(loop, d->local_timer);
    d->local_timer->data = d;
    d->http = http_new(loop);
    if (!d->http) {
        ct_error_set(err, -ENOMEM, "cannot set up the HTTP client");
        goto fail;
    }
    free(home_docker);
    *ret = d;
    return 0;
fail:
    free(home_docker);
    docker_free(d);
    return err->code < 0 ? err->code : -EINVAL;
}

static void local_timer_closed(uv_handle_t *h)
{
    free(h);
}

unsigned docker_cancel(docker *d, const void *userdata)
{
    unsigned n = 0;
    if (!d)
        return 0;
    for (struct docker_call *c = d->calls, *next; c; c = next) {
        next = c->next;
        if (c->userdata != userdata)
            continue;
        call_unlink(c);
        http_req_cancel(c->req);
        d->in_flight--;
        call_free(c);
        n++;
    }
    struct docker_call **pp = &d->queue_head;
    d->queue_tail = NULL;
    while (*pp) {
        struct docker_call *c = *pp;
        if (c->userdata == userdata) {
            *pp = c->queue_next;
            call_free(c);
            n++;
            continue;
        }
        d->queue_tail = c;
        pp = &c->queue_next;
    }
    for (struct docker_call **lp = &d->local_head; *lp;) {
        struct docker_call *c = *lp;
        if (c->userdata == userdata) {
            *lp = c->queue_next;
            call_free(c);
            n++;
            continue;
        }
        lp = &c->queue_next;
    }
    if (n)
        pump(d, false); /* the room they leave; no callback from here */
    return n;
}

void docker_free(docker *d)
{
    if (!d)
        return;
    while (d->events)
        docker_events_stop(d->events);
    while (d->calls) {
        struct docker_call *c = d->calls;
        call_unlink(c);
        http_req_cancel(c->req);
        call_free(c);
    }
    while (d->queue_head) {
        struct docker_call *c = d->queue_head;
        d->queue_head = c->queue_next;
        call_free(c);
    }
    d->queue_tail = NULL;
    while (d->local_head) {
        struct docker_call *c = d->local_head;
        d->local_head = c->queue_next;
        call_free(c);
    }
    if (d->local_timer)
        uv_close((uv_handle_t *)d->local_timer, local_timer_closed);
    http_req_cancel(d->probe_req);
    http_free(d->http);
    docker_endpoint_clear(&d->ep);
    free(d->host);
    free(d->ca_file);
    free(d->cert_file);
    free(d->key_file);
    free(d);
}
