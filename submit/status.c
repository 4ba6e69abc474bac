/* correctomatic-status: the pipeline on one screen, for an operator or a health check.
 *
 * For each queue the pipeline uses, a passive declare (no management plugin needed): the
 * messages ready in it and its consumers. The three stage queues need a consumer each (the
 * starter, the completer, the notifier); a parked message waits for an operator.
 *
 * For each daemon listed (STATUS_DAEMONS, --daemon: the METRICS_LISTEN address of each), its
 * GET /readyz and GET /metrics: which daemon and version, alive (it answered both), ready, its
 * uptime, memory and its stage's figures. A daemon that does not answer, answers something
 * that does not parse, or is not ready needs attention.
 *
 * Exit status: 0 healthy, 1 something needs attention (a stage queue without a consumer or
 * missing, a message parked, a daemon listed unreachable or not ready), 2 the broker cannot be
 * reached or the configuration is bad.
 *
 * A command-line tool apart from correctomatic-submit: it needs none of a job's arguments, and
 * a health check runs it alone. It blocks (bounded by timeouts: the daemons are asked all at
 * once, each request at most DAEMON_TIMEOUT_MS) and uses no event loop. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "names.h"
#include "schedule.h"

#define PROG "correctomatic-status"
#define MAX_QUEUES (8 + SCHEDULE_MAX)

enum role { STAGE, PARKED, RETRY };

struct queue {
    char name[128];
    enum role role;
    const char *consumer; /* STAGE: who consumes it */
    bool exists;
    uint32_t ready, consumers;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " [--json] [--watch [SECONDS]] [--daemon HOST:PORT]...\n\n"
               "The pipeline's queues: messages ready and consumers, through AMQP passive\n"
               "declares (no management plugin needed). Then, for each daemon listed, what its\n"
               "metrics address (METRICS_LISTEN) tells: which daemon and version, alive (it\n"
               "answered /readyz and /metrics), ready (/readyz, or why not), uptime, memory,\n"
               "and its stage's figures (running corrections, jobs taken, started, finished by\n"
               "outcome, callbacks in flight, delivered, parked).\n\n"
               "  --json             one JSON object instead of the tables\n"
               "  --watch [SECONDS]  refresh every SECONDS (default 2) until interrupted\n"
               "  --daemon HOST:PORT a daemon's metrics address; repeat it for each (shown after\n"
               "                     those of STATUS_DAEMONS; at most 32 in all)\n\n"
               "Exit status: 0 healthy; 1 a stage queue has no consumer or is missing, a message\n"
               "is parked, or a daemon listed does not answer (or not as it should) or is not\n"
               "ready; 2 RabbitMQ cannot be reached or the configuration is bad.\n"
               "Settings: RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER, RABBITMQ_PASSWORD,\n"
               "RABBITMQ_VHOST as for the daemons; RUNNING_QUEUE (default running_corrections)\n"
               "and CALLBACK_RETRY_DELAYS (the notifier's retry queues) when not the defaults;\n"
               "STATUS_DAEMONS (default empty: no daemon is asked), the daemons' metrics\n"
               "addresses, comma-separated: starter:9100,completer:9100,notifier:9100.\n"
               "A daemon is asked GET /readyz and GET /metrics, all daemons at once: 2 s to\n"
               "connect, 5 s in all, answers up to 4 MiB.\n"
               "(Unacked messages are not told by AMQP: the management UI has them.)\n");
}

static void add(struct queue *q, size_t *n, const char *name, enum role role, const char *who)
{
    snprintf(q[*n].name, sizeof(q[*n].name), "%s", name);
    q[*n].role = role;
    q[*n].consumer = who;
    (*n)++;
}

