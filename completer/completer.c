/* The completer stage.
 *
 * A job is tracked by its container id in a hash map, created by whichever comes first: its
 * running message, or its container's exit (a Docker event, or the periodic list of our
 * labelled containers, which also covers events Docker dropped). The job finishes, exactly
 * once in the process, when both are known:
 *
 *   INSPECT -> stdout (bounded) -> stderr tail -> result -> PUBLISH (confirmed) -> ack -> REMOVE
 *
 * A registered running message is followed by an inspect of its container, so an exit that
 * happened before is found; a running container gets a deadline timer (StartedAt +
 * CORRECTION_TIMEOUT) that kills it. Infrastructure faults retry the current step with backoff.
 *
 * Long corrections: RabbitMQ closes a channel whose delivery stays unacked past its consumer
 * timeout, so a running message held for renew_ms is re-published (confirmed) and the old
 * delivery acked; the copy comes back to the same job. */
#include "completer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "idmap.h"
#include "ids.h"
#include "daemon.h"
#include "log.h"
#include "msg.h"
#include "names.h"
#include "output.h"
#include "schedule.h"

#define REASON_TIMEOUT "time limit exceeded"
#define REASON_OOM "memory limit exceeded"
#define REASON_KILLED "container killed"
#define REASON_MISSING "container missing"
#define REASON_OUTPUT_TOO_LARGE OUTPUT_REASON_TOO_LARGE
#define STDERR_TAIL_LINES 20
#define STDERR_TAIL_BYTES 2048

enum state { J_WAITING, J_FINISHING, J_DONE };
enum fstep { F_INSPECT, F_STDOUT, F_STDERR, F_PUBLISH, F_REMOVE };

struct delivery {
    uint64_t gen, tag;
    uint64_t received_ms;
};

struct job {
    completer *c;
    char container_id[65];
    char job_id[IDS_UUID_LEN + 1];
    char work_id_log[128];
    json_t *work_id;
    char *callback;
    char *running_body; /* for renewal */
    size_t running_len;
    struct delivery *dels;
    size_t n_dels, cap_dels;
    bool has_message;
    uint64_t registered_list; /* c->list_seq when its message was registered */
    bool exited;              /* the container is not running any more, or is gone */
    bool timed_out;           /* we killed it at its deadline */
    bool killing;
    bool busy; /* a Docker call or publish in flight */
    bool renewing;
    bool published; /* the result is confirmed: later deliveries are duplicates */
    enum state state;
    enum fstep step;
    unsigned attempts;
    uint64_t exited_seen_ms; /* for unclaimed exits */
    uv_timer_t timer;        /* WAITING: the deadline; FINISHING: retry backoff */
    bool timer_is_deadline;
    /* finishing */
    json_t *inspect;
    struct output_buf out, err;
    bool out_too_large;
    char *result;
};

/* A Docker event waiting to be handled (see on_event). */
struct pending_event {
    char id[65];
    bool exited; /* die/destroy; else start */
};

struct completer {
    uv_loop_t *loop;
    struct completer_config cfg;
    char running_invalid[256]; /* <running queue>.invalid */
    amqp_link *link;
    docker *docker;
    docker_events *events;
    idmap *jobs;
    idmap *finished_ids; /* finished containers: see remember_done */
    uint64_t list_seq;   /* lists asked for so far (the one in flight included) */
    uv_timer_t reconcile_timer, events_timer, sweep_timer, shutdown_timer, pending_timer;
    struct pending_event *pending; /* events not handled yet */
    size_t n_pending, cap_pending;
    int64_t last_event_s;
    unsigned events_failures;
    bool listing;
    bool shutting_down, finished;
    unsigned finishing; /* jobs in J_FINISHING */
    void (*done)(void *);
    void *done_ud;
};

static void job_finish(struct job *job);
static void finish_run(struct job *job);
static void job_inspect(struct job *job);
static void shutdown_check(completer *c);

static uint64_t now_ms(completer *c)
{
    uv_update_time(c->loop);
    return uv_now(c->loop);
}

static void log_job(enum log_level level, const struct job *job, const char *msg, const char *k1,
                    const char *v1, const char *k2, const char *v2)
{
    log_kv(level, msg, "work_id", job->work_id_log[0] ? job->work_id_log : NULL, "job_id",
           job->job_id[0] ? job->job_id : NULL, "container_id", job->container_id, k1, v1, k2, v2,
           NULL);
}

/* ---- the job map ------------------------------------------------------------------------ */

static void job_free_cb(uv_handle_t *h)
{
    struct job *job = h->data;
    json_decref(job->work_id);
    json_decref(job->inspect);
    free(job->callback);
    free(job->running_body);
    free(job->dels);
    free(job->result);
    output_buf_free(&job->out);
    output_buf_free(&job->err);
    free(job);
}

static void job_drop(struct job *job)
{
    completer *c = job->c;
    idmap_del(c->jobs, job->container_id);
    if (job->state == J_FINISHING)
        c->finishing--;
    uv_timer_stop(&job->timer);
    uv_close((uv_handle_t *)&job->timer, job_free_cb);
}

