/* The starter stage.
 *
 * Each pending message becomes a job: a state machine whose steps are each safe to repeat.
 *
 *   step        what it does                      next
 *   BEGIN       parse, ALLOWED_IMAGES             LOOKUP when the job may own a container
 *                                                 already (message_id set, or redelivered);
 *                                                 else read the file, CREATE
 *   LOOKUP      list containers by label          the newest found is adopted (below);
 *                                                 none: read the file, CREATE
 *   CREATE      POST /containers/create           201: UPLOAD (a mounted file,
 *                                                 EXERCISE_MODE=bind: START); 409: INSPECT
 *                                                 (the name's holder); 404: PULL or fault
 *   PULL        one shared pull per image         CREATE
 *   INSPECT     the container holding our name    ours (or the job may own one): adopted;
 *                                                 an earlier submission's: CREATE, new name
 *   CHECK_FILE  HEAD .../archive?path=EXERCISE    there: START; absent: "file not found"
 *   UPLOAD      PUT .../archive                   START (PUBLISH with DONT_START_CONTAINER)
 *   START       POST .../start                    PUBLISH
 *   DISCARD     remove a container that failed    CREATE, under a new name
 *               to start through no fault of
 *               its image
 *   PUBLISH     the running message               ack, delete the file; done
 *   REMOVE      the container of a failed job     REPORT
 *   REPORT      the error result (or park)        ack; done
 *
 * Adopting a container: "created" is DISCARDed and made again under a new name (a start asked
 * for by the earlier delivery may still be queued in the engine: starting it ourselves could
 * run the correction twice in one container), or, when the file is gone (a lost ack after
 * DELETE_EXERCISE_FILE), CHECK_FILE then started; with DONT_START_CONTAINER (nothing ever
 * starts it) UPLOADed again; "removing" or "dead": CREATE, under a new name; any other state
 * was started before: PUBLISH. Two deliveries of one message_id at once: the second waits
 * until the first is done (each would take the other's container for an earlier delivery's).
 *
 * Identity. With an AMQP message_id the publisher declares the job: job_id is derived from it,
 * and every delivery with that message_id (a redelivery, or the same message published twice)
 * adopts the job's container. Without one, a first delivery (redelivered=false) is always a
 * new job with a random job_id, even when the same bytes were submitted before (a re-grade);
 * only a redelivered message adopts a container: the newest labelled with its bytes' digest
 * (correctomatic.submission). The first container's name is derived from the message_id or the
 * digest, so a create still in flight from an earlier delivery of the same message meets it
 * (409) instead of making a second one; a first delivery finding there a container of an
 * earlier submission (its job_id label is not ours) takes the name correction-<job_id>, and a
 * container created again after a failed start correction-<job_id>-<n>. A message this process
 * returned to the queue untouched (at capacity, or when the connection was lost before anything
 * was done for it) comes back with redelivered=true: a ring of their digests (s->untouched)
 * makes it a first delivery again.
 *
 * What remains without a message_id (the bytes are all there is): a redelivery after a crash
 * cannot tell its own container from one of an identical submission still around if its first
 * delivery never made one, and a redelivery whose first delivery left nothing to adopt (a fault
 * reported, or a correction already finished and removed, with the ack lost in between) is a
 * new job with a new job_id. Publishers that need exact de-duplication set message_id.
 *
 * Faults: one rule (common/startfault.h, pure and unit-tested; the handlers below do what it
 * says), from structured facts (which call, the HTTP status, whether the engine answers
 * /_ping right after), never from the text of a message, with one exception: the
 * engine's refusals of our own container settings and of the image's user, which it words but
 * does not code (common/refusal; an unrecognised message falls to the rule below).
 *
 *   call        answer                                  means
 *   any Docker  no answer, or 5xx                       probe GET /_ping:
 *                 /_ping fails                            the engine is down or stopping,
 *                                                         for every job: retry, no budget
 *                 /_ping answers                          retry, counted against the job's
 *                                                         JOB_RETRY_BUDGET; once spent, the
 *                                                         step's error for the caller
 *   CREATE      404                                     "image not found" (after a pull)
 *               4xx refusing our settings (CPUs,        SETTINGS: the job waits (below)
 *                 runtime, capabilities)
 *               other 4xx                               "container create failed"
 *   INSPECT     404 (after the 409)                     the name's holder is being made or
 *                                                         removed: as a 5xx, from CREATE
 *   UPLOAD      404                                     the container is gone: CREATE again
 *               other 4xx                               "upload failed"
 *   START       404, no such network                    SETTINGS (CORRECTION_NETWORK)
 *               404                                     the container is gone: CREATE again
 *               anything else but 204/304               probe; when /_ping answers, inspect:
 *                 a ulimit above the engine's             SETTINGS
 *                 no such user in the image               "container start failed"
 *                 "created", ExitCode 126 or 127          the runtime could not execute the
 *                                                         image's command: "container start
 *                                                         failed"
 *                 another state                           it did start: PUBLISH
 *                 otherwise                               DISCARD, counted (a failed start
 *                                                         can leave an endpoint of its name)
 *                 /_ping fails (the engine stopping)    retry; the retry inspects first:
 *                                                         "created": DISCARD, not counted (it
 *                                                         may have run: an engine restarting
 *                                                         loses the state of a container it
 *                                                         ran, not its log); another state:
 *                                                         it ran, PUBLISH
 *   PULL        no such image / access denied           "image not found" / "image pull
 *                                                         denied"
 *               anything else                           as "any Docker": "image pull failed"
 *   REMOVE      budget spent                            REPORT anyway (the completer removes
 *                                                         unclaimed containers)
 *   publish     nack, return, no room                   retry, no budget (the broker's)
 *               connection lost                         the broker has the message back
 *   parse/read  out of memory                           retry, no budget (ours)
 *
 * SETTINGS: the engine refuses what this starter asks of every container; no job is at fault,
 * and none is failed for it. The job's container (if any) is DISCARDed, and the job retried
 * with backoff (RETRY_MIN..RETRY_MAX) and no budget, its message held unacked; the starter logs
 * an error naming the setting and says not ready (/readyz, correctomatic_ready{dependency=
 * "settings"} 0) until a container starts again: a network created meanwhile mends it at once,
 * a changed setting with the restart that reads it.
 *
 * A fault of the job goes to REMOVE (when a container exists) and REPORT: an error result on
 * finished_corrections when the job has a usable callback, else the message parked in
 * pending_corrections.invalid with the reason; then ack. A result that cannot be serialized is
 * never retried: its reason alone (plain text) is reported.
 *
 * Capacity: the consumer runs only while (running correction containers on the host + jobs
 * being started) < MAX_RUNNING. The running count follows Docker's start, die and destroy
 * events and our own start calls (common/runset.h), with a label-filtered list as the safety
 * net (periodically and when the events stream comes back); waiting jobs stay in the queue. A
 * job waiting to retry, or for a pull, holds no slot; when it resumes it takes one, or waits
 * in line (s->ready, first come first served, ahead of new deliveries) until one is free. At
 * capacity the consumer goes on until HOLD_JOBS jobs are held: taken (unacked), first in line for
 * the next free slot (a slot freed by a die event starts one at once, not after a basic.consume
 * and a delivery). Each time the consumer starts it asks the broker for no more than may be
 * taken then (its prefetch: the free slots not promised to jobs in line, plus the HOLD_JOBS
 * room; see update_consumer), so a delivery goes back to the queue untouched only when it was
 * on its way as the consumer paused: on a quorum queue every return counts towards the
 * message's delivery limit.
 *
 * Setup turns: of the jobs holding a slot, at most MAX_STARTING make the engine's setup calls
 * (lookup, create, inspect, upload, start) at once; the others wait their turn in order
 * (s->setup_wait, at most MAX_RUNNING long). The engine shares its time among the calls in
 * flight: a burst set up all at once starts no container before it starts them all, so the
 * first correction of the burst would wait for the last one's start. From idle, the first job
 * of a burst is set up alone; the other turns open once it is through. */
/* Why one file of about 2,300 lines: it is the one state machine above, and every step reads
 * and writes the same job (its slot, its setup turn, its container, its fault and retry
 * budget); split by step, every file would share the whole job and the step table. What is
 * not the job's is apart: the running count (common/runset), the events stream and the list
 * (common/watch), the submission's checks (common/exercise), the wire (common/msg). */
#include "starter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "dlist.h"
#include "fifo.h"
#include "exercise.h"
#include "idmap.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "qtype.h"
#include "refusal.h"
#include "runset.h"
#include "startfault.h"
#include "schedule.h"
#include "tar.h"
#include "text.h"
#include "watch.h"

#define REASON_IMAGE_NOT_FOUND "image not found"
#define REASON_IMAGE_NOT_ALLOWED "image not allowed"
#define REASON_IMAGE_PULL_DENIED "image pull denied"
#define REASON_IMAGE_PULL_FAILED "image pull failed"
#define REASON_CREATE_FAILED "container create failed"
#define REASON_UPLOAD_FAILED "upload failed"
#define REASON_START_FAILED "container start failed"

/* Messages returned untouched that a redelivery recognizes (see struct starter). */
#define UNTOUCHED_MAX 1024

/* Where the submission is inside the container (the contract's path). */
#define EXERCISE_PATH "/tmp/exercise"

enum step {
    STEP_BEGIN,
    STEP_LOOKUP,
    STEP_CREATE,
    STEP_PULL,
    STEP_INSPECT,
    STEP_CHECK_FILE,
    STEP_UPLOAD,
    STEP_START,
    STEP_DISCARD,
    STEP_PUBLISH,
    STEP_REMOVE,
    STEP_REPORT,
};

static const char *const step_names[] = {"begin",   "lookup",     "create", "pull",
                                         "inspect", "check file", "upload", "start",
                                         "discard", "publish",    "remove", "report"};
_Static_assert(sizeof(step_names) / sizeof(step_names[0]) == STEP_REPORT + 1, "a name per step");

