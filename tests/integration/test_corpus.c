/* The bad-input corpus: the whole pipeline (starter, completer, notifier, the real broker and
 * engine, a real HTTP receiver) fed with odd input at every hop, from a table.
 *
 * Each case is one message published to pending_corrections, running_corrections or
 * finished_corrections (container output cases are pending jobs of the ct-shell image, whose
 * submission is a shell script printing what the case needs). The classes of issue 10: cut and
 * invalid UTF-8, escaped surrogates, NUL and control bytes in every text field; every size limit
 * of every hop at limit-1, limit and limit+1; deeply nested JSON; numbers that grow when
 * re-serialized; binary stdout and stderr; huge single lines; thousands of BEGIN lines; callback
 * receivers that answer huge, slow or malformed replies.
 *
 * Every case asserts
 *   - where the job ends: one delivered callback (success, or an error whose reason starts with
 *     a given prefix), or one message parked in a named queue with its reason in a header;
 *   - that it ends within its bound, and in one place only (one 2xx callback, or one parked
 *     message, never both);
 *   - that every text it produced is valid UTF-8 (the callback body, the parking reason);
 * and the run asserts that nothing is left behind: no message in the pipeline's queues, no
 * correction container, no callback or parked message that belongs to no case, and daemon
 * logs that are valid UTF-8 throughout.
 *
 * The cases run concurrently: all are published, then the test waits until every one has
 * ended. The limits are set small (every daemon takes messages of 96 KiB, as the README asks
 * the same value for all) so that the cases at each limit stay cheap. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "msg.h"
#include "support.h"

#ifndef MSG_MAX_WORK_ID_BYTES
/* until common/msg.h bounds work_id (issue 10, item 2): the bound the cases expect */
#define MSG_MAX_WORK_ID_BYTES 1024
#endif

#define LABEL "correctomatic.job_id"

/* The limits the daemons run with in this test. */
#define MAX_MESSAGE 98304 /* MAX_MESSAGE_BYTES of every daemon (params of 64 KiB fit) */
#define MAX_OUTPUT 131072
#define MAX_EXERCISE 40000
#define MAX_RESPONSE 65536
#define JSON_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */
#define UUID_LEN 36
#define JOB_ID_MAX 128 /* the longest job_id a running or finished message may carry */

/* A case ends within its bound, from its publication. The cases that run a container queue
 * for MAX_RUNNING behind each other: about 50 of them, at the 0.5 container/s a 2-core engine
 * manages when the machine is saturated. */
#define BOUND_MS 45000
#define CONTAINER_BOUND_MS 180000
#define RUN_DEADLINE_MS 200000 /* the whole table, from the first publish */
#define STALL_MS 60000         /* no case ended for this long: the rest are stuck */
#define LOG_SIZE "1m"          /* CORRECTION_LOG_SIZE */
#define QUIET_DEADLINE_MS 20000

#define SECRET "whsec_Y29ycHVzLXRlc3Qtc2VjcmV0LWtleS0xMjM0NTY="

/* ------------------------------------------------------------------ bytes */

struct sb {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sb *b, const void *d, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            fail_msg("out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_adds(struct sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_addf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    if (!s)
        fail_msg("out of memory");
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, s, (size_t)n);
    free(s);
}

static void sb_rep(struct sb *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        sb_adds(b, s);
}

/* Strings built for the table, freed at the end of the test. */
static char *scratch_list[4096];
static size_t n_scratch;

static char *keep(char *p)
{
    if (n_scratch == sizeof(scratch_list) / sizeof(scratch_list[0]))
        fail_msg("too many scratch strings");
    scratch_list[n_scratch++] = p;
    return p;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        fail_msg("out of memory");
    va_end(ap);
    return keep(s);
}

static char *rep(const char *s, size_t times)
{
    struct sb b = {0};
    sb_adds(&b, "");
    sb_rep(&b, s, times);
    return keep(b.p);
}

static bool utf8_valid(const void *data, size_t len)
{
    const unsigned char *s = data;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* Deterministic bytes (every value 0..255 appears). */
static void pseudo_random(struct sb *b, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        unsigned char c = (unsigned char)(x >> 24);
        sb_add(b, &c, 1);
    }
}

/* ------------------------------------------------------------------ the table */

enum hop { HOP_PENDING, HOP_RUNNING, HOP_FINISHED };
static const char *const hop_queue[] = {"pending_corrections", "running_corrections",
                                        "finished_corrections"};

#define Q_PENDING_INVALID "pending_corrections.invalid"
#define Q_RUNNING_INVALID "running_corrections.invalid"
#define Q_FINISHED_INVALID "finished_corrections.invalid"
#define Q_FAILED "failed_callbacks"
#define Q_RETRY "finished_corrections.retry.1000ms"
static const char *const parking[] = {Q_PENDING_INVALID, Q_RUNNING_INVALID, Q_FINISHED_INVALID,
                                      Q_FAILED};
#define N_PARKING (sizeof(parking) / sizeof(parking[0]))

/* Expectations, alternatives separated by "||":
 *   "ok"              a delivered callback with success true
 *   "err:A|B"         a delivered callback with success false and an error starting with A or B
 *   "any"             a delivered callback of any kind (the caller hears of the job)
 *   "park:QUEUE:P"    parked in QUEUE with a reason header starting with P ("" any reason) */
#define OK "ok"
#define ERR(p) "err:" p
#define ANY "any"
#define PARK_PENDING(p) "park:" Q_PENDING_INVALID ":" p
#define PARK_RUNNING(p) "park:" Q_RUNNING_INVALID ":" p
#define PARK_FINISHED(p) "park:" Q_FINISHED_INVALID ":" p
#define PARK_FAILED(p) "park:" Q_FAILED ":" p
#define BAD_JSON_PENDING PARK_PENDING("invalid message")
#define BAD_JSON_RUNNING PARK_RUNNING("invalid message")
#define BAD_JSON_FINISHED PARK_FINISHED("invalid message")
/* A job of an image that does not exist reaches Docker and ends "image not found": it passed
 * every check before, without the cost of a container. Most acceptance cases use it; those
 * whose field goes into the container (params, the submission, labels) run a real one. */
#define PROBE "\"ct-no-such-image:latest\""
#define ACCEPTED ERR("image not found")
#define IMAGE_FAULT ERR("image not found|container create failed|invalid message|image not allowed")

struct parked {
    const char *queue;
    struct ct_msg *m;
    int64_t at_ms; /* realtime */
};

struct ccase {
    char tag[16]; /* "cc0042": in the body, and in the callback's query "c=cc0042" */
    char name[96];
    enum hop hop;
    char *body;
    size_t len;
    const char *expect;
    json_t *want_work_id;  /* checked in a delivered callback (NULL: not checked) */
    const char *want_text; /* the delivered body contains it */
    bool container;        /* a correction container runs (published last: they are slow) */
    int bound_ms;
    /* the receiver answers close enough to CALLBACK_TIMEOUT that, on a loaded machine, an
     * attempt may time out after the receiver took it: a repeat is then at least once at
     * work, and allowed if it is the same delivery (webhook-id and body) */
    bool repeat_ok;
    int64_t published_ms; /* realtime */
    /* what happened */
    json_t *oks;    /* array of 2xx requests */
    int attempts;   /* requests answered otherwise */
    json_t *parks;  /* array of indexes into the parked list */
    int64_t end_ms; /* first end, realtime */
};

#define MAX_CASES 400
static struct ccase cases[MAX_CASES];
static size_t n_cases;
static struct ct_receiver rcv;
static char *good_file; /* a valid submission */

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct ccase *add(enum hop hop, const char *expect, const char *name, ...)
    __attribute__((format(printf, 3, 4)));
static struct ccase *add(enum hop hop, const char *expect, const char *name, ...)
{
    if (n_cases == MAX_CASES)
        fail_msg("more than %d cases", MAX_CASES);
    struct ccase *c = &cases[n_cases];
    memset(c, 0, sizeof(*c));
    snprintf(c->tag, sizeof(c->tag), "cc%04zu", n_cases);
    va_list ap;
    va_start(ap, name);
    vsnprintf(c->name, sizeof(c->name), name, ap);
    va_end(ap);
    c->hop = hop;
    c->expect = expect;
    c->bound_ms = BOUND_MS;
    c->oks = json_array();
    c->parks = json_array();
    n_cases++;
    return c;
}

static void set_body(struct ccase *c, struct sb *b)
{
    c->body = b->p;
    c->len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
}

/* The callback URL of a case: "http://127.0.0.1:<port><path>?c=<tag><tail>". */
static char *cb_url(const struct ccase *c, const char *path, const char *tail)
{
    return fmt("http://127.0.0.1:%d%s?c=%s%s", rcv.port, path, c->tag, tail ? tail : "");
}

static char *quoted(const char *s)
{
    return fmt("\"%s\"", s);
}

/* Fields of a message as raw JSON fragments: NULL for the default, OMIT to leave it out. */
static const char OMIT[] = "";
#define FIELD(b, key, v)                                                                           \
    do {                                                                                           \
        if ((v) != OMIT)                                                                           \
            sb_addf(b, "%s\"%s\":%s", (b)->len > 1 ? "," : "", key, v);                            \
    } while (0)