/* Finished containers: id -> the time it finished (+1, so never NULL), for FINISHED_MEMORY. */
static void remember_done(completer *c, const char *container_id)
{
    uintptr_t when = (uintptr_t)now_ms(c) + 1;
    if (idmap_put(c->finished_ids, container_id, (void *)when) == -EEXIST) {
        idmap_del(c->finished_ids, container_id);
        idmap_put(c->finished_ids, container_id, (void *)when);
    }
}

static bool is_done(const completer *c, const char *container_id)
{
    return idmap_get(c->finished_ids, container_id) != NULL;
}

struct expired {
    completer *c;
    uint64_t now;
    char (*ids)[65];
    size_t n, cap;
};

static void collect_expired(const char *key, void *value, void *ud)
{
    struct expired *x = ud;
    uint64_t when = (uint64_t)(uintptr_t)value - 1;
    if (x->now - when >= x->c->cfg.done_ttl_ms && x->n < x->cap)
        snprintf(x->ids[x->n++], sizeof(x->ids[0]), "%s", key);
}

static void forget_done(completer *c, uint64_t now)
{
    struct expired x = {.c = c, .now = now, .cap = idmap_size(c->finished_ids)};
    if (!x.cap || !(x.ids = malloc(x.cap * sizeof(*x.ids))))
        return;
    idmap_each(c->finished_ids, collect_expired, &x);
    for (size_t i = 0; i < x.n; i++)
        idmap_del(c->finished_ids, x.ids[i]);
    free(x.ids);
}

static struct job *job_get_or_add(completer *c, const char *container_id)
{
    struct job *job = idmap_get(c->jobs, container_id);
    if (job)
        return job;
    if (idmap_size(c->jobs) >= c->cfg.max_tracked)
        return NULL;
    job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->c = c;
    snprintf(job->container_id, sizeof(job->container_id), "%s", container_id);
    job->out.max = c->cfg.max_output_bytes;
    job->err.max = STDERR_TAIL_BYTES;
    job->err.keep_tail = 1;
    if (idmap_put(c->jobs, job->container_id, job) < 0) {
        free(job);
        return NULL;
    }
    uv_timer_init(c->loop, &job->timer);
    job->timer.data = job;
    return job;
}

static void maybe_finish(struct job *job)
{
    if (job->state == J_WAITING && job->has_message && job->exited && !job->busy)
        job_finish(job);
}

static void ack_deliveries(struct job *job)
{
    for (size_t i = 0; i < job->n_dels; i++) {
        int r = amqp_link_ack(job->c->link, job->dels[i].gen, job->dels[i].tag);
        if (r < 0 && r != -ESTALE && r != -ENOTCONN)
            log_job(LOG_WARN, job, "cannot ack a running message", "error", strerror(-r), NULL,
                    NULL);
    }
    job->n_dels = 0;
}

/* ---- retries ------------------------------------------------------------------------------ */

static void on_retry_timer(uv_timer_t *t)
{
    struct job *job = t->data;
    finish_run(job);
}

static void finish_retry(struct job *job, const char *why)
{
    completer *c = job->c;
    uint64_t delay = schedule_backoff_ms(c->cfg.retry_min_ms, c->cfg.retry_max_ms, job->attempts,
                                         (uint32_t)rand());
    job->attempts++;
    static const char *const names[] = {"inspect", "stdout", "stderr", "publish", "remove"};
    log_job(LOG_WARN, job, "infrastructure fault, will retry", "step", names[job->step], "error",
            why);
    job->timer_is_deadline = false;
    uv_timer_start(&job->timer, on_retry_timer, delay, 0);
}

static void finish_goto(struct job *job, enum fstep step)
{
    job->step = step;
    job->attempts = 0;
    finish_run(job);
}

/* ---- the result --------------------------------------------------------------------------- */