struct job {
    starter *s;
    struct job *prev, *next;     /* s->jobs */
    uint64_t queued_s;           /* the pending message's timestamp property, 0 when absent */
    int64_t submitted_ms;        /* that, else when it was taken (HEADER_SUBMITTED) */
    struct fifo_node ready;      /* in s->ready: waiting for a MAX_RUNNING slot */
    struct fifo_node setup_wait; /* in s->setup_wait: waiting for a MAX_STARTING turn */
    uint64_t gen, tag;
    bool redelivered;
    char *body;
    size_t body_len;
    char *message_id;
    struct pending_job p;
    bool parsed;
    char work_id[128]; /* for logs */
    char job_id[IDS_UUID_LEN + 1];
    char submission[IDS_UUID_LEN + 1]; /* the digest of the body */
    char name[96];                     /* of the next container to create */
    unsigned n_recreated;              /* containers made again after a failed start */
    char container_id[65];
    void *tar; /* the submission as an archive; NULL until read (or when mounted) */
    size_t tar_len;
    char *bind_source;          /* EXERCISE_MODE=bind: the file as the engine sees it, or NULL */
    struct exercise_id file_id; /* the file read into tar (DELETE_EXERCISE_FILE deletes it) */
    /* The job's limits: the configured ones, or lower ones its message asked for ("limits") */
    uint64_t timeout_ms, memory_bytes, nanocpus;
    enum step step;
    unsigned attempts;        /* faults so far: the backoff's exponent */
    bool budget_started;      /* a fault counted against JOB_RETRY_BUDGET ... */
    uint64_t budget_since_ms; /* ... first happened then */
    const char *fault_reason; /* the last Docker fault: the reason the caller hears ... */
    char fault_detail[448];   /* ... and the detail, when the budget is spent */
    uv_timer_t timer;
    bool publishing;          /* the publish in flight: its confirm callback still comes */
    bool waiting;             /* the retry timer is armed */
    bool abandoned;           /* the message went back to the queue: no further step */
    bool released;            /* out of s->jobs; freed once no callback can come */
    bool counted;             /* counted in s->starting */
    bool held;                /* taken at capacity (HOLD_JOBS), not counted yet */
    bool in_setup;            /* holds one of the MAX_STARTING turns (s->setting_up) */
    bool pulled;              /* its image was pulled: a create answered 404 again is final */
    uint64_t pulls_at_create; /* s->pulls_done when its last create was sent */
    bool touched;          /* a container may exist, or a result was published: not "untouched" */
    bool start_unknown;    /* a start of this container failed without a clear answer: it may
                            * have run it; inspect before anything else: never a second run in
                            * one container */
    struct pull *pull;     /* the pull it waits for, or NULL */
    struct job *pull_next; /* in pull->waiters */
    char reason[64];       /* of the job's fault */
    char fault[600];       /* "<reason> - <detail>", valid UTF-8 */
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
    watch *events; /* the container events: start, die, destroy */
    uv_timer_t setup_timer;
    struct job *jobs;
    /* MAX_STARTING: jobs in the engine's setup calls (lookup to start) at once; the other
     * counted jobs wait their turn here, in order. */
    unsigned setting_up;
    struct fifo setup_wait;
    bool warm; /* a burst is under way: all MAX_STARTING turns are open (else one) */
    /* CORRECTION_NETWORK=isolated: whether the engine has a default bridge, read at start, on
     * every reconcile and after the events stream broke (an engine restart); not known (an
     * error, the stream broken): none. */
    bool net_checked, net_checking, net_no_bridge;
    bool refused;        /* the engine refuses the container settings (SETTINGS, above) */
    uint64_t pulls_done; /* image pulls that succeeded */
    struct fifo ready;   /* jobs that may resume once a slot is free, in order */
    unsigned n_ready;    /* how many */
    bool admitting;
    unsigned starting; /* jobs between delivery and their container's start */
    unsigned held;     /* jobs taken at capacity, not yet counted (at most HOLD_JOBS) */
    runset *running;   /* running correction containers on the host (events, lists) */
    bool counted_once; /* the running count has been read at least once */
    bool listing, list_again;
    uint64_t list_ticket;
    bool consuming;
    /* the pending consumer's prefetch (what it was granted when it started) and the
     * deliveries since: what the broker may still send is at most grant - taken */
    unsigned grant, taken;
    struct stage_stop stop; /* the way out (common/daemon.h) */
    bool docker_down_logged;
    idmap *pulls; /* struct pull by key */
    /* Digests of messages without a message_id that went back to the queue untouched (at
     * capacity, or when the connection was lost before anything was done): their redelivery
     * is a first delivery, with nothing to adopt. A ring: the oldest are forgotten. */
    char untouched[UNTOUCHED_MAX][IDS_UUID_LEN + 1];
    size_t untouched_next;
    char hostname[256];
};

/* ---- metrics ------------------------------------------------------------------------------ */

static const double wait_bounds[] = {1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200};
static struct metric m_started =
    METRIC_COUNTER("correctomatic_jobs_started_total",
                   "Correction containers started (running message confirmed).");
static struct metric m_queue_wait = METRIC_HISTOGRAM(
    "correctomatic_queue_wait_seconds",
    "Time from a job's publication (its message's timestamp property, when set) to its "
    "container's start.",
    wait_bounds);
static struct metric m_pulls =
    METRIC_COUNTER("correctomatic_image_pulls_total", "Image pulls ended, by result.", "result");
static struct metric m_running =
    METRIC_GAUGE("correctomatic_running_corrections", "Correction containers running on the host.");
static struct metric m_max_running = METRIC_GAUGE(
    "correctomatic_max_running", "MAX_RUNNING: correction containers allowed at once.");
static struct metric m_held = METRIC_GAUGE(
    "correctomatic_jobs_held", "Jobs taken ahead while every slot is busy (HOLD_JOBS).");

static double read_running(void *ud)
{
    return (double)runset_count(((starter *)ud)->running);
}

static double read_held(void *ud)
{
    return ((starter *)ud)->held;
}

static void metrics_setup(starter *s)
{
    m_running.read = read_running;
    m_running.userdata = s;
    m_held.read = read_held;
    m_held.userdata = s;
    metrics_register(&metrics_jobs_taken);
    metrics_register(&m_started);
    metrics_register(&metrics_jobs_finished);
    metrics_register(&m_queue_wait);
    metrics_register(&m_pulls);
    metrics_register(&m_running);
    metrics_register(&m_held);
    metric_set(&m_max_running, (double)s->cfg.max_running, NULL);
}