struct pfields {
    const char *work_id, *image, *file, *callback, *params, *extra;
};

static void pending(struct ccase *c, struct pfields f)
{
    struct sb b = {0};
    sb_adds(&b, "{");
    FIELD(&b, "work_id", f.work_id ? f.work_id : quoted(c->tag));
    FIELD(&b, "image", f.image ? f.image : "\"ct-ok:latest\"");
    FIELD(&b, "file", f.file ? f.file : quoted(good_file));
    FIELD(&b, "callback", f.callback ? f.callback : quoted(cb_url(c, "/ok", NULL)));
    if (f.params)
        FIELD(&b, "params", f.params);
    if (f.extra)
        sb_addf(&b, ",%s", f.extra);
    sb_adds(&b, "}");
    set_body(c, &b);
}

static char *fake_container(const struct ccase *c)
{
    return fmt("c0ffee00%052d%s", 0, c->tag + 2);
}

static char *case_uuid(const struct ccase *c)
{
    return fmt("00000000-0000-4000-8000-00000000%s", c->tag + 2);
}

struct rfields {
    const char *work_id, *container_id, *callback, *job_id, *extra;
};

static void running(struct ccase *c, struct rfields f)
{
    struct sb b = {0};
    sb_adds(&b, "{");
    FIELD(&b, "work_id", f.work_id ? f.work_id : quoted(c->tag));
    FIELD(&b, "container_id", f.container_id ? f.container_id : quoted(fake_container(c)));
    FIELD(&b, "callback", f.callback ? f.callback : quoted(cb_url(c, "/ok", NULL)));
    FIELD(&b, "job_id", f.job_id ? f.job_id : quoted(case_uuid(c)));
    if (f.extra)
        sb_addf(&b, ",%s", f.extra);
    sb_adds(&b, "}");
    set_body(c, &b);
}

struct ffields {
    const char *work_id, *error, *data, *callback, *job_id, *extra;
};

static void finished(struct ccase *c, struct ffields f)
{
    struct sb b = {0};
    sb_adds(&b, "{");
    FIELD(&b, "callback", f.callback ? f.callback : quoted(cb_url(c, "/ok", NULL)));
    FIELD(&b, "correction_data",
          f.data ? f.data : "{\"comments\":[\"fine\"],\"grade\":1,\"success\":true}");
    FIELD(&b, "error", f.error ? f.error : "false");
    FIELD(&b, "job_id", f.job_id ? f.job_id : quoted(case_uuid(c)));
    if (f.extra)
        sb_addf(&b, ",%s", f.extra);
    FIELD(&b, "work_id", f.work_id ? f.work_id : quoted(c->tag));
    sb_adds(&b, "}");
    set_body(c, &b);
}

/* A pending job of the ct-shell image whose submission is script. */
static void shell_job(struct ccase *c, const void *script, size_t len)
{
    char name[64];
    snprintf(name, sizeof(name), "corpus-%s.sh", c->tag);
    char *path = keep(ct_tmpfile(name, script, len));
    pending(c, (struct pfields){.image = "\"ct-shell:latest\"", .file = quoted(path)});
    c->container = true;
}

static void shell_job_s(struct ccase *c, const char *script)
{
    shell_job(c, script, strlen(script));
}

/* A script that prints exactly out on stdout and err on stderr (any bytes), from its own tail. */
static void shell_job_bytes(struct ccase *c, const void *out, size_t out_len, const void *err,
                            size_t err_len)
{
    enum { H = 160 };
    char head[H + 1];
    int n = snprintf(head, sizeof(head),
                     "tail -c +%d /tmp/exercise | head -c %zu; tail -c +%zu /tmp/exercise >&2; "
                     "exit 0",
                     H + 1, out_len, (size_t)H + 1 + out_len);
    assert_true(n > 0 && n < H - 1);
    memset(head + n, ' ', (size_t)(H - 1 - n));
    head[H - 1] = '\n';
    struct sb b = {0};
    sb_add(&b, head, H);
    sb_add(&b, out, out_len);
    sb_add(&b, err, err_len);
    shell_job(c, b.p, b.len);
    free(b.p);
}

/* ------------------------------------------------------------------ the corpus */

/* Text classes, applied to every text field: the JSON string fragment base + the class. */
enum tclass { T_CUT, T_INVALID, T_SURROGATE, T_NUL, T_RAWCTL, T_ESCCTL, T_ACCENT, T_ASTRAL, T_N };
static const char *const tclass_name[] = {"cut UTF-8",      "invalid UTF-8", "lone surrogate",
                                          "escaped NUL",    "raw control",   "escaped controls",
                                          "accented (cut)", "astral plane"};

static char *tfrag(enum tclass t, const char *base)
{
    switch (t) {
    case T_CUT:
        return fmt("\"%s\xc3\"", base);
    case T_INVALID:
        return fmt("\"%s\xff\xfex\"", base);
    case T_SURROGATE:
        return fmt("\"%s\\udc80\"", base);
    case T_NUL:
        return fmt("\"%s\\u0000x\"", base);
    case T_RAWCTL:
        return fmt("\"%s\x01\x1bx\"", base);
    case T_ESCCTL:
        return fmt("\"%s\\u0001\\u001b\\u007f\\t\"", base);
    case T_ACCENT: /* odd offset: a byte count cuts an "é" in half */
        return fmt("\"%sa%s\"", base, rep("\xc3\xa9", 60));
    case T_ASTRAL:
        return fmt("\"%s\xf0\x9f\x98\x80\\ud83d\\ude00\"", base);
    case T_N:
        break;
    }
    return NULL;
}

static bool json_invalid_class(enum tclass t)
{
    return t <= T_RAWCTL;
}

static json_t *decoded(const char *frag)
{
    return json_loads(frag, JSON_DECODE_ANY, NULL);
}

static void pending_text_cases(void)
{
    for (enum tclass t = 0; t < T_N; t++) {
        bool bad = json_invalid_class(t);
        const char *cls = tclass_name[t];
        struct ccase *c;

        bool real = t == T_ACCENT; /* into the labels */
        c = add(HOP_PENDING,
                bad    ? BAD_JSON_PENDING
                : real ? OK
                       : ACCEPTED,
                "pending work_id %s", cls);
        const char *w = tfrag(t, c->tag);
        pending(c, (struct pfields){.work_id = w, .image = real ? NULL : PROBE});
        if (!bad)
            c->want_work_id = decoded(w);

        c = add(HOP_PENDING,
                bad             ? BAD_JSON_PENDING
                : t == T_ESCCTL ? ERR("invalid message")
                                : IMAGE_FAULT,
                "pending image %s", cls);
        pending(c, (struct pfields){.image = tfrag(t, fmt("ct-ok:latest%s", c->tag))});

        c = add(HOP_PENDING,
                bad             ? BAD_JSON_PENDING
                : t == T_ESCCTL ? ERR("invalid message")
                                : ERR("file not found"),
                "pending file %s", cls);
        pending(c, (struct pfields){
                       .file = tfrag(t, fmt("%s/nonexistent/%s", ct_env("CT_TMP"), c->tag))});

        c = add(HOP_PENDING, bad || t == T_ESCCTL ? PARK_PENDING("invalid") : ACCEPTED,
                "pending callback %s", cls);
        pending(c, (struct pfields){.image = PROBE, .callback = tfrag(t, cb_url(c, "/ok", "&x="))});

        c = add(HOP_PENDING, bad ? BAD_JSON_PENDING : ERR("invalid param"), "pending param name %s",
                cls);
        { /* the odd text in the name, before the '=' */
            const char *frag = tfrag(t, fmt("P_%s", c->tag));
            size_t n = strlen(frag);
            pending(c, (struct pfields){.params = fmt("[%.*s=1\"]", (int)(n - 1), frag)});
        }

        c = add(HOP_PENDING, bad ? BAD_JSON_PENDING : ACCEPTED, "pending param value %s", cls);
        pending(c, (struct pfields){.image = PROBE,
                                    .params = fmt("[%s]", tfrag(t, fmt("V=%s", c->tag)))});
    }
    /* the values that pass, all three in one real container's environment */
    struct ccase *c = add(HOP_PENDING, OK, "pending param values with controls, accents, astral");
    pending(c, (struct pfields){.params = fmt("[%s,%s,%s]", tfrag(T_ESCCTL, "V1="),
                                              tfrag(T_ACCENT, "V2="), tfrag(T_ASTRAL, "V3="))});
}

/* A pending job of exactly size bytes (padded by an unknown property). */
static void pending_sized(struct ccase *c, size_t size, const char *image)
{
    pending(c, (struct pfields){.image = image, .extra = "\"pad\":\"\""});
    size_t base = c->len;
    assert_true(size >= base);
    free(c->body);
    pending(
        c, (struct pfields){.image = image, .extra = fmt("\"pad\":\"%s\"", rep("p", size - base))});
    assert_int_equal(c->len, size);
}