/* The queues of this deployment, from the same settings as the daemons'. */
static int list_queues(struct queue *q, size_t *n, struct config_err *e)
{
    const char *running, *delays;
    struct schedule sched;
    if (config_str("RUNNING_QUEUE", QUEUE_RUNNING, &running, e) < 0 ||
        config_str("CALLBACK_RETRY_DELAYS", "5s,30s,2m,10m,30m,1h,3h", &delays, e) < 0)
        return -EINVAL;
    if (strlen(running) > 100) {
        snprintf(e->msg, sizeof(e->msg), "invalid RUNNING_QUEUE: over 100 bytes");
        return -EINVAL;
    }
    if (schedule_parse(delays, &sched) < 0) {
        snprintf(e->msg, sizeof(e->msg), "invalid CALLBACK_RETRY_DELAYS");
        return -EINVAL;
    }
    char invalid[128];
    *n = 0;
    add(q, n, QUEUE_PENDING, STAGE, "starter");
    add(q, n, running, STAGE, "completer");
    add(q, n, QUEUE_FINISHED, STAGE, "notifier");
    add(q, n, QUEUE_PENDING_INVALID, PARKED, NULL);
    snprintf(invalid, sizeof(invalid), "%s.invalid", running);
    add(q, n, invalid, PARKED, NULL);
    add(q, n, QUEUE_FINISHED_INVALID, PARKED, NULL);
    add(q, n, QUEUE_FAILED_CALLBACKS, PARKED, NULL);
    for (size_t i = 0; i < sched.n; i++) {
        char name[128];
        snprintf(name, sizeof(name), QUEUE_RETRY_FMT, (unsigned long long)sched.delays_ms[i]);
        bool seen = false; /* a delay given twice is one queue */
        for (size_t j = 0; j < *n; j++)
            seen = seen || strcmp(q[j].name, name) == 0;
        if (!seen)
            add(q, n, name, RETRY, NULL);
    }
    return 0;
}

/* Connects, and declares each queue passively on a channel of its own (a missing queue closes
 * its channel). 0, or -1 with the reason on stderr. */
static int read_queues(const struct amqp_link_config *c, struct queue *q, size_t n)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    struct timeval tv = {.tv_sec = 5};
    int r = -1;
    if (!sock || amqp_socket_open_noblock(sock, c->host, c->port, &tv) != AMQP_STATUS_OK) {
        fprintf(stderr, PROG ": cannot connect to RabbitMQ at %s:%d\n", c->host, c->port);
        goto out;
    }
    if (amqp_set_rpc_timeout(conn, &tv) != AMQP_STATUS_OK)
        goto out;
    amqp_table_entry_t name = {.key = amqp_cstring_bytes("connection_name"),
                               .value = {.kind = AMQP_FIELD_KIND_UTF8}};
    name.value.value.bytes = amqp_cstring_bytes(c->connection_name ? c->connection_name : PROG);
    amqp_table_t props = {.num_entries = 1, .entries = &name};
    if (amqp_login_with_properties(conn, c->vhost, 0, 131072, 0, &props, AMQP_SASL_METHOD_PLAIN,
                                   c->user, c->password)
            .reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, PROG ": RabbitMQ refused the login of %s\n", c->user);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        amqp_channel_t ch = (amqp_channel_t)(i + 1);
        amqp_channel_open(conn, ch);
        if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
            fprintf(stderr, PROG ": cannot open a channel\n");
            goto out;
        }
        amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, ch, amqp_cstring_bytes(q[i].name), 1,
                                                         0, 0, 0, amqp_empty_table);
        amqp_rpc_reply_t rep = amqp_get_rpc_reply(conn);
        q[i].exists = ok && rep.reply_type == AMQP_RESPONSE_NORMAL;
        if (q[i].exists) {
            q[i].ready = ok->message_count;
            q[i].consumers = ok->consumer_count;
            amqp_channel_close(conn, ch, AMQP_REPLY_SUCCESS);
        } else if (rep.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
                   rep.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            /* 404: the broker closed the channel; say we saw it */
            amqp_channel_close_ok_t close_ok = {0};
            if (amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok) !=
                AMQP_STATUS_OK)
                goto out;
        } else {
            fprintf(stderr, PROG ": no answer to the declare of %s\n", q[i].name);
            goto out;
        }
    }
    r = 0;