static void job_run(struct job *job);
static void job_fault(struct job *job, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void request_count(starter *s);
static void shutdown_check(starter *s);
static void admit_ready(starter *s);
static void job_uncount(struct job *job);

/* ---- capacity ---------------------------------------------------------------------------- */

static bool has_room(const starter *s)
{
    return (uint64_t)runset_count(s->running) + s->starting < s->cfg.max_running;
}

static void untouched_add(starter *s, const char *digest)
{
    snprintf(s->untouched[s->untouched_next], sizeof(s->untouched[0]), "%s", digest);
    s->untouched_next = (s->untouched_next + 1) % UNTOUCHED_MAX;
}

/* True (and forgotten) when a message with this digest went back to the queue untouched. */
static bool untouched_take(starter *s, const char *digest)
{
    for (size_t i = 0; i < UNTOUCHED_MAX; i++) {
        if (strcmp(s->untouched[i], digest) == 0) {
            s->untouched[i][0] = '\0';
            return true;
        }
    }
    return false;
}

/* Every slot taken, or jobs already in line for one. */
static bool is_full(const starter *s)
{
    return !fifo_empty(&s->ready) || !has_room(s);
}

/* Whether a delivery may be taken now: there is room, or a job may still be held
 * (HOLD_JOBS). */
static bool may_take(const starter *s)
{
    return !s->stop.stopping && (!is_full(s) || s->held < s->cfg.hold_jobs);
}

/* How many deliveries may be taken now: the free slots no job in line waits for, and what may
 * still be held (HOLD_JOBS); not 0 exactly when may_take. */
static unsigned takeable(const starter *s)
{
    if (!may_take(s))
        return 0;
    uint64_t busy = (uint64_t)runset_count(s->running) + s->starting;
    uint64_t room = busy < s->cfg.max_running ? s->cfg.max_running - busy : 0;
    room = room > s->n_ready ? room - s->n_ready : 0;
    uint64_t n = room + (s->held < s->cfg.hold_jobs ? s->cfg.hold_jobs - s->held : 0);
    return n == 0 ? 1 : n > UINT16_MAX ? UINT16_MAX : (unsigned)n;
}

/* The pending consumer runs while a delivery may be taken, and asks the broker for no more
 * than that (its prefetch, a consumer of its own each time: amqp_link_set_prefetch), so that
 * a delivery is returned untouched only when one was on its way as the consumer paused. A
 * return is not free: it moves the job behind none (the broker redelivers it first) but
 * counts towards a quorum queue's delivery limit (common/qtype.h). When more slots free up
 * than the running consumer may still be sent, it is started again with the larger grant. */
static void update_consumer(starter *s)
{
    if (s->stop.finished)
        return;
    admit_ready(s);
    bool want = s->counted_once && (!s->cfg.net_isolated || s->net_checked) && may_take(s);
    unsigned n = want ? takeable(s) : 0;
    bool regrant = want && s->consuming && n > (s->grant > s->taken ? s->grant - s->taken : 0);
    if (want == s->consuming && !regrant)
        return;
    int r = 0;
    if (want) {
        if (regrant)
            r = amqp_link_pause(s->link, QUEUE_PENDING);
        if (r == 0 || r == -ENOTCONN)
            r = amqp_link_set_prefetch(s->link, QUEUE_PENDING, n);
        if (r == 0)
            r = amqp_link_resume(s->link, QUEUE_PENDING);
        if (r == 0 || r == -ENOTCONN) {
            s->grant = n;
            s->taken = 0;
        }
    } else {
        r = amqp_link_pause(s->link, QUEUE_PENDING);
    }
    if (r < 0 && r != -ENOTCONN) {
        log_kv(LOG_ERROR, "cannot change the pending consumer", "error", strerror(-r), NULL);
        return;
    }
    if (regrant)
        return; /* consuming still */
    s->consuming = want;
    char running[32], starting[32];
    snprintf(running, sizeof(running), "%zu", runset_count(s->running));
    snprintf(starting, sizeof(starting), "%u", s->starting);
    log_kv(LOG_DEBUG,
           want ? "consuming pending jobs" : "at capacity, pending jobs wait in the queue",
           "running", running, "starting", starting, NULL);
}

static void on_count(const struct docker_result *res, void *ud)
{
    starter *s = ud;
    s->listing = false;
    if (s->stop.finished)
        return;
    bool answered = res->err == 0 && res->status == 200 && json_is_array(res->json);
    size_t n = answered ? json_array_size(res->json) : 0;
    const char **ids = n > 0 ? calloc(n, sizeof(*ids)) : NULL;
    if (answered && (n == 0 || ids)) {
        for (size_t i = 0; i < n; i++)
            ids[i] = json_string_value(json_object_get(json_array_get(res->json, i), "Id"));
        if (runset_list_answer(s->running, s->list_ticket, ids, n) == 0) {
            s->counted_once = true;
            if (s->docker_down_logged)
                log_kv(LOG_INFO, "docker is reachable again", NULL);
            s->docker_down_logged = false;
            update_consumer(s);
        }
        /* else out of memory: the count stays as the events made it, until the next list */
    } else if (!answered && !s->docker_down_logged) {
        log_kv(LOG_WARN, "cannot count running corrections, docker unreachable or failing", "error",
               res->message, NULL);
        s->docker_down_logged = true;
    }
    free(ids);
    if (s->list_again) {
        s->list_again = false;
        request_count(s);
    }
}

static void request_count(starter *s)
{
    if (s->stop.finished)
        return;
    if (s->listing) {
        s->list_again = true;
        return;
    }
    json_t *filters = json_pack("{s:[s],s:[s]}", "label", LABEL_JOB_ID, "status", "running");
    if (!filters)
        return;
    uint64_t ticket = runset_list_asked(s->running);
    if (docker_container_list(s->docker, false, filters, on_count, s) == 0) {
        s->listing = true;
        s->list_ticket = ticket;
    }
    json_decref(filters);
}

/* CORRECTION_NETWORK=isolated: with no network named "bridge" the engine's default network
 * mode joins no network (a namespace of the container's own, loopback only), and costs the
 * engine less than half of what "none" does per container (bench/NOTES.md); with one, the
 * default is that bridge, with a way out, and "none" is used. */
static void on_net_checked(const struct docker_result *res, void *ud)
{
    starter *s = ud;
    s->net_checking = false;
    if (s->stop.finished)
        return;
    if (res->err != 0 || (res->status != 200 && res->status != 404)) {
        s->net_no_bridge = false; /* not known: none, until the next reconcile reads it */
        return;
    }
    bool no_bridge = res->status == 404;
    if (!s->net_checked || no_bridge != s->net_no_bridge)
        log_kv(LOG_INFO, "CORRECTION_NETWORK=isolated", "network_mode",
               no_bridge ? "default" : "none", "why",
               no_bridge ? "the engine has no default bridge: loopback only"
                         : "the engine has a default bridge",
               NULL);
    s->net_no_bridge = no_bridge;
    s->net_checked = true;
    update_consumer(s);
}

static void check_network(starter *s)
{
    if (!s->cfg.net_isolated || s->net_checking || s->stop.finished)
        return;
    if (docker_call(s->docker, "GET", "/networks/bridge", NULL, NULL, 0, on_net_checked, s) == 0)
        s->net_checking = true;
}

/* The start event of a container one of our jobs is starting: it is counted as running now,
 * so it leaves the jobs being started (its start call's answer may come later; counted twice
 * meanwhile, it would hold a MAX_RUNNING slot for nothing and pause the consumer). Its setup
 * turn goes to the next job: the engine is done with it. */
static void start_seen(starter *s, const char *id)
{
    for (struct job *j = s->jobs; j; j = j->next) {
        if (j->counted && j->step == STEP_START && strcmp(j->container_id, id) == 0) {
            job_uncount(j);
            return;
        }
    }
}

/* A start, die or destroy of a correction container (from the watch, on a loop turn of its
 * own): the count follows it at once (the periodic list is the safety net for what the stream
 * misses). */
static void on_event(const char *action, const char *id, void *ud)
{
    starter *s = ud;
    if (strcmp(action, "start") == 0) {
        if (runset_start_event(s->running, id) < 0)
            request_count(s); /* not counted (out of memory): let a list count it */
        start_seen(s, id);
    } else if (strcmp(action, "die") == 0 || strcmp(action, "destroy") == 0) {
        runset_gone(s->running, id);
    } else {
        return;
    }
    update_consumer(s);
}

/* The stream (re)opened, events were dropped, or RECONCILE_INTERVAL passed: a list counts
 * what the stream did not say; the network is read again. */
static void on_events_list(void *ud)
{
    request_count(ud);
    check_network(ud);
}

static void on_events_end(const char *why, void *ud)
{
    starter *s = ud;
    /* Maybe an engine restart, maybe with another configuration: none until it is read again. */
    s->net_no_bridge = false;
    log_kv(LOG_DEBUG, "docker events stream ended, reconnecting", "error", why, NULL);
    request_count(s);
    check_network(s);
}

/* ---- job lifecycle ------------------------------------------------------------------------ */

static void job_free_cb(uv_handle_t *h)
{
    struct job *job = h->data;
    msg_pending_free(&job->p);
    free(job->tar);
    free(job->bind_source);
    free(job->body);
    free(job->message_id);
    free(job);
}

static void job_unhold(struct job *job)
{
    if (job->held) {
        job->held = false;
        job->s->held--;
    }
}

static void job_count(struct job *job)
{
    job_unhold(job);
    if (!job->counted) {
        job->counted = true;
        job->s->starting++;
    }
}

static void on_setup_timer(uv_timer_t *t);

/* The job leaves the setup calls (started, failed, waiting to retry, gone): its turn goes to
 * the next in line, from the loop (not from inside the caller's callback). */
static void setup_leave(struct job *job)
{
    starter *s = job->s;
    if (job->in_setup) {
        job->in_setup = false;
        s->setting_up--;
        /* The first job of a burst had the engine to itself; the others may now share it. */
        s->warm = s->setting_up > 0 || !fifo_empty(&s->setup_wait);
        if (!fifo_empty(&s->setup_wait) && !s->stop.finished)
            uv_timer_start(&s->setup_timer, on_setup_timer, 0, 0);
    }
    fifo_remove(&s->setup_wait, &job->setup_wait);
}

static void job_uncount(struct job *job)
{
    setup_leave(job);
    if (job->counted) {
        job->counted = false;
        job->s->starting--;
    }
}

/* The engine's setup calls of a container (finding, creating, filling and starting it): a
 * burst of jobs all set up at once makes the engine finish none of them before all, so the
 * first correction of a burst would wait for the last one's start. */
static bool step_is_setup(enum step step)
{
    return step >= STEP_LOOKUP && step <= STEP_DISCARD && step != STEP_PULL;
}

/* Turns open now: one while the starter is idle (the first job of a burst is set up alone,
 * so its correction is done as soon as one alone could be), MAX_STARTING once it has left. */
static unsigned setup_turns(const starter *s)
{
    return s->warm ? (unsigned)s->cfg.max_starting : 1;
}

/* True when the job may make its setup call now; else it waits in line (s->setup_wait) and
 * on_setup_timer runs it when a turn is free. */
static bool setup_turn(struct job *job)
{
    starter *s = job->s;
    if (job->in_setup || !step_is_setup(job->step))
        return true;
    if (fifo_queued(&job->setup_wait))
        return false;
    if (s->setting_up < setup_turns(s)) {
        job->in_setup = true;
        s->setting_up++;
        return true;
    }
    fifo_push(&s->setup_wait, &job->setup_wait);
    return false;
}

static void on_setup_timer(uv_timer_t *t)
{
    starter *s = t->data;
    while (!fifo_empty(&s->setup_wait) && s->setting_up < setup_turns(s) && !s->stop.finished) {
        struct job *job = FIFO_ENTRY(fifo_pop(&s->setup_wait), struct job, setup_wait);
        job->in_setup = true;
        s->setting_up++;
        job_run(job);
    }
}

/* The steps that lead to a container being started hold a MAX_RUNNING slot while they run. */
static bool step_needs_slot(enum step step)
{
    return step < STEP_PUBLISH;
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

/* Forgets the job. Its Docker calls are cancelled (no callback comes); a job whose publish is
 * still unconfirmed is freed by its confirm callback (which amqp_link guarantees, -ECANCELED at
 * the latest when the link is freed). */
static void job_release(struct job *job)
{
    starter *s = job->s;
    if (job->released)
        return;
    job->released = true;
    docker_cancel(s->docker, job);
    job_unhold(job);
    pull_detach(job);
    if (fifo_remove(&s->ready, &job->ready))
        s->n_ready--;
    DLIST_UNLINK(s->jobs, job);
    job_uncount(job);
    uv_timer_stop(&job->timer);
    if (!job->publishing)
        uv_close((uv_handle_t *)&job->timer, job_free_cb);
    update_consumer(s);
    shutdown_check(s);
}

/* The message is (or will be) back in the queue: no further step for this job. A publish in
 * flight is waited for (its confirm releases the job); anything else stops now. */
static void job_abandon(struct job *job)
{
    job->abandoned = true;
    job_uncount(job);
    if (!job->publishing)
        job_release(job);
}

static void log_job(enum log_level level, const struct job *job, const char *msg, const char *k1,
                    const char *v1, const char *k2, const char *v2)
{
    log_kv(level, msg, "work_id", job->work_id[0] ? job->work_id : NULL, "job_id", job->job_id,
           "container_id", job->container_id[0] ? job->container_id : NULL, k1, v1, k2, v2, NULL);
}

/* Runs the job's step now if it may: a step that needs a MAX_RUNNING slot takes one, or waits
 * in line for one. */
static void job_resume(struct job *job)
{
    starter *s = job->s;
    if (job->counted || !step_needs_slot(job->step)) {
        job_run(job);
        return;
    }
    if (fifo_empty(&s->ready) && has_room(s)) {
        job_count(job);
        job_run(job);
        return;
    }
    fifo_push(&s->ready, &job->ready);
    s->n_ready++;
    log_job(LOG_DEBUG, job, "waiting for a free slot to resume", "step", step_names[job->step],
            NULL, NULL);
}

/* Resumes the jobs in line while there is room, in order. */
static void admit_ready(starter *s)
{
    if (s->admitting)
        return;
    s->admitting = true;
    while (!fifo_empty(&s->ready) && has_room(s) && !s->stop.finished && !s->stop.stopping) {
        struct job *job = FIFO_ENTRY(fifo_pop(&s->ready), struct job, ready);
        s->n_ready--;
        job_count(job);
        job_run(job);
    }
    s->admitting = false;
}

static void on_job_timer(uv_timer_t *t)
{
    struct job *job = t->data;
    job->waiting = false;
    job_resume(job);
}

/* Runs the step again after a backoff, the message unacked, the job holding no slot. */
static void job_later(struct job *job, enum log_level level, const char *msg, const char *why)
{
    starter *s = job->s;
    if (s->stop.stopping) {
        /* Return it now: it will not get better before we exit. */
        amqp_link_nack(s->link, job->gen, job->tag, true);
        log_job(LOG_INFO, job, "job returned to the queue at shutdown", "step",
                step_names[job->step], "error", why);
        job_abandon(job);
        return;
    }
    uint64_t delay =
        schedule_backoff_ms(s->cfg.retry_min_ms, s->cfg.retry_max_ms, job->attempts, ids_jitter());
    job->attempts++;
    char ms[32];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)delay);
    log_job(level, job, msg, "step", step_names[job->step], "error", why);
    log_kv(LOG_DEBUG, "retry scheduled", "job_id", job->job_id, "delay_ms", ms, NULL);
    job->waiting = true;
    uv_timer_start(&job->timer, on_job_timer, delay, 0);
    job_uncount(job);
    update_consumer(s);
}