static void pending_limit_cases(void)
{
    struct ccase *c;
    for (int d = -1; d <= 1; d++) {
        /* at the limit itself a real container, below it the probe */
        const char *image = d == 0 ? NULL : PROBE;
        const char *accepted = d == 0 ? OK : ACCEPTED;
        size_t lim = MAX_MESSAGE + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? accepted : PARK_PENDING(""), "pending message of %zu bytes",
                lim);
        pending_sized(c, lim, image);

        lim = MSG_MAX_WORK_ID_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? accepted : ERR("invalid message"),
                "pending work_id of %zu bytes", lim);
        const char *w = fmt("\"%s%s\"", c->tag, rep("w", lim - strlen(c->tag)));
        pending(c, (struct pfields){.work_id = w, .image = image});
        if (d <= 0)
            c->want_work_id = decoded(w);

        lim = MSG_MAX_IMAGE_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? IMAGE_FAULT : ERR("invalid message"),
                "pending image of %zu bytes", lim);
        pending(c, (struct pfields){
                       .image = fmt("\"ct-ok:%s%s\"", c->tag, rep("i", lim - 6 - strlen(c->tag)))});

        lim = 4096 + (size_t)(ssize_t)d;
        c = add(HOP_PENDING,
                d <= 0 ? ERR("file not found|file unreadable") : ERR("invalid message"),
                "pending file of %zu bytes", lim);
        {
            struct sb p = {0};
            sb_addf(&p, "%s/nonexistent/%s", ct_env("CT_TMP"), c->tag);
            while (p.len + 200 < lim)
                sb_addf(&p, "/%s", rep("f", 199));
            sb_rep(&p, "g", lim - p.len);
            pending(c, (struct pfields){.file = quoted(keep(p.p))});
        }

        lim = MSG_MAX_URL_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? ACCEPTED : PARK_PENDING("invalid"),
                "pending callback of %zu bytes", lim);
        {
            const char *u = cb_url(c, "/ok", "&p=");
            pending(c, (struct pfields){.image = PROBE,
                                        .callback = fmt("\"%s%s\"", u, rep("u", lim - strlen(u)))});
        }

        lim = MSG_MAX_PARAMS + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? accepted : ERR("invalid param"), "pending %zu params", lim);
        {
            struct sb p = {0};
            sb_adds(&p, "[");
            for (size_t i = 0; i < lim; i++)
                sb_addf(&p, "%s\"P%zu=%zu\"", i ? "," : "", i, i);
            sb_adds(&p, "]");
            pending(c, (struct pfields){.params = keep(p.p), .image = image});
        }

        lim = MSG_MAX_PARAM_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? accepted : ERR("invalid param"),
                "pending params of %zu bytes", lim);
        pending(c,
                (struct pfields){.params = fmt("[\"A=%s\"]", rep("v", lim - 2)), .image = image});

        lim = MAX_EXERCISE + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? accepted : ERR("file too large"),
                "pending submission of %zu bytes", lim);
        {
            char name[64];
            snprintf(name, sizeof(name), "corpus-%s.txt", c->tag);
            char *data = rep("e", lim);
            pending(c, (struct pfields){.file = quoted(keep(ct_tmpfile(name, data, lim))),
                                        .image = image});
        }

        /* nesting in an unknown property: the root object is depth 1 */
        size_t depth = JSON_DEPTH + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? ACCEPTED : BAD_JSON_PENDING, "pending nested %zu deep",
                depth);
        pending(c, (struct pfields){
                       .image = PROBE,
                       .extra = fmt("\"deep\":%s%s", rep("[", depth - 1), rep("]", depth - 1))});
    }
}

static void pending_shape_cases(void)
{
    struct ccase *c;
    struct sb b = {0};

    c = add(HOP_PENDING, OK, "pending baseline");
    pending(c, (struct pfields){0});

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending empty body");
    c->body = strdup("");
    c->len = 0;

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending JSON array");
    c->body = strdup(fmt("[\"%s\"]", c->tag));
    c->len = strlen(c->body);

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending JSON string");
    c->body = strdup(fmt("\"%s\"", c->tag));
    c->len = strlen(c->body);

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending binary body");
    sb_adds(&b, c->tag);
    pseudo_random(&b, 3000, 7);
    set_body(c, &b);

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending NUL after the object");
    pending(c, (struct pfields){0});
    c->body = realloc(c->body, c->len + 3);
    memcpy(c->body + c->len, "\0 x", 3);
    c->len += 3;

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending UTF-8 BOM first");
    pending(c, (struct pfields){0});
    sb_add(&b, "\xef\xbb\xbf", 3);
    sb_add(&b, c->body, c->len);
    free(c->body);
    set_body(c, &b);

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending duplicate key");
    pending(c, (struct pfields){.extra = "\"image\":\"ct-ok:latest\""});

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending garbage after the object");
    pending(c, (struct pfields){0});
    c->body = realloc(c->body, c->len + 4);
    memcpy(c->body + c->len, " {}", 4);
    c->len += 3;

    c = add(HOP_PENDING, ACCEPTED, "pending work_id 1e300");
    pending(c, (struct pfields){
                   .image = PROBE, .work_id = "1e300", .extra = fmt("\"tag\":\"%s\"", c->tag)});
    c->want_work_id = json_real(1e300);

    c = add(HOP_PENDING, ACCEPTED, "pending work_id 0.1");
    pending(c, (struct pfields){
                   .image = PROBE, .work_id = "0.1", .extra = fmt("\"tag\":\"%s\"", c->tag)});
    c->want_work_id = json_real(0.1);

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending work_id 1e400");
    pending(c, (struct pfields){.work_id = "1e400", .extra = fmt("\"tag\":\"%s\"", c->tag)});

    c = add(HOP_PENDING, BAD_JSON_PENDING, "pending work_id 10^30 integer");
    pending(c, (struct pfields){.work_id = "1000000000000000000000000000000",
                                .extra = fmt("\"tag\":\"%s\"", c->tag)});

    c = add(HOP_PENDING, ERR("invalid message"), "pending work_id object");
    pending(c, (struct pfields){.work_id = fmt("{\"t\":\"%s\"}", c->tag)});

    c = add(HOP_PENDING, ERR("invalid message"), "pending work_id nested 100 deep");
    pending(c,
            (struct pfields){.work_id = fmt("%s\"%s\"%s", rep("[", 100), c->tag, rep("]", 100))});

    c = add(HOP_PENDING, ERR("invalid param"), "pending params nested 100 deep");
    pending(c, (struct pfields){.params = fmt("%s\"%s\"%s", rep("[", 100), c->tag, rep("]", 100))});

    c = add(HOP_PENDING, ERR("invalid message"), "pending no image");
    pending(c, (struct pfields){.image = OMIT});

    c = add(HOP_PENDING, PARK_PENDING("invalid"), "pending no callback");
    pending(c, (struct pfields){.callback = OMIT, .extra = fmt("\"tag\":\"%s\"", c->tag)});

    c = add(HOP_PENDING, PARK_PENDING("invalid callback"), "pending ftp callback");
    pending(c, (struct pfields){.callback = fmt("\"ftp://127.0.0.1/%s\"", c->tag)});

    c = add(HOP_PENDING, ERR("image not found"), "pending missing image");
    pending(c, (struct pfields){.image = "\"ct-no-such-image:latest\""});

    c = add(HOP_PENDING, ACCEPTED, "pending whitespace everywhere");
    pending(c, (struct pfields){.image = PROBE, .extra = "\"sp\" \r\n\t : \t [ 1 , { } ] \n"});

    c = add(HOP_PENDING, OK, "pending accented submission file name");
    {
        char name[64];
        snprintf(name, sizeof(name), "corpus-%s-\xc3\xa9t\xc3\xa9.txt", c->tag);
        pending(c, (struct pfields){.file = quoted(keep(ct_tmpfile(name, "x", 1)))});
    }
}

