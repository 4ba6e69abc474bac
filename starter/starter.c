/* The starter stage.
 *
 * Each pending message becomes a job that walks these steps, each safe to repeat:
 *
 *   parse + allowlist + read the file -> CREATE -> UPLOAD -> START -> PUBLISH running -> ack
 *                                          |409: INSPECT (a redelivery: carry on from its state)
 *                                          |404 with DOCKER_PULL: PULL, then CREATE again
 *
 * Pulls are shared: jobs that need the same missing image wait on one pull (s->pulls, keyed by
 * the image's name and tag or digest). A pull the registry refuses (no such image, access
 * denied) is the job's fault; a pull that cannot reach the registry is retried like any
 * infrastructure fault, from CREATE (another job may have brought the image meanwhile).
 *
 * A fault of the job (bad message, missing image, bad file...) goes to REMOVE (when a container
 * exists) and REPORT: an error result on finished_corrections when the job has a usable
 * callback, else the message parked in pending_corrections.invalid with the reason; then ack.
 * An infrastructure fault (Docker or the broker failing) retries the same step with capped
 * exponential backoff while the message stays unacked.
 *
 * The container name is derived from the message (its message_id, else its bytes), so a
 * redelivered message meets its own container (409) instead of making a second one.
 *
 * Capacity: the consumer runs only while (running correction containers on the host + jobs
 * being started) < MAX_RUNNING. The running count comes from Docker (a label-filtered list),
 * refreshed on container start/die events and periodically; waiting jobs stay in the queue. */
#include "starter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exercise.h"
#include "idmap.h"
#include "ids.h"
#include "daemon.h"
#include "log.h"
#include "msg.h"
#include "schedule.h"
#include "tar.h"

#define REASON_IMAGE_NOT_FOUND "image not found"
#define REASON_IMAGE_NOT_ALLOWED "image not allowed"
#define REASON_IMAGE_PULL_DENIED "image pull denied"
#define REASON_CREATE_FAILED "container create failed"
#define REASON_UPLOAD_FAILED "upload failed"
#define REASON_START_FAILED "container start failed"

enum step {
    STEP_CREATE,
    STEP_PULL,
    STEP_INSPECT,
    STEP_UPLOAD,
    STEP_START,
    STEP_PUBLISH,
    STEP_REMOVE,
    STEP_REPORT,
};

static const char *const step_names[] = {"create", "pull",    "inspect", "upload",
                                         "start",  "publish", "remove",  "report"};

struct job {
    starter *s;
    struct job *prev, *next;
    uint64_t gen, tag;
    char *body;
    size_t body_len;
    char *message_id;
    struct pending_job p;
    char work_id[128]; /* for logs */
    char job_id[IDS_UUID_LEN + 1];
    char name[64];
    char container_id[65];
    json_t *create_config;
    void *tar;
    size_t tar_len;
    enum step step;
    unsigned attempts;
    uv_timer_t timer;
    bool busy;             /* a Docker call or a publish is in flight */
    bool waiting;          /* the retry timer is armed */
    bool abandoned;        /* the message went back to the queue: stop at the next step */
    bool counted;          /* counted in s->starting */
    bool pulled;           /* its image was pulled: a create answered 404 again is final */
    struct pull *pull;     /* the pull it waits for, or NULL */
    struct job *pull_next; /* in pull->waiters */
    char fault[600];
};

/* One pull of a missing image, and the jobs waiting for it. */
struct pull {
    starter *s;
    char key[2 * REGISTRY_MAX_REF + 2]; /* name:tag or name@digest */
    char host[REGISTRY_MAX_REF + 1];
    struct job *waiters;
    uint64_t started_ms;
};

struct starter {
    uv_loop_t *loop;
    struct starter_config cfg;
    amqp_link *link;
    docker *docker;
    docker_events *events;
    uv_timer_t reconcile_timer, events_timer, shutdown_timer;
    struct job *jobs;
    unsigned starting; /* jobs between delivery and their container's start */
    unsigned running;  /* running correction containers on the host (last count) */
    bool counted_once; /* the running count has been read at least once */
    bool listing, list_again;
    /* Containers we started, not yet seen by a list taken after their start: a list answer
     * may predate them, so they are counted on top of it until a later list includes them. */
    struct recent_start {
        char id[65];
        uint64_t seq;
    } * recent;
    size_t n_recent, cap_recent;
    uint64_t start_seq, list_seq;
    bool consuming;
    bool shutting_down, finished;
    unsigned events_failures;
    bool docker_down_logged;
    idmap *pulls; /* struct pull by key */
    char hostname[256];
    void (*done)(void *);
    void *done_ud;
};