static void set_error(struct job *job, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static char *finished_body(struct job *job, bool error, json_t *data)
{
    struct finished_msg m = {.work_id = job->work_id,
                             .error = error,
                             .correction_data = data,
                             .callback = job->callback,
                             .job_id = job->job_id[0] ? job->job_id : NULL};
    return msg_finished_serialize(&m);
}

static void set_error(struct job *job, const char *reason, const char *fmt, ...)
{
    char detail[1024], text[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(text, sizeof(text), "%s - %s", reason, detail);
    json_t *s = json_string(text);
    free(job->result);
    job->result = s ? finished_body(job, true, s) : NULL;
    json_decref(s);
    log_job(LOG_INFO, job, "correction failed", "reason", text, NULL, NULL);
}

/* " (exit code N; stderr: ...)" for error details. */
static void exit_context(struct job *job, char *buf, size_t len)
{
    json_t *st = json_object_get(job->inspect, "State");
    long long code = json_integer_value(json_object_get(st, "ExitCode"));
    size_t tl = 0;
    const char *tail = job->err.data ? output_tail(job->err.data, job->err.len, 5, 400, &tl) : "";
    if (tl)
        snprintf(buf, len, " (exit code %lld; stderr: %.*s)", code, (int)tl, tail);
    else
        snprintf(buf, len, " (exit code %lld)", code);
}

static void build_result(struct job *job)
{
    completer *c = job->c;
    json_t *st = json_object_get(job->inspect, "State");
    long long code = json_integer_value(json_object_get(st, "ExitCode"));
    char ctx[600];
    exit_context(job, ctx, sizeof(ctx));
    if (job->timed_out) {
        set_error(job, REASON_TIMEOUT, "the correction ran longer than %llu s and was killed",
                  (unsigned long long)(c->cfg.correction_timeout_ms / 1000));
        return;
    }
    if (json_is_true(json_object_get(st, "OOMKilled"))) {
        long long mem = json_integer_value(
            json_object_get(json_object_get(job->inspect, "HostConfig"), "Memory"));
        set_error(job, REASON_OOM, "the container ran out of memory (limit %lld bytes)%s", mem,
                  ctx);
        return;
    }
    if (job->out_too_large) {
        set_error(job, REASON_OUTPUT_TOO_LARGE, "stdout is larger than %zu bytes",
                  c->cfg.max_output_bytes);
        return;
    }
    json_t *response = NULL;
    struct msg_error err;
    if (output_parse(job->out.data ? job->out.data : "", job->out.len, &response, &err) == 0) {
        /* The container cannot change work_id: it comes from the message. */
        json_object_del(response, "work_id");
        free(job->result);
        job->result = finished_body(job, false, response);
        json_decref(response);
        log_job(LOG_INFO, job, "correction finished", NULL, NULL, NULL, NULL);
        return;
    }
    if (code == 137 || code == 143) {
        set_error(job, REASON_KILLED, "killed by a signal before printing a response%s", ctx);
        return;
    }
    set_error(job, err.reason, "%s%s", err.detail, ctx);
}

/* ---- finishing steps ---------------------------------------------------------------------- */

static bool reply_ok(struct job *job, const struct docker_result *res)
{
    job->busy = false;
    if (job->c->finished)
        return false;
    if (res->err != 0 && res->err != -EFBIG) {
        finish_retry(job, res->message);
        return false;
    }
    if (res->err == 0 && res->status >= 500) {
        finish_retry(job, res->message);
        return false;
    }
    return true;
}

static void on_finish_inspect(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_ok(job, res))
        return;
    if (res->status == 404) {
        set_error(job, REASON_MISSING, "the container was removed before its output could be read");
        finish_goto(job, F_PUBLISH);
        return;
    }
    if (res->status != 200 || !json_is_object(res->json)) {
        finish_retry(job, res->message);
        return;
    }
    const char *status =
        json_string_value(json_object_get(json_object_get(res->json, "State"), "Status"));
    if (status && (strcmp(status, "running") == 0 || strcmp(status, "restarting") == 0 ||
                   strcmp(status, "paused") == 0 || strcmp(status, "created") == 0)) {
        /* Not over after all (a stale exit, or not even started): back to waiting. */
        job->exited = false;
        job->state = J_WAITING;
        job->c->finishing--;
        job_inspect(job);
        return;
    }
    if (!job->job_id[0]) {
        /* A message without job_id (an older producer): the label has it. */
        const char *jid = json_string_value(json_object_get(
            json_object_get(json_object_get(res->json, "Config"), "Labels"), LABEL_JOB_ID));
        if (jid)
            snprintf(job->job_id, sizeof(job->job_id), "%s", jid);
    }
    json_decref(job->inspect);
    job->inspect = json_incref(res->json);
    finish_goto(job, F_STDOUT);
}

static void on_stdout(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_ok(job, res))
        return;
    if (res->err == -EFBIG) {
        job->out_too_large = true;
        finish_goto(job, F_STDERR);
        return;
    }
    if (res->status == 404) {
        set_error(job, REASON_MISSING, "the container was removed before its output was read");
        finish_goto(job, F_PUBLISH);
        return;
    }
    if (res->status != 200) {
        finish_retry(job, res->message);
        return;
    }
    output_buf_free(&job->out);
    job->out.overflow = 0;
    int r = output_demux(res->body, res->body_len, &job->out, NULL);
    if (r < 0) {
        finish_retry(job, r == -EBADMSG ? "logs are not a multiplexed stream" : "out of memory");
        return;
    }
    if (job->out.overflow)
        job->out_too_large = true;
    finish_goto(job, F_STDERR);
}

static void on_stderr(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_ok(job, res))
        return;
    output_buf_free(&job->err);
    if (res->err == 0 && res->status == 200)
        output_demux(res->body, res->body_len, NULL, &job->err); /* best effort: context only */
    build_result(job);
    finish_goto(job, F_PUBLISH);
}

static void on_removed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_ok(job, res))
        return;
    if (res->status != 204 && res->status != 404 && res->status != 409) {
        finish_retry(job, res->message);
        return;
    }
    completer *c = job->c;
    job->state = J_DONE;
    c->finishing--;
    /* Only the container id is kept (FINISHED_MEMORY), to recognise a duplicate message. */
    remember_done(c, job->container_id);
    job_drop(job);
    shutdown_check(c);
}

static void on_published(amqp_link *link, int status, void *ud)
{
    (void)link;
    struct job *job = ud;
    job->busy = false;
    if (job->c->finished)
        return;
    if (status < 0) {
        finish_retry(job, status == -ECONNRESET ? "connection lost before the confirm"
                                                : "result not confirmed by the broker");
        return;
    }
    job->published = true;
    ack_deliveries(job);
    finish_goto(job, F_REMOVE);
}