static void running_cases(void)
{
    struct ccase *c;
    struct sb b = {0};
    for (enum tclass t = 0; t < T_N; t++) {
        bool bad = json_invalid_class(t);
        const char *cls = tclass_name[t];

        c = add(HOP_RUNNING, bad ? BAD_JSON_RUNNING : ERR("container missing"),
                "running work_id %s", cls);
        const char *w = tfrag(t, c->tag);
        running(c, (struct rfields){.work_id = w});
        if (!bad)
            c->want_work_id = decoded(w);

        c = add(HOP_RUNNING, PARK_RUNNING("invalid message"), "running container_id %s", cls);
        running(c, (struct rfields){.container_id = tfrag(t, fake_container(c) + 6)});

        c = add(HOP_RUNNING,
                bad || t == T_ESCCTL ? PARK_RUNNING("invalid message") : ERR("container missing"),
                "running callback %s", cls);
        running(c, (struct rfields){.callback = tfrag(t, cb_url(c, "/ok", "&x="))});

        c = add(HOP_RUNNING,
                bad || t == T_ESCCTL ? PARK_RUNNING("invalid message")
                                     : ERR("container missing") "||" PARK_RUNNING("invalid"),
                "running job_id %s", cls);
        running(c, (struct rfields){.job_id = tfrag(t, c->tag)});
    }

    c = add(HOP_RUNNING, ERR("container missing"), "running baseline (no such container)");
    running(c, (struct rfields){0});

    c = add(HOP_RUNNING, ERR("container missing"), "running legacy key id");
    running(c, (struct rfields){.container_id = OMIT,
                                .extra = fmt("\"id\":\"%s\"", fake_container(c))});

    c = add(HOP_RUNNING, ERR("container missing"), "running without job_id");
    running(c, (struct rfields){.job_id = OMIT});

    c = add(HOP_RUNNING, ERR("container missing"), "running work_id 1e300");
    running(c, (struct rfields){.work_id = "1e300"});
    c->want_work_id = json_real(1e300);

    c = add(HOP_RUNNING, BAD_JSON_RUNNING, "running empty body");
    c->body = strdup("");
    c->len = 0;

    c = add(HOP_RUNNING, BAD_JSON_RUNNING, "running binary body");
    sb_adds(&b, c->tag);
    pseudo_random(&b, 3000, 11);
    set_body(c, &b);

    c = add(HOP_RUNNING, BAD_JSON_RUNNING, "running JSON array");
    c->body = strdup(fmt("[\"%s\"]", c->tag));
    c->len = strlen(c->body);

    c = add(HOP_RUNNING, BAD_JSON_RUNNING, "running work_id nested");
    running(c, (struct rfields){.work_id = fmt("[[\"%s\"]]", c->tag)});

    c = add(HOP_RUNNING, BAD_JSON_RUNNING, "running container_id of 63 hex");
    running(c, (struct rfields){.container_id = quoted(fake_container(c) + 1)});

    for (int d = -1; d <= 1; d++) {
        size_t lim = MAX_MESSAGE + (size_t)(ssize_t)d;
        c = add(HOP_RUNNING, d <= 0 ? ERR("container missing") : PARK_RUNNING(""),
                "running message of %zu bytes", lim);
        running(c, (struct rfields){.extra = "\"pad\":\"\""});
        size_t base = c->len;
        free(c->body);
        running(c, (struct rfields){.extra = fmt("\"pad\":\"%s\"", rep("p", lim - base))});
        assert_int_equal(c->len, lim);

        size_t depth = JSON_DEPTH + (size_t)(ssize_t)d;
        c = add(HOP_RUNNING, d <= 0 ? ERR("container missing") : BAD_JSON_RUNNING,
                "running nested %zu deep", depth);
        running(c, (struct rfields){
                       .extra = fmt("\"deep\":%s%s", rep("[", depth - 1), rep("]", depth - 1))});

        lim = MSG_MAX_WORK_ID_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_RUNNING, d <= 0 ? ERR("container missing") : PARK_RUNNING("invalid message"),
                "running work_id of %zu bytes", lim);
        const char *w = fmt("\"%s%s\"", c->tag, rep("w", lim - strlen(c->tag)));
        running(c, (struct rfields){.work_id = w});
        if (d <= 0)
            c->want_work_id = decoded(w);

        lim = MSG_MAX_URL_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_RUNNING, d <= 0 ? ERR("container missing") : PARK_RUNNING("invalid message"),
                "running callback of %zu bytes", lim);
        const char *u = cb_url(c, "/ok", "&p=");
        running(c, (struct rfields){.callback = fmt("\"%s%s\"", u, rep("u", lim - strlen(u)))});

        lim = JOB_ID_MAX + (size_t)(ssize_t)d;
        c = add(HOP_RUNNING,
                d <= 0 ? ERR("container missing") "||" PARK_RUNNING("invalid")
                       : PARK_RUNNING("invalid message"),
                "running job_id of %zu bytes", lim);
        running(
            c, (struct rfields){.job_id = fmt("\"%s%s\"", c->tag, rep("j", lim - strlen(c->tag)))});
    }
}

static void finished_cases(void)
{
    struct ccase *c;
    struct sb b = {0};
    for (enum tclass t = 0; t < T_N; t++) {
        bool bad = json_invalid_class(t);
        const char *cls = tclass_name[t];

        c = add(HOP_FINISHED, bad ? BAD_JSON_FINISHED : OK, "finished work_id %s", cls);
        const char *w = tfrag(t, c->tag);
        finished(c, (struct ffields){.work_id = w});
        if (!bad)
            c->want_work_id = decoded(w);

        c = add(HOP_FINISHED, bad || t == T_ESCCTL ? PARK_FINISHED("invalid") : OK,
                "finished callback %s", cls);
        finished(c, (struct ffields){.callback = tfrag(t, cb_url(c, "/ok", "&x="))});

        c = add(HOP_FINISHED,
                bad || t == T_ESCCTL ? PARK_FINISHED("invalid message")
                                     : OK "||" PARK_FINISHED("invalid message"),
                "finished job_id %s", cls);
        finished(c, (struct ffields){.job_id = tfrag(t, c->tag)});

        c = add(HOP_FINISHED, bad ? BAD_JSON_FINISHED : OK, "finished comment %s", cls);
        finished(c, (struct ffields){.data = fmt("{\"comments\":[%s],\"grade\":1,\"success\":true}",
                                                 tfrag(t, c->tag))});

        c = add(HOP_FINISHED, bad ? BAD_JSON_FINISHED : ERR("boom - "), "finished error text %s",
                cls);
        finished(c, (struct ffields){.error = "true", .data = tfrag(t, fmt("boom - %s", c->tag))});
    }

    c = add(HOP_FINISHED, OK, "finished baseline");
    finished(c, (struct ffields){0});

    c = add(HOP_FINISHED, BAD_JSON_FINISHED, "finished empty body");
    c->body = strdup("");
    c->len = 0;

    c = add(HOP_FINISHED, BAD_JSON_FINISHED, "finished binary body");
    sb_adds(&b, c->tag);
    pseudo_random(&b, 3000, 13);
    set_body(c, &b);

    c = add(HOP_FINISHED, BAD_JSON_FINISHED, "finished error true with an object");
    finished(c, (struct ffields){.error = "true"});

    c = add(HOP_FINISHED, BAD_JSON_FINISHED, "finished error as a string");
    finished(c, (struct ffields){.error = "\"false\""});

    c = add(HOP_FINISHED, OK, "finished numbers 1e300 and 0.1");
    finished(c, (struct ffields){.data = fmt("{\"grade\":1,\"success\":true,\"x\":[%s1e300,0.1]}",
                                             rep("1e300,0.1,", 100))});
    c->want_text = "[1e+300,0.1,1e+300,";

    for (int d = -1; d <= 1; d++) {
        size_t lim = MAX_MESSAGE + (size_t)(ssize_t)d;
        c = add(HOP_FINISHED, d <= 0 ? OK : PARK_FINISHED(""), "finished message of %zu bytes",
                lim);
        finished(c, (struct ffields){.extra = "\"pad\":\"\""});
        size_t base = c->len;
        free(c->body);
        finished(c, (struct ffields){.extra = fmt("\"pad\":\"%s\"", rep("p", lim - base))});
        assert_int_equal(c->len, lim);

        lim = MSG_MAX_WORK_ID_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_FINISHED, d <= 0 ? OK : PARK_FINISHED("invalid message"),
                "finished work_id of %zu bytes", lim);
        const char *w = fmt("\"%s%s\"", c->tag, rep("w", lim - strlen(c->tag)));
        finished(c, (struct ffields){.work_id = w});
        if (d <= 0)
            c->want_work_id = decoded(w);

        lim = MSG_MAX_URL_BYTES + (size_t)(ssize_t)d;
        c = add(HOP_FINISHED, d <= 0 ? OK : PARK_FINISHED("invalid"),
                "finished callback of %zu bytes", lim);
        const char *u = cb_url(c, "/ok", "&p=");
        finished(c, (struct ffields){.callback = fmt("\"%s%s\"", u, rep("u", lim - strlen(u)))});

        lim = JOB_ID_MAX + (size_t)(ssize_t)d;
        c = add(HOP_FINISHED,
                d <= 0 ? OK "||" PARK_FINISHED("invalid") : PARK_FINISHED("invalid message"),
                "finished job_id of %zu bytes", lim);
        finished(
            c, (struct ffields){.job_id = fmt("\"%s%s\"", c->tag, rep("j", lim - strlen(c->tag)))});

        /* root 1, correction_data 2, then the arrays */
        size_t depth = JSON_DEPTH + (size_t)(ssize_t)d;
        c = add(HOP_FINISHED, d <= 0 ? OK : BAD_JSON_FINISHED, "finished nested %zu deep", depth);
        finished(c, (struct ffields){.data = fmt("{\"grade\":1,\"success\":true,\"x\":%s%s}",
                                                 rep("[", depth - 2), rep("]", depth - 2))});
    }

    /* what the receiver answers */
    c = add(HOP_FINISHED, OK, "callback answered after 500 ms");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/delay/500/200", NULL))});
    c->repeat_ok = true;
    c = add(HOP_FINISHED, PARK_FAILED("gave up after"), "callback never answered");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/slow", NULL))});
    c->bound_ms = 40000;
    c = add(HOP_FINISHED, PARK_FAILED("gave up after"), "callback answered 500");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/status/500", NULL))});
    c = add(HOP_FINISHED, PARK_FAILED("callback gone"), "callback answered 410");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/gone", NULL))});
    c = add(HOP_FINISHED, PARK_FAILED("gave up after"), "callback answered garbage");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/garbage", NULL))});
    c = add(HOP_FINISHED, PARK_FAILED("gave up after"), "callback answered status 999");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/badstatus", NULL))});
    c = add(HOP_FINISHED, OK, "callback answered 200 with a cut body");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/truncated", NULL))});
    for (int d = -1; d <= 1; d++) {
        size_t lim = MAX_RESPONSE + (size_t)(ssize_t)d;
        c = add(HOP_FINISHED, OK, "callback answered 200 with %zu bytes", lim);
        finished(c,
                 (struct ffields){.callback = quoted(cb_url(c, fmt("/big/200/%zu", lim), NULL))});
    }
    c = add(HOP_FINISHED, OK, "callback answered 200 with 4 MiB");
    finished(c, (struct ffields){.callback = quoted(cb_url(c, "/big/200/4194304", NULL))});
}