static void job_run(struct job *job);
static void job_fault(struct job *job, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void request_count(starter *s);
static void shutdown_check(starter *s);

/* ---- capacity ---------------------------------------------------------------------------- */

static void update_consumer(starter *s)
{
    if (s->finished)
        return;
    bool want = !s->shutting_down && s->counted_once &&
                (uint64_t)s->running + s->starting < s->cfg.max_running;
    if (want == s->consuming)
        return;
    int r =
        want ? amqp_link_resume(s->link, QUEUE_PENDING) : amqp_link_pause(s->link, QUEUE_PENDING);
    if (r < 0 && r != -ENOTCONN) {
        log_kv(LOG_ERROR, "cannot change the pending consumer", "error", strerror(-r), NULL);
        return;
    }
    s->consuming = want;
    char running[32], starting[32];
    snprintf(running, sizeof(running), "%u", s->running);
    snprintf(starting, sizeof(starting), "%u", s->starting);
    log_kv(LOG_DEBUG,
           want ? "consuming pending jobs" : "at capacity, pending jobs wait in the queue",
           "running", running, "starting", starting, NULL);
}

static void on_count(const struct docker_result *res, void *ud)
{
    starter *s = ud;
    s->listing = false;
    if (s->finished)
        return;
    if (res->err == 0 && res->status == 200 && json_is_array(res->json)) {
        unsigned count = (unsigned)json_array_size(res->json);
        size_t keep = 0;
        for (size_t i = 0; i < s->n_recent; i++) {
            bool listed = false;
            size_t k;
            json_t *c;
            json_array_foreach(res->json, k, c)
            {
                const char *id = json_string_value(json_object_get(c, "Id"));
                if (id && strcmp(id, s->recent[i].id) == 0)
                    listed = true;
            }
            if (s->recent[i].seq <= s->list_seq)
                continue; /* the list was taken after its start: it is authoritative */
            if (!listed)
                count++;
            s->recent[keep++] = s->recent[i];
        }
        s->n_recent = keep;
        s->running = count;
        s->counted_once = true;
        if (s->docker_down_logged)
            log_kv(LOG_INFO, "docker is reachable again", NULL);
        s->docker_down_logged = false;
        update_consumer(s);
    } else if (!s->docker_down_logged) {
        log_kv(LOG_WARN, "cannot count running corrections, docker unreachable or failing", "error",
               res->message, NULL);
        s->docker_down_logged = true;
    }
    if (s->list_again) {
        s->list_again = false;
        request_count(s);
    }
}

static void request_count(starter *s)
{
    if (s->finished)
        return;
    if (s->listing) {
        s->list_again = true;
        return;
    }
    json_t *filters = json_pack("{s:[s],s:[s]}", "label", LABEL_JOB_ID, "status", "running");
    if (!filters)
        return;
    if (docker_container_list(s->docker, false, filters, on_count, s) == 0) {
        s->listing = true;
        s->list_seq = s->start_seq;
    }
    json_decref(filters);
}

static void on_reconcile(uv_timer_t *t)
{
    request_count(t->data);
}

static void start_events(starter *s);

static void on_events_timer(uv_timer_t *t)
{
    start_events(t->data);
}

static void on_event(json_t *event, void *ud)
{
    (void)event;
    request_count(ud);
}

static void on_events_end(const struct docker_result *res, void *ud)
{
    starter *s = ud;
    s->events = NULL;
    if (s->finished)
        return;
    s->events_failures++;
    uint64_t delay = 500ULL << (s->events_failures < 6 ? s->events_failures : 6);
    log_kv(LOG_DEBUG, "docker events stream ended, reconnecting", "error", res->message, NULL);
    uv_timer_start(&s->events_timer, on_events_timer, delay, 0);
    request_count(s);
}

static void start_events(starter *s)
{
    if (s->finished || s->events)
        return;
    json_t *filters = json_pack("{s:[s],s:[s,s,s],s:[s]}", "type", "container", "event", "start",
                                "die", "destroy", "label", LABEL_JOB_ID);
    if (!filters)
        return;
    int r = docker_events_start(s->docker, (int64_t)time(NULL), filters, on_event, on_events_end, s,
                                &s->events);
    json_decref(filters);
    if (r < 0) {
        s->events = NULL;
        uv_timer_start(&s->events_timer, on_events_timer, 5000, 0);
        return;
    }
    /* The stream being up does not say it stays up; a success resets the backoff once it
     * delivered a count. */
    s->events_failures = s->events_failures > 0 ? s->events_failures - 1 : 0;
    request_count(s);
}

/* ---- job lifecycle ------------------------------------------------------------------------ */

static void job_free_cb(uv_handle_t *h)
{
    struct job *job = h->data;
    msg_pending_free(&job->p);
    json_decref(job->create_config);
    free(job->tar);
    free(job->body);
    free(job->message_id);
    free(job);
}

static void job_uncount(struct job *job)
{
    if (job->counted) {
        job->counted = false;
        job->s->starting--;
    }
}

static void pull_detach(struct job *job)
{
    struct pull *p = job->pull;
    if (!p)
        return;
    for (struct job **jp = &p->waiters; *jp; jp = &(*jp)->pull_next) {
        if (*jp == job) {
            *jp = job->pull_next;
            break;
        }
    }
    job->pull = NULL;
    job->pull_next = NULL;
}

static void job_release(struct job *job)
{
    starter *s = job->s;
    pull_detach(job);
    if (job->prev)
        job->prev->next = job->next;
    else
        s->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    job_uncount(job);
    uv_timer_stop(&job->timer);
    uv_close((uv_handle_t *)&job->timer, job_free_cb);
    update_consumer(s);
    shutdown_check(s);
}

/* The message is (or will be) back in the queue: no further step for this job. */
static void job_abandon(struct job *job)
{
    job->abandoned = true;
    job_uncount(job);
    if (!job->busy)
        job_release(job);
}

static void log_job(enum log_level level, const struct job *job, const char *msg, const char *k1,
                    const char *v1, const char *k2, const char *v2)
{
    log_kv(level, msg, "work_id", job->work_id[0] ? job->work_id : NULL, "job_id", job->job_id,
           "container_id", job->container_id[0] ? job->container_id : NULL, k1, v1, k2, v2, NULL);
}

static void on_job_timer(uv_timer_t *t)
{
    struct job *job = t->data;
    job->waiting = false;
    if (job->abandoned) {
        job_release(job);
        return;
    }
    job_run(job);
}

/* An infrastructure fault: retry the current step later; the message stays unacked. */
static void job_retry(struct job *job, const char *why)
{
    starter *s = job->s;
    if (s->shutting_down) {
        /* Return it now: it will not get better before we exit. */
        amqp_link_nack(s->link, job->gen, job->tag, true);
        log_job(LOG_INFO, job, "job returned to the queue at shutdown", "step",
                step_names[job->step], "error", why);
        job_abandon(job);
        return;
    }
    uint64_t delay = schedule_backoff_ms(s->cfg.retry_min_ms, s->cfg.retry_max_ms, job->attempts,
                                         (uint32_t)rand());
    job->attempts++;
    char ms[32];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)delay);
    log_job(LOG_WARN, job, "infrastructure fault, will retry", "step", step_names[job->step],
            "error", why);
    log_kv(LOG_DEBUG, "retry scheduled", "job_id", job->job_id, "delay_ms", ms, NULL);
    job->waiting = true;
    uv_timer_start(&job->timer, on_job_timer, delay, 0);
}