out:
    if (conn) {
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(conn);
    }
    return r;
}

/* ---- the daemons --------------------------------------------------------------------------- */

#define MAX_DAEMONS 32
#define ADDRESS_MAX 262 /* a host name of 253 bytes, or [IPv6], then :port */
#define DAEMON_CONNECT_TIMEOUT_MS 2000L
#define DAEMON_TIMEOUT_MS 5000L
#define DAEMON_BODY_MAX (4u * 1024 * 1024) /* an answer past this is abandoned */
#define METRIC_NAME_MAX 128
#define LABEL_VALUE_MAX 256
#define SAMPLE_LABELS_MAX 8
#define VALUE_TEXT_MAX 64
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

/* Adds the comma-separated addresses of list (blanks around each are ignored) to d, from
 * source (the variable or option, for the message): 0, or -EINVAL with a message in e. */
static int add_daemons(struct daemon_status *d, size_t *n, const char *list, const char *source,
                       struct config_err *e)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *stop = comma ? comma : p + strlen(p);
        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        char why[128];
        if (check_address(p, (size_t)(stop - p), why, sizeof(why)) < 0) {
            snprintf(e->msg, sizeof(e->msg), "invalid %s entry '%.*s': %s", source,
                     (int)((size_t)(stop - p) < 300 ? stop - p : 300), p, why);
            return -EINVAL;
        }
        if (*n >= MAX_DAEMONS) {
            snprintf(e->msg, sizeof(e->msg), "too many daemons (%s): at most %d", source,
                     MAX_DAEMONS);
            return -EINVAL;
        }
        snprintf(d[*n].address, sizeof(d[*n].address), "%.*s", (int)(stop - p), p);
        (*n)++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
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
    CURL *easy[2 * MAX_DAEMONS] = {0};
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

/* ---- the text format, read without trusting it ------------------------------------------ */

struct sample {
    char name[METRIC_NAME_MAX];
    size_t n_labels;
    struct {
        char name[METRIC_NAME_MAX];
        char value[LABEL_VALUE_MAX];
    } labels[SAMPLE_LABELS_MAX];
    double value;
};

static bool is_name_char(char ch, bool first, bool colon)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (colon && ch == ':') || (!first && ch >= '0' && ch <= '9');
}

/* A metric name (colon: ':' allowed) or a label name at *p: 0 and *p past it, or -EINVAL. */
static int parse_name(const char **p, const char *end, bool colon, char *out, size_t outlen)
{
    size_t n = 0;
    const char *s = *p;
    while (s < end && is_name_char(*s, n == 0, colon)) {
        if (n + 1 >= outlen)
            return -EINVAL;
        out[n++] = *s++;
    }
    if (n == 0)
        return -EINVAL;
    out[n] = '\0';
    *p = s;
    return 0;
}

/* A quoted label value at *p (escapes \\ \" \n): 0 and *p past it, or -EINVAL. */
static int parse_label_value(const char **p, const char *end, char *out, size_t outlen)
{
    const char *s = *p;
    size_t n = 0;
    if (s >= end || *s != '"')
        return -EINVAL;
    s++;
    while (s < end && *s != '"') {
        char ch = *s++;
        if (ch == '\\') {
            if (s >= end)
                return -EINVAL;
            ch = *s++;
            if (ch == 'n')
                ch = '\n';
            else if (ch != '\\' && ch != '"')
                return -EINVAL;
        }
        if (n + 1 >= outlen)
            return -EINVAL;
        out[n++] = ch;
    }
    if (s >= end)
        return -EINVAL;
    out[n] = '\0';
    *p = s + 1;
    return 0;
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* The length of the blank-delimited token at p (0 when none). */
static size_t token_len(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && p[n] != ' ' && p[n] != '\t')
        n++;
    return n;
}