static void finish_run(struct job *job)
{
    completer *c = job->c;
    if (c->finished)
        return;
    char path[160];
    int r = 0;
    switch (job->step) {
    case F_INSPECT:
        r = docker_container_inspect(c->docker, job->container_id, on_finish_inspect, job);
        break;
    case F_STDOUT:
        snprintf(path, sizeof(path), "/containers/%s/logs?stdout=1&stderr=0", job->container_id);
        r = docker_call(c->docker, "GET", path, NULL, NULL, 0, on_stdout, job);
        break;
    case F_STDERR:
        snprintf(path, sizeof(path), "/containers/%s/logs?stdout=0&stderr=1&tail=%d",
                 job->container_id, STDERR_TAIL_LINES);
        r = docker_call(c->docker, "GET", path, NULL, NULL, 0, on_stderr, job);
        break;
    case F_PUBLISH: {
        if (!job->result) {
            finish_retry(job, "out of memory");
            return;
        }
        struct amqp_link_publish_opts opts = {.message_id = job->job_id[0] ? job->job_id : NULL};
        r = amqp_link_publish(c->link, QUEUE_FINISHED, job->result, strlen(job->result), &opts,
                              on_published, job);
        if (r < 0) {
            finish_retry(job, r == -ENOTCONN ? "RabbitMQ unreachable" : strerror(-r));
            return;
        }
        job->busy = true;
        return;
    }
    case F_REMOVE:
        r = docker_container_remove(c->docker, job->container_id, true, on_removed, job);
        break;
    }
    if (r < 0) {
        finish_retry(job, strerror(-r));
        return;
    }
    job->busy = true;
}

static void job_finish(struct job *job)
{
    job->state = J_FINISHING;
    job->c->finishing++;
    uv_timer_stop(&job->timer);
    finish_goto(job, F_INSPECT);
}

/* ---- waiting: inspect, deadline, kill ----------------------------------------------------- */

static void on_deadline(uv_timer_t *t);

static void on_killed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    job->busy = false;
    job->killing = false;
    if (job->c->finished)
        return;
    if (res->err == 0 && (res->status == 204 || res->status == 409 || res->status == 404)) {
        /* 409: it had stopped already; 404: gone. Either way it is over. */
        job->exited = true;
        maybe_finish(job);
        return;
    }
    log_job(LOG_WARN, job, "cannot kill the container at its deadline, will retry", "error",
            res->message, NULL, NULL);
    job->timer_is_deadline = true;
    uv_timer_start(&job->timer, on_deadline, 1000, 0);
}

static void on_deadline(uv_timer_t *t)
{
    struct job *job = t->data;
    completer *c = job->c;
    if (job->state != J_WAITING || job->busy || c->finished)
        return;
    job->timed_out = true;
    job->killing = true;
    log_job(LOG_INFO, job, "time limit reached, killing the container", NULL, NULL, NULL, NULL);
    if (docker_container_kill(c->docker, job->container_id, "KILL", on_killed, job) == 0)
        job->busy = true;
    else
        uv_timer_start(&job->timer, on_deadline, 1000, 0);
}

/* "2026-11-22T06:10:11.123456789Z" -> unix ms; 0 when unparsable or zero time. */
static int64_t parse_docker_time(const char *s)
{
    if (!s)
        return 0;
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest || tm.tm_year < 100)
        return 0;
    int64_t ms = (int64_t)timegm(&tm) * 1000;
    if (*rest == '.') {
        int digits = 0, frac = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            if (digits++ < 3)
                frac = frac * 10 + (*rest - '0');
        while (digits++ < 3)
            frac *= 10;
        ms += frac;
    }
    return ms;
}

static void waiting_retry(uv_timer_t *t);

static void on_wait_inspect(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    completer *c = job->c;
    job->busy = false;
    if (c->finished || job->state != J_WAITING)
        return;
    if (res->err != 0 || res->status >= 500 || (res->status != 200 && res->status != 404)) {
        /* Docker unreachable: the reconcile list tries again. */
        log_job(LOG_WARN, job, "cannot inspect the container, will retry", "error", res->message,
                NULL, NULL);
        job->timer_is_deadline = false;
        uv_timer_start(&job->timer, waiting_retry, c->cfg.retry_max_ms, 0);
        return;
    }
    if (res->status == 404) {
        job->exited = true;
        maybe_finish(job);
        return;
    }
    json_t *st = json_object_get(res->json, "State");
    const char *status = json_string_value(json_object_get(st, "Status"));
    if (!job->job_id[0]) {
        const char *jid = json_string_value(json_object_get(
            json_object_get(json_object_get(res->json, "Config"), "Labels"), LABEL_JOB_ID));
        if (jid)
            snprintf(job->job_id, sizeof(job->job_id), "%s", jid);
    }
    if (!status || strcmp(status, "exited") == 0 || strcmp(status, "dead") == 0) {
        job->exited = true;
        maybe_finish(job);
        return;
    }
    if (strcmp(status, "created") == 0)
        return; /* not started yet: its start event brings us back here */
    int64_t started = parse_docker_time(json_string_value(json_object_get(st, "StartedAt")));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t left = started ? started + (int64_t)c->cfg.correction_timeout_ms - now
                           : (int64_t)c->cfg.correction_timeout_ms;
    if (left < 0)
        left = 0;
    job->timer_is_deadline = true;
    uv_timer_start(&job->timer, on_deadline, (uint64_t)left, 0);
}

