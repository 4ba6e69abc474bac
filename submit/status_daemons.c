/* status_daemons: the daemons' half of correctomatic-status (status.c; see status_daemons.h).
 *
 * Each daemon listed is asked GET /readyz and GET /metrics, all of them at once through one
 * libcurl multi handle, blocking (bounded: DAEMON_CONNECT_TIMEOUT_MS to connect,
 * DAEMON_TIMEOUT_MS in all, answers up to DAEMON_BODY_MAX). /metrics is read by common/promtext
 * into the figures the table and the JSON show. What a daemon says is shown as printable ASCII
 * only (copy_printable): it goes to a terminal and into JSON strings. */
#include "status_daemons.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promtext.h"
#include "text.h"

#define ADDRESS_MAX 262 /* a host name of 253 bytes, or [IPv6], then :port */
#define DAEMON_CONNECT_TIMEOUT_MS 2000L
#define DAEMON_TIMEOUT_MS 5000L
#define DAEMON_BODY_MAX (4u * 1024 * 1024) /* an answer past this is abandoned */
#define REASONS_MAX 128 /* (outcome, reason) pairs kept; past that, counted under "other" */

/* The figures read from /metrics, each the sum of its family's samples. */
enum figure {
    F_START,            /* process_start_time_seconds */
    F_MEMORY,           /* process_resident_memory_bytes */
    F_RUNNING,          /* starter */
    F_MAX_RUNNING,      /* starter */
    F_TRACKED,          /* completer */
    F_IN_FLIGHT,        /* notifier */
    F_TAKEN,            /* every stage */
    F_STARTED,          /* starter */
    F_FINISHED,         /* starter, completer: by outcome and reason below */
    F_DELIVERED,        /* notifier */
    F_CALLBACKS_PARKED, /* notifier */
    F_COUNT
};

static const char *const figure_metrics[F_COUNT] = {
    [F_START] = "process_start_time_seconds",
    [F_MEMORY] = "process_resident_memory_bytes",
    [F_RUNNING] = "correctomatic_running_corrections",
    [F_MAX_RUNNING] = "correctomatic_max_running",
    [F_TRACKED] = "correctomatic_jobs_tracked",
    [F_IN_FLIGHT] = "correctomatic_callbacks_in_flight",
    [F_TAKEN] = "correctomatic_jobs_taken_total",
    [F_STARTED] = "correctomatic_jobs_started_total",
    [F_FINISHED] = "correctomatic_jobs_finished_total",
    [F_DELIVERED] = "correctomatic_callbacks_delivered_total",
    [F_CALLBACKS_PARKED] = "correctomatic_callbacks_parked_total",
};

enum outcome { O_GRADED, O_ERROR, O_PARKED, O_COUNT };
static const char *const outcomes[O_COUNT] = {"graded", "error", "parked"};

struct reason_count {
    enum outcome outcome;
    char reason[64];
    double n;
};

/* One GET, its answer bounded by DAEMON_BODY_MAX. */
struct fetch {
    char *data; /* NUL-terminated */
    size_t len, cap;
    bool too_big;
    bool done;
    CURLcode result;
    long status;
};

struct daemon_status {
    char address[ADDRESS_MAX];
    /* the last round */
    bool alive, ready;
    char reason[256]; /* why not alive or not ready, printable ASCII */
    char daemon[64], version[32];
    bool has[F_COUNT];
    double fig[F_COUNT];
    double finished[O_COUNT];
    struct reason_count reasons[REASONS_MAX + O_COUNT]; /* "other" past REASONS_MAX */
    size_t n_reasons;
    struct fetch readyz, metrics;
};

struct status_daemons {
    size_t n;
    bool curl_ready; /* curl_global_init done */
    struct daemon_status d[STATUS_DAEMONS_MAX];
};

/* Copies at most len - 1 bytes of s into buf, each byte outside printable ASCII as '?': what a
 * daemon says goes to a terminal and into JSON strings (valid UTF-8). */
static void copy_printable(char *buf, size_t len, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < len; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (len)
        buf[i] = '\0';
}

