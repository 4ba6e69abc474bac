#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct metric_series {
    char *values[METRICS_MAX_LABELS];
    double value;                              /* counter, gauge */
    uint64_t buckets[METRICS_MAX_BUCKETS + 1]; /* histogram: per bound, then +Inf */
    double sum;
    uint64_t count;
};

static struct metric *registry;

struct metric metrics_ready =
    METRIC_GAUGE("correctomatic_ready",
                 "1 while the daemon reaches this dependency (RabbitMQ: connected; Docker: its "
                 "last call answered; settings: the engine takes the starter's container "
                 "settings), else 0.",
                 "dependency");
struct metric metrics_jobs_taken = METRIC_COUNTER(
    "correctomatic_jobs_taken_total", "Messages taken from the daemon's input queue as jobs.");
struct metric metrics_jobs_finished =
    METRIC_COUNTER("correctomatic_jobs_finished_total",
                   "Jobs ended by this daemon, by outcome (graded, error: reported to the "
                   "callback; parked: no callback) and reason (the README's failure table).",
                   "outcome", "reason");
struct metric metrics_parked =
    METRIC_COUNTER("correctomatic_messages_parked_total",
                   "Messages parked, by the queue they were parked in.", "queue");

static size_t n_labels(const struct metric *m)
{
    size_t n = 0;
    while (n < METRICS_MAX_LABELS && m->labels[n])
        n++;
    return n;
}

void metrics_register(struct metric *m)
{
    if (m->registered)
        return;
    m->registered = true;
    /* kept in the order of registration, for a stable rendering */
    struct metric **p = &registry;
    while (*p)
        p = &(*p)->next;
    m->next = NULL;
    *p = m;
}

static const char *value_of(const char *const *values, size_t i)
{
    return values && values[i] ? values[i] : "";
}

static bool same(const struct metric_series *s, size_t n, const char *const *values)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], value_of(values, i)) != 0)
            return false;
    return true;
}

static const char *const other_values[METRICS_MAX_LABELS] = {"other", "other", "other"};

/* The series of these values, created if need be; NULL when out of memory. */
static struct metric_series *series(struct metric *m, const char *const *values)
{
    metrics_register(m);
    size_t n = n_labels(m);
    for (size_t i = 0; i < m->n_series; i++)
        if (same(&m->series[i], n, values))
            return &m->series[i];
    /* the last place is kept for "other" */
    if (values != other_values && m->n_series >= METRICS_MAX_SERIES - 1)
        return series(m, other_values);
    struct metric_series *grown = realloc(m->series, (m->n_series + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    m->series = grown;
    struct metric_series *s = &grown[m->n_series];
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        s->values[i] = strdup(value_of(values, i));
        if (!s->values[i]) {
            for (size_t j = 0; j < i; j++)
                free(s->values[j]);
            return NULL;
        }
    }
    m->n_series++;
    return s;
}

void metric_add(struct metric *m, double v, const char *const *values)
{
    if (isnan(v) || (m->type == METRIC_TYPE_COUNTER && v < 0))
        return;
    struct metric_series *s = series(m, values);
    if (s)
        s->value += v;
}

void metric_set(struct metric *m, double v, const char *const *values)
{
    if (isnan(v))
        return;
    struct metric_series *s = series(m, values);
    if (s)
        s->value = v;
}

void metric_observe(struct metric *m, double v, const char *const *values)
{
    if (isnan(v))
        return;
    struct metric_series *s = series(m, values);
    if (!s)
        return;
    size_t i = 0;
    while (i < m->n_bounds && v > m->bounds[i])
        i++;
    s->buckets[i]++;
    s->sum += v;
    s->count++;
}

double metric_value(struct metric *m, const char *const *values)
{
    size_t n = n_labels(m);
    for (size_t i = 0; i < m->n_series; i++)
        if (same(&m->series[i], n, values))
            return m->series[i].value;
    return 0;
}

void metrics_reset(void)
{
    struct metric *m = registry;
    while (m) {
        struct metric *next = m->next;
        size_t n = n_labels(m);
        for (size_t i = 0; i < m->n_series; i++)
            for (size_t j = 0; j < n; j++)
                free(m->series[i].values[j]);
        free(m->series);
        m->series = NULL;
        m->n_series = 0;
        m->registered = false;
        m->next = NULL;
        m = next;
    }
    registry = NULL;
}

const char *metrics_status_class(long status)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    return status >= 100 && status < 600 ? classes[status / 100 - 1] : "error";
}