/* A fault that is nobody's in particular (the engine down, the broker, our memory): the step
 * runs again later. */
static void job_retry(struct job *job, const char *why)
{
    job_later(job, LOG_WARN, "infrastructure fault, will retry", why);
}

/* To the step, at once when the job holds its slot (or the step needs none); a held job
 * (HOLD_JOBS) waits in line for one. */
static void job_goto(struct job *job, enum step step)
{
    job->step = step;
    if (job->held) {
        job_resume(job);
        return;
    }
    job_run(job);
}

/* ---- fault reporting ---------------------------------------------------------------------- */

static void job_fault(struct job *job, const char *reason, const char *fmt, ...)
{
    char detail[448], text[sizeof(job->fault)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(job->reason, sizeof(job->reason), "%s", reason);
    int n = snprintf(text, sizeof(text), "%s - %s", reason, detail);
    /* Outside text (a path, a Docker message) may be cut mid-character: valid UTF-8 first. */
    text_utf8_copy(job->fault, sizeof(job->fault), text,
                   n < 0                      ? 0
                   : (size_t)n < sizeof(text) ? (size_t)n
                                              : sizeof(text) - 1);
    log_job(LOG_WARN, job, "job failed", "reason", job->fault, "callback",
            job->p.callback ? "yes" : "no");
    job_uncount(job);
    update_consumer(job->s);
    job_goto(job, job->container_id[0] ? STEP_REMOVE : STEP_REPORT);
}

/* DELETE_EXERCISE_FILE, once the container holds the submission: the name is unlinked relative
 * to its folder, resolved beneath EXERCISE_DIR, and only while it is still the file read. */
static void delete_file(struct job *job)
{
    if (!job->p.file || !job->tar)
        return; /* not read by this delivery (adopted, its file gone already) */
    int r = exercise_delete(job->p.file, job->s->cfg.exercise_dir, &job->file_id);
    if (r == 0 || r == -ENOENT)
        return;
    log_job(LOG_WARN, job,
            r == -ESTALE ? "the exercise file was replaced since it was read, not deleted"
                         : "cannot delete the exercise file",
            "error", strerror(-r), "file", job->p.file);
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
    job->publishing = false;
    if (job->released) {
        /* released while its publish was in flight (at shutdown): only the memory is left */
        uv_close((uv_handle_t *)&job->timer, job_free_cb);
        return;
    }
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
        metric_add(&m_started, 1, NULL);
        if (job->queued_s && !job->redelivered)
            metric_observe(&m_queue_wait, metrics_now() - (double)job->queued_s, NULL);
        log_job(LOG_INFO, job,
                job->s->cfg.dont_start ? "container created (not started)" : "correction started",
                "image", job->p.image, NULL, NULL);
        if (job->s->cfg.delete_file)
            delete_file(job);
    } else {
        METRIC_INC(&metrics_jobs_finished, job->p.callback ? "error" : "parked", job->reason);
        if (!job->p.callback)
            METRIC_INC(&metrics_parked, QUEUE_PENDING_INVALID);
        log_job(LOG_INFO, job,
                job->p.callback ? "failure reported to finished_corrections"
                                : "message parked in " QUEUE_PENDING_INVALID,
                "reason", job->fault, NULL, NULL);
    }
    job_release(job);
}

/* expiration_ms: 0, or the message's own TTL (the running message's, see announce) */
static void publish(struct job *job, const char *queue, const char *body, size_t len,
                    const struct amqp_link_header *headers, size_t n_headers,
                    uint64_t expiration_ms)
{
    struct amqp_link_publish_opts opts = {.message_id = job->job_id,
                                          .headers = headers,
                                          .n_headers = n_headers,
                                          .expiration_ms = expiration_ms};
    log_job(LOG_DEBUG, job, "publishing", "queue", queue, NULL, NULL);
    job->touched = true;
    int r = amqp_link_publish(job->s->link, queue, body, len, &opts, on_published, job);
    if (r == -ENOTCONN) {
        job_abandon(job);
        return;
    }
    if (r < 0) {
        job_retry(job, strerror(-r));
        return;
    }
    job->publishing = true;
}

static void step_report(struct job *job)
{
    if (!job->p.callback) {
        struct amqp_link_header h[] = {{.key = HEADER_REASON, .str = job->fault},
                                       {.key = HEADER_JOB_ID, .str = job->job_id}};
        publish(job, QUEUE_PENDING_INVALID, job->body, job->body_len, h, 2, 0);
        return;
    }
    struct amqp_link_header times[] = {{.key = HEADER_SUBMITTED, .num = job->submitted_ms},
                                       {.key = HEADER_FINISHED, .num = metrics_wall_ms()}};
    size_t max = job->s->cfg.amqp.max_message_bytes;
    char *body =
        msg_finished_error_serialize(job->p.work_id, job->job_id, job->p.callback, job->fault);
    if (body && strlen(body) > max) {
        /* Cannot happen (every field is bounded, MAX_MESSAGE_BYTES is large enough): fall
         * back all the same. */
        free(body);
        body = NULL;
    }
    if (!body) {
        /* Never retried for what the text holds: the reason alone is plain text that always
         * serializes; only a true lack of memory is retried. */
        char plain[160];
        snprintf(plain, sizeof(plain), "%s - the detail could not be reported", job->reason);
        body = msg_finished_error_serialize(job->p.work_id, job->job_id, job->p.callback, plain);
        if (!body) {
            job_retry(job, "out of memory");
            return;
        }
        log_job(LOG_WARN, job, "the error detail could not be serialized, reported without it",
                "reason", job->fault, NULL, NULL);
    }
    publish(job, QUEUE_FINISHED, body, strlen(body), times, 2, 0);
    free(body);
}

/* ---- faults of Docker calls --------------------------------------------------------------- */

static void on_start_checked(const struct docker_result *res, void *ud);

/* A fault counted against the job's JOB_RETRY_BUDGET: retried until the budget is spent, then
 * the caller hears of it. */
static void job_counted_fault(struct job *job)
{
    starter *s = job->s;
    uint64_t now = uv_now(s->loop);
    if (!job->budget_started) {
        job->budget_started = true;
        job->budget_since_ms = now;
    }
    if (now - job->budget_since_ms < s->cfg.job_retry_budget_ms) {
        job_retry(job, job->fault_detail);
        return;
    }
    if (job->step == STEP_REMOVE) {
        /* The fault is reported all the same; the container is left to the completer, which
         * removes unclaimed ones. */
        log_job(LOG_WARN, job, "cannot remove the container, reporting the fault anyway", "error",
                job->fault_detail, NULL, NULL);
        job->container_id[0] = '\0';
        job_goto(job, STEP_REPORT);
        return;
    }
    log_job(LOG_WARN, job, "retry budget spent", "step", step_names[job->step], "error",
            job->fault_detail);
    job_fault(job, job->fault_reason, "%s", job->fault_detail);
}

static void on_probed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (res->err != 0 || res->status != 200) {
        /* The engine does not answer: down or stopping, for every job alike. No budget. */
        job->budget_started = false;
        job_retry(job, job->fault_detail);
        return;
    }
    if (job->step == STEP_START) {
        int r = docker_container_inspect(job->s->docker, job->container_id, on_start_checked, job);
        if (r < 0) {
            job_retry(job, strerror(-r));
            return;
        }
        return;
    }
    job_counted_fault(job);
}

/* A Docker call of the job failed in a way that may be the engine's rather than the job's
 * (no answer, 5xx, a failed start): the probe tells which (see the table at the top). */
static void job_docker_fault(struct job *job, const char *reason, const char *message)
{
    starter *s = job->s;
    job->fault_reason = reason;
    text_utf8_copy(job->fault_detail, sizeof(job->fault_detail), message, strlen(message));
    if (s->stop.stopping) {
        job_retry(job, job->fault_detail); /* back to the queue */
        return;
    }
    int r = docker_ping(s->docker, on_probed, job);
    if (r < 0) {
        job_retry(job, strerror(-r));
        return;
    }
}

/* SETTINGS (see the table at the top): the engine refuses this starter's container settings. */
static void settings_refused(struct job *job, const char *setting, const char *message)
{
    starter *s = job->s;
    char why[512];
    snprintf(why, sizeof(why), "the Docker engine refuses the container settings (%s): %s", setting,
             message);
    if (!s->refused)
        log_kv(LOG_ERROR,
               "the Docker engine refuses the container settings: no job is started "
               "until they are fixed",
               "setting", setting, "error", message, NULL);
    s->refused = true;
    daemon_set_refused(why);
    job->budget_started = false; /* not the job's fault */
    if (job->container_id[0])
        job->step = STEP_DISCARD; /* made again with the settings in force then */
    job_later(job, LOG_WARN, "the engine refuses the container settings, will retry", why);
}

/* Common handling of a Docker reply: true when the step may look at the status. */
static bool docker_reply(struct job *job, const struct docker_result *res, const char *reason)
{
    if (res->err != 0 || res->status >= 500) {
        job_docker_fault(job, reason, res->message);
        return false;
    }
    return true;
}

/* ---- Docker steps ------------------------------------------------------------------------- */

/* The name of the job's next container: the first is derived from the message (message_id,
 * else the body's digest), later ones from the job_id. */