static void job_goto(struct job *job, enum step step)
{
    job->step = step;
    job->attempts = 0;
    job_run(job);
}

/* ---- fault reporting ---------------------------------------------------------------------- */

static void job_fault(struct job *job, const char *reason, const char *fmt, ...)
{
    char detail[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(job->fault, sizeof(job->fault), "%s - %s", reason, detail);
    log_job(LOG_WARN, job, "job failed", "reason", job->fault, "callback",
            job->p.callback ? "yes" : "no");
    job_uncount(job);
    update_consumer(job->s);
    job_goto(job, job->container_id[0] ? STEP_REMOVE : STEP_REPORT);
}

static void on_acked(struct job *job)
{
    int r = amqp_link_ack(job->s->link, job->gen, job->tag);
    if (r < 0)
        log_job(LOG_WARN, job, "cannot ack the pending message, it will be redelivered", "error",
                strerror(-r), NULL, NULL);
}

static void on_published(amqp_link *link, int status, void *ud)
{
    (void)link;
    struct job *job = ud;
    job->busy = false;
    if (job->abandoned) {
        job_release(job);
        return;
    }
    if (status == -ECONNRESET || status == -ECANCELED) {
        job_abandon(job); /* the broker has the pending message back */
        return;
    }
    if (status < 0) {
        job_retry(job, "publish not confirmed by the broker");
        return;
    }
    on_acked(job);
    if (job->step == STEP_PUBLISH) {
        log_job(LOG_INFO, job,
                job->s->cfg.dont_start ? "container created (not started)" : "correction started",
                "image", job->p.image, NULL, NULL);
        if (job->s->cfg.delete_file && job->p.file && unlink(job->p.file) < 0)
            log_job(LOG_WARN, job, "cannot delete the exercise file", "error", strerror(errno),
                    "file", job->p.file);
    } else {
        log_job(LOG_INFO, job,
                job->p.callback ? "failure reported to finished_corrections"
                                : "message parked in " QUEUE_PENDING_INVALID,
                "reason", job->fault, NULL, NULL);
    }
    job_release(job);
}

static void publish(struct job *job, const char *queue, const char *body, size_t len,
                    const struct amqp_link_header *headers, size_t n_headers)
{
    struct amqp_link_publish_opts opts = {
        .message_id = job->job_id, .headers = headers, .n_headers = n_headers};
    int r = amqp_link_publish(job->s->link, queue, body, len, &opts, on_published, job);
    if (r == -ENOTCONN) {
        job_abandon(job);
        return;
    }
    if (r < 0) {
        job_retry(job, strerror(-r));
        return;
    }
    job->busy = true;
}

static void step_report(struct job *job)
{
    if (job->p.callback) {
        char *body =
            msg_finished_error_serialize(job->p.work_id, job->job_id, job->p.callback, job->fault);
        if (!body) {
            job_retry(job, "out of memory");
            return;
        }
        publish(job, QUEUE_FINISHED, body, strlen(body), NULL, 0);
        free(body);
    } else {
        struct amqp_link_header h[] = {{.key = HEADER_REASON, .str = job->fault},
                                       {.key = HEADER_JOB_ID, .str = job->job_id}};
        publish(job, QUEUE_PENDING_INVALID, job->body, job->body_len, h, 2);
    }
}

/* ---- Docker steps ------------------------------------------------------------------------- */

/* Common handling of a Docker reply: returns true when the step may look at the status. */
static bool docker_reply(struct job *job, const struct docker_result *res)
{
    job->busy = false;
    if (job->abandoned) {
        job_release(job);
        return false;
    }
    if (res->err != 0 || res->status >= 500) {
        job_retry(job, res->message);
        return false;
    }
    return true;
}

static void container_vanished(struct job *job)
{
    log_job(LOG_WARN, job, "container vanished, creating it again", NULL, NULL, NULL, NULL);
    job->container_id[0] = '\0';
    job_goto(job, STEP_CREATE);
}

static void set_container_id(struct job *job, json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "Id"));
    if (id && ids_is_container_id(id))
        snprintf(job->container_id, sizeof(job->container_id), "%s", id);
}