int64_t metrics_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double metrics_now(void)
{
    return (double)metrics_wall_ms() / 1000.0;
}

/* ---- rendering ---------------------------------------------------------------------------- */

struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (o->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(o->buf, cap);
        if (!grown) {
            o->failed = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Help text: backslash and newline escaped. Label values: also the double quote. */
static void put_escaped(struct out *o, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            puts_(o, "\\\\");
        else if (*s == '\n')
            puts_(o, "\\n");
        else if (quote && *s == '"')
            puts_(o, "\\\"");
        else
            put(o, s, 1);
    }
}

static void format_number(char buf[32], double v)
{
    if (isinf(v))
        snprintf(buf, 32, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, 32, "%.0f", v);
    else
        snprintf(buf, 32, "%.17g", v);
}

static void put_number(struct out *o, double v)
{
    char buf[32];
    format_number(buf, v);
    puts_(o, buf);
}

/* {a="x",b="y"} with an extra label (le) when given. */
static void put_labels(struct out *o, const struct metric *m, const struct metric_series *s,
                       const char *extra_name, const char *extra_value)
{
    size_t n = n_labels(m);
    if (n == 0 && !extra_name)
        return;
    puts_(o, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            puts_(o, ",");
        puts_(o, m->labels[i]);
        puts_(o, "=\"");
        put_escaped(o, s->values[i], true);
        puts_(o, "\"");
    }
    if (extra_name) {
        if (n)
            puts_(o, ",");
        puts_(o, extra_name);
        puts_(o, "=\"");
        puts_(o, extra_value);
        puts_(o, "\"");
    }
    puts_(o, "}");
}

/* A counter's HELP and TYPE lines name it with its _total, as Prometheus' own client
 * libraries do in the format 0.0.4. */
static void put_header(struct out *o, const char *name, const char *help, const char *type)
{
    puts_(o, "# HELP ");
    puts_(o, name);
    puts_(o, " ");
    put_escaped(o, help, false);
    puts_(o, "\n# TYPE ");
    puts_(o, name);
    puts_(o, " ");
    puts_(o, type);
    puts_(o, "\n");
}

static void render_family(struct out *o, const struct metric *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    put_header(o, m->name, m->help, types[m->type]);
    if (m->read) {
        puts_(o, m->name);
        puts_(o, " ");
        put_number(o, m->read(m->userdata));
        puts_(o, "\n");
        return;
    }
    if (m->n_series == 0 && n_labels(m) == 0) {
        /* unlabelled and never used: 0 */
        puts_(o, m->name);
        if (m->type == METRIC_TYPE_HISTOGRAM) {
            for (size_t i = 0; i < m->n_bounds; i++) {
                puts_(o, "_bucket{le=\"");
                put_number(o, m->bounds[i]);
                puts_(o, "\"} 0\n");
                puts_(o, m->name);
            }
            puts_(o, "_bucket{le=\"+Inf\"} 0\n");
            puts_(o, m->name);
            puts_(o, "_sum 0\n");
            puts_(o, m->name);
            puts_(o, "_count 0\n");
        } else {
            puts_(o, " 0\n");
        }
        return;
    }
    for (size_t i = 0; i < m->n_series; i++) {
        const struct metric_series *s = &m->series[i];
        if (m->type != METRIC_TYPE_HISTOGRAM) {
            puts_(o, m->name);
            put_labels(o, m, s, NULL, NULL);
            puts_(o, " ");
            put_number(o, s->value);
            puts_(o, "\n");
            continue;
        }
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= m->n_bounds; b++) {
            char le[32];
            format_number(le, b < m->n_bounds ? m->bounds[b] : INFINITY);
            cumulative += s->buckets[b];
            puts_(o, m->name);
            puts_(o, "_bucket");
            put_labels(o, m, s, "le", le);
            putf(o, " %llu\n", (unsigned long long)cumulative);
        }
        puts_(o, m->name);
        puts_(o, "_sum");
        put_labels(o, m, s, NULL, NULL);
        puts_(o, " ");
        put_number(o, s->sum);
        puts_(o, "\n");
        puts_(o, m->name);
        puts_(o, "_count");
        put_labels(o, m, s, NULL, NULL);
        putf(o, " %llu\n", (unsigned long long)s->count);
    }
}