#define BLOCK_BEGIN "-----BEGIN CORRECTOMATIC RESPONSE-----"
#define BLOCK_END "-----END CORRECTOMATIC RESPONSE-----"
#define RESPONSE "{\"success\":true,\"grade\":1,\"comments\":[\"printed\"]}"

/* The finished message the completer writes for a success response resp (already in its
 * canonical form: sorted keys, compact) has this many bytes. */
static size_t finished_size(const struct ccase *c, size_t resp_len)
{
    return strlen("{\"callback\":\"") + strlen(cb_url(c, "/ok", NULL)) +
           strlen("\",\"correction_data\":") + resp_len + strlen(",\"error\":false,\"job_id\":\"") +
           UUID_LEN + strlen("\",\"work_id\":\"") + strlen(c->tag) + strlen("\"}");
}

static void output_cases(void)
{
    struct ccase *c;
    struct sb o = {0}, e = {0};

    c = add(HOP_PENDING, OK, "output baseline");
    shell_job_s(c, "echo '" RESPONSE "'\n");

    c = add(HOP_PENDING, OK, "output accented and astral comments");
    shell_job_s(c,
                "printf '%s\\n' '{\"success\":true,\"grade\":1,\"comments\":[\"\xc3\xa9t\xc3\xa9 "
                "\xf0\x9f\x98\x80\"]}'\n");
    c->want_text = "\"comments\":[\"\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\"]";

    static const struct {
        const char *name, *frag;
    } bad_strings[] = {
        {"cut UTF-8", "ab\xc3"},        {"invalid UTF-8", "a\xff\xfe"},
        {"lone surrogate", "a\\udc80"}, {"escaped NUL", "a\\u0000b"},
        {"raw control", "a\x01\x1b"},
    };
    for (size_t i = 0; i < sizeof(bad_strings) / sizeof(bad_strings[0]); i++) {
        /* Docker's json-file log already replaces invalid UTF-8 with U+FFFD */
        c = add(HOP_PENDING, i < 2 ? OK "||" ERR("invalid JSON") : ERR("invalid JSON"),
                "output comment %s", bad_strings[i].name);
        sb_addf(&o, "{\"success\":true,\"grade\":1,\"comments\":[\"%s\"]}\n", bad_strings[i].frag);
        shell_job_bytes(c, o.p, o.len, "", 0);
        o.len = 0;
    }

    c = add(HOP_PENDING, OK, "output escaped controls");
    shell_job_s(c, "printf '%s\\n' '{\"success\":true,\"grade\":1,\"comments\":[\"\\u0001\\u001b"
                   "\\u007f\"]}'\n");

    c = add(HOP_PENDING, ERR("no response found"), "output binary stdout");
    sb_adds(&o, "\x01");
    pseudo_random(&o, 16000, 3);
    shell_job_bytes(c, o.p, o.len, "", 0);
    o.len = 0;

    c = add(HOP_PENDING, ERR("invalid JSON"), "output binary stdout starting with {");
    sb_adds(&o, "{\"success\":");
    pseudo_random(&o, 16000, 5);
    shell_job_bytes(c, o.p, o.len, "", 0);
    o.len = 0;

    c = add(HOP_PENDING, OK, "output binary stderr with a response");
    pseudo_random(&e, 16000, 17);
    shell_job_bytes(c, RESPONSE "\n", strlen(RESPONSE) + 1, e.p, e.len);

    c = add(HOP_PENDING, ERR("no response found"), "output binary stderr and nothing else");
    shell_job_bytes(c, "", 0, e.p, e.len);
    e.len = 0;

    c = add(HOP_PENDING, ERR("no response found"), "output accented stderr tail, no response");
    sb_rep(&e, "\xc3\xa9", 1000);
    sb_adds(&e, "a\n");
    shell_job_bytes(c, "not a response\n", 15, e.p, e.len);
    e.len = 0;

    c = add(HOP_PENDING, ERR("invalid JSON"), "output accented invalid token");
    sb_addf(&o, "{\"success\":true,\"grade\":%s}\n", rep("\xc3\xa9", 200));
    shell_job_bytes(c, o.p, o.len, "", 0);
    o.len = 0;

    c = add(HOP_PENDING, ERR("invalid JSON"), "output NUL after the response");
    sb_adds(&o, RESPONSE);
    sb_add(&o, "\0\0\n", 3);
    shell_job_bytes(c, o.p, o.len, "", 0);
    o.len = 0;

    c = add(HOP_PENDING, OK, "output NUL and control bytes around a block");
    static const char noise[] = "noise\0\x01\x02\x1b[31m\xff\n";
    sb_add(&o, noise, sizeof(noise) - 1);
    sb_adds(&o, BLOCK_BEGIN "\n" RESPONSE "\n" BLOCK_END "\n");
    sb_add(&o, "\0\x7f\xc3\n", 4);
    shell_job_bytes(c, o.p, o.len, "", 0);
    o.len = 0;

    c = add(HOP_PENDING, OK, "output CRLF line ends");
    shell_job_s(c, "printf 'noise\\r\\n" BLOCK_BEGIN "\\r\\n%s\\r\\n" BLOCK_END "\\r\\n' '" RESPONSE
                   "'\n");

    c = add(HOP_PENDING, ERR("no response found"), "output empty");
    shell_job_s(c, "exit 0\n");

    c = add(HOP_PENDING, OK, "output exit 3 with a response");
    shell_job_s(c, "echo '" RESPONSE "'; exit 3\n");

    c = add(HOP_PENDING, ERR("container killed"), "output killed by its own SIGKILL");
    /* (the script is pid 1 of the container, which SIGKILL from inside does not reach) */
    shell_job_s(c, "sh -c 'echo partial; kill -9 $$'; exit $?\n");

    c = add(HOP_PENDING, OK, "output work_id printed by the container is ignored");
    shell_job_s(c, "echo '{\"success\":true,\"grade\":1,\"work_id\":\"evil\"}'\n");
    c->want_work_id = json_string(c->tag);

    /* MAX_OUTPUT_BYTES: noise lines, then a block, exactly this many bytes of stdout */
    const char *block = "\n" BLOCK_BEGIN "\n" RESPONSE "\n" BLOCK_END "\n";
    for (int d = -1; d <= 1; d++) {
        size_t lim = MAX_OUTPUT + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? OK : ERR("output too large"),
                "output of %zu bytes (noise and a block)", lim);
        shell_job_s(c, fmt("yes 0123456789012345678901234567890 | head -c %zu\nprintf '%%s' '%s'\n",
                           lim - strlen(block), block));
    }

    /* the finished message the completer publishes, at the notifier's limit */
    for (int d = -1; d <= 1; d++) {
        size_t lim = MAX_MESSAGE + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d <= 0 ? OK : ERR("output too large"),
                "output whose finished message has %zu bytes", lim);
        const char *pre = "{\"comments\":[\"", *post = "\"],\"grade\":1,\"success\":true}";
        size_t fixed = finished_size(c, strlen(pre) + strlen(post));
        assert_true(lim > fixed);
        size_t k = lim - fixed;
        shell_job_s(c, fmt("printf '%%s' '%s'; yes x | head -c %zu | tr -d '\\n'; printf '%%s\\n' "
                           "'%s'\n",
                           pre, 2 * k, post));
    }

    /* numbers that grow when re-serialized */
    c = add(HOP_PENDING, ERR("output too large"), "output 5000 x 1e300 (grows past the limit)");
    shell_job_s(c, "printf '{\"success\":true,\"grade\":1,\"x\":['; yes '1e300,' | head -n 4999 | "
                   "tr -d '\\n'; printf '1e300]}\\n'\n");
    c = add(HOP_PENDING, ERR("output too large"), "output 6000 x 0.1 (grows past the limit)");
    shell_job_s(c, "printf '{\"success\":true,\"grade\":1,\"x\":['; yes '0.1,' | head -n 5999 | "
                   "tr -d '\\n'; printf '0.1]}\\n'\n");
    c = add(HOP_PENDING, OK, "output 1000 x 1e300 (grows, fits)");
    shell_job_s(c, "printf '{\"success\":true,\"grade\":1,\"x\":['; yes '1e300,' | head -n 999 | "
                   "tr -d '\\n'; printf '1e300]}\\n'\n");
    c->want_text = "[1e+300,1e+300,";
    c = add(HOP_PENDING, ERR("invalid JSON"), "output integer 10^30");
    shell_job_s(c, "echo '{\"success\":true,\"grade\":1000000000000000000000000000000}'\n");

    /* nesting: the response is depth 1 at the completer and depth 2 in the finished message */
    for (int d = -2; d <= 0; d++) {
        size_t depth = JSON_DEPTH + (size_t)(ssize_t)d;
        c = add(HOP_PENDING, d == -2 ? OK : ERR("invalid JSON"), /* OUTPUT_MAX_DEPTH is 2047 */
                "output nested %zu deep", depth + 1);
        shell_job_s(c, fmt("printf '{\"success\":true,\"grade\":1,\"x\":'; yes '[' | head -n %zu | "
                           "tr -d '\\n'; yes ']' | head -n %zu | tr -d '\\n'; printf '}\\n'\n",
                           depth, depth));
    }

    /* huge lines, many lines */
    c = add(HOP_PENDING, ERR("no response found"), "output one line of 100000 bytes");
    shell_job_s(c, "yes y | head -c 200000 | tr -d '\\n'\n");
    c = add(HOP_PENDING, ERR("output too large"), "output one line of 400000 bytes");
    shell_job_s(c, "yes y | head -c 800000 | tr -d '\\n'\n");
    /* (under CORRECTION_LOG_SIZE: the response must not be rotated out) */
    c = add(HOP_PENDING, OK, "output one stderr line of 512 KB and a response");
    shell_job_s(c, "echo '" RESPONSE "'; yes z | head -c 1048576 | tr -d '\\n' >&2\n");
    /* more than the log keeps: what was pushed out might have been the response */
    c = add(HOP_PENDING, ERR("no response found|output too large"),
            "output one stderr line of 2 MB, no response");
    shell_job_s(c, "echo nothing; yes z | head -c 4000000 | tr -d '\\n' >&2\n");
    c = add(HOP_PENDING, ERR("more than one response block"), "output 3000 BEGIN lines");
    shell_job_s(c, "seq 3000 | sed 's/.*/" BLOCK_BEGIN "/'; echo '" RESPONSE "'; echo '" BLOCK_END
                   "'\n");
    c = add(HOP_PENDING, ERR("more than one response block"), "output 3000 END lines");
    shell_job_s(c, "echo '" BLOCK_BEGIN "'; echo '" RESPONSE "'; seq 3000 | sed 's/.*/" BLOCK_END
                   "/'\n");
    /* more than CORRECTION_LOG_SIZE of json-file log: rotated (issue 10, item 9) */
    c = add(HOP_PENDING, OK, "output 32000 one-byte lines, then a block");
    shell_job_s(c, fmt("yes x | head -n 32000\nprintf '%%s' '%s'\n", block));
    /* stderr after the response: 12000 lines are 1.3 MB of json-file log, more than
     * CORRECTION_LOG_SIZE (issue 10, item 9); 1.5 MB of them, more than the log keeps at all */
    c = add(HOP_PENDING, OK, "output 12000 stderr lines after the response");
    shell_job_s(c, "echo '" RESPONSE "'; yes 'noise after the response on stderr .............' | "
                   "head -n 12000 >&2\n");
    /* Podman keeps one log file, emptied when full, and shows no log options: the completer
     * cannot tell that the response was cut away (README, Running against Podman) */
    c = add(HOP_PENDING,
            ct_engine_is_podman() ? OK "||" ERR("output too large") "||" ERR("no response found")
                                  : OK "||" ERR("output too large"),
            "output 1.5 MB of stderr after the response");
    shell_job_s(c, "echo '" RESPONSE "'; yes 'noise after the response on stderr .............' | "
                   "head -c 1500000 >&2\n");
    free(o.p);
    free(e.p);
}