static void after_upload(struct job *job)
{
    job_goto(job, job->s->cfg.dont_start ? STEP_PUBLISH : STEP_START);
}

static void on_created(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!docker_reply(job, res))
        return;
    if (res->status == 201) {
        set_container_id(job, res->json);
        if (!job->container_id[0]) {
            job_retry(job, "docker answered create without a container id");
            return;
        }
        job_goto(job, STEP_UPLOAD);
    } else if (res->status == 409) {
        job_goto(job, STEP_INSPECT); /* a redelivery: our container is there already */
    } else if (res->status == 404 && job->s->cfg.pull && !job->pulled) {
        /* Not job_goto: the attempts carry on, so a registry that stays down backs off. */
        job->step = STEP_PULL;
        job_run(job);
    } else if (res->status == 404) {
        job_fault(job, REASON_IMAGE_NOT_FOUND, "%.200s: %.200s", job->p.image, res->message);
    } else {
        job_fault(job, REASON_CREATE_FAILED, "%.300s", res->message);
    }
}

/* ---- pulls -------------------------------------------------------------------------------- */

static void on_pulled(const struct docker_result *res, void *ud)
{
    struct pull *p = ud;
    starter *s = p->s;
    bool ok = res->err == 0 && res->status == 200 && !res->message[0];
    enum registry_pull_fault fault =
        ok ? REGISTRY_PULL_INFRA : registry_pull_classify(res->err, res->status, res->message);
    char ms[32];
    idmap_del(s->pulls, p->key);
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(uv_now(s->loop) - p->started_ms));
    if (ok)
        log_kv(LOG_INFO, "image pulled", "image", p->key, "registry", p->host, "duration_ms", ms,
               NULL);
    else
        log_kv(fault == REGISTRY_PULL_INFRA ? LOG_WARN : LOG_INFO, "image pull failed", "image",
               p->key, "registry", p->host, "duration_ms", ms, "error", res->message, NULL);
    /* One waiter at a time: handling one may release others (which detach themselves). */
    while (p->waiters) {
        struct job *job = p->waiters;
        p->waiters = job->pull_next;
        job->pull = NULL;
        job->pull_next = NULL;
        if (ok) {
            job->pulled = true;
            job_goto(job, STEP_CREATE);
        } else if (fault == REGISTRY_PULL_NOT_FOUND) {
            job_fault(job, REASON_IMAGE_NOT_FOUND, "%.200s: %.200s", job->p.image, res->message);
        } else if (fault == REGISTRY_PULL_DENIED) {
            job_fault(job, REASON_IMAGE_PULL_DENIED, "%.200s: %.200s", job->p.image, res->message);
        } else {
            char why[400];
            snprintf(why, sizeof(why), "image pull: %.300s", res->message);
            job->step = STEP_CREATE;
            job_retry(job, why);
        }
    }
    free(p);
}

