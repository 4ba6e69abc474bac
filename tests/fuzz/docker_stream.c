/* Fuzz target: the JSON-line readers of common/docker.c over common/lines (the events stream and
 * the JSON progress stream of an image pull) and the reading of an answer's error body.
 *
 * These are static in docker.c, so this file includes docker.c itself, with two changes made
 * from outside: http_req_status() answers the status the input chose (there is no request),
 * and the line bound DOCKER_EVENTS_MAX_LINE is FUZZ_MAX_LINE, small enough for the fuzzer's
 * inputs to cross it. docker.c is compiled unchanged otherwise; the target links the rest of
 * common/ (the archive's own docker.o is then never pulled in).
 *
 * Input: byte 0 picks the reader (bits 0-1), the HTTP status (bits 2-3) and after how many
 * events the consumer stops the stream (bits 4-7, 0: never); byte 1 seeds how the rest is cut
 * into chunks (0: one chunk). Invariants, against a reference reading of the whole input:
 * - events: the events delivered are the JSON objects of the complete lines, in order, blank
 *   lines skipped, however the chunks are cut; the stream ends with -EFBIG at the first line
 *   over the bound, -EIO at the first line that is not JSON, or when the consumer stops it;
 * - pull stream: the result is the first {"error"} object, else the last object, else none;
 *   the stream fails with too_long exactly at the first line over the bound;
 * - an error status: the body kept is the first FUZZ_MAX_LINE bytes; the message is Docker's
 *   {"message"} or "HTTP <status>[: <start of the body>]";
 * - every message can be the detail of an error result for the caller: that serializes;
 * - nothing leaks (ASan). */
#include <errno.h>

#include "http.h"
#include "docker.h"

#define FUZZ_MAX_LINE 300
#undef DOCKER_EVENTS_MAX_LINE
#define DOCKER_EVENTS_MAX_LINE FUZZ_MAX_LINE

static long fuzz_status;
#define http_req_status(req) ((void)(req), fuzz_status)

#include "docker.c" /* common/, on the include path */

#undef http_req_status

#include "fuzz.h"
#include "msg.h"

static const long statuses[] = {200, 404, 500, 304};

/* ---- the chunks ---- */

struct chunker {
    const char *p;
    size_t left;
    uint32_t x;
};

static bool next_chunk(struct chunker *c, const char **p, size_t *n)
{
    if (c->left == 0)
        return false;
    size_t take = c->left;
    if (c->x) {
        c->x ^= c->x << 13, c->x ^= c->x >> 17, c->x ^= c->x << 5;
        take = 1 + c->x % (c->x & 0x100 ? 7 : 97);
        if (take > c->left)
            take = c->left;
    }
    *p = c->p;
    *n = take;
    c->p += take;
    c->left -= take;
    return true;
}

/* ---- what every message must survive ---- */

static void check_message(const char *m)
{
    FUZZ_CHECK(m);
    struct msg_error e;
    msg_error_set(&e, "container start failed", "%s", m);
    FUZZ_CHECK(fuzz_str_utf8_valid(e.detail));
    char text[sizeof(e.reason) + sizeof(e.detail) + 8];
    msg_error_text(&e, text, sizeof(text));
    char *s = msg_finished_error_serialize(NULL, NULL, "http://receiver.example/", text);
    FUZZ_CHECK(s);
    free(s);
}

/* An error-status answer: body, json, message as error_message makes them. */
static void check_error_answer(long status, const char *body, size_t body_len, const char *all,
                               size_t all_len, json_t *json, const char *message)
{
    size_t keep = all_len < FUZZ_MAX_LINE ? all_len : FUZZ_MAX_LINE;
    FUZZ_CHECK(body_len == keep && memcmp(body, all, keep) == 0);
    json_t *want = parse_json(all, keep);
    FUZZ_CHECK((want == NULL) == (json == NULL));
    FUZZ_CHECK(!want || json_equal(want, json));
    json_decref(want);
    if (status < 400) {
        FUZZ_CHECK(strcmp(message, "") == 0);
        return;
    }
    const char *m = json_string_value(json_object_get(json, "message"));
    if (m) {
        FUZZ_CHECK(strcmp(message, m) == 0);
    } else {
        char head[32];
        snprintf(head, sizeof(head), "HTTP %ld", status);
        FUZZ_CHECK(strncmp(message, head, strlen(head)) == 0);
        FUZZ_CHECK(strlen(message) <= strlen(head) + 2 + DOCKER_MAX_ERROR_TEXT);
    }
    check_message(message);
}

/* ---- events ---- */

struct events_ctx {
    json_t *got;   /* events delivered */
    unsigned stop; /* stop after this many, 0: never */
    bool ended;    /* on_end ran */
    int end_err;   /* its res.err */
    docker_events *ev;
    long status;
    const char *all;
    size_t all_len;
};

static void on_event(json_t *event, void *ud)
{
    struct events_ctx *x = ud;
    FUZZ_CHECK(json_is_object(event) || json_is_array(event));
    json_array_append(x->got, event);
    if (x->stop && json_array_size(x->got) == x->stop)
        docker_events_stop(x->ev);
}

static void on_end(const struct docker_result *res, void *ud)
{
    struct events_ctx *x = ud;
    FUZZ_CHECK(!x->ended);
    x->ended = true;
    x->end_err = res->err;
    FUZZ_CHECK(res->message && res->body);
    if (res->err == 0) {
        FUZZ_CHECK(res->status == x->status);
        if (x->status >= 300)
            check_error_answer(x->status, res->body, res->body_len, x->all, x->all_len, res->json,
                               res->message);
        else
            FUZZ_CHECK(!res->json && strcmp(res->message, "") == 0);
    } else {
        check_message(res->message);
    }
}