static void job_inspect(struct job *job)
{
    if (job->busy || job->state != J_WAITING)
        return;
    if (docker_container_inspect(job->c->docker, job->container_id, on_wait_inspect, job) == 0)
        job->busy = true;
}

/* While waiting, the retry timer means "inspect again". */
static void waiting_retry(uv_timer_t *t)
{
    job_inspect(t->data);
}

/* ---- running messages --------------------------------------------------------------------- */

static void on_parked(amqp_link *link, int status, void *ud);

static void park_invalid(completer *c, const struct amqp_link_delivery *d, const char *text)
{
    struct amqp_link_header h[] = {{.key = HEADER_REASON, .str = text}};
    struct amqp_link_publish_opts opts = {
        .message_id = d->message_id, .headers = h, .n_headers = 1};
    /* Ack after the confirm: the tag travels in a small heap cell. */
    struct delivery *cell = malloc(sizeof(*cell));
    if (!cell) {
        amqp_link_nack(c->link, d->generation, d->delivery_tag, true);
        return;
    }
    cell->gen = d->generation;
    cell->tag = d->delivery_tag;
    if (amqp_link_publish(c->link, c->running_invalid, d->body, d->body_len, &opts, on_parked,
                          cell) < 0) {
        free(cell);
        amqp_link_nack(c->link, d->generation, d->delivery_tag, true);
    }
}

static void on_parked(amqp_link *link, int status, void *ud)
{
    struct delivery *cell = ud;
    if (status == 0)
        amqp_link_ack(link, cell->gen, cell->tag);
    else if (status != -ECONNRESET && status != -ECANCELED)
        amqp_link_nack(link, cell->gen, cell->tag, true);
    free(cell);
}