/* Starts the pull of ref for key: 0 and *ret, or a negative errno. */
static int pull_start(starter *s, const struct registry_ref *ref, const char *key,
                      struct pull **ret)
{
    char *auth = NULL;
    struct pull *p = calloc(1, sizeof(*p));
    int r = -ENOMEM;
    if (!p || registry_auth_header(s->cfg.creds, ref->host, &auth) < 0)
        goto fail;
    p->s = s;
    snprintf(p->key, sizeof(p->key), "%s", key);
    snprintf(p->host, sizeof(p->host), "%s", ref->host);
    p->started_ms = uv_now(s->loop);
    r = idmap_put(s->pulls, p->key, p);
    if (r < 0)
        goto fail;
    r = docker_image_pull(s->docker, ref->name, ref->tag, auth, s->cfg.pull_timeout_ms, on_pulled,
                          p);
    if (r < 0) {
        idmap_del(s->pulls, p->key);
        goto fail;
    }
    registry_auth_free(auth);
    *ret = p;
    return 0;
fail:
    registry_auth_free(auth);
    free(p);
    return r;
}

/* Joins the pull of the job's image, starting it when there is none. */
static void step_pull(struct job *job)
{
    starter *s = job->s;
    struct registry_ref ref;
    char key[sizeof(((struct pull *)0)->key)];
    if (registry_ref_parse(job->p.image, &ref) < 0) {
        job_fault(job, REASON_IMAGE_NOT_FOUND, "%.200s: not a valid image reference", job->p.image);
        return;
    }
    snprintf(key, sizeof(key), "%s%c%s", ref.name, ref.has_digest ? '@' : ':', ref.tag);
    struct pull *p = idmap_get(s->pulls, key);
    if (!p) {
        int r = pull_start(s, &ref, key, &p);
        if (r < 0) {
            job_retry(job, strerror(-r));
            return;
        }
        log_job(LOG_INFO, job, "pulling image", "image", p->key, "registry", p->host);
    }
    job->pull = p;
    job->pull_next = p->waiters;
    p->waiters = job;
    log_job(LOG_DEBUG, job, "waiting for the image pull", "image", p->key, NULL, NULL);
}

static void on_inspected(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!docker_reply(job, res))
        return;
    if (res->status == 404) {
        container_vanished(job);
        return;
    }
    if (res->status != 200) {
        job_retry(job, res->message);
        return;
    }
    set_container_id(job, res->json);
    const char *status =
        json_string_value(json_object_get(json_object_get(res->json, "State"), "Status"));
    if (!job->container_id[0] || !status) {
        job_retry(job, "unexpected inspect reply");
        return;
    }
    log_job(LOG_INFO, job, "container exists already (redelivered job), resuming", "state", status,
            NULL, NULL);
    if (strcmp(status, "created") == 0)
        job_goto(job, STEP_UPLOAD); /* the upload may not have happened: do it again */
    else
        job_goto(job, STEP_PUBLISH); /* it was started before */
}

static void on_uploaded(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!docker_reply(job, res))
        return;
    if (res->status == 200) {
        after_upload(job);
    } else if (res->status == 404) {
        container_vanished(job);
    } else {
        job_fault(job, REASON_UPLOAD_FAILED, "%.300s", res->message);
    }
}

static bool is_runtime_fault(const char *msg)
{
    /* Docker 20.10 answers 500 when the image's command cannot run: that is the image's
     * fault, not the engine's. */
    return strstr(msg, "OCI runtime") || strstr(msg, "executable file not found") ||
           strstr(msg, "exec format error") || strstr(msg, "no such file or directory");
}

static void on_started(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    job->busy = false;
    if (job->abandoned) {
        job_release(job);
        return;
    }
    if (res->err == 0 && (res->status == 204 || res->status == 304)) {
        /* From now on Docker's running count includes it (once a list sees it). */
        starter *s = job->s;
        job_uncount(job);
        s->running++;
        if (s->n_recent == s->cap_recent) {
            size_t cap = s->cap_recent ? s->cap_recent * 2 : 16;
            struct recent_start *p = realloc(s->recent, cap * sizeof(*p));
            if (p) {
                s->recent = p;
                s->cap_recent = cap;
            }
        }
        if (s->n_recent < s->cap_recent) {
            snprintf(s->recent[s->n_recent].id, sizeof(s->recent[0].id), "%s", job->container_id);
            s->recent[s->n_recent++].seq = ++s->start_seq;
        }
        job_goto(job, STEP_PUBLISH);
    } else if (res->err == 0 && res->status == 404) {
        container_vanished(job);
    } else if (res->err == 0 && (res->status < 500 || is_runtime_fault(res->message))) {
        job_fault(job, REASON_START_FAILED, "%.300s", res->message);
    } else {
        job_retry(job, res->message);
    }
}