/* ------------------------------------------------------------------ watching */

static struct parked parked_list[1024];
static size_t n_parked;
static size_t receiver_seen; /* requests already assigned */
static int stray;            /* callbacks and parked messages of no case */
static char stray_text[2048];

static void note_stray(const char *what)
{
    stray++;
    size_t n = strlen(stray_text);
    if (n < sizeof(stray_text) - 200)
        snprintf(stray_text + n, sizeof(stray_text) - n, "\n    %.180s", what);
}

/* The case whose tag follows "c=" or stands alone in the bytes, or NULL. */
static struct ccase *case_of(const char *s, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if (s[i] != 'c' || s[i + 1] != 'c')
            continue;
        size_t k = 0;
        int v = 0;
        while (k < 4 && i + 2 + k < len && s[i + 2 + k] >= '0' && s[i + 2 + k] <= '9') {
            v = v * 10 + (s[i + 2 + k] - '0');
            k++;
        }
        if (k != 4 || (i + 6 < len && s[i + 6] >= '0' && s[i + 6] <= '9'))
            continue;
        if ((size_t)v < n_cases)
            return &cases[v];
    }
    return NULL;
}

static void mark_end(struct ccase *c, int64_t at)
{
    if (!c->end_ms || at < c->end_ms)
        c->end_ms = at;
}

static void drain_parking(void)
{
    for (size_t q = 0; q < N_PARKING; q++) {
        struct ct_msg *m;
        while ((m = ct_amqp_get(parking[q], 0))) {
            if (n_parked == sizeof(parked_list) / sizeof(parked_list[0]))
                fail_msg("too many parked messages");
            struct parked *p = &parked_list[n_parked];
            p->queue = parking[q];
            p->m = m;
            p->at_ms = realtime_ms();
            struct ccase *c = case_of(m->body, m->len);
            if (!c && m->len == 0) { /* the empty body of the hop this queue parks */
                enum hop h = q == 0 ? HOP_PENDING : q == 1 ? HOP_RUNNING : HOP_FINISHED;
                for (size_t i = 0; i < n_cases && !c; i++)
                    if (cases[i].len == 0 && cases[i].hop == h)
                        c = &cases[i];
            }
            if (c) {
                json_array_append_new(c->parks, json_integer((json_int_t)n_parked));
                mark_end(c, p->at_ms);
            } else {
                char what[200];
                snprintf(what, sizeof(what), "parked in %s: %.120s", parking[q], m->body);
                note_stray(what);
            }
            n_parked++;
        }
    }
}

/* Python writes the bytes of a body that is not UTF-8 as lone surrogates (surrogateescape),
 * which jansson refuses: turn each "\udcXX" that follows no high surrogate into "\ufffd". */
static void fix_lone_surrogates(char *s)
{
    for (char *p = s; (p = strstr(p, "\\udc")); p += 6) {
        bool paired =
            p - s >= 6 && p[-6] == '\\' && p[-5] == 'u' && p[-4] == 'd' && strchr("89abAB", p[-3]);
        if (!paired && strlen(p) >= 6)
            memcpy(p, "\\ufffd", 6);
    }
}

static void read_receiver(void)
{
    char *s = ct_read_file(rcv.log, NULL);
    size_t index = 0;
    for (char *line = s, *nl; line && (nl = strchr(line, '\n')); line = nl + 1, index++) {
        if (index < receiver_seen)
            continue;
        *nl = '\0';
        fix_lone_surrogates(line);
        json_t *q = json_loads(line, 0, NULL);
        if (!q)
            fail_msg("bad line in %s: %.300s", rcv.log, line);
        receiver_seen = index + 1;
        const char *path = json_string_value(json_object_get(q, "path"));
        const char *at = path ? strstr(path, "c=cc") : NULL;
        struct ccase *c = at ? case_of(at + 2, strlen(at + 2)) : NULL;
        if (!c) {
            note_stray(path ? path : "a request without a path");
            json_decref(q);
            continue;
        }
        long st = (long)json_integer_value(json_object_get(q, "status"));
        if (st >= 200 && st < 300) {
            json_array_append(c->oks, q);
            mark_end(c, (int64_t)(json_number_value(json_object_get(q, "time")) * 1000));
        } else {
            c->attempts++;
        }
        json_decref(q);
    }
    free(s);
}

static size_t n_ended(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_cases; i++)
        n += cases[i].end_ms != 0;
    return n;
}

static bool all_ended(void *ud)
{
    (void)ud;
    /* every call opens broker connections and reads the receiver's log: 3 times a second */
    static int64_t last;
    int64_t wait = last + 300 - ct_now_ms();
    if (wait > 0) {
        struct timespec ts = {.tv_nsec = (long)wait * 1000000L};
        nanosleep(&ts, NULL);
    }
    last = ct_now_ms();
    drain_parking();
    read_receiver();
    return n_ended() == n_cases;
}

/* Waits until every case has ended, as long as cases keep ending: false when none has for
 * stall_ms (the rest are stuck: no need to wait for the deadline), or after max_ms. */