static void name_first(struct job *job)
{
    snprintf(job->name, sizeof(job->name), "correction-%s",
             job->message_id ? job->job_id : job->submission);
}

static void name_recreate(struct job *job)
{
    job->start_unknown = false; /* a new container, never started */
    job->n_recreated++;
    snprintf(job->name, sizeof(job->name), "correction-%s-%u", job->job_id, job->n_recreated);
}

/* EXERCISE_MODE=bind: the file to mount, when it may be: a regular file no larger than
 * MAX_EXERCISE_BYTES, readable by any user (the correction may run as any user; an upload
 * makes it 0644), reached beneath EXERCISE_DIR with no link on the way (the engine follows
 * links when it mounts: a path free of them now is the file we checked; bind_still_checked
 * checks it again just before the start, when the engine mounts it). 0 and
 * job->bind_source; -ENOMEM; or 1 and *ret_why: upload it instead (the upload's reading then
 * decides about a missing, unreadable or out-of-bounds file, exactly as without bind). */
static int job_bind_file(struct job *job, const char **ret_why)
{
    starter *s = job->s;
    const char *rel, *why;
    struct stat st;
    int r = exercise_stat_plain(job->p.file, s->cfg.exercise_dir, &rel, &st);
    if (r < 0)
        why = r == -ELOOP ? "a link or a . or .. on its path" : strerror(-r);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if ((uint64_t)st.st_size > s->cfg.max_exercise_bytes)
        why = "too large";
    else if (!(st.st_mode & S_IROTH))
        why = "not readable by any user";
    else
        why = NULL;
    if (why) {
        *ret_why = why;
        return 1;
    }
    size_t n = strlen(s->cfg.exercise_host_dir);
    while (n > 1 && s->cfg.exercise_host_dir[n - 1] == '/')
        n--;
    if (asprintf(&job->bind_source, "%.*s/%s", (int)n, s->cfg.exercise_host_dir, rel) < 0) {
        job->bind_source = NULL;
        return -ENOMEM;
    }
    job->file_id.dev = (uint64_t)st.st_dev;
    job->file_id.ino = (uint64_t)st.st_ino;
    return 0;
}

/* EXERCISE_MODE=bind, just before the start (when the engine mounts the file): its path still
 * reaches, with no link, the file checked when the job was taken. Between the two come the
 * create and any retries of it, up to JOB_RETRY_BUDGET: a folder on the path swapped for a
 * link meanwhile would make the engine mount whatever the link leads to. True when it does
 * (or nothing is mounted); else the job's fault ("file not allowed"), and false. */
static bool bind_still_checked(struct job *job)
{
    const char *rel;
    struct stat st;
    if (!job->bind_source)
        return true;
    int r = exercise_stat_plain(job->p.file, job->s->cfg.exercise_dir, &rel, &st);
    if (r == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_dev == job->file_id.dev &&
        (uint64_t)st.st_ino == job->file_id.ino)
        return true;
    job_fault(job, EXERCISE_REASON_NOT_ALLOWED,
              "%.300s changed since it was checked (%s), it is not mounted", job->p.file,
              r == -ELOOP ? "a link on its path now"
              : r < 0     ? strerror(-r)
                          : "another file");
    return false;
}

/* Reads the submission into the archive to upload (or, EXERCISE_MODE=bind, finds the file to
 * mount): 0; -ENOMEM (ours: retry); another negative errno with err set (the job's fault;
 * -ENOENT when the file does not exist). */
static int job_read_file(struct job *job, struct msg_error *err)
{
    starter *s = job->s;
    void *data = NULL;
    size_t len = 0;
    const char *why = NULL;
    if (job->tar || job->bind_source)
        return 0;
    if (s->cfg.exercise_bind) {
        int b = job_bind_file(job, &why);
        if (b <= 0)
            return b;
    }
    int r = exercise_read_id(job->p.file, s->cfg.exercise_dir, s->cfg.max_exercise_bytes, &data,
                             &len, &job->file_id, err);
    if (r < 0)
        return r;
    if (why)
        log_job(LOG_INFO, job, "the exercise file cannot be mounted, uploading it", "why", why,
                "file", job->p.file);
    /* Into "/" (an image without /tmp gets one), or with a read-only root into the /tmp volume
     * itself: the engine writes into a read-only container's volumes only. */
    r = tar_single_file(s->cfg.read_only ? "exercise" : EXERCISE_PATH + 1, data, len, 0644,
                        &job->tar, &job->tar_len);
    free(data);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        msg_error_set(err, REASON_UPLOAD_FAILED, "cannot build the archive: %s", strerror(-r));
        return r;
    }
    return 0;
}

/* A step's reading of the message or the file failed (r < 0): true, and the job retried when
 * memory ran out (ours, not the message's), else failed with err; false when r is 0. */
static bool job_read_failed(struct job *job, int r, const struct msg_error *err)
{
    if (r == -ENOMEM)
        job_retry(job, "out of memory");
    else if (r < 0)
        job_fault(job, err->reason, "%s", err->detail);
    return r < 0;
}

/* Reads the file, then CREATE. */
static void job_to_create(struct job *job)
{
    struct msg_error err;
    if (!job_read_failed(job, job_read_file(job, &err), &err))
        job_goto(job, STEP_CREATE);
}

static void container_vanished(struct job *job)
{
    log_job(LOG_WARN, job, "container vanished, creating it again", NULL, NULL, NULL, NULL);
    job->container_id[0] = '\0';
    name_recreate(job);
    job_to_create(job);
}

static void job_started(struct job *job)
{
    /* Counted from now on (unless its exit came first), not only once an event or a list
     * shows it. */
    starter *s = job->s;
    if (s->refused) {
        s->refused = false;
        daemon_set_refused(NULL);
        log_kv(LOG_INFO, "the Docker engine takes the container settings again", NULL);
    }
    job_uncount(job);
    if (runset_started(s->running, job->container_id) < 0)
        request_count(s); /* not counted (out of memory): let a list count it */
    job_goto(job, STEP_PUBLISH);
}

static void after_upload(struct job *job)
{
    if (job->s->cfg.dont_start) {
        job_uncount(job); /* a created container does not run */
        job_goto(job, STEP_PUBLISH);
    } else {
        job_goto(job, STEP_START);
    }
}

/* Carries on with a container of the job found in state `state`, made by an earlier delivery
 * (or an earlier attempt of this one). */
static void job_adopt(struct job *job, const char *state)
{
    job->touched = true;
    if (strcmp(state, "removing") == 0 || strcmp(state, "dead") == 0) {
        /* Going away (or gone wrong): nothing to resume, a container of its own again. */
        log_job(LOG_INFO, job, "container of the job is being removed, creating another", "state",
                state, NULL, NULL);
        job->container_id[0] = '\0';
        name_recreate(job);
        job_to_create(job);
        return;
    }
    log_job(LOG_INFO, job, "container exists already, resuming", "state", state, NULL, NULL);
    if (strcmp(state, "created") != 0) {
        job_uncount(job); /* it was started before: Docker counts it if it runs */
        job_goto(job, STEP_PUBLISH);
        return;
    }
    /* The upload may not have happened: do it again, or, when the file is gone (deleted once
     * a delivery whose ack was lost had put it in), check that it is in the container. */
    struct msg_error err;
    int r = job_read_file(job, &err);
    if (r == -ENOMEM) {
        job_retry(job, "out of memory");
        return;
    }
    if (r == -ENOENT) {
        job_goto(job, STEP_CHECK_FILE);
        return;
    }
    if (r < 0) {
        job_fault(job, err.reason, "%s", err.detail);
        return;
    }
    /* With DONT_START_CONTAINER nothing ever starts it: upload again (a mounted file is in
     * already), announce. */
    if (job->s->cfg.dont_start) {
        if (job->bind_source)
            after_upload(job);
        else
            job_goto(job, STEP_UPLOAD);
        return;
    }
    /* Never started as far as Docker says, but an earlier delivery may have asked for its
     * start just before it died, and that request may still run: starting it again would run
     * the correction twice in one container (twice its output in one log) once the first run
     * has exited. A container of its own, under a new name, runs exactly once; the old one is
     * removed first (a start still queued for it then finds nothing). */
    log_job(LOG_INFO, job, "replacing the created container of an earlier delivery", NULL, NULL,
            NULL, NULL);
    job_goto(job, STEP_DISCARD);
}

static void set_container_id(struct job *job, json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "Id"));
    if (id && ids_is_container_id(id))
        snprintf(job->container_id, sizeof(job->container_id), "%s", id);
}

static void on_looked_up(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!docker_reply(job, res, REASON_CREATE_FAILED))
        return;
    if (res->status != 200 || !json_is_array(res->json)) {
        job_docker_fault(job, REASON_CREATE_FAILED, "unexpected answer to a container list");
        return;
    }
    /* The newest container of the job (several: a container made again after a failed start
     * whose removal failed, or identical submissions). */
    json_t *best = NULL;
    json_int_t best_created = 0;
    size_t i;
    json_t *c;
    json_array_foreach(res->json, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *jid =
            json_string_value(json_object_get(json_object_get(c, "Labels"), LABEL_JOB_ID));
        json_int_t created = json_integer_value(json_object_get(c, "Created"));
        if (!id || !ids_is_container_id(id) || !jid || !ids_is_uuid(jid) ||
            !json_string_value(json_object_get(c, "State")))
            continue;
        if (!best || created > best_created) {
            best = c;
            best_created = created;
        }
    }
    if (!best) {
        job_to_create(job);
        return;
    }
    set_container_id(job, best);
    snprintf(job->job_id, sizeof(job->job_id), "%s",
             json_string_value(json_object_get(json_object_get(best, "Labels"), LABEL_JOB_ID)));
    job_adopt(job, json_string_value(json_object_get(best, "State")));
}

static void step_lookup(struct job *job)
{
    char label[sizeof(LABEL_SUBMISSION) + IDS_UUID_LEN + 2];
    if (job->message_id)
        snprintf(label, sizeof(label), "%s=%s", LABEL_JOB_ID, job->job_id);
    else
        snprintf(label, sizeof(label), "%s=%s", LABEL_SUBMISSION, job->submission);
    json_t *filters = json_pack("{s:[s]}", "label", label);
    if (!filters) {
        job_retry(job, "out of memory");
        return;
    }
    int r = docker_container_list(job->s->docker, true, filters, on_looked_up, job);
    json_decref(filters);
    if (r < 0) {
        job_retry(job, strerror(-r));
        return;
    }
}