static void on_removed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!docker_reply(job, res))
        return;
    if (res->status == 204 || res->status == 404 || res->status == 409) {
        /* 409: removal already in progress */
        job->container_id[0] = '\0';
        job_goto(job, STEP_REPORT);
    } else {
        job_retry(job, res->message);
    }
}

static void step_publish_running(struct job *job)
{
    struct running_msg m = {.work_id = job->p.work_id,
                            .container_id = job->container_id,
                            .callback = job->p.callback,
                            .job_id = job->job_id};
    char *body = msg_running_serialize(&m);
    if (!body) {
        job_retry(job, "out of memory");
        return;
    }
    publish(job, job->s->cfg.running_queue, body, strlen(body), NULL, 0);
    free(body);
}

/* The deadline label is written when the container is created (a pull or a retry may come
 * between the job's arrival and its create): the completer counts the time limit as this
 * deadline minus the container's creation, from its start. */
static void set_deadline_label(starter *s, struct job *job)
{
    char deadline[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now_s = (long long)ts.tv_sec + (ts.tv_nsec >= 500000000L); /* the nearest */
    snprintf(deadline, sizeof(deadline), "%lld",
             now_s + (long long)(s->cfg.correction_timeout_ms / 1000));
    json_object_set_new(json_object_get(job->create_config, "Labels"), LABEL_DEADLINE,
                        json_string(deadline));
}

static void job_run(struct job *job)
{
    starter *s = job->s;
    int r = 0;
    switch (job->step) {
    case STEP_PULL:
        step_pull(job);
        return;
    case STEP_CREATE:
        set_deadline_label(s, job);
        r = docker_container_create(s->docker, job->name, job->create_config, on_created, job);
        break;
    case STEP_INSPECT:
        r = docker_container_inspect(s->docker, job->name, on_inspected, job);
        break;
    case STEP_UPLOAD:
        r = docker_container_upload(s->docker, job->container_id, "/", job->tar, job->tar_len,
                                    on_uploaded, job);
        break;
    case STEP_START:
        r = docker_container_start(s->docker, job->container_id, on_started, job);
        break;
    case STEP_REMOVE:
        r = docker_container_remove(s->docker, job->container_id, true, on_removed, job);
        break;
    case STEP_PUBLISH:
        step_publish_running(job);
        return;
    case STEP_REPORT:
        step_report(job);
        return;
    }
    if (r < 0) {
        job_retry(job, strerror(-r));
        return;
    }
    job->busy = true;
}

/* ---- a new job ---------------------------------------------------------------------------- */

static json_t *build_create_config(starter *s, struct job *job)
{
    const struct starter_config *c = &s->cfg;
    json_t *env = json_array(), *labels = json_object(), *caps = json_array();
    json_t *cfg = NULL;
    char *wid = NULL;
    char deadline[32];
    if (!env || !labels || !caps)
        goto out;
    for (size_t i = 0; i < job->p.n_params; i++)
        if (json_array_append_new(env, json_string(job->p.params[i])) < 0)
            goto out;
    snprintf(deadline, sizeof(deadline), "%lld",
             (long long)time(NULL) + (long long)(c->correction_timeout_ms / 1000));
    if (json_object_set_new(labels, LABEL_JOB_ID, json_string(job->job_id)) < 0 ||
        json_object_set_new(labels, LABEL_CALLBACK, json_string(job->p.callback)) < 0 ||
        json_object_set_new(labels, LABEL_DEADLINE, json_string(deadline)) < 0 ||
        json_object_set_new(labels, LABEL_HOST, json_string(s->hostname)) < 0)
        goto out;
    if (job->p.work_id) {
        wid = json_dumps(job->p.work_id, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!wid || json_object_set_new(labels, LABEL_WORK_ID, json_string(wid)) < 0)
            goto out;
    }
    if (c->cap_add) {
        char *list = strdup(c->cap_add), *save = NULL;
        if (!list)
            goto out;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (*tok)
                json_array_append_new(caps, json_string(tok));
        free(list);
    }
    cfg = json_pack("{s:s, s:O, s:O, s:b, s:b, s:b, s:{s:s, s:I, s:I, s:I, s:I, s:[s], s:O, "
                    "s:[s], s:{s:s, s:{s:s, s:s}}, s:b}}",
                    "Image", job->p.image, "Env", env, "Labels", labels, "AttachStdin", 0,
                    "OpenStdin", 0, "Tty", 0, "HostConfig", "NetworkMode", c->network, "Memory",
                    (json_int_t)c->memory_bytes, "MemorySwap", (json_int_t)c->memory_bytes,
                    "NanoCpus", (json_int_t)c->nanocpus, "PidsLimit", (json_int_t)c->pids,
                    "CapDrop", "ALL", "CapAdd", caps, "SecurityOpt", "no-new-privileges",
                    "LogConfig", "Type", "json-file", "Config", "max-size", c->log_max_size,
                    "max-file", "2", "AutoRemove", 0);
out:
    free(wid);
    json_decref(env);
    json_decref(labels);
    json_decref(caps);
    return cfg;
}

static void job_begin(struct job *job)
{
    starter *s = job->s;
    struct msg_error err;
    if (msg_pending_parse(job->body, job->body_len, s->cfg.amqp.max_message_bytes, &job->p, &err) <
        0) {
        msg_work_id_text(job->p.work_id, job->work_id, sizeof(job->work_id));
        job_fault(job, err.reason, "%s", err.detail);
        return;
    }
    msg_work_id_text(job->p.work_id, job->work_id, sizeof(job->work_id));
    if (s->cfg.allow && !registry_allowlist_match(s->cfg.allow, job->p.image)) {
        job_fault(job, REASON_IMAGE_NOT_ALLOWED, "%.200s is not in ALLOWED_IMAGES", job->p.image);
        return;
    }
    void *data = NULL;
    size_t len = 0;
    if (exercise_read(job->p.file, s->cfg.exercise_dir, s->cfg.max_exercise_bytes, &data, &len,
                      &err) < 0) {
        job_fault(job, err.reason, "%s", err.detail);
        return;
    }
    int r = tar_single_file("tmp/exercise", data, len, 0644, &job->tar, &job->tar_len);
    free(data);
    if (r < 0) {
        job_fault(job, REASON_UPLOAD_FAILED, "cannot build the archive: %s", strerror(-r));
        return;
    }
    job->create_config = build_create_config(s, job);
    if (!job->create_config) {
        job_fault(job, REASON_CREATE_FAILED, "cannot build the container configuration");
        return;
    }
    log_job(LOG_DEBUG, job, "job received", "image", job->p.image, "file", job->p.file);
    job_goto(job, STEP_CREATE);
}

static void on_delivery(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    starter *s = ud;
    if (s->shutting_down || (uint64_t)s->running + s->starting >= s->cfg.max_running) {
        /* Prefetched before the consumer paused: back to the queue, where it waits. */
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        update_consumer(s);
        return;
    }
    struct job *job = calloc(1, sizeof(*job));
    if (!job || !(job->body = malloc(d->body_len + 1)) ||
        (d->message_id && !(job->message_id = strdup(d->message_id)))) {
        if (job)
            free(job->body);
        free(job);
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        log_kv(LOG_ERROR, "out of memory, job returned to the queue", NULL);
        return;
    }
    memcpy(job->body, d->body, d->body_len);
    job->body[d->body_len] = '\0';
    job->body_len = d->body_len;
    job->s = s;
    job->gen = d->generation;
    job->tag = d->delivery_tag;
    if (job->message_id && *job->message_id)
        ids_uuid_from_bytes(job->message_id, strlen(job->message_id), job->job_id);
    else
        ids_uuid_from_bytes(job->body, job->body_len, job->job_id);
    snprintf(job->name, sizeof(job->name), "correction-%s", job->job_id);
    uv_timer_init(s->loop, &job->timer);
    job->timer.data = job;
    job->next = s->jobs;
    if (s->jobs)
        s->jobs->prev = job;
    s->jobs = job;
    job->counted = true;
    s->starting++;
    update_consumer(s);
    job_begin(job);
}

/* ---- the link ----------------------------------------------------------------------------- */

static void on_link_event(amqp_link *link, enum amqp_link_event ev, const char *detail, void *ud)
{
    (void)link;
    starter *s = ud;
    daemon_link_event(ev, detail);
    if (ev == AMQP_LINK_UP) {
        update_consumer(s);
    } else if (ev == AMQP_LINK_DOWN) {
        /* Unacked messages are back in the queue: every job in hand is abandoned; its
         * redelivery resumes from the container's state. */
        for (struct job *j = s->jobs, *next; j; j = next) {
            next = j->next;
            if (!j->abandoned)
                job_abandon(j);
        }
    }
}

/* ---- the handle --------------------------------------------------------------------------- */

starter *starter_new(uv_loop_t *loop, const struct starter_config *cfg, char *err, size_t errlen)
{
    starter *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = *cfg;
    s->pulls = idmap_new();
    if (!s->pulls) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    if (gethostname(s->hostname, sizeof(s->hostname) - 1) < 0)
        snprintf(s->hostname, sizeof(s->hostname), "unknown");
    s->docker = docker_new(loop, &cfg->docker, err, errlen);
    if (!s->docker) {
        idmap_free(s->pulls);
        free(s);
        return NULL;
    }
    struct amqp_link_config acfg = cfg->amqp;
    acfg.prefetch = (unsigned)cfg->max_running;
    s->link = amqp_link_new(loop, &acfg, on_link_event, s);
    if (!s->link) {
        snprintf(err, errlen, "cannot create the RabbitMQ link");
        docker_free(s->docker);
        idmap_free(s->pulls);
        free(s);
        return NULL;
    }
    uv_timer_init(loop, &s->reconcile_timer);
    uv_timer_init(loop, &s->events_timer);
    uv_timer_init(loop, &s->shutdown_timer);
    s->reconcile_timer.data = s->events_timer.data = s->shutdown_timer.data = s;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    return s;
}

int starter_start(starter *s)
{
    const char *const queues[] = {QUEUE_PENDING, QUEUE_PENDING_INVALID, s->cfg.running_queue,
                                  QUEUE_FINISHED};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        int r = amqp_link_declare_queue(s->link, queues[i], NULL, 0);
        if (r < 0)
            return r;
    }
    int r = amqp_link_consume(s->link, QUEUE_PENDING, on_delivery, s);
    if (r < 0)
        return r;
    /* Paused until Docker has told us how many corrections run already. */
    r = amqp_link_pause(s->link, QUEUE_PENDING);
    if (r < 0 && r != -ENOTCONN)
        return r;
    s->consuming = false;
    r = amqp_link_start(s->link);
    if (r < 0)
        return r;
    start_events(s);
    uv_timer_start(&s->reconcile_timer, on_reconcile, s->cfg.reconcile_ms, s->cfg.reconcile_ms);
    return 0;
}