/* One sample line, [p, end) (no newline): name{labels} value [timestamp]. 0, or -EINVAL. */
static int parse_sample(const char *p, const char *end, struct sample *s)
{
    s->n_labels = 0;
    if (parse_name(&p, end, true, s->name, sizeof(s->name)) < 0)
        return -EINVAL;
    p = skip_blanks(p, end);
    if (p < end && *p == '{') {
        p = skip_blanks(p + 1, end);
        while (p < end && *p != '}') {
            if (s->n_labels >= SAMPLE_LABELS_MAX)
                return -EINVAL;
            char *name = s->labels[s->n_labels].name;
            char *value = s->labels[s->n_labels].value;
            if (parse_name(&p, end, false, name, METRIC_NAME_MAX) < 0)
                return -EINVAL;
            p = skip_blanks(p, end);
            if (p >= end || *p != '=')
                return -EINVAL;
            p = skip_blanks(p + 1, end);
            if (parse_label_value(&p, end, value, LABEL_VALUE_MAX) < 0)
                return -EINVAL;
            s->n_labels++;
            p = skip_blanks(p, end);
            if (p < end && *p == ',')
                p = skip_blanks(p + 1, end);
            else if (p >= end || *p != '}')
                return -EINVAL;
        }
        if (p >= end)
            return -EINVAL;
        p = skip_blanks(p + 1, end);
    }
    char text[VALUE_TEXT_MAX];
    size_t n = token_len(p, end);
    if (n == 0 || n >= sizeof(text))
        return -EINVAL;
    memcpy(text, p, n);
    text[n] = '\0';
    char *stop;
    s->value = strtod(text, &stop); /* also NaN, +Inf, -Inf; out of range: +-HUGE_VAL or 0 */
    if (*stop)
        return -EINVAL;
    p = skip_blanks(p + n, end);
    n = token_len(p, end); /* an optional timestamp: milliseconds, an integer */
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (i == 0 && p[i] == '-' && n > 1)))
            return -EINVAL;
    }
    return skip_blanks(p + n, end) == end ? 0 : -EINVAL;
}

static const char *label(const struct sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++) {
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    }
    return NULL;
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

static void absorb(struct daemon_status *d, const struct sample *s)
{
    if (strcmp(s->name, "correctomatic_build_info") == 0) {
        const char *daemon = label(s, "daemon"), *version = label(s, "version");
        if (daemon)
            copy_printable(d->daemon, sizeof(d->daemon), daemon, strlen(daemon));
        if (version)
            copy_printable(d->version, sizeof(d->version), version, strlen(version));
        return;
    }
    for (size_t f = 0; f < F_COUNT; f++) {
        if (strcmp(s->name, figure_metrics[f]) != 0)
            continue;
        d->has[f] = true;
        d->fig[f] += s->value;
        if (f == F_FINISHED) {
            const char *outcome = label(s, "outcome"), *reason = label(s, "reason");
            for (size_t o = 0; o < O_COUNT && outcome; o++) {
                if (strcmp(outcome, outcomes[o]) == 0) {
                    d->finished[o] += s->value;
                    count_reason(d, (enum outcome)o, reason ? reason : "", s->value);
                }
            }
        }
        return;
    }
}

/* "# TYPE name type": the family is served, even before its first sample. */
static void absorb_comment(struct daemon_status *d, const char *p, const char *end)
{
    static const char type[] = "# TYPE ";
    char name[METRIC_NAME_MAX];
    if ((size_t)(end - p) < sizeof(type) - 1 || memcmp(p, type, sizeof(type) - 1) != 0)
        return;
    p += sizeof(type) - 1;
    if (parse_name(&p, end, true, name, sizeof(name)) < 0)
        return;
    for (size_t f = 0; f < F_COUNT; f++)
        d->has[f] = d->has[f] || strcmp(name, figure_metrics[f]) == 0;
}

