/* The completer stage.
 *
 * A job is tracked by its container id in a hash map, created by whichever comes first: its
 * running message, or its container (a Docker event, or the periodic list of our labelled
 * containers, which also covers events Docker dropped). Every tracked container is inspected
 * once it is known, for its labels and its state. A job finishes, exactly once in the process,
 * when its container is over and the job's result has somewhere to go:
 *
 *   INSPECT -> stdout (bounded) [-> stderr: context for an error] -> result
 *           -> PUBLISH (confirmed) -> ack -> REMOVE (with its anonymous volumes)
 *
 * Infrastructure faults retry the current step with backoff. A job's two states (enum state)
 * and what moves it; one Docker call of a job is in flight at a time (busy: an event that
 * needs another call marks it, inspect_again, and the call's answer makes it):
 *
 *   state      event                                    then
 *   WAITING    running message                          claimed (checked against the labels
 *                                                       at the inspect; not ours: parked)
 *              start event, a list showing it running   inspect: labels, deadline armed
 *              die event, a list showing it exited      inspect; over when it says so
 *              destroy event, inspect or list: gone     over (no message: dropped)
 *              oom event                                noted (oom_event)
 *              deadline                                 kill: 204 over and timed out; 409
 *                                                       inspect; 404 gone
 *              over and claimed (maybe_finish)          FINISHING
 *              unclaimed past CONTAINER_RETENTION       exited with usable labels: FINISHING
 *                                                       from them; else removed, dropped
 *   FINISHING  INSPECT: running after all               WAITING (a stale exit)
 *                       SIGKILL, no OOM sign yet        INSPECT again after OOM_GRACE_MS
 *              STDOUT, STDERR answered                  the next step (verdict.h decides)
 *              STDERR: output lost in an outage         RERUN: started again, WAITING
 *              PUBLISH confirmed                        acked, REMOVE
 *              REMOVE answered                          dropped (its id kept FINISHED_MEMORY)
 *              a fault                                  the same step, after a backoff
 *
 * The labels are the truth (the starter writes them once, at create):
 * - Time limit. Every labelled container that runs gets a deadline timer, whether or not a
 *   running message claims it. The starter writes the label correctomatic.deadline (unix
 *   seconds) when it creates the container: the job's time limit is that deadline minus the
 *   container's creation, counted from its start (a loaded engine may take seconds between
 *   create and start, which are not the correction's); a container never started is over at
 *   the deadline itself. Our own CORRECTION_TIMEOUT applies only to containers without the
 *   label (from StartedAt). At its deadline the container is killed; "time limit exceeded" is
 *   reported only when the kill did stop it (a container that exited on its own just before
 *   is judged by its output), or, after a restart, when it died of SIGKILL at or past its
 *   deadline. A claimed container still not started at its deadline is over too ("time limit
 *   exceeded").
 * - Unclaimed containers. The starter publishes the running message only after the start, so
 *   a container whose message never reached the broker would never be reported. A container
 *   no running message claims is kept for CONTAINER_RETENTION (from its exit, or from its
 *   creation when it never started) so that a late message still finds it; then
 *   - exited, with usable labels (a UUID job_id, a valid callback, a work_id that is a JSON
 *     string or number, or none): it is finished from its labels like any job (result
 *     published to finished_corrections, then the container removed), so the job still ends
 *     in a callback. A running message that comes later is a duplicate of a finished job
 *     (acked; within FINISHED_MEMORY);
 *   - exited without usable labels, or created and never started: removed, nothing is
 *     published (a never-started container is the starter's: its pending message is still
 *     unacked, and a redelivery starts the job again). A message that comes later reports
 *     "container missing". The removal asks for no force: a starter slower than the retention
 *     between its create and its start may start the container as the sweep removes it, and
 *     the engine then refuses one of the two (409), under its own lock, instead of killing a
 *     correction whose running message is on its way (the hogged CI run of 1f1df54 lost one
 *     so, "container missing").
 * - Whose container. A running message may name any container; it is the job's only when the
 *   container carries our label correctomatic.job_id, with the message's job_id when it has
 *   one. Else the message is parked in <running queue>.invalid with the reason, and the
 *   container is left alone (never killed or removed for it).
 *
 * Output: stdout is read alone (stdout=1&stderr=0). Docker's json-file log holds both streams
 * together and rotates at its max-size; the starter keeps two files (max-file=2), so the log
 * always keeps the last max-size of output, and holds max-size or more exactly when it has
 * rotated. When no response is found, both streams are read (bounded) and, when the log holds
 * about (max-file - 1) x max-size or more, the result is "output too large" (the response may
 * have been rotated out by stderr) rather than "no response found".
 *
 * Engine outages: output a container prints while the engine is down is lost when it exits
 * before the engine is back (the engine no longer reads its pipes once it restarts). The
 * completer remembers when the engine did not answer; a job that finished then without a
 * response found is the engine's fault, not the student's: its container is started again,
 * once (same container, same /tmp/exercise, a fresh time limit from its new StartedAt), and
 * only the second run's output is read (logs since the first run's FinishedAt, and since the
 * log's last line when it is started again: the engine may copy the first run's output late,
 * on its return, with later times). Should that
 * run end in an outage too, or the engine refuse the start, the result is "output lost" (the
 * engine's fault, said so), not "no response found". (A completer restarted in between does
 * not know: it reads the whole log of the second run, or says "no response found".)
 *
 * Results: every text from outside (stderr tails, parser details) goes through the error form
 * of msg.h, which makes it valid UTF-8; a result that does not fit MAX_MESSAGE_BYTES (the
 * notifier's limit, the same variable) becomes "output too large"; a response that cannot be
 * serialized becomes an error result. Only an out-of-memory is retried.
 *
 * Long corrections: RabbitMQ closes a channel whose delivery stays unacked past its consumer
 * timeout, so a running message held for renew_ms is re-published (confirmed) and the old
 * delivery acked; the copy comes back to the same job. */
/* Why one file of about 2,150 lines: a job's two halves (its running message, its container)
 * meet here, and every part (the map, the waiting, the finishing steps, renewals, the sweep)
 * reads and writes the same job. What is not the job's is apart: the events stream and the
 * list (common/watch), what a result says (common/verdict), the output's parsing
 * (common/output), the wire (common/msg). */
#include "completer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "daemon.h"
#include "dtime.h"
#include "idmap.h"
#include "ids.h"
#include "log.h"
#include "lost.h"
#include "metrics.h"
#include "msg.h"
#include "names.h"
#include "output.h"
#include "qtype.h"
#include "schedule.h"
#include "text.h"
#include "verdict.h"
#include "watch.h"

#define REASON_OUTPUT_TOO_LARGE OUTPUT_REASON_TOO_LARGE
#define STDERR_TAIL_LINES 20
#define STDERR_TAIL_BYTES 2048
/* Engine outages remembered (see engine_down). */
#define OUTAGES 8
#define OUTAGE_MARGIN_MS 2000
/* The least a json-file log entry takes besides its text:
 * {"log":"","stream":"stdout","time":"2006-01-02T15:04:05Z"} and a newline. */
#define LOG_ENTRY_MIN_BYTES 59

/* How long a SIGKILLed container waits for the engine's "oom" event (see oom_unsettled). The
 * event ends the wait as soon as it comes; only a SIGKILL that was not the OOM killer's waits it
 * all. 2 s was not enough on a loaded 2-core machine (CI, with a CPU hog beside the suite). */
#define OOM_GRACE_MS 10000

enum state { J_WAITING, J_FINISHING };
enum fstep { F_INSPECT, F_STDOUT, F_STDERR, F_MARK, F_RERUN, F_PUBLISH, F_REMOVE };
/* The container, as last seen. */
enum cstate { C_UNKNOWN, C_CREATED, C_RUNNING, C_OVER };

struct delivery {
    uint64_t gen, tag;
    uint64_t received_ms;
};

/* A running message with another body than the one its job holds, come before the job's
 * container was inspected: its claim cannot be judged yet, and merged with the first it would
 * be acked with the first's fate, unseen. Kept aside, it is handled anew once the inspect has
 * answered (parked, or the job's), or returned to the queue when the job ends. */
struct aside {
    struct aside *next;
    uint64_t gen, tag;
    size_t len;
    char body[];
};