/* The engine's answer as the fault rule reads it (common/startfault.h). */
static struct sf_answer answer(const struct docker_result *res)
{
    return (struct sf_answer){.err = res->err, .status = res->status, .message = res->message};
}

/* The rule's actions every step shares (a step handles its own before): the container gone,
 * our settings refused, the job's fault with the step's reason, else the engine's trouble. */
static void sf_follow(struct job *job, enum sf_action a, const char *reason, const char *setting,
                      const char *message)
{
    switch (a) {
    case SF_VANISHED:
        container_vanished(job);
        return;
    case SF_SETTINGS:
        settings_refused(job, setting, message);
        return;
    case SF_JOB_FAULT:
        job_fault(job, reason, "%.300s", message);
        return;
    default:
        job_docker_fault(job, reason, message);
        return;
    }
}

static void on_created(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    const char *setting = NULL;
    enum sf_action a = sf_create(answer(res), job->s->cfg.pull, job->pulled,
                                 job->s->pulls_done != job->pulls_at_create, &setting);
    switch (a) {
    case SF_NEXT:
        set_container_id(job, res->json);
        if (!job->container_id[0]) {
            job_docker_fault(job, REASON_CREATE_FAILED,
                             "docker answered create without a container id");
            return;
        }
        if (job->bind_source)
            after_upload(job); /* mounted: nothing to put in */
        else
            job_goto(job, STEP_UPLOAD);
        return;
    case SF_NAME_TAKEN:
        job_goto(job, STEP_INSPECT); /* who holds the name? */
        return;
    case SF_CREATE_AGAIN: /* a pull ended while this create was on its way */
        job_goto(job, STEP_CREATE);
        return;
    case SF_PULL:
        job_goto(job, STEP_PULL);
        return;
    case SF_IMAGE_NOT_FOUND:
        job_fault(job, REASON_IMAGE_NOT_FOUND, "%.200s: %.200s", job->p.image, res->message);
        return;
    default:
        sf_follow(job, a, REASON_CREATE_FAILED, setting, res->message);
        return;
    }
}

/* The container holding the name we asked for. */
static void on_inspected(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!docker_reply(job, res, REASON_CREATE_FAILED))
        return;
    if (res->status == 404) {
        /* The name is taken (409) by a container not there yet (being created) or not any
         * more (being removed): create again later. */
        job->step = STEP_CREATE;
        job_docker_fault(job, REASON_CREATE_FAILED, "the container name is in use");
        return;
    }
    if (res->status != 200) {
        job_docker_fault(job, REASON_CREATE_FAILED, res->message);
        return;
    }
    const char *id = json_string_value(json_object_get(res->json, "Id"));
    const char *jid = json_string_value(json_object_get(
        json_object_get(json_object_get(res->json, "Config"), "Labels"), LABEL_JOB_ID));
    const char *state =
        json_string_value(json_object_get(json_object_get(res->json, "State"), "Status"));
    bool valid = id && ids_is_container_id(id) && jid && ids_is_uuid(jid) && state;
    if (valid && (strcmp(jid, job->job_id) == 0 || job->message_id || job->redelivered)) {
        /* Ours: made by this job (a create whose answer was lost), by an earlier delivery of
         * this message, or (message_id) by the same job published again. */
        set_container_id(job, res->json);
        snprintf(job->job_id, sizeof(job->job_id), "%s", jid);
        job_adopt(job, state);
        return;
    }
    /* An earlier submission with the same bytes (or not a correction at all): this first
     * delivery is a new job, under a name of its own. */
    char name[sizeof(job->name)];
    snprintf(name, sizeof(name), "correction-%s", job->job_id);
    if (strcmp(name, job->name) == 0) {
        job_fault(job, REASON_CREATE_FAILED, "the container name %s is taken", job->name);
        return;
    }
    log_job(LOG_INFO, job, "a container of an earlier identical submission exists, new name",
            "name", name, NULL, NULL);
    memcpy(job->name, name, sizeof(name));
    job_goto(job, STEP_CREATE);
}

static void on_file_checked(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    enum sf_action a = sf_file_check(answer(res));
    if (a == SF_NEXT)
        after_upload(job);
    else if (a == SF_FILE_MISSING)
        job_fault(job, EXERCISE_REASON_NOT_FOUND, "%.300s does not exist", job->p.file);
    else
        sf_follow(job, a, REASON_UPLOAD_FAILED, NULL, res->message);
}

static void on_uploaded(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    enum sf_action a = sf_upload(answer(res));
    if (a == SF_NEXT)
        after_upload(job);
    else
        sf_follow(job, a, REASON_UPLOAD_FAILED, NULL, res->message);
}

static void on_started(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    const char *setting = NULL;
    enum sf_action a = sf_start(answer(res), &setting);
    if (a == SF_STARTED) {
        job_started(job);
        return;
    }
    if (a != SF_SETTINGS && a != SF_VANISHED) { /* settings: e.g. no such network */
        /* the next attempt looks before it starts (startfault.h): probe, then inspect */
        job->start_unknown = true;
        a = SF_ENGINE;
    }
    sf_follow(job, a, REASON_START_FAILED, setting, res->message);
}

/* Before starting again a container whose earlier start had no clear outcome. */
static void on_start_looked(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!docker_reply(job, res, REASON_START_FAILED))
        return;
    if (res->status == 404) {
        container_vanished(job);
        return;
    }
    const char *status =
        res->status == 200
            ? json_string_value(json_object_get(json_object_get(res->json, "State"), "Status"))
            : NULL;
    if (!status) {
        job_docker_fault(job, REASON_START_FAILED, res->message);
        return;
    }
    if (strcmp(status, "created") != 0) {
        log_job(LOG_INFO, job, "the container started despite the error", "state", status, "error",
                job->fault_detail);
        job->start_unknown = false;
        job_started(job);
        return;
    }
    /* "created", but that is no proof it never ran: an engine stopping as it ran the container
     * can come back with its last saved state, "created", and the log of the run (the hogged
     * run of c5bfe59 had a container started again that way print its response twice). A
     * fresh container, then, under a new name; not counted against the job: the engine's
     * doing. */
    job->start_unknown = false;
    log_job(LOG_INFO, job,
            "the start's outcome is unknown and the container may have run: "
            "replacing it",
            "error", job->fault_detail, NULL, NULL);
    job_goto(job, STEP_DISCARD);
}

/* The container after a failed start, the engine answering /_ping. */
static void on_start_checked(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    json_t *st = res->err == 0 && res->status == 200 ? json_object_get(res->json, "State") : NULL;
    const char *status = json_string_value(json_object_get(st, "Status"));
    const char *setting = NULL;
    enum sf_action a =
        sf_start_checked(answer(res), status,
                         (long long)json_integer_value(json_object_get(st, "ExitCode")),
                         job->fault_detail, &setting);
    switch (a) {
    case SF_VANISHED:
    case SF_SETTINGS:
        sf_follow(job, a, REASON_START_FAILED, setting, job->fault_detail);
        return;
    case SF_IMAGE_FAULT:
        job_fault(job, REASON_START_FAILED, "%s", job->fault_detail);
        return;
    case SF_STARTED:
        log_job(LOG_INFO, job, "the container started despite the error", "state", status, "error",
                job->fault_detail);
        job_started(job);
        return;
    default:
        job->step = STEP_DISCARD;
        job_counted_fault(job);
        return;
    }
}

static void on_discarded(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (sf_removed(answer(res)) != SF_NEXT) {
        job_docker_fault(job, REASON_START_FAILED, res->message);
        return;
    }
    /* 409: removal already in progress; the new container has a new name anyway */
    job->container_id[0] = '\0';
    name_recreate(job);
    log_job(LOG_INFO, job, "creating the container again", "name", job->name, NULL, NULL);
    job_goto(job, STEP_CREATE);
}

static void on_removed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (sf_removed(answer(res)) != SF_NEXT) {
        job_docker_fault(job, REASON_CREATE_FAILED, res->message);
        return;
    }
    job->container_id[0] = '\0'; /* 409: removal already in progress */
    job_goto(job, STEP_REPORT);
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
    if (ok)
        s->pulls_done++;
    METRIC_INC(&m_pulls, ok                                 ? "ok"
                         : fault == REGISTRY_PULL_NOT_FOUND ? "not_found"
                         : fault == REGISTRY_PULL_DENIED    ? "denied"
                                                            : "failed");
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
        job->step = STEP_CREATE;
        if (ok) {
            job->pulled = true;
            job->budget_started = false; /* time spent pulling is no fault of the job */
            job_resume(job);
        } else if (fault == REGISTRY_PULL_NOT_FOUND) {
            job_fault(job, REASON_IMAGE_NOT_FOUND, "%.200s: %.200s", job->p.image, res->message);
        } else if (fault == REGISTRY_PULL_DENIED) {
            job_fault(job, REASON_IMAGE_PULL_DENIED, "%.200s: %.200s", job->p.image, res->message);
        } else {
            /* Retried from CREATE: another job may have brought the image meanwhile. */
            char why[400];
            snprintf(why, sizeof(why), "%.200s: %.180s", job->p.image, res->message);
            job_docker_fault(job, REASON_IMAGE_PULL_FAILED, why);
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

/* Joins the pull of the job's image, starting it when there is none. The job holds no slot
 * while it waits. */
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
    job_uncount(job);
    update_consumer(s);
}

/* ---- the running message ------------------------------------------------------------------ */

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
    size_t len = strlen(body);
    if (len > job->s->cfg.amqp.max_message_bytes) {
        /* Cannot happen: every field is bounded (msg.h) well below MSG_MIN_MESSAGE_BYTES. Were
         * it to, the completer would refuse it: the job's fault, not a retry. */
        free(body);
        job_fault(job, MSG_REASON_INVALID_MESSAGE,
                  "its running message of %zu bytes exceeds MAX_MESSAGE_BYTES", len);
        return;
    }
    struct amqp_link_header h = {.key = HEADER_SUBMITTED, .num = job->submitted_ms};
    /* Expires (dead-lettered to running_corrections.lost, where another completer reports
     * "host lost") when no completer of this host has taken it by the job's time limit plus
     * HOST_LOST_GRACE; a completer holding it keeps it (a delivered message never expires),
     * and renews it with what is left. */
    publish(job, job->s->cfg.running_queue, body, len, &h, 1,
            job->timeout_ms + job->s->cfg.host_lost_grace_ms);
    free(body);
}