static int add_delivery(struct job *job, const struct amqp_link_delivery *d, uint64_t now)
{
    if (job->n_dels == job->cap_dels) {
        size_t cap = job->cap_dels ? job->cap_dels * 2 : 1;
        struct delivery *p = realloc(job->dels, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        job->dels = p;
        job->cap_dels = cap;
    }
    job->dels[job->n_dels++] = (struct delivery){d->generation, d->delivery_tag, now};
    return 0;
}

static void on_delivery(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    completer *c = ud;
    struct running_msg m;
    struct msg_error err;
    if (msg_running_parse(d->body, d->body_len, c->cfg.amqp.max_message_bytes, &m, &err) < 0) {
        char text[600];
        msg_error_text(&err, text, sizeof(text));
        log_kv(LOG_WARN, "invalid running message parked", "queue", c->running_invalid, "reason",
               text, NULL);
        park_invalid(c, d, text);
        return;
    }
    if (is_done(c, m.container_id)) {
        log_kv(LOG_INFO, "duplicate running message of a finished job, acked", "container_id",
               m.container_id, "job_id", m.job_id, NULL);
        amqp_link_ack(link, d->generation, d->delivery_tag);
        msg_running_free(&m);
        return;
    }
    struct job *job = job_get_or_add(c, m.container_id);
    if (!job) {
        /* Over MAX_TRACKED_JOBS (or out of memory): it waits in the queue. */
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        msg_running_free(&m);
        return;
    }
    if (job->state == J_DONE || job->published) {
        log_job(LOG_INFO, job, "duplicate running message of a finished job, acked", NULL, NULL,
                NULL, NULL);
        amqp_link_ack(link, d->generation, d->delivery_tag);
        msg_running_free(&m);
        return;
    }
    if (add_delivery(job, d, now_ms(c)) < 0) {
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        msg_running_free(&m);
        return;
    }
    if (!job->has_message) {
        job->has_message = true;
        job->registered_list = c->list_seq;
        job->work_id = m.work_id;
        m.work_id = NULL;
        job->callback = m.callback;
        m.callback = NULL;
        if (m.job_id)
            snprintf(job->job_id, sizeof(job->job_id), "%s", m.job_id);
        msg_work_id_text(job->work_id, job->work_id_log, sizeof(job->work_id_log));
        job->running_body = malloc(d->body_len);
        if (job->running_body) {
            memcpy(job->running_body, d->body, d->body_len);
            job->running_len = d->body_len;
        }
        log_job(LOG_DEBUG, job,
                job->exited ? "running message for an exited container"
                            : "running message received",
                NULL, NULL, NULL, NULL);
    }
    msg_running_free(&m);
    if (job->state == J_WAITING) {
        if (job->exited)
            maybe_finish(job);
        else
            job_inspect(job); /* registered first, then inspected: no window */
    }
}

/* ---- Docker events and the reconcile list ------------------------------------------------- */

static void container_exited(completer *c, const char *id)
{
    if (is_done(c, id))
        return; /* our own removal's events */
    struct job *job = job_get_or_add(c, id);
    if (!job)
        return; /* over the limit: the reconcile list finds it later */
    if (!job->exited) {
        job->exited = true;
        job->exited_seen_ms = now_ms(c);
        if (!job->has_message)
            log_job(LOG_DEBUG, job, "container exited before its running message", NULL, NULL, NULL,
                    NULL);
    }
    if (job->state == J_WAITING && job->timer_is_deadline)
        uv_timer_stop(&job->timer);
    maybe_finish(job);
}

static void handle_event(completer *c, const struct pending_event *pe)
{
    if (pe->exited) {
        container_exited(c, pe->id);
    } else {
        struct job *job = idmap_get(c->jobs, pe->id);
        if (job && job->has_message && job->state == J_WAITING)
            job_inspect(job); /* arms its deadline */
    }
}

static void on_pending_timer(uv_timer_t *t)
{
    completer *c = t->data;
    struct pending_event *list = c->pending;
    size_t n = c->n_pending;
    c->pending = NULL;
    c->n_pending = c->cap_pending = 0;
    for (size_t i = 0; i < n && !c->finished; i++)
        handle_event(c, &list[i]);
    free(list);
}

/* Called from inside libcurl (the stream's write callback), where no new transfer can be
 * added (CURLM_RECURSIVE_API_CALL): events are queued and handled on the next loop turn. */
static void on_event(json_t *ev, void *ud)
{
    completer *c = ud;
    const char *action = json_string_value(json_object_get(ev, "Action"));
    if (!action)
        action = json_string_value(json_object_get(ev, "status"));
    const char *id = json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID"));
    if (!id)
        id = json_string_value(json_object_get(ev, "id"));
    json_int_t t = json_integer_value(json_object_get(ev, "time"));
    if (t > c->last_event_s)
        c->last_event_s = t;
    if (!action || !id || !ids_is_container_id(id))
        return;
    bool exited = strcmp(action, "die") == 0 || strcmp(action, "destroy") == 0;
    if (!exited && strcmp(action, "start") != 0)
        return;
    if (c->n_pending == c->cap_pending) {
        /* Bounded: past it, the reconcile list finds the exits. */
        size_t cap = c->cap_pending ? c->cap_pending * 2 : 64;
        struct pending_event *p =
            cap <= c->cfg.max_tracked ? realloc(c->pending, cap * sizeof(*p)) : NULL;
        if (!p)
            return;
        c->pending = p;
        c->cap_pending = cap;
    }
    struct pending_event *pe = &c->pending[c->n_pending++];
    snprintf(pe->id, sizeof(pe->id), "%s", id);
    pe->exited = exited;
    if (!uv_is_active((uv_handle_t *)&c->pending_timer))
        uv_timer_start(&c->pending_timer, on_pending_timer, 0, 0);
}

static void start_events(completer *c);
static void reconcile(completer *c);

static void on_events_timer(uv_timer_t *t)
{
    start_events(t->data);
}

static void on_events_end(const struct docker_result *res, void *ud)
{
    completer *c = ud;
    c->events = NULL;
    if (c->finished)
        return;
    c->events_failures++;
    uint64_t delay = 250ULL << (c->events_failures < 7 ? c->events_failures : 7);
    log_kv(LOG_DEBUG, "docker events stream ended, reconnecting", "error", res->message, NULL);
    uv_timer_start(&c->events_timer, on_events_timer, delay, 0);
}

static void start_events(completer *c)
{
    if (c->finished || c->events)
        return;
    json_t *filters = json_pack("{s:[s],s:[s,s,s],s:[s]}", "type", "container", "event", "die",
                                "destroy", "start", "label", LABEL_JOB_ID);
    if (!filters)
        return;
    /* Resume where we were: Docker replays its recent history from `since`. */
    int r = docker_events_start(c->docker, c->last_event_s, filters, on_event, on_events_end, c,
                                &c->events);
    json_decref(filters);
    if (r < 0) {
        c->events = NULL;
        uv_timer_start(&c->events_timer, on_events_timer, 2000, 0);
        return;
    }
    /* Whatever the stream missed while it was down, the list finds. */
    reconcile(c);
}

struct seen_ctx {
    completer *c;
    idmap *present;
};

static void check_missing(const char *key, void *value, void *ud)
{
    (void)key;
    struct job *job = value;
    struct seen_ctx *s = ud;
    /* Only a job registered before the list was asked for can be judged by it: a container
     * created (and its message received) after that is rightly absent from the answer. */
    if (job->state == J_WAITING && job->has_message && !job->busy &&
        job->registered_list < s->c->list_seq && !idmap_get(s->present, job->container_id) &&
        !job->exited) {
        job->exited = true; /* gone: finishing says "container missing" */
        job->exited_seen_ms = now_ms(s->c);
    }
}

struct list_ctx {
    completer *c;
    idmap *present;
    bool nomem;
};

static void on_listed_container(const char *id, size_t id_len, const char *state, size_t state_len,
                                void *ud)
{
    struct list_ctx *x = ud;
    char cid[65];
    if (!id || id_len != 64)
        return;
    memcpy(cid, id, 64);
    cid[64] = '\0';
    if (!ids_is_container_id(cid))
        return;
    if (idmap_put(x->present, cid, x) == -ENOMEM)
        x->nomem = true;
    if (state && ((state_len == 6 && memcmp(state, "exited", 6) == 0) ||
                  (state_len == 4 && memcmp(state, "dead", 4) == 0)))
        container_exited(x->c, cid);
}

/* The list of every labelled container, the safety net for events Docker dropped. It is read
 * with a scan of the raw answer, not a jansson tree: a thousand containers are ~1.5 MB of JSON
 * and a tree several times that. */
static void on_list(const struct docker_result *res, void *ud)
{
    completer *c = ud;
    c->listing = false;
    if (c->finished)
        return;
    if (res->err != 0 || res->status != 200) {
        log_kv(LOG_WARN, "cannot list correction containers", "error", res->message, NULL);
        return;
    }
    struct list_ctx x = {.c = c, .present = idmap_new()};
    if (!x.present)
        return;
    if (docker_scan_list(res->body, res->body_len, on_listed_container, &x) < 0 || x.nomem) {
        log_kv(LOG_WARN, "cannot read the list of correction containers", NULL);
        idmap_free(x.present);
        return;
    }
    struct seen_ctx s = {c, x.present};
    idmap_each(c->jobs, check_missing, &s);
    idmap_free(x.present);
    /* maybe_finish cannot run inside idmap_each (it may not change the map): collect. */
    size_t n = idmap_size(c->jobs);
    void **all = malloc((n ? n : 1) * sizeof(void *));
    if (!all)
        return;
    n = idmap_values(c->jobs, all, n);
    for (size_t k = 0; k < n; k++)
        maybe_finish(all[k]);
    free(all);
}

static void reconcile(completer *c)
{
    if (c->finished || c->listing)
        return;
    json_t *filters = json_pack("{s:[s]}", "label", LABEL_JOB_ID);
    if (!filters)
        return;
    if (docker_container_list_raw(c->docker, true, filters, on_list, c) == 0) {
        c->listing = true;
        c->list_seq++;
    }
    json_decref(filters);
}

static void on_reconcile(uv_timer_t *t)
{
    reconcile(t->data);
}

/* ---- sweep: renewals, unclaimed exits, forgetting finished jobs --------------------------- */

struct renewal {
    struct job *job;
    size_t n; /* deliveries covered: the first n */
};

static void on_renewed(amqp_link *link, int status, void *ud)
{
    (void)link;
    struct renewal *rn = ud;
    struct job *job = rn->job;
    job->renewing = false;
    job->busy = false;
    if (status == 0 && !job->c->finished) {
        /* The copy is in the queue: the old deliveries can go. */
        size_t n = rn->n <= job->n_dels ? rn->n : job->n_dels;
        for (size_t i = 0; i < n; i++)
            amqp_link_ack(job->c->link, job->dels[i].gen, job->dels[i].tag);
        memmove(job->dels, job->dels + n, (job->n_dels - n) * sizeof(*job->dels));
        job->n_dels -= n;
        log_job(LOG_DEBUG, job, "running message renewed", NULL, NULL, NULL, NULL);
    }
    free(rn);
    if (!job->c->finished)
        maybe_finish(job);
}

static void on_unclaimed_removed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    job->busy = false;
    if (job->c->finished)
        return;
    if (res->err == 0 && (res->status == 204 || res->status == 404)) {
        if (res->status == 204) /* 404: gone already (a replayed destroy event, say) */
            log_job(LOG_WARN, job,
                    "removed an exited correction container no running message claimed", NULL, NULL,
                    NULL, NULL);
        if (job->has_message)
            maybe_finish(job); /* its message came meanwhile: "container missing" */
        else
            job_drop(job);
    }
}