struct job {
    completer *c;
    char container_id[65];
    char job_id[MSG_MAX_JOB_ID_BYTES + 1];     /* the message's, else the label's */
    char msg_job_id[MSG_MAX_JOB_ID_BYTES + 1]; /* the running message's ("" legacy/none) */
    char work_id_log[128];
    json_t *work_id;
    char *callback;
    char *running_body; /* for renewal, and for parking */
    size_t running_len;
    struct delivery *dels;
    size_t n_dels, cap_dels;
    bool has_message;
    struct aside *aside;      /* other claims waiting for the inspect (see struct aside) */
    uint64_t added_list;      /* c->list_seq when the job was added */
    uint64_t registered_list; /* c->list_seq when its message was registered */
    /* the container, from its inspects, events and lists */
    bool inspected; /* its labels are read */
    bool ours;      /* it carries LABEL_JOB_ID */
    char label_job_id[MSG_MAX_JOB_ID_BYTES + 1];
    char *label_callback; /* set only when the labels can report the job (see the top) */
    json_t *label_work_id;
    const char *labels_unusable; /* why not, for the log */
    json_t *labels;              /* as last inspected (for a legacy message's claim) */
    enum cstate cstate;
    int64_t deadline_ms;         /* wall clock; 0: not known (not started, no label) */
    int64_t limit_s;             /* the time limit, for the error text */
    int64_t created_ms, over_ms; /* wall clock: for CONTAINER_RETENTION */
    size_t log_cap;              /* json-file max-size, 0 when unknown */
    unsigned log_files;          /* json-file max-file */
    bool exited;                 /* the container is not running any more, or is gone */
    bool gone;                   /* Docker does not know it any more */
    bool timed_out;              /* we killed it at its deadline (or it never started) */
    bool unstarted;              /* ... because it was never started */
    unsigned kill_refused;       /* kills answered 409 (not running) */
    bool busy;                   /* a Docker call or publish in flight */
    bool inspect_again;          /* its state changed while an inspect was in flight */
    bool published;              /* the result is confirmed: later deliveries are duplicates */
    enum state state;
    enum fstep step;
    unsigned attempts;
    uv_timer_t timer; /* WAITING: the deadline or an inspect retry; FINISHING: retry backoff */
    bool timer_is_deadline;
    /* finishing */
    json_t *inspect;
    const char *missing; /* the detail of "container missing", or NULL */
    struct output_buf out, err;
    bool out_too_large;
    bool parsed; /* stdout parsed: response or parse_err */
    json_t *response;
    struct msg_error *parse_err; /* why there is no response (only while finishing) */
    bool log_rotated;
    char *result;
    /* run again once, its output lost in an engine outage (see the top); its logs are read
     * from since (unix seconds, engine clock: after the first run's FinishedAt and after the
     * log's last line when the second run was started, on_mark) */
    bool rerun_tried;
    char since[32];
    /* the engine's "oom" event for it; and whether a SIGKILL without the OOM flag has had its
     * grace (see oom_unsettled) */
    bool oom_event, oom_waited;
    /* for the metrics: the result's outcome and reason, and when the job was submitted
     * (HEADER_SUBMITTED of its running message, 0 when absent) */
    bool failed;
    char reason[64];
    int64_t submitted_ms;
};

/* A time the engine did not answer, wall clock: [from, to]; to == 0 while it lasts. */
struct outage {
    int64_t from, to;
};