static bool is_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

/* Checks "host:port" (host a name, an IPv4 address or [IPv6]) of n bytes: 0, or -EINVAL with
 * the reason in why. */
static int check_address(const char *s, size_t n, char *why, size_t whylen)
{
    const char *colon = NULL;
    size_t host_len;
    if (n == 0) {
        snprintf(why, whylen, "empty entry");
        return -EINVAL;
    }
    if (n >= ADDRESS_MAX) {
        snprintf(why, whylen, "over %d bytes", ADDRESS_MAX - 1);
        return -EINVAL;
    }
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close == s + 1) {
            snprintf(why, whylen, "an IPv6 address is written [address]:port");
            return -EINVAL;
        }
        for (const char *p = s + 1; p < close; p++) {
            bool hex =
                (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F');
            if (!hex && *p != ':' && *p != '.') {
                snprintf(why, whylen, "not an IPv6 address between the brackets");
                return -EINVAL;
            }
        }
        colon = close + 1 < s + n && close[1] == ':' ? close + 1 : NULL;
        host_len = (size_t)(close + 1 - s);
    } else {
        colon = memchr(s, ':', n);
        host_len = colon ? (size_t)(colon - s) : n;
        for (size_t i = 0; i < host_len; i++) {
            if (!is_host_char(s[i])) {
                snprintf(why, whylen, "the host name has a character other than a-z 0-9 . - _");
                return -EINVAL;
            }
        }
    }
    if (!colon || host_len == 0) {
        snprintf(why, whylen, "not host:port");
        return -EINVAL;
    }
    size_t digits = (size_t)(s + n - colon - 1);
    unsigned long port = 0;
    for (size_t i = 0; i < digits; i++) {
        char ch = colon[1 + i];
        if (ch < '0' || ch > '9' || port > 65535) {
            port = 0;
            break;
        }
        port = port * 10 + (unsigned long)(ch - '0');
    }
    if (digits == 0 || port < 1 || port > 65535) {
        snprintf(why, whylen, "the port is not 1 to 65535");
        return -EINVAL;
    }
    return 0;
}

struct status_daemons *status_daemons_new(void)
{
    return calloc(1, sizeof(struct status_daemons));
}

void status_daemons_free(struct status_daemons *sd)
{
    if (!sd)
        return;
    if (sd->curl_ready)
        curl_global_cleanup();
    free(sd);
}

size_t status_daemons_count(const struct status_daemons *sd)
{
    return sd->n;
}

int status_daemons_add(struct status_daemons *sd, const char *list, const char *source,
                       struct ct_error *e)
{
    struct daemon_status *d = sd->d;
    size_t *n = &sd->n;
    for (const char *next = list; next;) {
        const char *p;
        size_t len;
        next = text_list_item(next, &p, &len);
        const char *stop = p + len;
        char why[128];
        if (check_address(p, (size_t)(stop - p), why, sizeof(why)) < 0) {
            ct_error_set(e, -EINVAL, "invalid %s entry '%.*s': %s", source,
                         (int)((size_t)(stop - p) < 300 ? stop - p : 300), p, why);
            return -EINVAL;
        }
        if (*n >= STATUS_DAEMONS_MAX) {
            ct_error_set(e, -EINVAL, "too many daemons (%s): at most %d", source,
                         STATUS_DAEMONS_MAX);
            return -EINVAL;
        }
        snprintf(d[*n].address, sizeof(d[*n].address), "%.*s", (int)(stop - p), p);
        (*n)++;
    }
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct fetch *f = ud;
    size_t n = size * nmemb; /* size is 1 (libcurl's contract) */
    if (n > DAEMON_BODY_MAX - f->len) {
        f->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (f->len + n + 1 > f->cap) {
        size_t cap = f->cap ? f->cap : 16384;
        while (cap < f->len + n + 1)
            cap *= 2;
        char *grown = realloc(f->data, cap);
        if (!grown)
            return 0;
        f->data = grown;
        f->cap = cap;
    }
    memcpy(f->data + f->len, ptr, n);
    f->len += n;
    f->data[f->len] = '\0';
    return n;
}

static void fetch_reset(struct fetch *f)
{
    free(f->data);
    *f = (struct fetch){.result = CURLE_OK};
}

/* A GET of http://address/path for the multi handle: the easy handle, or NULL. */
static CURL *fetch_start(CURLM *multi, struct fetch *f, const char *address, const char *path)
{
    char url[ADDRESS_MAX + 32];
    snprintf(url, sizeof(url), "http://%s%s", address, path);
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK || /* no proxy from the env */
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, DAEMON_CONNECT_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, DAEMON_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DAEMON_BODY_MAX) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEDATA, f) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_PRIVATE, f) != CURLE_OK ||
        curl_multi_add_handle(multi, c) != CURLM_OK) {
        curl_easy_cleanup(c);
        return NULL;
    }
    return c;
}