static void on_sweep(uv_timer_t *t)
{
    completer *c = t->data;
    uint64_t now = now_ms(c);
    size_t n = idmap_size(c->jobs);
    void **all = malloc((n ? n : 1) * sizeof(void *));
    if (!all)
        return;
    n = idmap_values(c->jobs, all, n);
    for (size_t k = 0; k < n; k++) {
        struct job *job = all[k];
        if (job->state == J_WAITING && !job->has_message && job->exited && !job->busy) {
            if (now - job->exited_seen_ms >= c->cfg.retention_ms &&
                docker_container_remove(c->docker, job->container_id, true, on_unclaimed_removed,
                                        job) == 0)
                job->busy = true;
        } else if (job->state == J_WAITING && job->n_dels && !job->busy && job->running_body &&
                   now - job->dels[0].received_ms >= c->cfg.renew_ms) {
            struct renewal *rn = malloc(sizeof(*rn));
            if (!rn)
                continue;
            rn->job = job;
            rn->n = job->n_dels;
            struct amqp_link_publish_opts opts = {.message_id =
                                                      job->job_id[0] ? job->job_id : NULL};
            if (amqp_link_publish(c->link, c->cfg.running_queue, job->running_body,
                                  job->running_len, &opts, on_renewed, rn) == 0) {
                job->renewing = job->busy = true;
            } else {
                free(rn);
            }
        }
    }
    free(all);
    forget_done(c, now);
}

/* ---- the link ----------------------------------------------------------------------------- */

static void forget_delivery(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    struct job *job = value;
    job->n_dels = 0; /* the broker requeued them: they come back */
}

static void on_link_event(amqp_link *link, enum amqp_link_event ev, const char *detail, void *ud)
{
    (void)link;
    completer *c = ud;
    daemon_link_event(ev, detail);
    if (ev == AMQP_LINK_DOWN)
        idmap_each(c->jobs, forget_delivery, NULL);
}

/* ---- the handle --------------------------------------------------------------------------- */