struct completer {
    uv_loop_t *loop;
    struct completer_config cfg;
    char running_invalid[256]; /* <running queue>.invalid */
    amqp_link *link;
    docker *docker;
    watch *events; /* the container events: die, destroy, start, oom */
    idmap *jobs;
    idmap *finished_ids; /* finished containers: see remember_done */
    uint64_t list_seq;   /* lists asked for so far (the one in flight included) */
    uv_timer_t sweep_timer;
    bool listing;
    struct outage outages[OUTAGES]; /* a ring; the current one at outage_at */
    size_t outage_at;
    struct stage_stop stop; /* the way out (common/daemon.h) */
    lost *lost;             /* running_corrections.lost: other hosts' messages (lost.h) */
    unsigned finishing;     /* jobs in J_FINISHING */
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

/* Output a container writes while the engine is down is lost when it exits before the engine is
 * back (the engine no longer reads its pipes). The completer remembers when the engine did not
 * answer, so that such a job is not reported as printing no response. */
static void engine_down(completer *c)
{
    struct outage *o = &c->outages[c->outage_at];
    if (o->from && !o->to)
        return; /* already in one */
    if (o->from)
        o = &c->outages[c->outage_at = (c->outage_at + 1) % OUTAGES];
    o->from = metrics_wall_ms() - OUTAGE_MARGIN_MS; /* noticed a little after it began */
    o->to = 0;
}

static void engine_up(completer *c)
{
    struct outage *o = &c->outages[c->outage_at];
    if (o->from && !o->to)
        o->to = metrics_wall_ms();
}

/* Whether t (wall ms) falls in an outage we saw. */
static bool engine_was_down(const completer *c, int64_t t)
{
    for (size_t i = 0; t && i < OUTAGES; i++) {
        const struct outage *o = &c->outages[i];
        if (o->from && t >= o->from && (!o->to || t <= o->to))
            return true;
    }
    return false;
}

/* A Docker reply: the engine answered (any HTTP status), or not. */
static void engine_saw(completer *c, const struct docker_result *res)
{
    if (res->err == 0)
        engine_up(c);
    else if (res->err != -EFBIG && res->err != -ETIMEDOUT)
        engine_down(c);
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
    json_decref(job->label_work_id);
    json_decref(job->labels);
    json_decref(job->inspect);
    json_decref(job->response);
    free(job->parse_err);
    free(job->callback);
    free(job->label_callback);
    free(job->running_body);
    free(job->dels);
    free(job->result);
    output_buf_free(&job->out);
    output_buf_free(&job->err);
    free(job);
}

/* Forgets the job, cancelling its Docker calls; never while its publish is in flight (the
 * confirm callback would find it gone). */
static void job_drop(struct job *job)
{
    completer *c = job->c;
    docker_cancel(c->docker, job);
    while (job->aside) {
        struct aside *a = job->aside;
        job->aside = a->next;
        if (!c->stop.finished && c->link)
            amqp_link_nack(c->link, a->gen, a->tag, true);
        free(a);
    }
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
    job->added_list = c->list_seq;
    if (idmap_put(c->jobs, job->container_id, job) < 0) {
        free(job);
        return NULL;
    }
    uv_timer_init(c->loop, &job->timer);
    job->timer.data = job;
    return job;
}

/* The container is over (exited, dead, killed or gone). */
static void container_over(struct job *job)
{
    /* Whichever told it first (an event, the list, an inspect): said once. */
    if (!job->exited && !job->has_message && !job->gone)
        log_job(LOG_DEBUG, job, "container exited before its running message", NULL, NULL, NULL,
                NULL);
    job->exited = true;
    job->cstate = C_OVER;
    if (!job->over_ms)
        job->over_ms = metrics_wall_ms();
    if (job->state == J_WAITING && job->timer_is_deadline)
        uv_timer_stop(&job->timer);
}

/* A claimed job finishes once its container is over. Its container is inspected first (unless
 * it is gone): whose it is decides whether the message may claim it. */
static void maybe_finish(struct job *job)
{
    if (job->state != J_WAITING || !job->has_message || !job->exited || job->busy)
        return;
    if (!job->inspected && !job->gone) {
        job_inspect(job);
        return;
    }
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
    uint64_t delay =
        schedule_backoff_ms(c->cfg.retry_min_ms, c->cfg.retry_max_ms, job->attempts, ids_jitter());
    job->attempts++;
    static const char *const names[] = {
        [F_INSPECT] = "inspect", [F_STDOUT] = "stdout",   [F_STDERR] = "stderr", [F_MARK] = "mark",
        [F_RERUN] = "rerun",     [F_PUBLISH] = "publish", [F_REMOVE] = "remove"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == F_REMOVE + 1, "a name per step");
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

/* ---- the container's facts: labels, times, log -------------------------------------------- */

/* "2026-11-22T06:10:11.123456789Z" -> unix ms; 0 when unparsable or zero time. */
static int64_t parse_docker_time(const char *s)
{
    struct dtime t;
    return s && dtime_parse(s, strlen(s), &t) == 0 ? dtime_ms(t) : 0;
}

/* The deadline label: unix seconds, digits only; 0 when absent or not such a number. */
static int64_t label_deadline_s(json_t *labels)
{
    const char *s = json_string_value(json_object_get(labels, LABEL_DEADLINE));
    if (!s || !*s || strlen(s) > 12 || strspn(s, "0123456789") != strlen(s))
        return 0;
    return (int64_t)strtoll(s, NULL, 10);
}

/* Whether the labels can report the job without its running message: label_callback and
 * label_work_id are set only when they can; else labels_unusable says why. */
static void read_label_result(struct job *job, json_t *labels)
{
    const char *jid = json_string_value(json_object_get(labels, LABEL_JOB_ID));
    const char *cb = json_string_value(json_object_get(labels, LABEL_CALLBACK));
    json_t *wl = json_object_get(labels, LABEL_WORK_ID);
    struct msg_error err;
    json_t *wid = NULL;
    if (!jid || !ids_is_uuid(jid)) {
        job->labels_unusable = "label " LABEL_JOB_ID " is not a UUID";
        return;
    }
    if (!cb || strlen(cb) > MSG_MAX_URL_BYTES || msg_validate_callback(cb, &err) < 0) {
        job->labels_unusable = "no valid label " LABEL_CALLBACK;
        return;
    }
    if (wl) {
        const char *w = json_string_value(wl);
        wid = w ? json_loads(w, JSON_DECODE_ANY, NULL) : NULL;
        if (!wid || !(json_is_number(wid) || json_is_string(wid)) ||
            (json_is_string(wid) && json_string_length(wid) > MSG_MAX_WORK_ID_BYTES)) {
            json_decref(wid);
            job->labels_unusable = "label " LABEL_WORK_ID " is not a JSON string or number";
            return;
        }
    }
    job->label_callback = strdup(cb);
    if (!job->label_callback) {
        json_decref(wid);
        job->labels_unusable = "out of memory";
        return;
    }
    job->label_work_id = wid;
}

/* Reads what the job needs from an inspect answer: whose container it is, its time limit, its
 * times and its log configuration. Returns its State.Status (NULL when absent). */
static const char *read_container(struct job *job, json_t *ins)
{
    completer *c = job->c;
    json_t *labels = json_object_get(json_object_get(ins, "Config"), "Labels");
    json_t *st = json_object_get(ins, "State");
    const char *jid = json_string_value(json_object_get(labels, LABEL_JOB_ID));
    json_decref(job->labels);
    job->labels = json_incref(labels);
    job->ours = jid != NULL;
    snprintf(job->label_job_id, sizeof(job->label_job_id), "%s", jid ? jid : "");
    if (!job->job_id[0] && jid && strlen(jid) <= MSG_MAX_JOB_ID_BYTES)
        snprintf(job->job_id, sizeof(job->job_id), "%s", jid);
    if (!job->inspected && job->ours)
        read_label_result(job, labels);
    job->inspected = true;

    job->created_ms = parse_docker_time(json_string_value(json_object_get(ins, "Created")));
    int64_t started = parse_docker_time(json_string_value(json_object_get(st, "StartedAt")));
    int64_t dl = label_deadline_s(labels);
    int64_t limit_ms = (int64_t)c->cfg.correction_timeout_ms;
    if (dl > 0 && job->created_ms && dl * 1000 > job->created_ms) {
        /* One time limit per job, written once by the starter: the deadline it wrote when it
         * created the container. The run gets all of it from its start: on a loaded engine,
         * the seconds between create and start are not the correction's. Never started: the
         * deadline itself. */
        job->limit_s = (dl * 1000 - job->created_ms + 500) / 1000;
        if (job->limit_s < 1)
            job->limit_s = 1;
        job->deadline_ms = started ? started + job->limit_s * 1000 : dl * 1000;
    } else if (dl > 0) {
        /* A deadline already past when the container was created: the time limit of the
         * starter is unknown, ours applies from the start. */
        job->limit_s = limit_ms / 1000;
        job->deadline_ms = started ? started + limit_ms : dl * 1000;
    } else {
        job->deadline_ms = started ? started + limit_ms : 0;
        job->limit_s = limit_ms / 1000;
    }

    job->log_cap = 0;
    json_t *lc = json_object_get(json_object_get(ins, "HostConfig"), "LogConfig");
    const char *type = json_string_value(json_object_get(lc, "Type"));
    const char *size =
        json_string_value(json_object_get(json_object_get(lc, "Config"), "max-size"));
    const char *files =
        json_string_value(json_object_get(json_object_get(lc, "Config"), "max-file"));
    uint64_t cap;
    if (type && strcmp(type, "json-file") == 0 && size && config_parse_bytes(size, &cap) == 0 &&
        cap > 0 && cap < SIZE_MAX / 16) {
        long n = files ? strtol(files, NULL, 10) : 1;
        job->log_cap = (size_t)cap;
        job->log_files = n >= 1 && n <= 16 ? (unsigned)n : 1;
    }

    const char *status = json_string_value(json_object_get(st, "Status"));
    if (!status || strcmp(status, "exited") == 0 || strcmp(status, "dead") == 0 ||
        strcmp(status, "removing") == 0) {
        int64_t fin = parse_docker_time(json_string_value(json_object_get(st, "FinishedAt")));
        if (fin)
            job->over_ms = fin;
    }
    return status;
}

static bool status_over(const char *status)
{
    return !status || strcmp(status, "exited") == 0 || strcmp(status, "dead") == 0 ||
           strcmp(status, "removing") == 0;
}

/* ---- the result --------------------------------------------------------------------------- */

/* The error form, for the same job: its text is made valid UTF-8 and bounded by msg.h, so it
 * always serializes (NULL only on ENOMEM: the publish step builds it again). */
static void set_error(struct job *job, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(struct job *job, const char *reason, const char *fmt, ...)
{
    char detail[2048], text[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(text, sizeof(text), "%s - %s", reason, detail);
    job->failed = true;
    snprintf(job->reason, sizeof(job->reason), "%s", reason);
    free(job->result);
    job->result = msg_finished_error_serialize(job->work_id, job->job_id[0] ? job->job_id : NULL,
                                               job->callback, text);
    char safe[sizeof(text)];
    text_utf8_copy(safe, sizeof(safe), text, strlen(text));
    log_job(LOG_INFO, job, "correction failed", "reason", safe, NULL, NULL);
}

/* The response as the result, when it fits the next hop's MAX_MESSAGE_BYTES (re-serialized
 * numbers may grow: 1e300 becomes 1.0000000000000001e+300); else "output too large". */
static void set_success(struct job *job, json_t *response)
{
    completer *c = job->c;
    size_t max = c->cfg.amqp.max_message_bytes;
    struct finished_msg m = {.work_id = job->work_id,
                             .error = false,
                             .correction_data = response,
                             .callback = job->callback,
                             .job_id = job->job_id[0] ? job->job_id : NULL};
    free(job->result);
    job->result = msg_finished_serialize(&m);
    if (!job->result) {
        /* Not retried: the same response would fail the same way. */
        set_error(job, OUTPUT_REASON_INVALID_FORMAT, "the response could not be serialized");
        return;
    }
    size_t len = strlen(job->result);
    if (len <= max) {
        job->failed = false;
        job->reason[0] = '\0';
        log_job(LOG_INFO, job, "correction finished", NULL, NULL, NULL, NULL);
        return;
    }
    free(job->result);
    job->result = msg_finished_serialize_fit(&m, max, NULL);
    if (!job->result) {
        set_error(job, REASON_OUTPUT_TOO_LARGE,
                  "the result is %zu bytes once serialized, over the limit of %zu bytes", len, max);
        return;
    }
    char why[160];
    job->failed = true;
    snprintf(job->reason, sizeof(job->reason), "%s", REASON_OUTPUT_TOO_LARGE);
    snprintf(why, sizeof(why), "%zu bytes, over MAX_MESSAGE_BYTES (%zu)", len, max);
    log_job(LOG_INFO, job, "correction failed", "reason", REASON_OUTPUT_TOO_LARGE, "detail", why);
}

static long long exit_code(const struct job *job)
{
    return json_integer_value(json_object_get(json_object_get(job->inspect, "State"), "ExitCode"));
}

/* When the container finished (its last inspect), unix ms; 0 when not known. */
static int64_t finished_ms(const struct job *job)
{
    return parse_docker_time(
        json_string_value(json_object_get(json_object_get(job->inspect, "State"), "FinishedAt")));
}

/* We killed it at its deadline; or (after a restart, say) it died of SIGKILL at or past it. */
static bool job_timed_out(const struct job *job)
{
    if (job->timed_out)
        return true;
    int64_t fin = finished_ms(job);
    /* Past the deadline while the engine was down, nothing could kill it at its time limit: it
     * ended then however the engine left it (exit code 255 when its status was lost). */
    return job->deadline_ms && fin && fin >= job->deadline_ms &&
           (exit_code(job) == 137 || engine_was_down(job->c, fin));
}

static bool job_oom(const struct job *job)
{
    return job->oom_event ||
           json_is_true(json_object_get(json_object_get(job->inspect, "State"), "OOMKilled"));
}

/* Killed by SIGKILL, not by us, and not (yet) known to be out of memory. The engine handles a
 * container's exit and its out-of-memory kill as two events, in the order they reach it; under
 * load the exit can come first, and the inspect that follows the "die" event then shows
 * OOMKilled false until the "oom" event is handled. Such an exit waits OOM_GRACE_MS, once, for
 * that event before it is reported as killed by a signal. */
static bool oom_unsettled(const struct job *job)
{
    return !job->oom_waited && exit_code(job) == 137 && !job_oom(job) && !job_timed_out(job);
}

/* Sets job->response, or job->parse_err (both NULL only for want of memory). */
static void parse_output(struct job *job)
{
    if (job->parsed && (job->response || job->parse_err))
        return;
    job->parsed = true;
    json_decref(job->response);
    job->response = NULL;
    struct msg_error err;
    if (output_parse(job->out.data ? job->out.data : "", job->out.len, &job->response, &err) == 0) {
        json_object_del(job->response, "work_id"); /* the container cannot change work_id */
        return;
    }
    if (!job->parse_err)
        job->parse_err = malloc(sizeof(*job->parse_err));
    if (job->parse_err)
        *job->parse_err = err;
}

/* An error result needs the stderr tail (and, with no response, a look at the log's size). */
static bool needs_context(struct job *job)
{
    if (job->missing || job_timed_out(job) || job->out_too_large)
        return false;
    parse_output(job);
    return !job->response || job_oom(job);
}

/* No response, and the container finished while the engine was down: its output may have been
 * lost by the engine. Run it again, once. */
static bool should_rerun(struct job *job)
{
    if (job->rerun_tried || job->missing || job->gone || job_timed_out(job) || job_oom(job) ||
        job->out_too_large || job->log_rotated)
        return false;
    parse_output(job);
    if (job->response || !job->parse_err)
        return false;
    int64_t fin = finished_ms(job);
    return engine_was_down(job->c, fin);
}

/* Decides the result from what the finishing steps gathered (common/verdict); safe to call
 * again (the publish step does, when the result could not be built for want of memory). */
static void build_result(struct job *job)
{
    completer *c = job->c;
    struct verdict_facts f = {
        .missing = job->missing,
        .timed_out = !job->missing && job_timed_out(job),
        .unstarted = job->unstarted,
        .limit_s = (long long)job->limit_s,
        .oom = job_oom(job),
        .memory = json_integer_value(
            json_object_get(json_object_get(job->inspect, "HostConfig"), "Memory")),
        .out_too_large = job->out_too_large,
        .max_output = c->cfg.max_output_bytes,
        .log_rotated = job->log_rotated,
        .log_bytes = job->log_cap * job->log_files,
        .exit_code = exit_code(job),
        .stderr_data = job->err.data,
        .stderr_len = job->err.len,
    };
    if (!f.missing && !f.timed_out && !f.oom && !f.out_too_large) {
        parse_output(job);
        if (!job->response && !job->parse_err) {
            free(job->result);
            job->result = NULL; /* out of memory: the publish step tries again */
            return;
        }
        f.has_response = job->response != NULL;
        f.parse_err = job->parse_err;
        f.output_lost = !f.has_response && engine_was_down(c, finished_ms(job));
    }
    struct verdict v;
    verdict_decide(&f, &v);
    if (v.success)
        set_success(job, job->response);
    else
        set_error(job, v.reason, "%s", v.detail);
}

/* ---- finishing steps ---------------------------------------------------------------------- */

static bool reply_ok(struct job *job, const struct docker_result *res)
{
    job->busy = false;
    if (job->c->stop.finished)
        return false;
    engine_saw(job->c, res);
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

static void finish_missing(struct job *job, const char *detail);

/* reply_ok, and the container still there (a 404 is "container missing"). */
static bool reply_there(struct job *job, const struct docker_result *res)
{
    if (!reply_ok(job, res))
        return false;
    if (res->status == 404) {
        finish_missing(job, "the container was removed before its output could be read");
        return false;
    }
    return true;
}

static void back_to_waiting(struct job *job)
{
    job->exited = false;
    job->cstate = C_UNKNOWN;
    job->state = J_WAITING;
    job->c->finishing--;
    job_inspect(job);
}

/* The result decided from what was gathered, then published. */
static void finish_publish(struct job *job)
{
    build_result(job);
    finish_goto(job, F_PUBLISH);
}

/* The container is gone before its output could be read: "container missing", published. */
static void finish_missing(struct job *job, const char *detail)
{
    job->missing = detail;
    finish_publish(job);
}

static void on_finish_inspect(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_there(job, res))
        return;
    if (res->status != 200 || !json_is_object(res->json)) {
        finish_retry(job, res->message);
        return;
    }
    const char *status = read_container(job, res->json);
    if (!status_over(status) && !(strcmp(status, "created") == 0 && job->timed_out)) {
        /* Not over after all (a stale exit, or not even started): back to waiting. */
        back_to_waiting(job);
        return;
    }
    json_decref(job->inspect);
    job->inspect = json_incref(res->json);
    if (oom_unsettled(job)) {
        job->oom_waited = true;
        log_job(LOG_DEBUG, job, "killed by SIGKILL without the OOM flag: waiting for an oom event",
                NULL, NULL, NULL, NULL);
        job->timer_is_deadline = false;
        uv_timer_start(&job->timer, on_retry_timer, OOM_GRACE_MS, 0); /* inspects again */
        return;
    }
    finish_goto(job, F_STDOUT);
}

static void after_output(struct job *job)
{
    if (needs_context(job)) {
        finish_goto(job, F_STDERR);
        return;
    }
    finish_publish(job);
}

static void on_stdout(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_ok(job, res))
        return;
    job->parsed = false;
    if (res->err == -EFBIG) {
        job->out_too_large = true;
        after_output(job);
        return;
    }
    if (res->status == 404) {
        finish_missing(job, "the container was removed before its output was read");
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
    after_output(job);
}

/* Reading both streams for the log check: without a response, and with a capped json-file
 * log that may have rotated. */
static bool log_check(const struct job *job)
{
    return job->log_cap && !job->response;
}

/* What a full json-file log holds once it has rotated: (max-file - 1) x max-size (with one
 * file, the current one only). 4/5 of it, as the size is estimated from below. */
static size_t log_rotated_bytes(const struct job *job)
{
    size_t files = job->log_files > 1 ? job->log_files - 1 : 1;
    return job->log_cap / 5 * 4 * files;
}

/* A lower bound of the json-file bytes behind a multiplexed log stream: each frame is one
 * entry. */
static uint64_t log_json_bytes(const unsigned char *raw, size_t len)
{
    uint64_t total = 0;
    size_t i = 0;
    while (i + 8 <= len) {
        uint32_t n = (uint32_t)raw[i + 4] << 24 | (uint32_t)raw[i + 5] << 16 |
                     (uint32_t)raw[i + 6] << 8 | raw[i + 7];
        total += (uint64_t)n + LOG_ENTRY_MIN_BYTES;
        i += 8 + (size_t)n;
    }
    return total;
}

static void on_stderr(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_ok(job, res))
        return;
    output_buf_free(&job->err);
    job->log_rotated = false;
    if (log_check(job)) {
        size_t threshold = log_rotated_bytes(job);
        if (res->err == -EFBIG) {
            job->log_rotated = true; /* more than threshold bytes even as a stream */
        } else if (res->err == 0 && res->status == 200) {
            job->log_rotated =
                log_json_bytes((const unsigned char *)res->body, res->body_len) >= threshold;
            output_demux(res->body, res->body_len, NULL, &job->err); /* context only */
        }
    } else if (res->err == 0 && res->status == 200) {
        output_demux(res->body, res->body_len, NULL, &job->err); /* best effort: context only */
    }
    if (should_rerun(job)) {
        finish_goto(job, F_MARK);
        return;
    }
    finish_publish(job);
}

/* Where the second run's output will begin: after the first run's FinishedAt and after the
 * last line the log holds now. The engine timestamps a line when it copies it from the
 * container's pipe, and after a restart it may copy what the first run printed during the
 * outage only then, after the first read found nothing: a later FinishedAt-based `since`
 * would read that response too, before the second run's (two JSON documents). */
static void on_mark(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_there(job, res))
        return;
    struct dtime since = {0}, last;
    const char *fin =
        json_string_value(json_object_get(json_object_get(job->inspect, "State"), "FinishedAt"));
    if (fin && dtime_parse(fin, strlen(fin), &since) < 0)
        since = (struct dtime){0};
    if (res->status == 200 && output_latest_time(res->body, res->body_len, &last) > 0 &&
        dtime_cmp(last, since) >= 0)
        since = dtime_next(last);
    if (since.sec <= 0) {
        /* no time to read from: the second run's output could not be told from the first's */
        finish_publish(job);
        return;
    }
    dtime_since(since, job->since, sizeof(job->since));
    finish_goto(job, F_RERUN);
}

/* The first run's results are forgotten; the job waits for the second run's exit. */
static void on_rerun_started(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!reply_there(job, res))
        return;
    job->rerun_tried = true;
    if (res->status != 204 && res->status != 304) {
        /* refused: say what happened (output lost) */
        log_job(LOG_WARN, job, "cannot run the correction again", "error", res->message, NULL,
                NULL);
        finish_publish(job);
        return;
    }
    log_job(LOG_WARN, job,
            "the container finished during an engine outage without a response: its output was "
            "lost, running the correction again",
            "since", job->since, NULL, NULL);
    json_decref(job->inspect);
    job->inspect = NULL;
    json_decref(job->response);
    job->response = NULL;
    free(job->parse_err);
    job->parse_err = NULL;
    job->parsed = false;
    job->out_too_large = job->log_rotated = false;
    output_buf_free(&job->out);
    output_buf_free(&job->err);
    free(job->result);
    job->result = NULL;
    job->kill_refused = 0;
    job->over_ms = 0;
    job->oom_event = job->oom_waited = false;
    back_to_waiting(job); /* its inspect reads the new StartedAt, hence the new deadline */
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
    /* Only the container id is kept (FINISHED_MEMORY), to recognise a duplicate message. */
    remember_done(c, job->container_id);
    job_drop(job);
    shutdown_check(c);
}

static const double run_bounds[] = {0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 180, 300, 600, 1800};
static struct metric m_run = METRIC_HISTOGRAM(
    "correctomatic_container_run_seconds",
    "Correction containers' run time, from their start to their exit (the engine's clock).",
    run_bounds);
static struct metric m_tracked =
    METRIC_GAUGE("correctomatic_jobs_tracked", "Containers and running messages followed.");

static double read_tracked(void *ud)
{
    return (double)idmap_size(((completer *)ud)->jobs);
}

static void metrics_setup(completer *c)
{
    m_tracked.read = read_tracked;
    m_tracked.userdata = c;
    metrics_register(&metrics_jobs_taken);
    metrics_register(&metrics_jobs_finished);
    metrics_register(&m_run);
    metrics_register(&m_tracked);
}

/* A result confirmed by the broker: its outcome, and how long its container ran. */
static void count_finished(const struct job *job)
{
    METRIC_INC(&metrics_jobs_finished, job->failed ? "error" : "graded", job->reason);
    json_t *st = json_object_get(job->inspect, "State");
    int64_t started = parse_docker_time(json_string_value(json_object_get(st, "StartedAt")));
    int64_t fin = parse_docker_time(json_string_value(json_object_get(st, "FinishedAt")));
    /* a container that exits at once may have its FinishedAt before its StartedAt (the engine
     * writes StartedAt once the process already ran): 0 then */
    if (started > 0 && fin > 0)
        metric_observe(&m_run, fin > started ? (double)(fin - started) / 1000.0 : 0, NULL);
}

static void on_published(amqp_link *link, int status, void *ud)
{
    (void)link;
    struct job *job = ud;
    job->busy = false;
    if (job->c->stop.finished)
        return;
    if (status < 0) {
        finish_retry(job, status == -ECONNRESET ? "connection lost before the confirm"
                                                : "result not confirmed by the broker");
        return;
    }
    job->published = true;
    count_finished(job);
    ack_deliveries(job);
    finish_goto(job, F_REMOVE);
}

/* What a log read may bring: MAX_OUTPUT_BYTES as a multiplexed stream, 8 bytes of frame
 * header per write at most. */
static size_t logs_max(const completer *c)
{
    return c->cfg.max_output_bytes * 9 + 65536;
}

static void finish_run(struct job *job)
{
    completer *c = job->c;
    if (c->stop.finished)
        return;
    int r = 0;
    switch (job->step) {
    case F_INSPECT:
        r = docker_container_inspect(c->docker, job->container_id, on_finish_inspect, job);
        break;
    case F_STDOUT: {
        struct docker_logs what = {.out = true, .since = job->since, .max_bytes = logs_max(c)};
        r = docker_container_logs(c->docker, job->container_id, &what, on_stdout, job);
        break;
    }
    case F_STDERR: {
        /* the log check reads both streams, the whole log; else the tail of stderr */
        struct docker_logs what = {.max_bytes = log_rotated_bytes(job)};
        if (!log_check(job))
            what = (struct docker_logs){.err = true,
                                        .tail = STDERR_TAIL_LINES,
                                        .since = job->since,
                                        .max_bytes = logs_max(c)};
        r = docker_container_logs(c->docker, job->container_id, &what, on_stderr, job);
        break;
    }
    case F_MARK: {
        /* the log's last line, any stream, with its time; a line is 16 KiB at most */
        struct docker_logs what = {.tail = 1, .timestamps = true, .max_bytes = 65536};
        r = docker_container_logs(c->docker, job->container_id, &what, on_mark, job);
        break;
    }
    case F_RERUN:
        r = docker_container_start(c->docker, job->container_id, on_rerun_started, job);
        break;
    case F_PUBLISH: {
        if (!job->result)
            build_result(job);
        if (!job->result) {
            finish_retry(job, "out of memory");
            return;
        }
        struct amqp_link_header times[] = {{.key = HEADER_FINISHED, .num = metrics_wall_ms()},
                                           {.key = HEADER_SUBMITTED, .num = job->submitted_ms}};
        struct amqp_link_publish_opts opts = {.message_id = job->job_id[0] ? job->job_id : NULL,
                                              .headers = times,
                                              .n_headers = job->submitted_ms ? 2 : 1};
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

static void arm_deadline(struct job *job)
{
    int64_t left = job->deadline_ms ? job->deadline_ms - metrics_wall_ms()
                                    : (int64_t)job->c->cfg.correction_timeout_ms;
    if (left < 0)
        left = 0;
    if (job->kill_refused && left < 1000)
        left = 1000; /* paused, say: not a tight loop of refused kills */
    job->timer_is_deadline = true;
    uv_timer_start(&job->timer, on_deadline, (uint64_t)left, 0);
}

static void on_killed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    completer *c = job->c;
    job->busy = false;
    if (c->stop.finished || job->state != J_WAITING)
        return;
    if (res->err == 0 && res->status == 204) {
        /* The kill stopped it: the time limit, whatever its output says. */
        job->timed_out = true;
        container_over(job);
        maybe_finish(job);
        return;
    }
    if (res->err == 0 && res->status == 404) {
        job->gone = true;
        container_over(job);
        if (!job->has_message)
            job_drop(job);
        else
            maybe_finish(job);
        return;
    }
    if (res->err == 0 && res->status == 409) {
        /* Not running: it exited on its own just now (judged by its output), or it was never
         * started. The inspect tells. */
        job->kill_refused++;
        job_inspect(job);
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
    if (job->state != J_WAITING || c->stop.finished)
        return;
    if (job->busy) {
        /* An inspect or a renewal in flight: the deadline is not forgotten. */
        job->timer_is_deadline = true;
        uv_timer_start(&job->timer, on_deadline, 200, 0);
        return;
    }
    if (job->exited) {
        maybe_finish(job);
        return;
    }
    if (job->cstate == C_CREATED) {
        job_inspect(job); /* still not started? then over */
        return;
    }
    log_job(LOG_INFO, job, "time limit reached, killing the container", NULL, NULL, NULL, NULL);
    if (docker_container_kill(c->docker, job->container_id, "KILL", on_killed, job) == 0)
        job->busy = true;
    else
        uv_timer_start(&job->timer, on_deadline, 1000, 0);
}

static void waiting_retry(uv_timer_t *t);
static int check_claim(struct job *job);

static void on_delivery(amqp_link *link, const struct amqp_link_delivery *d, void *ud);

/* The claims kept aside (struct aside), handled again as deliveries. */
static void aside_replay(completer *c, struct aside *a)
{
    while (a) {
        struct aside *next = a->next;
        if (!c->stop.finished) {
            struct amqp_link_delivery d = {.generation = a->gen,
                                           .delivery_tag = a->tag,
                                           .queue = c->cfg.running_queue,
                                           .body = a->body,
                                           .body_len = a->len};
            on_delivery(c->link, &d, c);
        }
        free(a);
        a = next;
    }
}

static void wait_inspected(const struct docker_result *res, struct job *job);

static void on_wait_inspect(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    completer *c = job->c;
    struct aside *aside = job->aside; /* the job may be dropped below */
    job->aside = NULL;
    wait_inspected(res, job);
    aside_replay(c, aside);
}

static void wait_inspected(const struct docker_result *res, struct job *job)
{
    completer *c = job->c;
    job->busy = false;
    if (c->stop.finished || job->state != J_WAITING)
        return;
    engine_saw(c, res);
    if (res->err != 0 || res->status >= 500 || (res->status != 200 && res->status != 404) ||
        (res->status == 200 && !json_is_object(res->json))) {
        /* Docker unreachable: try again later (the reconcile list too). */
        log_job(LOG_WARN, job, "cannot inspect the container, will retry", "error", res->message,
                NULL, NULL);
        job->timer_is_deadline = false;
        uv_timer_start(&job->timer, waiting_retry, c->cfg.retry_max_ms, 0);
        return;
    }
    if (res->status == 404) {
        job->gone = true;
        container_over(job);
        if (!job->has_message)
            job_drop(job); /* nothing to report, nothing to remove */
        else
            maybe_finish(job);
        return;
    }
    const char *status = read_container(job, res->json);
    if (job->has_message && check_claim(job) < 0)
        return; /* not ours: parked and forgotten */
    if (job->inspect_again) {
        job->inspect_again = false;
        job_inspect(job);
        return;
    }
    if (status_over(status)) {
        container_over(job);
        maybe_finish(job);
        return;
    }
    if (job->exited) {
        /* A die event came while this inspect was in flight: its "running" is stale. */
        maybe_finish(job);
        return;
    }
    if (strcmp(status, "created") == 0) {
        job->cstate = C_CREATED;
        if (job->has_message && job->deadline_ms) {
            if (metrics_wall_ms() >= job->deadline_ms) {
                job->timed_out = job->unstarted = true;
                container_over(job);
                maybe_finish(job);
            } else {
                arm_deadline(job);
            }
        }
        return; /* else its start event brings us back here */
    }
    job->cstate = C_RUNNING;
    arm_deadline(job);
}

static void job_inspect(struct job *job)
{
    if (job->state != J_WAITING)
        return;
    if (job->busy) {
        job->inspect_again = true;
        return;
    }
    if (docker_container_inspect(job->c->docker, job->container_id, on_wait_inspect, job) == 0)
        job->busy = true;
}

/* While waiting, the retry timer means "inspect again". */
static void waiting_retry(uv_timer_t *t)
{
    job_inspect(t->data);
}

/* ---- running messages --------------------------------------------------------------------- */

/* A parked message: its deliveries are acked once the copy is confirmed. */
struct park {
    const char *queue; /* c->running_invalid */
    size_t n;
    struct delivery dels[];
};

static void on_parked(amqp_link *link, int status, void *ud)
{
    struct park *p = ud;
    if (status == 0)
        METRIC_INC(&metrics_parked, p->queue);
    for (size_t i = 0; i < p->n; i++) {
        if (status == 0)
            amqp_link_ack(link, p->dels[i].gen, p->dels[i].tag);
        else if (status != -ECONNRESET && status != -ECANCELED)
            amqp_link_nack(link, p->dels[i].gen, p->dels[i].tag, true);
    }
    free(p);
}

/* Publishes body to <running queue>.invalid with the reason, then acks the deliveries (for a
 * claim found wrong after an inspect, when the delivery itself is gone: amqp_link_park needs
 * it). */
static void park(completer *c, const void *body, size_t len, const char *message_id,
                 const char *text, const struct delivery *dels, size_t n)
{
    char safe[700];
    text_utf8_copy(safe, sizeof(safe), text, strlen(text));
    log_kv(LOG_WARN, "invalid running message parked", "queue", c->running_invalid, "reason", safe,
           NULL);
    struct amqp_link_header h[] = {{.key = HEADER_REASON, .str = safe}};
    struct amqp_link_publish_opts opts = {.message_id = message_id, .headers = h, .n_headers = 1};
    struct park *p = malloc(sizeof(*p) + n * sizeof(p->dels[0]));
    if (p) {
        p->n = n;
        p->queue = c->running_invalid;
        memcpy(p->dels, dels, n * sizeof(p->dels[0]));
        if (body &&
            amqp_link_publish(c->link, c->running_invalid, body, len, &opts, on_parked, p) == 0)
            return;
        free(p);
    }
    for (size_t i = 0; i < n; i++)
        amqp_link_nack(c->link, dels[i].gen, dels[i].tag, true);
}

static void park_delivery(completer *c, const struct amqp_link_delivery *d, const char *text)
{
    char safe[700];
    text_utf8_copy(safe, sizeof(safe), text, strlen(text));
    log_kv(LOG_WARN, "invalid running message parked", "queue", c->running_invalid, "reason", safe,
           NULL);
    int r = amqp_link_park(c->link, d, safe, NULL, 0);
    if (r == -EINVAL || r == -ENOMEM)
        amqp_link_nack(c->link, d->generation, d->delivery_tag, true);
}

/* The job is unclaimed again: its message goes to the invalid queue. */
static void reject_claim(struct job *job, const char *text)
{
    completer *c = job->c;
    log_job(LOG_WARN, job, "a running message names a container that is not its job's", "reason",
            text, NULL, NULL);
    park(c, job->running_body, job->running_len, job->msg_job_id[0] ? job->msg_job_id : NULL, text,
         job->dels, job->n_dels);
    job->n_dels = 0;
    job->has_message = false;
    json_decref(job->work_id);
    job->work_id = NULL;
    free(job->callback);
    job->callback = NULL;
    free(job->running_body);
    job->running_body = NULL;
    job->running_len = 0;
    job->msg_job_id[0] = '\0';
    job->work_id_log[0] = '\0';
    snprintf(job->job_id, sizeof(job->job_id), "%s", job->label_job_id);
}

/* A legacy running message (no job_id) claims one of our containers only when it names the
 * container's own job: the same callback (compared redacted when the starter could only label
 * it redacted) and the same work_id (or none on both). NULL when it does; else why not. */
static const char *legacy_mismatch(const struct job *job, const char *callback,
                                   const json_t *work_id)
{
    const char *cb = json_string_value(json_object_get(job->labels, LABEL_CALLBACK));
    const char *cb_red = json_string_value(json_object_get(job->labels, LABEL_CALLBACK_REDACTED));
    if (!callback)
        return "the message has no callback";
    if (cb) {
        if (strcmp(cb, callback) != 0)
            return "another callback";
    } else if (cb_red) {
        char red[2 * MSG_MAX_URL_BYTES + 1]; /* as the starter wrote it */
        text_redact_url(red, sizeof(red), callback);
        if (strcmp(cb_red, red) != 0)
            return "another callback";
    } else {
        return "the container has no callback label";
    }
    const char *wl = json_string_value(json_object_get(job->labels, LABEL_WORK_ID));
    json_t *lw = wl ? json_loads(wl, JSON_DECODE_ANY, NULL) : NULL;
    bool same = (!lw && !work_id && !wl) || (lw && work_id && json_equal(lw, (json_t *)work_id));
    json_decref(lw);
    return same ? NULL : "another work_id";
}

/* A running message may name any container: it claims one of ours, of its own job. 0 when it
 * does; 1 when the container is ours but another job's (the job is unclaimed again); -1 when
 * the container is not a correction container at all (the job is dropped: never killed or
 * removed for a message). After an inspect (job->inspected). */
static int check_claim(struct job *job)
{
    char text[400];
    if (!job->ours) {
        snprintf(text, sizeof(text),
                 "%s - container %s is not a correction container (no label %s)",
                 MSG_REASON_INVALID_MESSAGE, job->container_id, LABEL_JOB_ID);
        reject_claim(job, text);
        job_drop(job);
        return -1;
    }
    if (job->msg_job_id[0] && strcmp(job->msg_job_id, job->label_job_id) != 0) {
        snprintf(text, sizeof(text), "%s - container %s belongs to job %s, not %s",
                 MSG_REASON_INVALID_MESSAGE, job->container_id, job->label_job_id, job->msg_job_id);
        reject_claim(job, text);
        return 1;
    }
    const char *why;
    if (!job->msg_job_id[0] && (why = legacy_mismatch(job, job->callback, job->work_id))) {
        snprintf(text, sizeof(text),
                 "%s - container %s belongs to job %s, not to this message (no job_id, %s)",
                 MSG_REASON_INVALID_MESSAGE, job->container_id, job->label_job_id, why);
        reject_claim(job, text);
        return 1;
    }
    return 0;
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
    int r = msg_running_parse(d->body, d->body_len, c->cfg.amqp.max_message_bytes, &m, &err);
    if (r == -ENOMEM) {
        amqp_link_nack(link, d->generation, d->delivery_tag, true); /* ours: it comes back */
        return;
    }
    if (r < 0) {
        char text[600];
        msg_error_text(&err, text, sizeof(text));
        park_delivery(c, d, text);
        return;
    }
    if (is_done(c, m.container_id)) {
        log_kv(LOG_INFO, "duplicate running message of a finished job, acked", "container_id",
               m.container_id, "job_id", m.job_id, NULL);
        amqp_link_ack(link, d->generation, d->delivery_tag);
        msg_running_free(&m);
        return;
    }
    struct job *job = idmap_get(c->jobs, m.container_id);
    if (job && job->inspected && job->ours && m.job_id && strcmp(m.job_id, job->label_job_id)) {
        char text[400];
        snprintf(text, sizeof(text), "%s - container %s belongs to job %s, not %s",
                 MSG_REASON_INVALID_MESSAGE, job->container_id, job->label_job_id, m.job_id);
        park_delivery(c, d, text);
        msg_running_free(&m);
        return;
    }
    const char *why;
    if (job && job->inspected && job->ours && !m.job_id &&
        (why = legacy_mismatch(job, m.callback, m.work_id))) {
        char text[400];
        snprintf(text, sizeof(text),
                 "%s - container %s belongs to job %s, not to this message (no job_id, %s)",
                 MSG_REASON_INVALID_MESSAGE, job->container_id, job->label_job_id, why);
        park_delivery(c, d, text);
        msg_running_free(&m);
        return;
    }
    job = job_get_or_add(c, m.container_id);
    if (!job) {
        /* Over MAX_TRACKED_JOBS (or out of memory): it waits in the queue. */
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        msg_running_free(&m);
        return;
    }
    if (job->published) {
        log_job(LOG_INFO, job, "duplicate running message of a finished job, acked", NULL, NULL,
                NULL, NULL);
        amqp_link_ack(link, d->generation, d->delivery_tag);
        msg_running_free(&m);
        return;
    }
    if (job->has_message && !job->inspected &&
        (!job->running_body || job->running_len != d->body_len ||
         memcmp(job->running_body, d->body, d->body_len) != 0)) {
        struct aside *a = malloc(sizeof(*a) + d->body_len);
        if (!a) {
            amqp_link_nack(link, d->generation, d->delivery_tag, true);
        } else {
            *a = (struct aside){.gen = d->generation, .tag = d->delivery_tag, .len = d->body_len};
            memcpy(a->body, d->body, d->body_len);
            struct aside **tail = &job->aside;
            while (*tail)
                tail = &(*tail)->next;
            *tail = a;
            log_job(LOG_DEBUG, job,
                    "another running message names the container: judged once it is inspected",
                    NULL, NULL, NULL, NULL);
        }
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
        metric_add(&metrics_jobs_taken, 1, NULL);
        int64_t submitted;
        if (amqp_link_header_num(d, HEADER_SUBMITTED, &submitted) && submitted > 0)
            job->submitted_ms = submitted;
        if (!job->callback) { /* else it is being finished from its labels: they say the same */
            job->work_id = m.work_id;
            m.work_id = NULL;
            job->callback = m.callback;
            m.callback = NULL;
        }
        snprintf(job->msg_job_id, sizeof(job->msg_job_id), "%s", m.job_id ? m.job_id : "");
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
    if (job->state != J_WAITING)
        return;
    if (job->exited)
        maybe_finish(job);
    else if (!(job->inspected && job->cstate == C_RUNNING))
        job_inspect(job); /* registered first, then inspected: no window */
}

/* ---- Docker events and the reconcile list ------------------------------------------------- */

/* A labelled container we see: tracked (and inspected, for its labels) from now on. */
static struct job *container_seen(completer *c, const char *id)
{
    if (is_done(c, id))
        return NULL; /* our own removal's events */
    struct job *job = idmap_get(c->jobs, id);
    if (job)
        return job;
    job = job_get_or_add(c, id);
    if (job)
        job_inspect(job);
    return job; /* NULL over the limit: the reconcile list finds it later */
}

static void container_exited(completer *c, const char *id)
{
    struct job *job = container_seen(c, id);
    if (!job)
        return;
    container_over(job);
    maybe_finish(job);
}

/* A container event of the watch (on a loop turn of its own, so Docker calls may start here). */
static void on_event(const char *action, const char *id, void *ud)
{
    completer *c = ud;
    struct job *job;
    if (strcmp(action, "die") == 0) {
        container_exited(c, id);
    } else if (strcmp(action, "destroy") == 0) {
        job = idmap_get(c->jobs, id);
        if (!job)
            return;
        job->gone = true;
        container_over(job);
        if (!job->has_message && job->state == J_WAITING && !job->busy)
            job_drop(job);
        else
            maybe_finish(job);
    } else if (strcmp(action, "oom") == 0) {
        job = idmap_get(c->jobs, id);
        if (!job)
            return;
        job->oom_event = true;
        /* waiting for it (see oom_unsettled): inspect again now */
        if (job->state == J_FINISHING && job->step == F_INSPECT && !job->busy &&
            uv_is_active((uv_handle_t *)&job->timer)) {
            uv_timer_stop(&job->timer);
            finish_run(job);
        }
    } else if (strcmp(action, "start") == 0) {
        job = idmap_get(c->jobs, id);
        if (job)
            job_inspect(job); /* arms its deadline (again, if an inspect is in flight) */
        else
            container_seen(c, id);
    }
}

static void reconcile(completer *c);

/* The stream (re)opened, events were dropped, or RECONCILE_INTERVAL passed: the list finds
 * what the stream did not say. */
static void on_events_list(void *ud)
{
    reconcile(ud);
}

static void on_events_end(const char *why, void *ud)
{
    completer *c = ud;
    engine_down(c); /* the stream ends when the engine stops */
    log_kv(LOG_DEBUG, "docker events stream ended, reconnecting", "error", why, NULL);
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
                  (state_len == 4 && memcmp(state, "dead", 4) == 0))) {
        container_exited(x->c, cid);
        return;
    }
    struct job *job = container_seen(x->c, cid); /* running or created: deadline, retention */
    bool created = state && state_len == 7 && memcmp(state, "created", 7) == 0;
    if (job && job->inspected && job->cstate == C_CREATED && !created)
        job_inspect(job); /* started, and its start event was lost: its deadline */
}

/* The list of every labelled container, the safety net for events Docker dropped. It is read
 * with a scan of the raw answer, not a jansson tree: a thousand containers are ~1.5 MB of JSON
 * and a tree several times that. */
static void on_list(const struct docker_result *res, void *ud)
{
    completer *c = ud;
    c->listing = false;
    if (c->stop.finished)
        return;
    engine_saw(c, res);
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
    size_t n = idmap_size(c->jobs);
    void **all = malloc((n ? n : 1) * sizeof(void *));
    if (!all) {
        idmap_free(x.present);
        return;
    }
    n = idmap_values(c->jobs, all, n);
    for (size_t k = 0; k < n; k++) {
        struct job *job = all[k];
        /* Only a job known before the list was asked for can be judged by it: a container
         * created (or its message received) after that is rightly absent from the answer. */
        if (job->state != J_WAITING || job->busy || idmap_get(x.present, job->container_id))
            continue;
        if (job->has_message && job->registered_list < c->list_seq && !job->exited) {
            job->gone = true; /* finishing says "container missing" */
            container_over(job);
        } else if (!job->has_message && job->added_list < c->list_seq) {
            job_drop(job); /* removed by someone else: nothing to report */
            all[k] = NULL;
        }
    }
    idmap_free(x.present);
    for (size_t k = 0; k < n; k++)
        if (all[k])
            maybe_finish(all[k]);
    free(all);
}

static void reconcile(completer *c)
{
    if (c->stop.finished || c->listing)
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

/* ---- sweep: renewals, unclaimed containers, forgetting finished jobs --------------------- */

struct renewal {
    struct job *job;
    size_t n; /* deliveries covered: the first n */
};

static void on_renewed(amqp_link *link, int status, void *ud)
{
    (void)link;
    struct renewal *rn = ud;
    struct job *job = rn->job;
    job->busy = false;
    if (status == 0 && !job->c->stop.finished) {
        /* The copy is in the queue: the old deliveries can go. */
        size_t n = rn->n <= job->n_dels ? rn->n : job->n_dels;
        for (size_t i = 0; i < n; i++)
            amqp_link_ack(job->c->link, job->dels[i].gen, job->dels[i].tag);
        memmove(job->dels, job->dels + n, (job->n_dels - n) * sizeof(*job->dels));
        job->n_dels -= n;
        log_job(LOG_DEBUG, job, "running message renewed", NULL, NULL, NULL, NULL);
    }
    free(rn);
    if (!job->c->stop.finished)
        maybe_finish(job);
}

static void on_unclaimed_removed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    job->busy = false;
    if (job->c->stop.finished)
        return;
    if (res->err == 0 && res->status == 409) {
        /* running: started since we looked (the starter's START beat our DELETE, which asks
         * for no force so that the engine decides under its container lock); its events and
         * the periodic list bring the new state, and a claim or the deadline follows */
        log_job(LOG_INFO, job, "an unclaimed container started as it was being removed: kept",
                "error", res->message, NULL, NULL);
        return;
    }
    if (res->err == 0 && (res->status == 204 || res->status == 404)) {
        if (res->status == 204) /* 404: gone already (a replayed destroy event, say) */
            log_job(LOG_WARN, job, "removed a correction container no running message claimed",
                    "state", job->exited ? "exited" : "created", "labels",
                    job->exited ? job->labels_unusable : NULL);
        job->gone = true;
        container_over(job);
        if (job->has_message)
            maybe_finish(job); /* its message came meanwhile: "container missing" */
        else
            job_drop(job);
    }
}

/* An exited container no running message claimed, past CONTAINER_RETENTION: its labels say
 * where the result goes, and it is finished like any job. */
static void finish_from_labels(struct job *job)
{
    if (!job->callback && !(job->callback = strdup(job->label_callback)))
        return; /* the next sweep */
    if (!job->work_id && job->label_work_id)
        job->work_id = json_incref(job->label_work_id);
    msg_work_id_text(job->work_id, job->work_id_log, sizeof(job->work_id_log));
    log_job(LOG_WARN, job, "finishing a container no running message claimed, from its labels",
            NULL, NULL, NULL, NULL);
    job_finish(job);
}

static void sweep_unclaimed(completer *c, struct job *job, int64_t wall)
{
    if (job->state != J_WAITING || job->has_message || job->busy || !job->inspected)
        return;
    int64_t since = job->exited ? job->over_ms : job->cstate == C_CREATED ? job->created_ms : 0;
    if (!since || wall - since < (int64_t)c->cfg.retention_ms)
        return;
    if (job->exited && job->label_callback) {
        finish_from_labels(job);
        return;
    }
    /* no force: a container started meanwhile (the starter took longer than the retention
     * between its create and its start) is refused by the engine, never killed */
    if (docker_container_remove(c->docker, job->container_id, false, on_unclaimed_removed, job) ==
        0)
        job->busy = true;
}

static void on_sweep(uv_timer_t *t)
{
    completer *c = t->data;
    uint64_t now = now_ms(c);
    int64_t wall = metrics_wall_ms();
    size_t n = idmap_size(c->jobs);
    void **all = malloc((n ? n : 1) * sizeof(void *));
    if (!all)
        return;
    n = idmap_values(c->jobs, all, n);
    for (size_t k = 0; k < n; k++) {
        struct job *job = all[k];
        if (!job->has_message) {
            sweep_unclaimed(c, job, wall);
        } else if (job->state == J_WAITING && job->n_dels && !job->busy && job->running_body &&
                   now - job->dels[0].received_ms >= c->cfg.renew_ms) {
            struct renewal *rn = malloc(sizeof(*rn));
            if (!rn)
                continue;
            rn->job = job;
            rn->n = job->n_dels;
            struct amqp_link_header h = {.key = HEADER_SUBMITTED, .num = job->submitted_ms};
            /* the copy expires when the original would have (lost.h): the job's deadline plus
             * HOST_LOST_GRACE, not before the grace from now */
            int64_t grace = (int64_t)c->cfg.host_lost_grace_ms;
            int64_t left = job->deadline_ms ? job->deadline_ms + grace - wall
                                            : (int64_t)c->cfg.correction_timeout_ms + grace;
            struct amqp_link_publish_opts opts = {.message_id = job->job_id[0] ? job->job_id : NULL,
                                                  .headers = &h,
                                                  .n_headers = job->submitted_ms ? 1 : 0,
                                                  .expiration_ms =
                                                      (uint64_t)(left > grace ? left : grace)};
            if (amqp_link_publish(c->link, c->cfg.running_queue, job->running_body,
                                  job->running_len, &opts, on_renewed, rn) == 0) {
                job->busy = true;
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

static void finish(void *stage);
static void shutdown_timed_out(void *stage);

int completer_new(uv_loop_t *loop, const struct completer_config *cfg, completer **ret,
                  struct ct_error *err)
{
    *ret = NULL;
    completer *c = calloc(1, sizeof(*c));
    if (!c)
        return ct_error_set(err, -ENOMEM, "out of memory");
    c->loop = loop;
    c->cfg = *cfg;
    snprintf(c->running_invalid, sizeof(c->running_invalid), "%s.invalid", cfg->running_queue);
    c->jobs = idmap_new();
    c->finished_ids = idmap_new();
    int r = c->jobs && c->finished_ids ? docker_new(loop, &cfg->docker, &c->docker, err)
                                       : ct_error_set(err, -ENOMEM, "out of memory");
    if (r < 0) {
        idmap_free(c->finished_ids);
        idmap_free(c->jobs);
        free(c);
        return r;
    }
    struct amqp_link_config acfg = cfg->amqp;
    acfg.prefetch = cfg->prefetch;
    r = amqp_link_new(loop, &acfg, on_link_event, c, &c->link, err);
    if (r < 0) {
        docker_free(c->docker);
        idmap_free(c->finished_ids);
        idmap_free(c->jobs);
        free(c);
        return r;
    }
    uv_timer_init(loop, &c->sweep_timer);
    c->sweep_timer.data = c;
    stage_stop_init(&c->stop, loop, c, finish, shutdown_timed_out);
    metrics_setup(c);
    *ret = c;
    return 0;
}

int completer_start(completer *c)
{
    const char *const queues[] = {c->cfg.running_queue, c->running_invalid, QUEUE_FINISHED};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        bool running = i == 0;
        int r = amqp_link_declare_queue(c->link, queues[i], running ? qtype_running_args : NULL,
                                        running ? 2 : 0);
        if (r < 0)
            return r;
    }
    struct lost_config lcfg = {.running_queue = c->cfg.running_queue,
                               .max_message_bytes = c->cfg.amqp.max_message_bytes,
                               .grace_ms = c->cfg.host_lost_grace_ms,
                               .retry_min_ms = c->cfg.retry_min_ms,
                               .retry_max_ms = c->cfg.retry_max_ms};
    int lr = lost_new(c->loop, c->link, c->docker, &lcfg, &c->lost);
    if (lr < 0)
        return lr;
    int r = amqp_link_consume(c->link, c->cfg.running_queue, on_delivery, c);
    if (r < 0)
        return r;
    r = amqp_link_start(c->link);
    if (r < 0)
        return r;
    /* Resumed where it was after a break (Docker replays its recent history); its first list
     * lists the exits from before we started; then every RECONCILE_INTERVAL. */
    static const char *const actions[] = {"die", "destroy", "start", "oom", NULL};
    struct watch_config wcfg = {.actions = actions,
                                .label = LABEL_JOB_ID,
                                .resume = true,
                                .max_pending = c->cfg.max_tracked,
                                .on_event = on_event,
                                .list_interval_ms = c->cfg.reconcile_ms,
                                .on_list = on_events_list,
                                .on_end = on_events_end,
                                .userdata = c};
    r = watch_start(c->loop, c->docker, &wcfg, &c->events);
    if (r < 0)
        return r;
    uint64_t sweep = c->cfg.renew_ms / 4;
    if (sweep > c->cfg.retention_ms / 4)
        sweep = c->cfg.retention_ms / 4;
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

static void finish(void *stage)
{
    completer *c = stage;
    if (!stage_stop_finishing(&c->stop))
        return;
    uv_timer_stop(&c->sweep_timer);
    watch_close(c->events); /* before the client it uses */
    c->events = NULL;
    docker_free(c->docker);
    c->docker = NULL;
    amqp_link_free(c->link); /* pending confirms get -ECANCELED: callbacks see c->stop.finished */
    c->link = NULL;
    lost_free(c->lost); /* after the link and the client: their callbacks have run */
    c->lost = NULL;
    idmap_each(c->jobs, drop_all, NULL);
    idmap_free(c->jobs);
    c->jobs = NULL;
    idmap_free(c->finished_ids);
    c->finished_ids = NULL;
    uv_close((uv_handle_t *)&c->sweep_timer, NULL);
    log_kv(LOG_INFO, "completer stopped", NULL);
    stage_stop_done(&c->stop);
}

static void shutdown_check(completer *c)
{
    stage_stop_check(&c->stop, c->finishing == 0);
}

static void shutdown_timed_out(void *stage)
{
    (void)stage;
    log_kv(LOG_WARN, "shutdown timeout: unfinished results will be redone from their messages",
           NULL);
}

void completer_shutdown(completer *c, void (*done)(void *), void *ud)
{
    if (!stage_stop_begin(&c->stop, c->cfg.shutdown_timeout_ms, done, ud))
        return;
    log_kv(LOG_INFO, "shutting down: finishing the results in hand", NULL);
    amqp_link_pause(c->link, c->cfg.running_queue);
    lost_pause(c->lost);
    shutdown_check(c);
}

void completer_free(completer *c)
{
    m_tracked.read = NULL;
    free(c);
}
