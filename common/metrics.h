/* metrics: the process's Prometheus metrics, rendered in the text exposition format 0.0.4.
 *
 * A family (a name, its help, its type, up to METRICS_MAX_LABELS label names) is a static
 * struct metric, written with METRIC_COUNTER / METRIC_GAUGE / METRIC_HISTOGRAM where it is
 * counted. It joins the process's registry the first time it is used or registered
 * (metrics_register), so code in common/ can count what it does without any set-up.
 *
 * A series is one set of label values: created on first use, kept until metrics_reset. Label
 * values must come from a bounded set (a reason of the failure table, an endpoint), never from
 * a job: past METRICS_MAX_SERIES per family, new label values are counted under the value
 * "other" instead. Values are copied; they are escaped when rendered.
 *
 * Everything runs on the loop's thread: no locking. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS 3
#define METRICS_MAX_SERIES 128
#define METRICS_MAX_BUCKETS 16

enum metric_type { METRIC_TYPE_COUNTER, METRIC_TYPE_GAUGE, METRIC_TYPE_HISTOGRAM };

struct metric_series;

struct metric {
    const char *name; /* with its _total suffix for a counter */
    const char *help;
    enum metric_type type;
    const char *labels[METRICS_MAX_LABELS]; /* names, NULL after the last */
    const double *bounds;                   /* histogram: upper bounds, increasing */
    size_t n_bounds;                        /* at most METRICS_MAX_BUCKETS */
    /* gauge only: when set, the value is asked for at each rendering (no labels) */
    double (*read)(void *userdata);
    void *userdata;
    /* private */
    bool registered;
    struct metric *next;
    struct metric_series *series;
    size_t n_series;
};

#define METRIC_COUNTER(n, h, ...)                                                                  \
    {                                                                                              \
        .name = (n), .help = (h), .type = METRIC_TYPE_COUNTER, .labels = { __VA_ARGS__ }           \
    }
#define METRIC_GAUGE(n, h, ...)                                                                    \
    {                                                                                              \
        .name = (n), .help = (h), .type = METRIC_TYPE_GAUGE, .labels = { __VA_ARGS__ }             \
    }
/* b: a static array of upper bounds */
#define METRIC_HISTOGRAM(n, h, b, ...)                                                             \
    {                                                                                              \
        .name = (n), .help = (h), .type = METRIC_TYPE_HISTOGRAM, .bounds = (b),                    \
        .n_bounds = sizeof(b) / sizeof((b)[0]), .labels = {                                        \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

/* correctomatic_ready{dependency}: 1 while the process reaches "rabbitmq" (its link is up) or
 * "docker" (the last Docker call that ended got the engine's answer), else 0. */
extern struct metric metrics_ready;
/* correctomatic_messages_parked_total{queue}: messages parked, by the queue they went to
 * (<queue>.invalid, failed_callbacks), counted when the broker confirms them. */
extern struct metric metrics_parked;
/* correctomatic_jobs_taken_total: messages a daemon took from its input queue as jobs;
 * correctomatic_jobs_finished_total{outcome,reason}: results it published (graded, error) or
 * parked (no callback), by the reason of the failure table. */
extern struct metric metrics_jobs_taken;
extern struct metric metrics_jobs_finished;

/* Adds the family to the registry (rendered, at 0 when unlabelled, before its first use). */
void metrics_register(struct metric *m);

/* values: one per label name of the family (NULL or "" is rendered as ""). A value for a
 * counter that is negative, or any NaN, is ignored. Out of memory: the sample is lost (a
 * metric is never worth failing the work it counts). */
void metric_add(struct metric *m, double v, const char *const *values);
void metric_set(struct metric *m, double v, const char *const *values);
void metric_observe(struct metric *m, double v, const char *const *values);
/* The current value of a counter or gauge series (0 when it does not exist). */
double metric_value(struct metric *m, const char *const *values);

#define METRIC_VALUES(...) ((const char *const[METRICS_MAX_LABELS + 1]){__VA_ARGS__})
#define METRIC_INC(m, ...) metric_add((m), 1, METRIC_VALUES(__VA_ARGS__))
#define METRIC_ADD(m, v, ...) metric_add((m), (v), METRIC_VALUES(__VA_ARGS__))
#define METRIC_SET(m, v, ...) metric_set((m), (v), METRIC_VALUES(__VA_ARGS__))
#define METRIC_OBSERVE(m, v, ...) metric_observe((m), (v), METRIC_VALUES(__VA_ARGS__))

/* "1xx" to "5xx" for an HTTP status, else "error" (no answer, or none that makes sense). */
const char *metrics_status_class(long status);

/* The whole registry, plus the process' own metrics (CPU, memory, open files: read from /proc,
 * a few small local reads), in the text format. 0 and a malloc'd *ret (NUL-terminated) and
 * *ret_len, or -ENOMEM. */
int metrics_render(char **ret, size_t *ret_len);

/* Forgets every series and unregisters every family (tests; the end of a daemon). */
void metrics_reset(void);

/* The wall clock: seconds since the epoch (with milliseconds), and ms since the epoch. For
 * durations between processes (message timestamps) and deadlines others read. */
double metrics_now(void);
int64_t metrics_wall_ms(void);