/* The reference: the events of the whole input, and how the stream ends (0: it does not). */
static int events_reference(const char *p, size_t len, json_t *want)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(p + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (p + pos)) : len - pos;
        if (n > FUZZ_MAX_LINE)
            return -EFBIG;
        if (!nl)
            return 0;
        size_t i = 0;
        while (i < n && isspace((unsigned char)p[pos + i]))
            i++;
        if (i < n) {
            json_t *e = json_loadb(p + pos + i, n - i, 0, NULL);
            if (!e)
                return -EIO;
            json_array_append_new(want, e);
        }
        pos += n + 1;
    }
    return 0;
}

static void run_events(const char *p, size_t len, long status, unsigned stop, uint32_t seed)
{
    struct events_ctx x = {
        .got = json_array(), .stop = stop, .status = status, .all = p, .all_len = len};
    docker_events *ev = calloc(1, sizeof(*ev));
    FUZZ_CHECK(x.got && ev && lines_init(&ev->lines, FUZZ_MAX_LINE) == 0);
    ev->on_event = on_event;
    ev->on_end = on_end;
    ev->userdata = &x;
    x.ev = ev;
    fuzz_status = status;

    struct chunker c = {p, len, seed};
    const char *chunk;
    size_t n;
    int r = 0;
    while (r == 0 && next_chunk(&c, &chunk, &n))
        r = events_chunk(NULL, chunk, n, ev);
    bool stopped = stop && json_array_size(x.got) == stop;
    if (stopped) {
        FUZZ_CHECK(r == 1); /* and ev is freed */
    } else {
        struct http_result hr = {.err = r ? -ECANCELED : 0, .status = r ? 0 : status};
        events_done(NULL, &hr, ev);
        FUZZ_CHECK(x.ended);
    }

    json_t *want = json_array();
    int end = status < 300 ? events_reference(p, len, want) : 0;
    if (stopped) {
        FUZZ_CHECK(json_array_size(want) >= stop);
    } else {
        FUZZ_CHECK(x.end_err == end);
        FUZZ_CHECK(json_array_size(want) == json_array_size(x.got));
    }
    for (size_t i = 0; i < json_array_size(x.got); i++)
        FUZZ_CHECK(json_equal(json_array_get(x.got, i), json_array_get(want, i)));
    json_decref(want);
    json_decref(x.got);
}

/* ---- the pull's progress stream ---- */

static void run_json_stream(const char *p, size_t len, long status, uint32_t seed)
{
    struct docker_call *call = calloc(1, sizeof(*call));
    FUZZ_CHECK(call && (call->js = calloc(1, sizeof(*call->js))) &&
               lines_init(&call->js->lines, FUZZ_MAX_LINE) == 0);
    fuzz_status = status;
    struct chunker c = {p, len, seed};
    const char *chunk;
    size_t n;
    int r = 0;
    while (r == 0 && next_chunk(&c, &chunk, &n))
        r = json_stream_chunk(NULL, chunk, n, call);

    /* The reference. */
    bool too_long = false;
    json_t *last = NULL, *error = NULL;
    for (size_t pos = 0; status < 300 && pos < len && !too_long;) {
        const char *nl = memchr(p + pos, '\n', len - pos);
        size_t k = nl ? (size_t)(nl - (p + pos)) : len - pos;
        if (k > FUZZ_MAX_LINE) {
            too_long = true;
            break;
        }
        json_t *o = json_loadb(p + pos, k, 0, NULL);
        if (json_is_object(o)) {
            if (!error && json_object_get(o, "error"))
                error = json_incref(o);
            json_decref(last);
            last = o;
        } else {
            json_decref(o);
        }
        pos += k + 1;
    }
    FUZZ_CHECK(call->js->too_long == too_long);
    FUZZ_CHECK((r != 0) == too_long);
    if (!too_long) {
        struct http_result hr = {.status = status};
        struct docker_result res = {0};
        char msg[DOCKER_MAX_ERROR_TEXT + 256];
        json_stream_result(call->js, &hr, &res, msg, sizeof(msg));
        FUZZ_CHECK(res.message && res.body);
        if (status >= 300) {
            check_error_answer(status, res.body, res.body_len, p, len, res.json, res.message);
        } else if (error) {
            FUZZ_CHECK(json_equal(res.json, error) && *res.message);
            check_message(res.message);
        } else {
            FUZZ_CHECK(last ? json_equal(res.json, last) : !res.json);
            FUZZ_CHECK(strcmp(res.message, "") == 0);
        }
        json_decref(res.json);
    }
    json_decref(last);
    json_decref(error);
    call_free(call);
}

/* ---- a plain answer (inspect, create, start...) ---- */

static void run_plain(const char *p, size_t len, long status)
{
    char msg[DOCKER_MAX_ERROR_TEXT + 256];
    json_t *json = parse_json(p, len);
    const char *m = error_message(status, json, p, len, msg, sizeof(msg));
    FUZZ_CHECK(m);
    if (status >= 400)
        check_message(m);
    else
        FUZZ_CHECK(strcmp(m, "") == 0);
    json_decref(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size < 2)
        return 0;
    unsigned what = data[0] & 3, stop = data[0] >> 4;
    long status = statuses[(data[0] >> 2) & 3];
    uint32_t seed = data[1] ? data[1] * 2654435761u : 0;
    char *p = fuzz_strndup(data + 2, size - 2); /* http.c's bodies are NUL-terminated */
    size_t len = size - 2;
    switch (what) {
    case 0:
    case 3:
        run_events(p, len, status, stop, seed);
        break;
    case 1:
        run_json_stream(p, len, status, seed);
        break;
    case 2:
        run_plain(p, len, 500 + status - 200);
        run_plain(p, len, status);
        break;
    }
    free(p);
    return 0;
}