/* ---- the process ---------------------------------------------------------------------------- */

/* /proc/self/stat: utime and stime (fields 14, 15, in ticks), starttime (22, ticks after
 * boot), vsize (23, bytes), rss (24, pages). 0 or -errno. */
static int read_stat(double *cpu, double *start, double *vsize, double *rss)
{
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -errno;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command (field 2) is in parentheses and may hold anything: start after the last ) */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    p++;
    unsigned long long v[24] = {0};
    /* fields 3.. : state is a character, then numbers */
    char state;
    if (sscanf(p, " %c", &state) != 1)
        return -EINVAL;
    p += 2;
    for (int i = 4; i <= 24; i++) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p)
            return -EINVAL;
        v[i - 1] = (unsigned long long)(x < 0 ? 0 : x);
        p = end;
    }
    long tick = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tick <= 0 || page <= 0)
        return -EINVAL;
    *cpu = (double)(v[13] + v[14]) / (double)tick;
    *vsize = (double)v[22];
    *rss = (double)v[23] * (double)page;
    /* boot time: btime of /proc/stat */
    double btime = 0;
    FILE *s = fopen("/proc/stat", "re");
    if (s) {
        char line[256];
        while (fgets(line, sizeof(line), s))
            if (strncmp(line, "btime ", 6) == 0) {
                btime = strtod(line + 6, NULL);
                break;
            }
        fclose(s);
    }
    *start = btime + (double)v[21] / (double)tick;
    return 0;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

static void render_process(struct out *o)
{
    double cpu, start, vsize, rss;
    if (read_stat(&cpu, &start, &vsize, &rss) == 0) {
        put_header(o, "process_cpu_seconds_total", "User and system CPU time spent in seconds.",
                   "counter");
        puts_(o, "process_cpu_seconds_total ");
        put_number(o, cpu);
        puts_(o, "\n");
        put_header(o, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge");
        puts_(o, "process_resident_memory_bytes ");
        put_number(o, rss);
        puts_(o, "\n");
        put_header(o, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge");
        puts_(o, "process_virtual_memory_bytes ");
        put_number(o, vsize);
        puts_(o, "\n");
        put_header(o, "process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.", "gauge");
        puts_(o, "process_start_time_seconds ");
        put_number(o, start);
        puts_(o, "\n");
    }
    int fds = count_fds();
    if (fds >= 0) {
        put_header(o, "process_open_fds", "Number of open file descriptors.", "gauge");
        putf(o, "process_open_fds %d\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        put_header(o, "process_max_fds", "Maximum number of open file descriptors.", "gauge");
        puts_(o, "process_max_fds ");
        put_number(o, rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
        puts_(o, "\n");
    }
}

int metrics_render(char **ret, size_t *ret_len)
{
    struct out o = {0};
    for (const struct metric *m = registry; m; m = m->next)
        render_family(&o, m);
    render_process(&o);
    if (o.failed || !o.buf) {
        free(o.buf);
        return -ENOMEM;
    }
    *ret = o.buf;
    *ret_len = o.len;
    return 0;
}