static void finish(starter *s)
{
    if (s->finished)
        return;
    s->finished = true;
    uv_timer_stop(&s->shutdown_timer);
    uv_timer_stop(&s->reconcile_timer);
    uv_timer_stop(&s->events_timer);
    if (s->events) {
        docker_events_stop(s->events);
        s->events = NULL;
    }
    /* Cancels the calls still in flight (no callbacks): free their jobs ourselves. */
    docker_free(s->docker);
    s->docker = NULL;
    while (s->jobs) {
        struct job *j = s->jobs;
        j->busy = false;
        job_release(j);
    }
    /* Their calls were cancelled with the client, and every waiter is released. */
    struct pull *p;
    while (idmap_values(s->pulls, (void **)&p, 1) == 1) {
        idmap_del(s->pulls, p->key);
        free(p);
    }
    amqp_link_free(s->link);
    s->link = NULL;
    uv_close((uv_handle_t *)&s->reconcile_timer, NULL);
    uv_close((uv_handle_t *)&s->events_timer, NULL);
    uv_close((uv_handle_t *)&s->shutdown_timer, NULL);
    log_kv(LOG_INFO, "starter stopped", NULL);
    if (s->done)
        s->done(s->done_ud);
}

static void on_finish_timer(uv_timer_t *t)
{
    finish(t->data);
}