/* ---- a new job ---------------------------------------------------------------------------- */

/* The optional parts of the container policy (CORRECTION_READ_ONLY, _USER, _RUNTIME) into a
 * create body: 0 or -ENOMEM. */
static int add_policy(const struct starter_config *c, json_t *cfg)
{
    json_t *hc = json_object_get(cfg, "HostConfig");
    if (c->read_only) {
        /* The archive API writes into a created container's volumes, never into a read-only
         * root, nor into a tmpfs (mounted only at start, over what was put there): /tmp is
         * an anonymous volume, which the image's /tmp seeds and which is removed with the
         * container (v=1). */
        json_t *mounts = json_pack("[{s:s, s:s}]", "Type", "volume", "Target", "/tmp");
        if (json_object_set_new(hc, "ReadonlyRootfs", json_true()) < 0 ||
            json_object_set_new(hc, "Mounts", mounts) < 0)
            return -ENOMEM;
    }
    if (c->user && json_object_set_new(cfg, "User", json_string(c->user)) < 0)
        return -ENOMEM;
    if (c->runtime && json_object_set_new(hc, "Runtime", json_string(c->runtime)) < 0)
        return -ENOMEM;
    return 0;
}

/* EXERCISE_MODE=bind: the submission mounted read-only at EXERCISE_PATH. The engine creates
 * the mount point (and a missing /tmp); with CORRECTION_READ_ONLY it lands in the /tmp volume,
 * mounted first (the engine orders mounts by depth). 0 or -ENOMEM. */
static int add_bind(json_t *cfg, const char *source)
{
    json_t *hc = json_object_get(cfg, "HostConfig");
    json_t *mounts = json_object_get(hc, "Mounts");
    if (!mounts) {
        mounts = json_array();
        if (!mounts || json_object_set_new(hc, "Mounts", mounts) < 0)
            return -ENOMEM;
    }
    json_t *m = json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source", source, "Target",
                          EXERCISE_PATH, "ReadOnly", 1);
    return m && json_array_append_new(mounts, m) == 0 ? 0 : -ENOMEM;
}

/* True when the callback holds nothing text_redact_url would hide (userinfo, a query, a
 * fragment): it may be shown, in a label or a log line, as it is. Decided from the URL's shape,
 * not by comparing with its redaction, which is cut at 2 KiB (a longer clean callback would look
 * redacted). */
static bool callback_clean(const char *url)
{
    if (strpbrk(url, "?#"))
        return false;
    const char *auth = strstr(url, "://");
    if (auth) {
        auth += 3;
        if (memchr(auth, '@', strcspn(auth, "/")))
            return false;
    }
    return true;
}

static json_t *build_create_config(starter *s, struct job *job)
{
    const struct starter_config *c = &s->cfg;
    json_t *env = json_array(), *labels = json_object(), *caps = json_array();
    json_t *cfg = NULL;
    char *wid = NULL;
    char deadline[32];
    char cb_shown[2 * MSG_MAX_URL_BYTES + 1];
    if (!env || !labels || !caps)
        goto out;
    for (size_t i = 0; i < job->p.n_params; i++)
        if (json_array_append_new(env, json_string(job->p.params[i])) < 0)
            goto out;
    /* Built at each create (a pull or a retry may come between the job's arrival and its
     * create), to the nearest second: the completer counts the time limit as this deadline
     * minus the container's creation, from its start. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now_s = (long long)ts.tv_sec + (ts.tv_nsec >= 500000000L);
    snprintf(deadline, sizeof(deadline), "%lld", now_s + (long long)(job->timeout_ms / 1000));
    /* The callback as a label only when it holds no credentials: labels are readable by
     * anyone who may list containers; else its redacted form, for people. */
    const char *cb_label = LABEL_CALLBACK;
    if (callback_clean(job->p.callback)) {
        snprintf(cb_shown, sizeof(cb_shown), "%s", job->p.callback);
    } else {
        text_redact_url(cb_shown, sizeof(cb_shown), job->p.callback);
        cb_label = LABEL_CALLBACK_REDACTED;
    }
    /* Every label is bounded: the callback by MSG_MAX_URL_BYTES (a redaction by twice that),
     * the work_id by MSG_MAX_WORK_ID_BYTES (twice that as JSON at most), the rest by
     * construction. */
    if (json_object_set_new(labels, LABEL_JOB_ID, json_string(job->job_id)) < 0 ||
        json_object_set_new(labels, LABEL_SUBMISSION, json_string(job->submission)) < 0 ||
        json_object_set_new(labels, cb_label, json_string(cb_shown)) < 0 ||
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
    cfg = json_pack(
        "{s:s, s:O, s:O, s:b, s:b, s:b, s:{s:s, s:I, s:I, s:I, s:I, s:[s], s:O, "
        "s:[s], s:{s:s, s:{s:s, s:s}}, s:b, s:[{s:s, s:I, s:I}, {s:s, s:I, s:I}]}}",
        "Image", job->p.image, "Env", env, "Labels", labels, "AttachStdin", 0, "OpenStdin", 0,
        "Tty", 0, "HostConfig", "NetworkMode",
        c->net_isolated ? (s->net_no_bridge ? "default" : "none") : c->network, "Memory",
        (json_int_t)job->memory_bytes, "MemorySwap", (json_int_t)job->memory_bytes, "NanoCpus",
        (json_int_t)job->nanocpus, "PidsLimit", (json_int_t)c->pids, "CapDrop", "ALL", "CapAdd",
        caps, "SecurityOpt", "no-new-privileges", "LogConfig", "Type", "json-file", "Config",
        "max-size", c->log_max_size, "max-file", "2", "AutoRemove", 0, "Ulimits", "Name", "fsize",
        "Soft", (json_int_t)c->max_file_size, "Hard", (json_int_t)c->max_file_size, "Name",
        "nofile", "Soft", (json_int_t)c->max_open_files, "Hard", (json_int_t)c->max_open_files);
    if (cfg &&
        (add_policy(c, cfg) < 0 || (job->bind_source && add_bind(cfg, job->bind_source) < 0))) {
        json_decref(cfg);
        cfg = NULL;
    }
out:
    free(wid);
    json_decref(env);
    json_decref(labels);
    json_decref(caps);
    return cfg;
}

static void step_create(struct job *job)
{
    starter *s = job->s;
    json_t *config = build_create_config(s, job);
    if (!config) {
        job_retry(job, "out of memory");
        return;
    }
    job->touched = true;
    job->pulls_at_create = s->pulls_done;
    int r = docker_container_create(s->docker, job->name, config, on_created, job);
    json_decref(config);
    if (r < 0) {
        job_retry(job, strerror(-r));
        return;
    }
}

/* Another delivery of the job (same job_id) is being worked on. */
static bool job_same_in_hand(const struct job *job)
{
    for (const struct job *j = job->s->jobs; j; j = j->next)
        if (j != job && !j->abandoned && strcmp(j->job_id, job->job_id) == 0)
            return true;
    return false;
}

/* One value of "limits": absent (0, *ret untouched), or a number at least min, lowered to max
 * (0); else -EINVAL with err set. scale turns it into the unit of *ret. */
static int limit_value(json_t *limits, const char *key, double scale, uint64_t min, uint64_t max,
                       uint64_t *ret, struct msg_error *err)
{
    json_t *v = json_object_get(limits, key);
    if (!v || json_is_null(v))
        return 0;
    double x = json_number_value(v) * scale;
    if (!json_is_number(v) || !(x >= (double)min)) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE,
                      "limits.%s must be a number of at least %.6g", key, (double)min / scale);
        return -EINVAL;
    }
    *ret = x >= (double)max ? max : (uint64_t)x;
    return 0;
}

/* Extension "limits": {"time": seconds, "memory": bytes, "cpus": n}, each optional: a job may
 * ask for less than CORRECTION_TIMEOUT, CORRECTION_MEMORY, CORRECTION_CPUS, never more (a value
 * above is lowered to the configured one). 0, -ENOMEM, or -EINVAL with err set (a value that
 * is not a number, or below the least the engine can run with). */
static int job_limits(struct job *job, struct msg_error *err)
{
    const struct starter_config *c = &job->s->cfg;
    job->timeout_ms = c->correction_timeout_ms;
    job->memory_bytes = c->memory_bytes;
    job->nanocpus = c->nanocpus;
    json_error_t jerr;
    json_t *root = json_loadb(job->body, job->body_len, 0, &jerr);
    if (!root)
        return -ENOMEM; /* msg_pending_parse read it: only memory can fail here */
    json_t *limits = json_object_get(root, "limits");
    int r = 0;
    if (limits && !json_is_null(limits) && !json_is_object(limits)) {
        msg_error_set(err, MSG_REASON_INVALID_MESSAGE, "'limits' is not an object");
        r = -EINVAL;
    } else if (limits && json_is_object(limits)) {
        if (limit_value(limits, "time", 1000, 1000, c->correction_timeout_ms, &job->timeout_ms,
                        err) < 0 ||
            limit_value(limits, "memory", 1, 6 * 1024 * 1024, c->memory_bytes, &job->memory_bytes,
                        err) < 0 ||
            limit_value(limits, "cpus", 1e9, 10000000, c->nanocpus, &job->nanocpus, err) < 0)
            r = -EINVAL;
    }
    json_decref(root);
    return r;
}

static void step_begin(struct job *job)
{
    starter *s = job->s;
    struct msg_error err;
    if (!job->parsed) {
        msg_pending_free(&job->p);
        int r = msg_pending_parse(job->body, job->body_len, s->cfg.amqp.max_message_bytes, &job->p,
                                  &err);
        msg_work_id_text(job->p.work_id, job->work_id, sizeof(job->work_id));
        if (job_read_failed(job, r, &err) || job_read_failed(job, job_limits(job, &err), &err))
            return;
        job->parsed = true;
        log_job(LOG_DEBUG, job, "job received", "image", job->p.image, "file", job->p.file);
    }
    if (s->cfg.allow && !registry_allowlist_match(s->cfg.allow, job->p.image)) {
        job_fault(job, REASON_IMAGE_NOT_ALLOWED, "%.200s is not in ALLOWED_IMAGES", job->p.image);
        return;
    }
    /* The same message_id published twice, the first still in hand: the second waits for it
     * to be done, then finds its container (two at once would each take the other's container
     * for an earlier delivery's). */
    if (job->message_id && job_same_in_hand(job)) {
        job_later(job, LOG_INFO, "the same job is in hand already, waiting for it", NULL);
        return;
    }
    /* A container of this job may exist already: find it before anything else (its file may
     * be gone, deleted after it was put in). */
    if (job->message_id || job->redelivered)
        job_goto(job, STEP_LOOKUP);
    else
        job_to_create(job);
}