completer *completer_new(uv_loop_t *loop, const struct completer_config *cfg, char *err,
                         size_t errlen)
{
    completer *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->cfg = *cfg;
    snprintf(c->running_invalid, sizeof(c->running_invalid), "%s.invalid", cfg->running_queue);
    c->jobs = idmap_new();
    c->finished_ids = idmap_new();
    struct docker_config dcfg = cfg->docker;
    /* Room for the multiplexed stdout: 8 bytes of frame header per write at most. */
    size_t want = cfg->max_output_bytes * 9 + 65536;
    if (dcfg.max_response_bytes < want)
        dcfg.max_response_bytes = want;
    c->docker = c->jobs && c->finished_ids ? docker_new(loop, &dcfg, err, errlen) : NULL;
    if (!c->docker) {
        idmap_free(c->finished_ids);
        idmap_free(c->jobs);
        free(c);
        return NULL;
    }
    struct amqp_link_config acfg = cfg->amqp;
    acfg.prefetch = cfg->prefetch;
    c->link = amqp_link_new(loop, &acfg, on_link_event, c);
    if (!c->link) {
        snprintf(err, errlen, "cannot create the RabbitMQ link");
        docker_free(c->docker);
        idmap_free(c->finished_ids);
        idmap_free(c->jobs);
        free(c);
        return NULL;
    }
    uv_timer_init(loop, &c->reconcile_timer);
    uv_timer_init(loop, &c->events_timer);
    uv_timer_init(loop, &c->sweep_timer);
    uv_timer_init(loop, &c->shutdown_timer);
    uv_timer_init(loop, &c->pending_timer);
    c->reconcile_timer.data = c->events_timer.data = c->sweep_timer.data = c->shutdown_timer.data =
        c->pending_timer.data = c;
    c->last_event_s = (int64_t)time(NULL);
    srand((unsigned)time(NULL) ^ (unsigned)(uintptr_t)c);
    return c;
}

int completer_start(completer *c)
{
    const char *const queues[] = {c->cfg.running_queue, c->running_invalid, QUEUE_FINISHED};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        int r = amqp_link_declare_queue(c->link, queues[i], NULL, 0);
        if (r < 0)
            return r;
    }
    int r = amqp_link_consume(c->link, c->cfg.running_queue, on_delivery, c);
    if (r < 0)
        return r;
    r = amqp_link_start(c->link);
    if (r < 0)
        return r;
    start_events(c); /* and a first list: exits from before we started */
    uv_timer_start(&c->reconcile_timer, on_reconcile, c->cfg.reconcile_ms, c->cfg.reconcile_ms);
    uint64_t sweep = c->cfg.renew_ms / 4;
    if (sweep > 30000)
        sweep = 30000;
    if (sweep < 200)
        sweep = 200;
    uv_timer_start(&c->sweep_timer, on_sweep, sweep, sweep);
    return 0;
}

static void drop_all(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    struct job *job = value;
    uv_timer_stop(&job->timer);
    uv_close((uv_handle_t *)&job->timer, job_free_cb);
}

static void finish(completer *c)
{
    if (c->finished)
        return;
    c->finished = true;
    uv_timer_stop(&c->reconcile_timer);
    uv_timer_stop(&c->events_timer);
    uv_timer_stop(&c->sweep_timer);
    uv_timer_stop(&c->shutdown_timer);
    uv_timer_stop(&c->pending_timer);
    free(c->pending);
    c->pending = NULL;
    c->n_pending = c->cap_pending = 0;
    if (c->events)
        docker_events_stop(c->events);
    c->events = NULL;
    docker_free(c->docker);
    c->docker = NULL;
    amqp_link_free(c->link); /* pending confirms get -ECANCELED: callbacks see c->finished */
    c->link = NULL;
    idmap_each(c->jobs, drop_all, NULL);
    idmap_free(c->jobs);
    c->jobs = NULL;
    idmap_free(c->finished_ids);
    c->finished_ids = NULL;
    uv_close((uv_handle_t *)&c->reconcile_timer, NULL);
    uv_close((uv_handle_t *)&c->events_timer, NULL);
    uv_close((uv_handle_t *)&c->sweep_timer, NULL);
    uv_close((uv_handle_t *)&c->shutdown_timer, NULL);
    uv_close((uv_handle_t *)&c->pending_timer, NULL);
    log_kv(LOG_INFO, "completer stopped", NULL);
    if (c->done)
        c->done(c->done_ud);
}

static void on_finish_timer(uv_timer_t *t)
{
    finish(t->data);
}

static void shutdown_check(completer *c)
{
    if (c->shutting_down && !c->finished && c->finishing == 0)
        uv_timer_start(&c->shutdown_timer, on_finish_timer, 0, 0);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    completer *c = t->data;
    log_kv(LOG_WARN, "shutdown timeout: unfinished results will be redone from their messages",
           NULL);
    finish(c);
}

void completer_shutdown(completer *c, void (*done)(void *), void *ud)
{
    if (c->shutting_down)
        return;
    c->shutting_down = true;
    c->done = done;
    c->done_ud = ud;
    log_kv(LOG_INFO, "shutting down: finishing the results in hand", NULL);
    amqp_link_pause(c->link, c->cfg.running_queue);
    if (c->finishing == 0)
        uv_timer_start(&c->shutdown_timer, on_finish_timer, 0, 0);
    else
        uv_timer_start(&c->shutdown_timer, on_shutdown_timeout, c->cfg.shutdown_timeout_ms, 0);
}

void completer_free(completer *c)
{
    free(c);
}