/* The body of /metrics: 0, or -EINVAL with the line that does not parse in *bad_line. */
static int parse_metrics(struct daemon_status *d, const char *body, size_t len, size_t *bad_line)
{
    struct sample s;
    const char *p = body, *end = body + len;
    size_t line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        line++;
        if (stop > p && stop[-1] == '\r')
            stop--;
        const char *q = skip_blanks(p, stop);
        if (q < stop && *q == '#')
            absorb_comment(d, q, stop);
        else if (q < stop && parse_sample(q, stop, &s) == 0)
            absorb(d, &s);
        else if (q < stop) {
            *bad_line = line;
            return -EINVAL;
        }
        p = nl ? nl + 1 : end;
    }
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

/* Asks every daemon, and reads the answers. */
static void read_daemons(struct daemon_status *d, size_t n)
{
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
        size_t bad_line = 0;
        if (fetch_problem(&s->readyz, 200, 503, why, sizeof(why)))
            snprintf(s->reason, sizeof(s->reason), "%s (/readyz)", why);
        else if (fetch_problem(&s->metrics, 200, 200, why, sizeof(why)))
            snprintf(s->reason, sizeof(s->reason), "%s (/metrics)", why);
        else if (parse_metrics(s, s->metrics.data ? s->metrics.data : "", s->metrics.len,
                               &bad_line) < 0)
            snprintf(s->reason, sizeof(s->reason), "bad answer: line %zu of /metrics", bad_line);
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

static bool daemon_healthy(const struct daemon_status *d)
{
    return d->alive && d->ready;
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

static void print_daemons_table(const struct daemon_status *d, size_t n)
{
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

/* ---- the output ------------------------------------------------------------------------- */

/* Why the queue needs attention, or NULL. */
static const char *problem(const struct queue *q)
{
    if (q->role == STAGE && !q->exists)
        return "missing";
    if (q->role == STAGE && q->consumers == 0)
        return "no consumer";
    if (q->role == PARKED && q->exists && q->ready > 0)
        return "messages parked";
    return NULL;
}

static bool print(const struct queue *q, size_t n, const struct daemon_status *d, size_t nd,
                  bool as_json)
{
    bool healthy = true;
    for (size_t i = 0; i < n; i++)
        healthy = healthy && !problem(&q[i]);
    for (size_t i = 0; i < nd; i++)
        healthy = healthy && daemon_healthy(&d[i]);
    if (as_json) {
        json_t *root = json_pack("{s:b, s:[]}", "healthy", healthy, "queues");
        json_t *list = json_object_get(root, "queues");
        for (size_t i = 0; i < n && root; i++) {
            static const char *const roles[] = {"stage", "parked", "retry"};
            json_t *o = json_pack("{s:s, s:s, s:b}", "name", q[i].name, "role", roles[q[i].role],
                                  "exists", q[i].exists);
            if (o && q[i].exists) {
                json_object_set_new(o, "ready", json_integer(q[i].ready));
                json_object_set_new(o, "consumers", json_integer(q[i].consumers));
            }
            if (o && q[i].consumer)
                json_object_set_new(o, "consumer", json_string(q[i].consumer));
            if (o && problem(&q[i]))
                json_object_set_new(o, "problem", json_string(problem(&q[i])));
            if (!o || json_array_append_new(list, o) < 0) {
                json_decref(root);
                root = NULL;
            }
        }
        if (root && nd > 0) {
            json_t *daemons = json_array();
            if (!daemons || json_object_set_new(root, "daemons", daemons) < 0) {
                json_decref(root);
                root = NULL;
            }
            for (size_t i = 0; i < nd && root; i++) {
                if (json_array_append_new(daemons, daemon_json(&d[i])) < 0) {
                    json_decref(root);
                    root = NULL;
                }
            }
        }
        if (!root || json_dumpf(root, stdout, JSON_INDENT(1)) < 0) {
            fprintf(stderr, PROG ": out of memory\n");
            json_decref(root);
            return false;
        }
        json_decref(root);
        printf("\n");
    } else {
        printf("%-44s %8s %10s  %s\n", "queue", "ready", "consumers", "");
        for (size_t i = 0; i < n; i++) {
            const char *p = problem(&q[i]);
            char note[96] = "";
            if (p)
                snprintf(note, sizeof(note), "%s%s%s", p, q[i].consumer ? ": the " : "",
                         q[i].consumer ? q[i].consumer : "");
            if (q[i].exists)
                printf("%-44s %8u %10u  %s\n", q[i].name, q[i].ready, q[i].consumers, note);
            else
                printf("%-44s %8s %10s  %s\n", q[i].name, "-", "-", p ? note : "not declared yet");
        }
        if (nd > 0)
            print_daemons_table(d, nd);
        printf("%s\n", healthy ? "healthy" : "needs attention");
    }
    fflush(stdout);
    return healthy;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"watch", optional_argument, NULL, 'w'},
                                             {"daemon", required_argument, NULL, 'd'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bool as_json = false;
    long watch_s = 0;
    int c, code = 2;
    struct config_err e = {{0}};
    struct daemon_status *d = calloc(MAX_DAEMONS, sizeof(*d));
    size_t nd = 0, n_opt = 0;
    const char *opt_daemons[MAX_DAEMONS];
    if (!d) {
        fprintf(stderr, PROG ": out of memory\n");
        return 2;
    }
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            as_json = true;
            break;
        case 'w': {
            const char *v = optarg                                      ? optarg
                            : (optind < argc && argv[optind][0] != '-') ? argv[optind++]
                                                                        : "2";
            char *end;
            watch_s = strtol(v, &end, 10);
            if (*end || watch_s < 1 || watch_s > 3600) {
                fprintf(stderr, PROG ": --watch takes 1 to 3600 seconds\n");
                goto out;
            }
            break;
        }
        case 'd': /* added after those of STATUS_DAEMONS */
            if (n_opt == MAX_DAEMONS) {
                fprintf(stderr, PROG ": too many daemons (--daemon): at most %d\n", MAX_DAEMONS);
                goto out;
            }
            opt_daemons[n_opt++] = optarg;
            break;
        case 'h':
            usage(stdout);
            code = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        usage(stderr);
        goto out;
    }
    struct daemon_common common;
    struct queue q[MAX_QUEUES];
    size_t n = 0;
    const char *listed;
    if (daemon_load_common(&common, PROG, false, &e) < 0 || list_queues(q, &n, &e) < 0 ||
        config_str("STATUS_DAEMONS", "", &listed, &e) < 0 ||
        (listed[strspn(listed, " \t")] && add_daemons(d, &nd, listed, "STATUS_DAEMONS", &e) < 0)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        goto out;
    }
    for (size_t i = 0; i < n_opt; i++) {
        if (add_daemons(d, &nd, opt_daemons[i], "--daemon", &e) < 0) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            goto out;
        }
    }
    if (nd > 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, PROG ": cannot initialise libcurl\n");
        goto out;
    }
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            q[i].exists = false;
            q[i].ready = q[i].consumers = 0;
        }
        int r = read_queues(&common.amqp, q, n);
        if (r == 0)
            read_daemons(d, nd);
        if (watch_s) {
            printf("\033[H\033[2J");
            time_t now = time(NULL);
            char when[32];
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&now));
            printf("%s, every %ld s\n\n", when, watch_s);
        }
        bool healthy = r == 0 && print(q, n, d, nd, as_json);
        if (!watch_s) {
            code = r < 0 ? 2 : healthy ? 0 : 1;
            break;
        }
        sleep((unsigned)watch_s);
    }
    if (nd > 0)
        curl_global_cleanup();
out:
    free(d);
    return code;
}