static void job_run(struct job *job)
{
    starter *s = job->s;
    int r = 0;
    if (!setup_turn(job))
        return;
    switch (job->step) {
    case STEP_BEGIN:
        step_begin(job);
        return;
    case STEP_LOOKUP:
        step_lookup(job);
        return;
    case STEP_CREATE:
        step_create(job);
        return;
    case STEP_PULL:
        step_pull(job);
        return;
    case STEP_INSPECT:
        r = docker_container_inspect(s->docker, job->name, on_inspected, job);
        break;
    case STEP_CHECK_FILE:
        r = docker_container_stat(s->docker, job->container_id, EXERCISE_PATH, on_file_checked,
                                  job);
        break;
    case STEP_UPLOAD:
        r = docker_container_upload(s->docker, job->container_id, s->cfg.read_only ? "/tmp" : "/",
                                    job->tar, job->tar_len, on_uploaded, job);
        break;
    case STEP_START:
        if (job->start_unknown) {
            r = docker_container_inspect(s->docker, job->container_id, on_start_looked, job);
        } else {
            if (!bind_still_checked(job))
                return;
            r = docker_container_start(s->docker, job->container_id, on_started, job);
        }
        break;
    case STEP_DISCARD:
        r = docker_container_remove(s->docker, job->container_id, true, on_discarded, job);
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
}

static void on_delivery(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    starter *s = ud;
    char digest[IDS_UUID_LEN + 1];
    bool has_id = d->message_id && *d->message_id;
    ids_uuid_from_bytes(d->body, d->body_len, digest);
    /* A message we returned untouched is, for us, delivered for the first time. */
    bool first = !d->redelivered || (!has_id && untouched_take(s, digest));
    s->taken++;
    if (!may_take(s)) {
        /* Prefetched before the consumer paused: back to the queue, where it waits (there any
         * starter with room may take it). */
        if (amqp_link_nack(link, d->generation, d->delivery_tag, true) == 0 && first && !has_id)
            untouched_add(s, digest);
        log_kv(LOG_DEBUG, "delivery returned to the queue untouched: at capacity", NULL);
        update_consumer(s);
        return;
    }
    struct job *job = calloc(1, sizeof(*job));
    int r = -ENOMEM;
    if (!job || !(job->body = malloc(d->body_len + 1)) ||
        (has_id && !(job->message_id = strdup(d->message_id))))
        goto fail;
    memcpy(job->body, d->body, d->body_len);
    job->body[d->body_len] = '\0';
    job->body_len = d->body_len;
    memcpy(job->submission, digest, sizeof(digest));
    r = 0;
    if (has_id)
        ids_uuid_from_bytes(job->message_id, strlen(job->message_id), job->job_id);
    else
        r = ids_uuid_random(job->job_id); /* a redelivery adopting a container takes its id */
    if (r < 0)
        goto fail;
    job->s = s;
    job->gen = d->generation;
    job->tag = d->delivery_tag;
    job->redelivered = !first;
    job->queued_s = d->timestamp;
    job->submitted_ms = d->timestamp ? (int64_t)d->timestamp * 1000 : metrics_wall_ms();
    metric_add(&metrics_jobs_taken, 1, NULL);
    name_first(job);
    uv_timer_init(s->loop, &job->timer);
    job->timer.data = job;
    DLIST_PUSH(s->jobs, job);
    if (is_full(s)) {
        /* Held (HOLD_JOBS): in line for the next free slot, ahead of any later delivery. */
        job->held = true;
        s->held++;
    } else {
        job_count(job);
    }
    update_consumer(s);
    job_goto(job, STEP_BEGIN);
    return;
fail:
    if (job) {
        free(job->body);
        free(job->message_id);
    }
    free(job);
    if (amqp_link_nack(link, d->generation, d->delivery_tag, true) == 0 && first && !has_id)
        untouched_add(s, digest);
    log_kv(LOG_ERROR, "cannot take a job now, returned to the queue", "error", strerror(-r), NULL);
}

/* ---- the link ----------------------------------------------------------------------------- */

static void on_link_event(amqp_link *link, enum amqp_link_event ev, const char *detail, void *ud)
{
    (void)link;
    starter *s = ud;
    daemon_link_event(ev, detail);
    if (ev == AMQP_LINK_UP) {
        s->taken = 0; /* a new consumer, granted what was last set (or none: paused) */
        update_consumer(s);
    } else if (ev == AMQP_LINK_DOWN) {
        /* Unacked messages are back in the queue: every job in hand is abandoned; its
         * redelivery resumes from the container's state. */
        for (struct job *j = s->jobs, *next; j; j = next) {
            next = j->next;
            if (j->abandoned)
                continue;
            if (!j->touched && !j->message_id && !j->redelivered)
                untouched_add(s, j->submission);
            job_abandon(j);
        }
    }
}

/* ---- the handle --------------------------------------------------------------------------- */

static void finish(void *stage);
static void shutdown_timed_out(void *stage);

int starter_new(uv_loop_t *loop, const struct starter_config *cfg, starter **ret,
                struct ct_error *err)
{
    *ret = NULL;
    starter *s = calloc(1, sizeof(*s));
    if (!s)
        return ct_error_set(err, -ENOMEM, "out of memory");
    s->loop = loop;
    s->cfg = *cfg;
    s->pulls = idmap_new();
    if (!s->pulls || runset_new(&s->running) < 0) {
        idmap_free(s->pulls);
        free(s);
        return ct_error_set(err, -ENOMEM, "out of memory");
    }
    if (gethostname(s->hostname, sizeof(s->hostname) - 1) < 0)
        snprintf(s->hostname, sizeof(s->hostname), "unknown");
    int r = docker_new(loop, &cfg->docker, &s->docker, err);
    if (r < 0) {
        runset_free(s->running);
        idmap_free(s->pulls);
        free(s);
        return r;
    }
    struct amqp_link_config acfg = cfg->amqp;
    /* The channel's default; each start of the pending consumer sets its own (update_consumer). */
    uint64_t prefetch = 2 * cfg->max_running;
    acfg.prefetch = (unsigned)(prefetch < 65535 ? prefetch : 65535);
    r = amqp_link_new(loop, &acfg, on_link_event, s, &s->link, err);
    if (r < 0) {
        docker_free(s->docker);
        runset_free(s->running);
        idmap_free(s->pulls);
        free(s);
        return r;
    }
    stage_stop_init(&s->stop, loop, s, finish, shutdown_timed_out);
    uv_timer_init(loop, &s->setup_timer);
    s->setup_timer.data = s;
    metrics_setup(s);
    *ret = s;
    return 0;
}

int starter_start(starter *s)
{
    const char *const queues[] = {QUEUE_PENDING, QUEUE_PENDING_INVALID, s->cfg.running_queue,
                                  QUEUE_FINISHED};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        bool running = queues[i] == s->cfg.running_queue;
        int r = amqp_link_declare_queue(s->link, queues[i], running ? qtype_running_args : NULL,
                                        running ? 2 : 0);
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
    /* From now on: the first list counts what runs already. */
    static const char *const actions[] = {"start", "die", "destroy", NULL};
    struct watch_config wcfg = {.actions = actions,
                                .label = LABEL_JOB_ID,
                                .on_event = on_event,
                                .list_interval_ms = s->cfg.reconcile_ms,
                                .on_list = on_events_list,
                                .on_end = on_events_end,
                                .userdata = s};
    r = watch_start(s->loop, s->docker, &wcfg, &s->events);
    if (r < 0)
        return r;
    return 0;
}

static void finish(void *stage)
{
    starter *s = stage;
    if (!stage_stop_finishing(&s->stop))
        return;
    uv_timer_stop(&s->setup_timer);
    watch_close(s->events); /* before the client it uses */
    s->events = NULL;
    /* Cancels the calls still in flight (no callbacks): their jobs are released here. */
    docker_free(s->docker);
    s->docker = NULL;
    /* A job whose publish is unconfirmed is only unlinked: amqp_link_free below fails that
     * publish (-ECANCELED), and its confirm callback frees the job, once. */
    while (s->jobs)
        job_release(s->jobs);
    /* Their calls were cancelled with the client, and every waiter is released. */
    struct pull *p;
    while (idmap_values(s->pulls, (void **)&p, 1) == 1) {
        idmap_del(s->pulls, p->key);
        free(p);
    }
    amqp_link_free(s->link);
    s->link = NULL;
    uv_close((uv_handle_t *)&s->setup_timer, NULL);
    log_kv(LOG_INFO, "starter stopped", NULL);
    stage_stop_done(&s->stop);
}

/* Finishing frees the link and the Docker client: never from inside one of their callbacks,
 * so it runs from a timer of its own. */
static void shutdown_check(starter *s)
{
    stage_stop_check(&s->stop, !s->jobs);
}

/* At SHUTDOWN_TIMEOUT: the jobs not done go back to the queue. */
static void shutdown_timed_out(void *stage)
{
    starter *s = stage;
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
}

void starter_shutdown(starter *s, void (*done)(void *), void *ud)
{
    if (!stage_stop_begin(&s->stop, s->cfg.shutdown_timeout_ms, done, ud))
        return;
    log_kv(LOG_INFO, "shutting down: no new jobs, finishing the ones in hand", NULL);
    amqp_link_pause(s->link, QUEUE_PENDING);
    s->consuming = false;
    /* Jobs waiting for a retry, a slot, a setup turn or a pull go back to the queue now. */
    for (struct job *j = s->jobs, *next; j; j = next) {
        next = j->next;
        if ((j->waiting || fifo_queued(&j->ready) || j->pull || fifo_queued(&j->setup_wait)) &&
            !j->abandoned) {
            amqp_link_nack(s->link, j->gen, j->tag, true);
            job_abandon(j);
        }
    }
    shutdown_check(s);
}

void starter_free(starter *s)
{
    if (s) {
        m_running.read = m_held.read = NULL;
        runset_free(s->running);
        idmap_free(s->pulls);
    }
    free(s);
}