static bool wait_all_ended(int stall_ms, int max_ms)
{
    int64_t start = ct_now_ms(), progress = start;
    size_t last = n_ended();
    while (!all_ended(NULL)) {
        size_t e = n_ended();
        int64_t now = ct_now_ms();
        if (e > last) {
            last = e;
            progress = now;
        }
        if (now - progress > stall_ms || now - start > max_ms)
            return false;
    }
    return true;
}

static const char *const pipeline_queues[] = {"pending_corrections", "running_corrections",
                                              "finished_corrections", Q_RETRY};
#define N_PIPELINE (sizeof(pipeline_queues) / sizeof(pipeline_queues[0]))

/* Every message of the pipeline's queues is gone (ready or unacked), twice in a row. */
static bool quiet(void *ud)
{
    int *streak = ud;
    long total = 0;
    for (size_t i = 0; i < N_PIPELINE; i++) {
        long n = ct_mgmt_queue_int(pipeline_queues[i], "messages");
        total += n > 0 ? n : 0;
        int ready = ct_amqp_count(pipeline_queues[i]);
        total += ready > 0 ? ready : 0;
    }
    all_ended(NULL);
    *streak = total == 0 ? *streak + 1 : 0;
    return *streak >= 2;
}

static bool no_containers(void *ud)
{
    (void)ud;
    json_t *l = ct_docker_list(LABEL);
    size_t n = json_array_size(l);
    json_decref(l);
    return n == 0;
}

/* ------------------------------------------------------------------ verdicts */