/* Finishing frees the link and the Docker client: never from inside one of their callbacks,
 * so it runs from a timer of its own. */
static void shutdown_check(starter *s)
{
    if (s->shutting_down && !s->finished && !s->jobs)
        uv_timer_start(&s->shutdown_timer, on_finish_timer, 0, 0);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    starter *s = t->data;
    unsigned n = 0;
    for (struct job *j = s->jobs; j; j = j->next) {
        if (!j->abandoned) {
            amqp_link_nack(s->link, j->gen, j->tag, true);
            j->abandoned = true;
            n++;
        }
    }
    char count[16];
    snprintf(count, sizeof(count), "%u", n);
    log_kv(LOG_WARN, "shutdown timeout, unfinished jobs returned to the queue", "jobs", count,
           NULL);
    finish(s);
}

void starter_shutdown(starter *s, void (*done)(void *), void *ud)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    s->done = done;
    s->done_ud = ud;
    log_kv(LOG_INFO, "shutting down: no new jobs, finishing the ones in hand", NULL);
    amqp_link_pause(s->link, QUEUE_PENDING);
    s->consuming = false;
    /* Jobs waiting for Docker, the broker or a pull go back to the queue now. */
    for (struct job *j = s->jobs, *next; j; j = next) {
        next = j->next;
        if ((j->waiting || j->pull) && !j->abandoned) {
            amqp_link_nack(s->link, j->gen, j->tag, true);
            job_abandon(j);
        }
    }
    uv_timer_start(&s->shutdown_timer, on_shutdown_timeout, s->cfg.shutdown_timeout_ms, 0);
    shutdown_check(s);
}

void starter_free(starter *s)
{
    if (s) {
        free(s->recent);
        idmap_free(s->pulls);
    }
    free(s);
}