/* Both GETs of every daemon at once, each bounded by DAEMON_TIMEOUT_MS. A fetch that could not
 * be made is left not done. */
static void fetch_all(struct daemon_status *d, size_t n)
{
    CURL *easy[2 * STATUS_DAEMONS_MAX] = {0};
    CURLM *multi = curl_multi_init();
    if (!multi)
        return;
    for (size_t i = 0; i < n; i++) {
        easy[2 * i] = fetch_start(multi, &d[i].readyz, d[i].address, "/readyz");
        easy[2 * i + 1] = fetch_start(multi, &d[i].metrics, d[i].address, "/metrics");
    }
    int running = 1;
    while (running > 0) {
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        if (running > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
        char *priv = NULL;
        if (msg->msg != CURLMSG_DONE ||
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
            continue;
        struct fetch *f = (struct fetch *)(void *)priv;
        f->done = true;
        f->result = msg->data.result;
        if (f->result == CURLE_OK &&
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &f->status) != CURLE_OK)
            f->status = 0;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        if (easy[i]) {
            curl_multi_remove_handle(multi, easy[i]);
            curl_easy_cleanup(easy[i]);
        }
    }
    curl_multi_cleanup(multi);
}

static struct reason_count *find_reason(struct daemon_status *d, enum outcome o, const char *reason)
{
    for (size_t i = 0; i < d->n_reasons; i++) {
        if (d->reasons[i].outcome == o && strcmp(d->reasons[i].reason, reason) == 0)
            return &d->reasons[i];
    }
    return NULL;
}

static void count_reason(struct daemon_status *d, enum outcome o, const char *reason, double v)
{
    char clean[sizeof(d->reasons[0].reason)];
    copy_printable(clean, sizeof(clean), reason, strlen(reason));
    struct reason_count *r = find_reason(d, o, clean);
    if (!r && d->n_reasons >= REASONS_MAX) {
        snprintf(clean, sizeof(clean), "other");
        r = find_reason(d, o, clean);
    }
    if (!r) {
        if (d->n_reasons >= sizeof(d->reasons) / sizeof(d->reasons[0]))
            return; /* not reached: past REASONS_MAX, one "other" per outcome */
        r = &d->reasons[d->n_reasons++];
        r->outcome = o;
        snprintf(r->reason, sizeof(r->reason), "%s", clean);
        r->n = 0;
    }
    r->n += v;
}

/* A sample of /metrics, added into the figures of d (ud). */
static int absorb(const struct promtext_sample *s, void *ud)
{
    struct daemon_status *d = ud;
    if (strcmp(s->name, "correctomatic_build_info") == 0) {
        const char *daemon = promtext_label(s, "daemon");
        const char *version = promtext_label(s, "version");
        if (daemon)
            copy_printable(d->daemon, sizeof(d->daemon), daemon, strlen(daemon));
        if (version)
            copy_printable(d->version, sizeof(d->version), version, strlen(version));
        return 0;
    }
    for (size_t f = 0; f < F_COUNT; f++) {
        if (strcmp(s->name, figure_metrics[f]) != 0)
            continue;
        d->has[f] = true;
        d->fig[f] += s->value;
        if (f == F_FINISHED) {
            const char *outcome = promtext_label(s, "outcome");
            const char *reason = promtext_label(s, "reason");
            for (size_t o = 0; o < O_COUNT && outcome; o++) {
                if (strcmp(outcome, outcomes[o]) == 0) {
                    d->finished[o] += s->value;
                    count_reason(d, (enum outcome)o, reason ? reason : "", s->value);
                }
            }
        }
        return 0;
    }
    return 0;
}

/* "# TYPE name type": the family is served, even before its first sample. */
static int absorb_comment(enum promtext_comment kind, const char *name, const char *text,
                          size_t len, void *ud)
{
    struct daemon_status *d = ud;
    (void)text;
    (void)len;
    for (size_t f = 0; f < F_COUNT && kind == PROMTEXT_TYPE; f++)
        d->has[f] = d->has[f] || strcmp(name, figure_metrics[f]) == 0;
    return 0;
}

/* Why a fetch has no usable answer (statuses other than those allowed), or NULL. */
static const char *fetch_problem(const struct fetch *f, long ok1, long ok2, char *buf, size_t len)
{
    if (!f->done)
        snprintf(buf, len, "unreachable: could not ask (out of memory?)");
    else if (f->too_big || f->result == CURLE_FILESIZE_EXCEEDED)
        snprintf(buf, len, "bad answer: over %u MiB", DAEMON_BODY_MAX / (1024 * 1024));
    else if (f->result != CURLE_OK)
        snprintf(buf, len, "unreachable: %s", curl_easy_strerror(f->result));
    else if (f->status != ok1 && f->status != ok2)
        snprintf(buf, len, "bad answer: HTTP %ld", f->status);
    else if (f->data && strlen(f->data) != f->len)
        snprintf(buf, len, "bad answer: a NUL byte");
    else
        return NULL;
    return buf;
}

int status_daemons_prepare(struct status_daemons *sd)
{
    if (sd->n == 0 || sd->curl_ready)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    sd->curl_ready = true;
    return 0;
}

void status_daemons_read(struct status_daemons *sd)
{
    struct daemon_status *d = sd->d;
    size_t n = sd->n;
    for (size_t i = 0; i < n; i++) {
        fetch_reset(&d[i].readyz);
        fetch_reset(&d[i].metrics);
        d[i].alive = d[i].ready = false;
        d[i].reason[0] = d[i].daemon[0] = d[i].version[0] = '\0';
        memset(d[i].has, 0, sizeof(d[i].has));
        memset(d[i].fig, 0, sizeof(d[i].fig));
        memset(d[i].finished, 0, sizeof(d[i].finished));
        d[i].n_reasons = 0;
    }
    fetch_all(d, n);
    for (size_t i = 0; i < n; i++) {
        struct daemon_status *s = &d[i];
        char why[200];
        struct promtext_error bad;
        if (fetch_problem(&s->readyz, 200, 503, why, sizeof(why)))
            snprintf(s->reason, sizeof(s->reason), "%s (/readyz)", why);
        else if (fetch_problem(&s->metrics, 200, 200, why, sizeof(why)))
            snprintf(s->reason, sizeof(s->reason), "%s (/metrics)", why);
        else if (promtext_parse(s->metrics.data, s->metrics.len, absorb, absorb_comment, s, &bad) <
                 0)
            snprintf(s->reason, sizeof(s->reason), "bad answer: line %zu of /metrics", bad.line);
        else if (!s->daemon[0])
            snprintf(s->reason, sizeof(s->reason), "bad answer: no correctomatic_build_info");
        else {
            s->alive = true;
            s->ready = s->readyz.status == 200;
            if (!s->ready) {
                /* "not ready: <reason>\n" */
                const char *body = s->readyz.data ? s->readyz.data : "";
                size_t len = strcspn(body, "\r\n");
                static const char prefix[] = "not ready: ";
                if (strncmp(body, prefix, sizeof(prefix) - 1) == 0) {
                    body += sizeof(prefix) - 1;
                    len -= sizeof(prefix) - 1;
                }
                copy_printable(why, sizeof(why), body, len);
                snprintf(s->reason, sizeof(s->reason), "not ready: %s", why[0] ? why : "?");
            }
        }
        if (!s->alive) /* what was read of a bad answer means nothing */
            memset(s->has, 0, sizeof(s->has));
        fetch_reset(&s->readyz);
        fetch_reset(&s->metrics);
    }
}

bool status_daemons_healthy(const struct status_daemons *sd)
{
    bool healthy = true;
    for (size_t i = 0; i < sd->n; i++)
        healthy = healthy && sd->d[i].alive && sd->d[i].ready;
    return healthy;
}

static double uptime_s(const struct daemon_status *d)
{
    struct timespec now;
    if (!d->has[F_START] || clock_gettime(CLOCK_REALTIME, &now) < 0)
        return NAN;
    double up = (double)now.tv_sec + (double)now.tv_nsec / 1e9 - d->fig[F_START];
    return up < 0 ? 0 : up;
}

/* A number for JSON: an integer when it is one, null when not finite. */
static json_t *json_number(double v)
{
    if (!isfinite(v))
        return json_null();
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* json_object_set_new, remembering a failure in *ok. */
static void set(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (!o || !v || json_object_set_new(o, key, v) < 0)
        *ok = false;
}

static json_t *daemon_json(const struct daemon_status *d)
{
    bool ok = true;
    json_t *o = json_object();
    set(o, "address", json_string(d->address), &ok);
    set(o, "alive", json_boolean(d->alive), &ok);
    set(o, "ready", json_boolean(d->ready), &ok);
    if (d->reason[0])
        set(o, "reason", json_string(d->reason), &ok);
    if (d->alive) {
        static const struct {
            enum figure f;
            const char *key;
        } keys[] = {{F_RUNNING, "running"},     {F_MAX_RUNNING, "max_running"},
                    {F_TRACKED, "tracked"},     {F_IN_FLIGHT, "in_flight"},
                    {F_TAKEN, "taken"},         {F_STARTED, "started"},
                    {F_DELIVERED, "delivered"}, {F_CALLBACKS_PARKED, "parked"},
                    {F_MEMORY, "memory_bytes"}};
        set(o, "daemon", json_string(d->daemon), &ok);
        set(o, "version", json_string(d->version), &ok);
        if (d->has[F_START])
            set(o, "uptime_s", json_number(floor(uptime_s(d))), &ok);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            if (d->has[keys[i].f])
                set(o, keys[i].key, json_number(d->fig[keys[i].f]), &ok);
        }
        if (d->has[F_FINISHED]) {
            json_t *fin = json_object(), *by = json_object();
            for (size_t k = 0; k < O_COUNT; k++) {
                json_t *per = json_object();
                set(fin, outcomes[k], json_number(d->finished[k]), &ok);
                for (size_t i = 0; i < d->n_reasons; i++) {
                    if ((size_t)d->reasons[i].outcome == k)
                        set(per, d->reasons[i].reason, json_number(d->reasons[i].n), &ok);
                }
                set(by, outcomes[k], per, &ok);
            }
            set(fin, "by_reason", by, &ok);
            set(o, "finished", fin, &ok);
        }
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *status_daemons_json(const struct status_daemons *sd)
{
    json_t *daemons = json_array();
    for (size_t i = 0; i < sd->n && daemons; i++) {
        if (json_array_append_new(daemons, daemon_json(&sd->d[i])) < 0) {
            json_decref(daemons);
            daemons = NULL;
        }
    }
    return daemons;
}

/* A count as text: an integer when it is one. */
static const char *num(char *buf, size_t len, double v)
{
    if (!isfinite(v))
        snprintf(buf, len, "?");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%g", v);
    return buf;
}

static const char *duration(char *buf, size_t len, double s)
{
    if (!isfinite(s))
        snprintf(buf, len, "-");
    else if (s < 60)
        snprintf(buf, len, "%.0fs", floor(s));
    else if (s < 3600)
        snprintf(buf, len, "%.0fm%02.0fs", floor(s / 60), floor(fmod(s, 60)));
    else if (s < 86400)
        snprintf(buf, len, "%.0fh%02.0fm", floor(s / 3600), floor(fmod(s, 3600) / 60));
    else
        snprintf(buf, len, "%.0fd%02.0fh", floor(s / 86400), floor(fmod(s, 86400) / 3600));
    return buf;
}

static const char *bytes(char *buf, size_t len, const struct daemon_status *d)
{
    double v = d->fig[F_MEMORY];
    if (!d->has[F_MEMORY] || !isfinite(v) || v < 0)
        snprintf(buf, len, "-");
    else if (v < 1024 * 1024)
        snprintf(buf, len, "%.0f KiB", v / 1024);
    else if (v < 1024.0 * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", v / (1024 * 1024));
    else
        snprintf(buf, len, "%.1f GiB", v / (1024.0 * 1024 * 1024));
    return buf;
}

/* The stage's figures, "running 0/8, taken 3, started 3", into buf. */
static void figures(char *buf, size_t len, const struct daemon_status *d)
{
    static const struct {
        enum figure f;
        const char *what;
    } shown[] = {{F_TRACKED, "tracked"},     {F_IN_FLIGHT, "in flight"},
                 {F_TAKEN, "taken"},         {F_STARTED, "started"},
                 {F_DELIVERED, "delivered"}, {F_CALLBACKS_PARKED, "parked"}};
    size_t at = 0;
    char a[32], b[32];
    buf[0] = '\0';
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int w_ = snprintf(buf + at, len - at, "%s", at ? ", " : "");                               \
        if (w_ > 0 && (size_t)w_ < len - at)                                                       \
            at += (size_t)w_;                                                                      \
        w_ = snprintf(buf + at, len - at, __VA_ARGS__);                                            \
        if (w_ > 0 && (size_t)w_ < len - at)                                                       \
            at += (size_t)w_;                                                                      \
    } while (0)
    if (d->has[F_RUNNING])
        APPEND("running %s/%s", num(a, sizeof(a), d->fig[F_RUNNING]),
               d->has[F_MAX_RUNNING] ? num(b, sizeof(b), d->fig[F_MAX_RUNNING]) : "?");
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        if (d->has[shown[i].f])
            APPEND("%s %s", shown[i].what, num(a, sizeof(a), d->fig[shown[i].f]));
    }
    /* the completer grades; the starter only ends jobs that fail before their start */
    for (size_t o = 0; o < O_COUNT && d->has[F_FINISHED]; o++) {
        if (d->finished[o] != 0 || (d->has[F_TRACKED] && o != O_PARKED))
            APPEND("%s %s", outcomes[o], num(a, sizeof(a), d->finished[o]));
    }
#undef APPEND
}

void status_daemons_print(const struct status_daemons *sd)
{
    const struct daemon_status *d = sd->d;
    size_t n = sd->n;
    if (n == 0)
        return;
    printf("\n%-12s %-28s %-8s %-6s %8s %10s  %s\n", "daemon", "address", "version", "ready",
           "uptime", "memory", "");
    for (size_t i = 0; i < n; i++) {
        char up[32], mem[32], fig[512];
        if (!d[i].alive) {
            printf("%-12s %-28s %-8s %-6s %8s %10s  %s\n", "-", d[i].address, "-", "-", "-", "-",
                   d[i].reason);
            continue;
        }
        static const char prefix[] = "correctomatic-";
        const char *name = d[i].daemon;
        if (strncmp(name, prefix, sizeof(prefix) - 1) == 0 && name[sizeof(prefix) - 1])
            name += sizeof(prefix) - 1;
        figures(fig, sizeof(fig), &d[i]);
        printf("%-12s %-28s %-8s %-6s %8s %10s  %s%s%s\n", name, d[i].address, d[i].version,
               d[i].ready ? "yes" : "no", duration(up, sizeof(up), uptime_s(&d[i])),
               bytes(mem, sizeof(mem), &d[i]), fig,
               d[i].ready ? ""
               : fig[0]   ? "; "
                          : "",
               d[i].ready ? "" : d[i].reason);
    }
}