static bool starts_with_any(const char *s, const char *alternatives /* "A|B" */)
{
    for (const char *p = alternatives; p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (strncmp(s, p, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* Does the end of c match one alternative (s, n bytes) of its expectation? */
static bool matches(const struct ccase *c, const char *s, size_t n, char *why, size_t wl)
{
    char exp[512];
    snprintf(exp, sizeof(exp), "%.*s", (int)n, s);
    size_t n_ok = json_array_size(c->oks), n_park = json_array_size(c->parks);
    if (strncmp(exp, "park:", 5) == 0) {
        char *queue = exp + 5, *colon = strchr(queue, ':');
        const char *prefix = colon ? colon + 1 : "";
        if (colon)
            *colon = '\0';
        if (n_park != 1 || n_ok != 0) {
            snprintf(why, wl, "expected parked in %.60s", queue);
            return false;
        }
        const struct parked *p = &parked_list[json_integer_value(json_array_get(c->parks, 0))];
        if (strcmp(p->queue, queue) != 0) {
            snprintf(why, wl, "expected parked in %.60s", queue);
            return false;
        }
        const char *reason =
            json_string_value(json_object_get(p->m->headers, "x-correctomatic-reason"));
        if (!reason || !*reason) {
            snprintf(why, wl, "parked in %.60s without an x-correctomatic-reason header", queue);
            return false;
        }
        if (strncmp(reason, prefix, strlen(prefix)) != 0) {
            snprintf(why, wl, "parked with reason '%.150s', expected '%.60s...'", reason, prefix);
            return false;
        }
        return true;
    }
    if (n_ok == 0 || n_park != 0) {
        snprintf(why, wl, "expected a delivered callback (%.100s)", exp);
        return false;
    }
    json_t *q = json_array_get(c->oks, 0);
    const char *body = json_string_value(json_object_get(q, "body"));
    json_t *b = body ? json_loads(body, 0, NULL) : NULL;
    bool ok = false;
    if (!json_is_object(b)) {
        snprintf(why, wl, "the callback body is not a JSON object: %.150s", body ? body : "");
    } else if (strcmp(exp, "any") == 0) {
        ok = true;
    } else if (strcmp(exp, "ok") == 0) {
        ok = json_is_true(json_object_get(b, "success"));
        if (!ok)
            snprintf(why, wl, "expected success, got %.200s", body);
    } else if (strncmp(exp, "err:", 4) == 0) {
        const char *err = json_string_value(json_object_get(b, "error"));
        ok = json_is_false(json_object_get(b, "success")) && err && starts_with_any(err, exp + 4);
        if (!ok)
            snprintf(why, wl, "expected an error starting '%.100s', got %.200s", exp + 4, body);
    }
    if (ok && c->want_work_id) {
        json_t *w = json_object_get(b, "work_id");
        bool same = json_equal(w, c->want_work_id) ||
                    (json_is_number(w) && json_is_number(c->want_work_id) &&
                     json_number_value(w) == json_number_value(c->want_work_id));
        if (!same) {
            char *want = json_dumps(c->want_work_id, JSON_ENCODE_ANY);
            snprintf(why, wl, "work_id is not %.100s in %.150s", want ? want : "?", body);
            free(want);
            ok = false;
        }
    }
    if (ok && c->want_text && !strstr(body, c->want_text)) {
        snprintf(why, wl, "the body lacks '%s': %.150s", c->want_text, body);
        ok = false;
    }
    json_decref(b);
    return ok;
}

/* NULL when the case holds, else why not (in buf). */
static const char *verdict(const struct ccase *c, char *buf, size_t len)
{
    size_t n_ok = json_array_size(c->oks), n_park = json_array_size(c->parks);
    if (n_ok == 0 && n_park == 0) {
        snprintf(buf, len, "did not end within the run (lost or stuck; %d failed attempt(s))",
                 c->attempts);
        return buf;
    }
    if (n_ok && n_park) {
        snprintf(buf, len, "ended in two places: %zu callback(s) and parked in %s", n_ok,
                 parked_list[json_integer_value(json_array_get(c->parks, 0))].queue);
        return buf;
    }
    for (size_t i = 1; i < n_ok; i++) {
        json_t *a = json_array_get(c->oks, 0), *b = json_array_get(c->oks, i);
        const char *ida =
            json_string_value(json_object_get(json_object_get(a, "headers"), "webhook-id"));
        const char *idb =
            json_string_value(json_object_get(json_object_get(b, "headers"), "webhook-id"));
        bool same = ida && idb && strcmp(ida, idb) == 0 &&
                    json_equal(json_object_get(a, "body"), json_object_get(b, "body"));
        if (!c->repeat_ok || !same) {
            snprintf(buf, len, "callback delivered %zu times%s", n_ok,
                     c->repeat_ok ? ", not each the same delivery" : "");
            return buf;
        }
    }
    if (n_park > 1) {
        snprintf(buf, len, "parked %zu times", n_park);
        return buf;
    }
    if (c->end_ms - c->published_ms > c->bound_ms) {
        snprintf(buf, len, "ended after %.1f s, the bound is %d s",
                 (double)(c->end_ms - c->published_ms) / 1000.0, c->bound_ms / 1000);
        return buf;
    }
    /* every text valid UTF-8 */
    if (n_ok) {
        json_t *q = json_array_get(c->oks, 0);
        if (!json_is_true(json_object_get(q, "body_utf8"))) {
            snprintf(buf, len, "the callback body is not valid UTF-8");
            return buf;
        }
        json_t *h = json_object_get(q, "headers");
        const char *k;
        json_t *v;
        json_object_foreach(h, k, v)
        {
            const char *s = json_string_value(v);
            if (s && !utf8_valid(s, strlen(s))) {
                snprintf(buf, len, "callback header %s is not valid UTF-8", k);
                return buf;
            }
        }
    } else {
        const struct parked *p = &parked_list[json_integer_value(json_array_get(c->parks, 0))];
        const char *k;
        json_t *v;
        json_object_foreach(p->m->headers, k, v)
        {
            const char *s = json_string_value(v);
            if (s && !utf8_valid(s, strlen(s))) {
                snprintf(buf, len, "parked with header %s not valid UTF-8: %.150s", k, s);
                return buf;
            }
        }
    }
    char why[400] = "";
    for (const char *p = c->expect; p;) {
        const char *alt = strstr(p, "||");
        size_t n = alt ? (size_t)(alt - p) : strlen(p);
        if (matches(c, p, n, why, sizeof(why)))
            return NULL;
        p = alt ? alt + 2 : NULL;
    }
    snprintf(buf, len, "%s", why);
    return buf;
}

static void describe_end(const struct ccase *c, char *buf, size_t len)
{
    if (json_array_size(c->oks)) {
        const char *body = json_string_value(json_object_get(json_array_get(c->oks, 0), "body"));
        json_t *b = body ? json_loads(body, 0, NULL) : NULL;
        const char *err = json_string_value(json_object_get(b, "error"));
        if (json_is_true(json_object_get(b, "success")))
            snprintf(buf, len, "callback success");
        else
            snprintf(buf, len, "callback error '%.70s'", err ? err : "?");
        json_decref(b);
    } else if (json_array_size(c->parks)) {
        const struct parked *p = &parked_list[json_integer_value(json_array_get(c->parks, 0))];
        const char *r = json_string_value(json_object_get(p->m->headers, "x-correctomatic-reason"));
        snprintf(buf, len, "parked in %s '%.70s'", p->queue, r ? r : "(no reason)");
    } else {
        snprintf(buf, len, "no end");
    }
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
}

/* The first line of the file that is not valid UTF-8 (0: none). */
static int first_invalid_line(const char *path, char *line_out, size_t len)
{
    size_t n = 0;
    char *s = ct_read_file(path, &n);
    int bad = 0, no = 1;
    for (char *line = s; s && line < s + n; no++) {
        char *nl = memchr(line, '\n', (size_t)(s + n - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(s + n - line);
        if (!utf8_valid(line, ll)) {
            bad = no;
            snprintf(line_out, len, "%.*s", (int)(ll < 200 ? ll : 200), line);
            for (char *p = line_out; *p; p++)
                if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
                    *p = '?';
            break;
        }
        line += ll + 1;
    }
    free(s);
    return bad;
}

/* SIGTERM, up to 20 s, then SIGKILL: whether it exited by itself with status 0. */
static bool stop_daemon(struct ct_daemon *d)
{
    int st = -1;
    ct_kill(d->pid, SIGTERM);
    bool clean = ct_wait_exit(d->pid, 20000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!clean) {
        ct_kill(d->pid, SIGKILL);
        ct_wait_exit(d->pid, 5000, NULL);
    }
    ct_untrack(d->pid);
    return clean;
}

/* ------------------------------------------------------------------ the test */

static void test_corpus(void **state)
{
    (void)state;
    int64_t t0 = ct_now_ms();
    ct_amqp_declare(Q_FINISHED_INVALID);
    ct_amqp_purge(Q_FINISHED_INVALID);
    ct_amqp_delete(Q_RETRY);
    good_file = keep(ct_tmpfile("corpus-good.txt", "anything", 8));
    ct_receiver_start(&rcv, "corpus", 0, true);

    output_cases();
    pending_text_cases();
    pending_limit_cases();
    pending_shape_cases();
    running_cases();
    finished_cases();

    char msg[64], out[64], exer[64];
    snprintf(msg, sizeof(msg), "MAX_MESSAGE_BYTES=%d", MAX_MESSAGE);
    snprintf(out, sizeof(out), "MAX_OUTPUT_BYTES=%d", MAX_OUTPUT);
    snprintf(exer, sizeof(exer), "MAX_EXERCISE_BYTES=%d", MAX_EXERCISE);
    char resp[64];
    snprintf(resp, sizeof(resp), "CALLBACK_MAX_RESPONSE_BYTES=%d", MAX_RESPONSE);
    struct ct_daemon starter, completer, notifier;
    ct_daemon_start(&starter, "starter", "corpus",
                    (const char *const[]){msg, exer, "MAX_RUNNING=8",
                                          "CORRECTION_LOG_SIZE=" LOG_SIZE, "CORRECTION_MEMORY=64m",
                                          "CORRECTION_TIMEOUT=40s", "RECONCILE_INTERVAL=1s",
                                          "RETRY_MAX=2s", NULL});
    ct_daemon_start(&completer, "completer", "corpus",
                    (const char *const[]){msg, out, "CORRECTION_TIMEOUT=40s",
                                          "RECONCILE_INTERVAL=2s", "RETRY_MAX=2s", NULL});
    ct_daemon_start(&notifier, "notifier", "corpus",
                    (const char *const[]){msg, resp, "CALLBACK_TIMEOUT=2s",
                                          "CALLBACK_RETRY_DELAYS=1s,1s", "CALLBACK_SECRET=" SECRET,
                                          NULL});
    ct_daemon_wait_log(&starter, "consuming pending jobs", 1, 30000);
    ct_daemon_wait_log(&completer, "connected to RabbitMQ", 1, 30000);
    ct_daemon_wait_log(&notifier, "connected to RabbitMQ", 1, 30000);

    /* The cases without a container first: the starter takes pending jobs only while it has
     * room for containers, and the cases that run one are the slow ones. */
    int64_t t_pub = ct_now_ms();
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n_cases; i++) {
            struct ccase *c = &cases[i];
            bool container =
                c->container || (c->hop == HOP_PENDING && strncmp(c->expect, "ok", 2) == 0);
            if (container != (pass == 1))
                continue;
            if (container)
                c->bound_ms = CONTAINER_BOUND_MS;
            c->published_ms = realtime_ms();
            struct ct_publish_opts o = {.content_type = "application/json", .message_id = c->tag};
            ct_amqp_publish_ex(hop_queue[c->hop], c->body, c->len, &o);
        }
    }
    printf("corpus: %zu cases published in %.1f s\n", n_cases,
           (double)(ct_now_ms() - t_pub) / 1000.0);
    fflush(stdout);

    bool ended = wait_all_ended(STALL_MS, (int)(RUN_DEADLINE_MS - (ct_now_ms() - t_pub)));
    int64_t t_ended = ct_now_ms();
    int streak = 0;
    bool is_quiet = ct_wait_until(quiet, &streak, QUIET_DEADLINE_MS);
    bool clean = ct_wait_until(no_containers, NULL, is_quiet ? 30000 : 5000);

    bool stopped[3] = {stop_daemon(&notifier), stop_daemon(&completer), stop_daemon(&starter)};
    all_ended(NULL);

    /* ---- the report */
    size_t pass = 0;
    char failures[16384] = "";
    size_t fl = 0;
    for (size_t i = 0; i < n_cases; i++) {
        struct ccase *c = &cases[i];
        char why[600], end[200];
        const char *v = verdict(c, why, sizeof(why));
        describe_end(c, end, sizeof(end));
        double secs = c->end_ms ? (double)(c->end_ms - c->published_ms) / 1000.0 : -1;
        printf("  %s %s %-52.52s %6.1fs  %s\n", v ? "FAIL" : "ok  ", c->tag, c->name, secs, end);
        if (v) {
            for (char *p = why; *p; p++)
                if ((unsigned char)*p < 0x20)
                    *p = '?';
            printf("         -> %s\n", why);
            if (fl < sizeof(failures) - 400)
                fl += (size_t)snprintf(failures + fl, sizeof(failures) - fl, "\n  %s %s: %.300s",
                                       c->tag, c->name, why);
        } else {
            pass++;
        }
    }

    int left_queues = 0;
    char left_text[512] = "";
    for (size_t i = 0; i < N_PIPELINE; i++) {
        int n = ct_amqp_count(pipeline_queues[i]);
        if (n > 0) {
            left_queues += n;
            size_t l = strlen(left_text);
            snprintf(left_text + l, sizeof(left_text) - l, " %s=%d", pipeline_queues[i], n);
        }
    }
    json_t *left = ct_docker_list(LABEL);
    size_t containers = json_array_size(left);
    json_decref(left);

    char bad_line[3][256];
    int bad_log[3] = {first_invalid_line(starter.log, bad_line[0], sizeof(bad_line[0])),
                      first_invalid_line(completer.log, bad_line[1], sizeof(bad_line[1])),
                      first_invalid_line(notifier.log, bad_line[2], sizeof(bad_line[2]))};
    const char *names[3] = {"starter", "completer", "notifier"};

    printf("corpus: %zu cases, %zu pass, %zu fail; %zu of %zu ended within %.0f s; pipeline %s; "
           "%d stray; %zu containers left; %d messages left;%s total %.1f s\n",
           n_cases, pass, n_cases - pass, n_ended(), n_cases, (double)(t_ended - t_pub) / 1000.0,
           is_quiet ? "quiet" : "NOT quiet", stray, containers, left_queues, left_text,
           (double)(ct_now_ms() - t0) / 1000.0);
    for (int k = 0; k < 3; k++)
        if (bad_log[k])
            printf("corpus: %s log line %d is not valid UTF-8: %s\n", names[k], bad_log[k],
                   bad_line[k]);
    fflush(stdout);

    ct_receiver_stop(&rcv);
    for (size_t i = 0; i < n_cases; i++) {
        free(cases[i].body);
        json_decref(cases[i].want_work_id);
        json_decref(cases[i].oks);
        json_decref(cases[i].parks);
    }
    for (size_t i = 0; i < n_parked; i++)
        ct_msg_free(parked_list[i].m);
    for (size_t i = 0; i < n_scratch; i++)
        free(scratch_list[i]);

    bool ok = pass == n_cases && ended && is_quiet && clean && stray == 0 && left_queues == 0 &&
              containers == 0 && !bad_log[0] && !bad_log[1] && !bad_log[2] && stopped[0] &&
              stopped[1] && stopped[2];
    if (!ok) {
        printf("corpus: failing cases:%s%s%s\n", failures,
               stray ? "\ncorpus: callbacks or parked messages of no case:" : "", stray_text);
        fail_msg("the corpus does not hold: %zu of %zu cases fail (listed above)%s%s%s%s%s%s",
                 n_cases - pass, n_cases, stray ? "; stray callbacks or parked messages" : "",
                 containers ? "; correction containers left behind" : "",
                 left_queues ? "; messages left in the pipeline's queues" : "",
                 bad_log[0] || bad_log[1] || bad_log[2] ? "; a daemon log is not valid UTF-8" : "",
                 !stopped[0] || !stopped[1] || !stopped[2]
                     ? "; a daemon did not exit 0 within 20 s of SIGTERM"
                     : "",
                 is_quiet ? "" : "; the pipeline's queues did not empty");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_corpus, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
