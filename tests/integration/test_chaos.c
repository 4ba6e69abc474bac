/* The chaos test: jobs of mixed kinds published steadily while the harness SIGKILLs and
 * restarts each daemon, stops and starts the RabbitMQ application, and restarts dockerd.
 * Then, once every fault has cleared:
 *   - 0 lost: every job ends in exactly one place, a delivered callback or a parked message;
 *   - 0 stuck: the pipeline's queues are empty (only the parking queues hold messages, and
 *     only the ones expected);
 *   - 0 containers left;
 *   - duplicates only with the same webhook-id and body;
 *   - 0 infrastructure faults reported as job failures: every job gets the result of its
 *     kind (an ok job a success, a failing image its own error...), whatever was injected.
 *
 * CT_CHAOS_JOBS sets the number of jobs (default 100, about two minutes on an idle 2-core
 * machine); tests/chaos.sh --jobs 1000 runs the long one (docs/CHAOS.md). The figures are
 * printed on one line starting "chaos:". */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "support.h"

#define LABEL "correctomatic.job_id"
#define SECRET "whsec_Y2hhb3MtdGVzdC1zZWNyZXQta2V5LTAxMjM0NTY3OA=="
#define PUBLISH_EVERY_MS 500
#define FAULT_EVERY_MS 6000
#define RESTART_AFTER_MS 1000 /* a killed daemon stays down this long */
#define RETRY_DELAYS "1s,2s,5s,10s"
/* After the last publish, jobs keep ending until the last one: a gap of this long with none
 * ending means something is stuck (the slowest kinds: a 10 s time limit, a 10 s retry delay,
 * a backoff of at most 2 s, a dockerd restart of a few seconds). */
#define STALL_MS 60000

/* ------------------------------------------------------------------ the jobs */

enum file_kind { F_GOOD, F_BIG, F_MISSING };

struct kind {
    const char *name;
    const char *image;
    enum file_kind file;
    const char *params;   /* JSON array or NULL */
    const char *callback; /* NULL: the receiver's /ok */
    const char *body;     /* the exact callback body, WID standing for the work_id */
    const char *error;    /* or: an error callback starting with this */
    const char *parked;   /* or: parked in pending_corrections.invalid with this reason */
};

static const struct kind kinds[] = {
    {"ok", "ct-ok:latest", F_GOOD, NULL, NULL,
     "{\"comments\":[\"well done\"],\"grade\":10,\"success\":true,\"work_id\":\"WID\"}", NULL,
     NULL},
    {"separator", "ct-separator:latest", F_GOOD, NULL, NULL,
     "{\"comments\":[\"separated\",\"by markers\"],\"grade\":7.5,\"success\":true,\"work_id\":"
     "\"WID\"}",
     NULL, NULL},
    {"fail", "ct-fail:latest", F_GOOD, NULL, NULL,
     "{\"error\":\"compilation failed\",\"success\":false,\"work_id\":\"WID\"}", NULL, NULL},
    {"big-output", "ct-shell:latest", F_BIG, NULL, NULL,
     "{\"comments\":[\"big\"],\"grade\":1,\"success\":true,\"work_id\":\"WID\"}", NULL, NULL},
    {"invalid-output", "ct-invalid:latest", F_GOOD, NULL, NULL, NULL, "no response found - ", NULL},
    {"timeout", "ct-sleeper:latest", F_GOOD, "[\"SLEEP=60\"]", NULL, NULL, "time limit exceeded - ",
     NULL},
    {"no-image", "ct-no-such-image:latest", F_GOOD, NULL, NULL, NULL, "image not found - ", NULL},
    {"no-file", "ct-ok:latest", F_MISSING, NULL, NULL, NULL, "file not found - ", NULL},
    {"bad-param", "ct-ok:latest", F_GOOD, "[\"1BAD=x\"]", NULL, NULL, "invalid param - ", NULL},
    {"bad-callback", "ct-ok:latest", F_GOOD, NULL, "ftp://127.0.0.1/x", NULL, NULL,
     "invalid callback"},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* One cycle of 20 jobs: mostly ok ones, every other kind at least once. */
static const unsigned pattern[] = {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9, 3, 1};
#define PATTERN_LEN (sizeof(pattern) / sizeof(pattern[0]))

struct job {
    char work_id[32];
    const struct kind *kind;
    char *body;
    bool published;
    int64_t published_ms;
    json_t *oks;  /* the 2xx requests */
    int attempts; /* requests answered otherwise */
    int parked;
    bool late; /* had not ended when jobs stopped ending (see wait_all_ended) */
    char *park_reason;
    char *park_queue;
};

static struct job *jobs;
static int n_jobs;
static struct ct_receiver rcv;
static char *good_file, *big_file;
static char missing_file[600]; /* in EXERCISE_DIR (CT_TMP), absent */

static struct job *job_of_work_id(const char *w)
{
    if (!w || strncmp(w, "chaos-", 6) != 0)
        return NULL;
    char *end;
    long i = strtol(w + 6, &end, 10);
    if (*end || i < 0 || i >= n_jobs)
        return NULL;
    return &jobs[i];
}

static void make_jobs(int n)
{
    char callback[256];
    ct_receiver_url(callback, sizeof(callback), &rcv, "/ok");
    jobs = calloc((size_t)n, sizeof(*jobs));
    assert_non_null(jobs);
    n_jobs = n;
    for (int i = 0; i < n; i++) {
        struct job *j = &jobs[i];
        j->kind = &kinds[pattern[(size_t)i % PATTERN_LEN]];
        snprintf(j->work_id, sizeof(j->work_id), "chaos-%d", i);
        const char *file = j->kind->file == F_GOOD  ? good_file
                           : j->kind->file == F_BIG ? big_file
                                                    : missing_file;
        char *body = NULL;
        int r = asprintf(
            &body, "{\"work_id\":\"%s\",\"image\":\"%s\",\"file\":\"%s\",\"callback\":\"%s\"%s%s}",
            j->work_id, j->kind->image, file, j->kind->callback ? j->kind->callback : callback,
            j->kind->params ? ",\"params\":" : "", j->kind->params ? j->kind->params : "");
        assert_true(r > 0);
        j->body = body;
        j->oks = json_array();
    }
}

/* ------------------------------------------------------------------ a publisher that survives
 * broker outages: one connection, reopened on any error; a job counts as published once the
 * broker confirmed it. Its message_id is the work_id, so a publish repeated after a lost confirm
 * is the same job. */

struct publisher {
    amqp_connection_state_t c;
    bool open;
    int reconnects;
};

static void pub_close(struct publisher *p)
{
    if (p->c)
        amqp_destroy_connection(p->c);
    p->c = NULL;
    p->open = false;
}

static bool pub_open(struct publisher *p)
{
    p->c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(p->c);
    struct timeval tv = {.tv_sec = 2};
    if (!s || amqp_socket_open_noblock(s, ct_env("CT_RABBITMQ_HOST"),
                                       atoi(ct_env("CT_RABBITMQ_PORT")), &tv) != AMQP_STATUS_OK)
        goto fail;
    amqp_set_rpc_timeout(p->c, &tv);
    if (amqp_login(p->c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
        AMQP_RESPONSE_NORMAL)
        goto fail;
    amqp_channel_open(p->c, 1);
    if (amqp_get_rpc_reply(p->c).reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    amqp_confirm_select(p->c, 1);
    if (amqp_get_rpc_reply(p->c).reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    p->open = true;
    p->reconnects++;
    return true;
fail:
    pub_close(p);
    return false;
}

static bool pub_send(struct publisher *p, const char *queue, const char *body, const char *id)
{
    if (!p->open && !pub_open(p))
        return false;
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof(props));
    props._flags =
        AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.delivery_mode = 2;
    props.content_type = amqp_cstring_bytes("application/json");
    props.message_id = amqp_cstring_bytes(id);
    amqp_bytes_t b = {.len = strlen(body), .bytes = (void *)body};
    if (amqp_basic_publish(p->c, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(queue), 1, 0, &props,
                           b) != AMQP_STATUS_OK)
        goto fail;
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {.tv_sec = 5};
        amqp_maybe_release_buffers(p->c);
        if (amqp_simple_wait_frame_noblock(p->c, &f, &tv) != AMQP_STATUS_OK)
            goto fail;
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD)
            return true;
        if (f.payload.method.id != AMQP_BASIC_RETURN_METHOD)
            goto fail; /* a nack, a channel or connection close */
    }
fail:
    pub_close(p);
    return false;
}

/* ------------------------------------------------------------------ the daemons and the faults */

struct daemons {
    struct ct_daemon d[3];
    int incarnation[3];
    bool down[3];
    int64_t down_since[3];
};
static const char *const programs[3] = {"starter", "completer", "notifier"};

/* What the daemons logged about a job (work_id), every incarnation's log, at most max lines
 * per daemon: printed for a wrong result, since the logs go with the servers' folder. */
static void print_job_logs(const char *work_id, int max)
{
    char want[96];
    snprintf(want, sizeof(want), "work_id=%s ", work_id);
    for (int k = 0; k < 3; k++) {
        int printed = 0;
        for (int inc = 0; inc < 64 && printed < max; inc++) {
            char path[700];
            snprintf(path, sizeof(path), "%s/%s-chaos-%d.log", ct_env("CT_TMP"), programs[k], inc);
            FILE *f = fopen(path, "r");
            if (!f)
                break;
            char line[2048];
            while (printed < max && fgets(line, sizeof(line), f)) {
                if (strstr(line, want)) {
                    printf("  %s-chaos-%d: %s", programs[k], inc, line);
                    printed++;
                }
            }
            fclose(f);
        }
    }
}

static void daemon_up(struct daemons *ds, int k)
{
    static const char *const env[3][12] = {
        {"MAX_RUNNING=8", "CORRECTION_MEMORY=64m", "CORRECTION_TIMEOUT=10s",
         "RECONCILE_INTERVAL=1s", "RETRY_MAX=2s", "SHUTDOWN_TIMEOUT=5s", NULL},
        {"CORRECTION_TIMEOUT=10s", "RECONCILE_INTERVAL=2s", "RETRY_MAX=2s", "SHUTDOWN_TIMEOUT=5s",
         NULL},
        {"CALLBACK_RETRY_DELAYS=" RETRY_DELAYS, "CALLBACK_SECRET=" SECRET, "CALLBACK_TIMEOUT=5s",
         "SHUTDOWN_TIMEOUT=5s", NULL},
    };
    char name[32];
    snprintf(name, sizeof(name), "chaos-%d", ds->incarnation[k]++);
    ct_daemon_start(&ds->d[k], programs[k], name, env[k]);
    ds->down[k] = false;
}

enum fault { F_KILL_STARTER, F_KILL_COMPLETER, F_BROKER, F_KILL_NOTIFIER, F_DOCKER, F_N };
static const char *const fault_names[F_N] = {"starter SIGKILLed", "completer SIGKILLed",
                                             "RabbitMQ app stopped and started",
                                             "notifier SIGKILLed", "dockerd restarted"};
static int faults[F_N];
static int64_t t_origin;

static void inject(struct daemons *ds, enum fault f)
{
    int64_t t = ct_now_ms();
    switch (f) {
    case F_KILL_STARTER:
    case F_KILL_COMPLETER:
    case F_KILL_NOTIFIER: {
        int k = f == F_KILL_STARTER ? 0 : f == F_KILL_COMPLETER ? 1 : 2;
        if (ds->down[k])
            return;
        ct_daemon_kill(&ds->d[k]);
        ds->down[k] = true;
        ds->down_since[k] = t;
        break;
    }
    case F_BROKER:
        if (ct_servers("rabbitmq-stop-app") != 0)
            fail_msg("servers.sh rabbitmq-stop-app failed");
        if (ct_servers("rabbitmq-start-app") != 0)
            fail_msg("servers.sh rabbitmq-start-app failed");
        break;
    case F_DOCKER:
        if (ct_servers("docker-restart") != 0)
            fail_msg("servers.sh docker-restart failed");
        break;
    case F_N:
        return;
    }
    faults[f]++;
    printf("chaos: [%6.1fs] %s (%.1f s)\n", (double)(t - t_origin) / 1000.0, fault_names[f],
           (double)(ct_now_ms() - t) / 1000.0);
    fflush(stdout);
}

static void restart_due(struct daemons *ds, bool all)
{
    for (int k = 0; k < 3; k++)
        if (ds->down[k] && (all || ct_now_ms() - ds->down_since[k] >= RESTART_AFTER_MS))
            daemon_up(ds, k);
}

/* ------------------------------------------------------------------ watching */

static int stray;
static char stray_text[1024];
static size_t n_seen_requests;
static int unexpected_parked; /* in running_corrections.invalid, failed_callbacks... */

static void note_stray(const char *what)
{
    stray++;
    size_t n = strlen(stray_text);
    if (n < sizeof(stray_text) - 160)
        snprintf(stray_text + n, sizeof(stray_text) - n, "\n    %.150s", what);
}

static void read_receiver(void)
{
    json_t *all = ct_receiver_requests(&rcv);
    for (size_t i = n_seen_requests; i < json_array_size(all); i++) {
        json_t *q = json_array_get(all, i);
        const char *body = json_string_value(json_object_get(q, "body"));
        json_t *b = body ? json_loads(body, 0, NULL) : NULL;
        struct job *j = job_of_work_id(json_string_value(json_object_get(b, "work_id")));
        json_decref(b);
        if (!j) {
            note_stray(body ? body : "a request without a body");
            continue;
        }
        long st = (long)json_integer_value(json_object_get(q, "status"));
        if (st >= 200 && st < 300)
            json_array_append(j->oks, q);
        else
            j->attempts++;
    }
    n_seen_requests = json_array_size(all);
    json_decref(all);
}

static const char *const parking[] = {"pending_corrections.invalid", "running_corrections.invalid",
                                      "finished_corrections.invalid", "failed_callbacks"};
#define N_PARKING (sizeof(parking) / sizeof(parking[0]))

static void drain_parking(void)
{
    for (size_t q = 0; q < N_PARKING; q++) {
        struct ct_msg *m;
        while ((m = ct_amqp_get(parking[q], 0))) {
            json_t *b = json_loads(m->body, 0, NULL);
            struct job *j = job_of_work_id(json_string_value(json_object_get(b, "work_id")));
            json_decref(b);
            const char *reason =
                json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
            if (!j) {
                char what[200];
                snprintf(what, sizeof(what), "parked in %s: %.120s", parking[q], m->body);
                note_stray(what);
            } else {
                if (!j->parked) {
                    j->park_reason = strdup(reason ? reason : "");
                    j->park_queue = strdup(parking[q]);
                }
                j->parked++;
            }
            if (q != 0)
                unexpected_parked++;
            ct_msg_free(m);
        }
    }
}

static int n_ended(void)
{
    int n = 0;
    for (int i = 0; i < n_jobs; i++)
        n += jobs[i].parked > 0 || json_array_size(jobs[i].oks) > 0;
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
    return n_ended() == n_jobs;
}

/* Waits until every job has ended, as long as jobs keep ending: false when none has for
 * stall_ms (something is stuck), or after max_ms in all. A slow machine only makes it longer. */
static bool wait_all_ended(int stall_ms, int max_ms)
{
    int64_t start = ct_now_ms(), progress = start;
    int last = n_ended();
    while (!all_ended(NULL)) {
        int e = n_ended();
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

static const char *const pipeline_queues[] = {"pending_corrections",
                                              "running_corrections",
                                              "finished_corrections",
                                              "finished_corrections.retry.1000ms",
                                              "finished_corrections.retry.2000ms",
                                              "finished_corrections.retry.5000ms",
                                              "finished_corrections.retry.10000ms"};
#define N_PIPELINE (sizeof(pipeline_queues) / sizeof(pipeline_queues[0]))

static long pipeline_messages(void)
{
    long total = 0;
    for (size_t i = 0; i < N_PIPELINE; i++) {
        long n = ct_mgmt_queue_int(pipeline_queues[i], "messages");
        int ready = ct_amqp_count(pipeline_queues[i]);
        total += (n > 0 ? n : 0) + (ready > 0 ? ready : 0);
    }
    return total;
}

static bool quiet(void *ud)
{
    int *streak = ud;
    all_ended(NULL);
    *streak = pipeline_messages() == 0 ? *streak + 1 : 0;
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

static const char *str_or(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "-";
}

static bool daemon_stop_clean(struct ct_daemon *d)
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

static void test_chaos(void **state)
{
    (void)state;
    int n = 100;
    const char *env = getenv("CT_CHAOS_JOBS");
    if (env && *env)
        n = atoi(env);
    assert_true(n >= (int)PATTERN_LEN);
    int64_t t0 = ct_now_ms();
    t_origin = t0;

    ct_amqp_declare("finished_corrections.invalid");
    ct_amqp_purge("finished_corrections.invalid");
    for (size_t i = 3; i < N_PIPELINE; i++)
        ct_amqp_delete(pipeline_queues[i]);
    good_file = ct_tmpfile("chaos-good.txt", "anything", 8);
    snprintf(missing_file, sizeof(missing_file), "%s/nonexistent/chaos.txt", ct_env("CT_TMP"));
    static const char big[] =
        "yes 'big output line ............................................' | head -c 300000\n"
        "printf '\\n-----BEGIN CORRECTOMATIC RESPONSE-----\\n%s\\n"
        "-----END CORRECTOMATIC RESPONSE-----\\n' "
        "'{\"success\":true,\"grade\":1,\"comments\":[\"big\"]}'\n";
    big_file = ct_tmpfile("chaos-big.sh", big, sizeof(big) - 1);
    ct_receiver_start(&rcv, "chaos", 0, true);
    make_jobs(n);

    struct daemons ds;
    memset(&ds, 0, sizeof(ds));
    for (int k = 0; k < 3; k++)
        daemon_up(&ds, k);
    ct_daemon_wait_log(&ds.d[0], "consuming pending jobs", 1, 60000);
    ct_daemon_wait_log(&ds.d[1], "connected to RabbitMQ", 1, 60000);
    ct_daemon_wait_log(&ds.d[2], "connected to RabbitMQ", 1, 60000);

    /* ---- publish steadily, inject a fault every FAULT_EVERY_MS (the first after 3 s) */
    struct publisher pub = {0};
    int next = 0, fault_no = 0;
    int64_t t_start = ct_now_ms(), next_fault = t_start + 3000;
    int64_t publish_span = (int64_t)n * PUBLISH_EVERY_MS;
    while (next < n) {
        int64_t now = ct_now_ms();
        while (next < n && now - t_start >= (int64_t)next * PUBLISH_EVERY_MS) {
            struct job *j = &jobs[next];
            if (!pub_send(&pub, "pending_corrections", j->body, j->work_id))
                break; /* the broker is away: again at the next tick */
            j->published = true;
            j->published_ms = now;
            next++;
        }
        if (now >= next_fault && now - t_start < publish_span) {
            inject(&ds, (enum fault)(fault_no++ % F_N));
            next_fault = ct_now_ms() + FAULT_EVERY_MS;
        }
        restart_due(&ds, false);
        struct timespec ts = {.tv_nsec = 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pub_close(&pub);
    /* every kind of fault at least once, even in a short run */
    for (enum fault f = 0; f < F_N; f++) {
        if (!faults[f]) {
            inject(&ds, f);
            restart_due(&ds, true);
        }
    }
    restart_due(&ds, true);
    int64_t t_published = ct_now_ms();
    int total_faults = 0;
    for (enum fault f = 0; f < F_N; f++)
        total_faults += faults[f];
    printf("chaos: %d jobs published in %.1f s with %d faults; waiting for them to end\n", n,
           (double)(t_published - t_start) / 1000.0, total_faults);
    fflush(stdout);

    /* ---- every job ends; then nothing is left */
    bool ended = wait_all_ended(STALL_MS, 600000 + n * 3000);
    int late = 0;
    for (int i = 0; i < n_jobs; i++) {
        jobs[i].late = !json_array_size(jobs[i].oks) && !jobs[i].parked;
        late += jobs[i].late;
    }
    int streak = 0;
    bool is_quiet = ct_wait_until(quiet, &streak, ended ? 60000 : 10000);
    bool clean = ct_wait_until(no_containers, NULL, is_quiet ? 60000 : 10000);
    bool stopped = true;
    for (int k = 2; k >= 0; k--)
        stopped = daemon_stop_clean(&ds.d[k]) && stopped;
    all_ended(NULL);
    /* the daemons are gone: what they held unacked is ready again, and the count is exact */
    long left_messages = 0;
    char left_text[512] = "";
    for (size_t i = 0; i < N_PIPELINE; i++) {
        int k = ct_amqp_count(pipeline_queues[i]);
        if (k > 0) {
            left_messages += k;
            size_t l = strlen(left_text);
            snprintf(left_text + l, sizeof(left_text) - l, " %s=%d", pipeline_queues[i], k);
        }
    }
    json_t *l = ct_docker_list(LABEL);
    size_t containers = json_array_size(l);
    char left_containers[1024] = "";
    size_t i_c;
    json_t *ctr;
    json_array_foreach(l, i_c, ctr)
    {
        size_t k = strlen(left_containers);
        json_t *labels = json_object_get(ctr, "Labels");
        if (k < sizeof(left_containers) - 200)
            snprintf(left_containers + k, sizeof(left_containers) - k,
                     "\n  container %.12s work_id %s: %s (%s)", str_or(json_object_get(ctr, "Id")),
                     str_or(json_object_get(labels, "correctomatic.work_id")),
                     str_or(json_object_get(ctr, "State")), str_or(json_object_get(ctr, "Status")));
    }
    json_decref(l);

    /* ---- the verdict of each job */
    int lost = 0, two_places = 0, dup_jobs = 0, dup_extra = 0, dup_differ = 0, wrong = 0,
        infra_as_job = 0;
    char problems[8192] = "";
    size_t pl = 0;
#define PROBLEM(...)                                                                               \
    do {                                                                                           \
        if (pl < sizeof(problems) - 300)                                                           \
            pl += (size_t)snprintf(problems + pl, sizeof(problems) - pl, "\n  " __VA_ARGS__);      \
    } while (0)
    for (int i = 0; i < n_jobs; i++) {
        struct job *j = &jobs[i];
        size_t n_ok = json_array_size(j->oks);
        if (!n_ok && !j->parked) {
            lost++;
            PROBLEM("%s (%s): lost (no callback, not parked; %d failed attempt(s))", j->work_id,
                    j->kind->name, j->attempts);
            continue;
        }
        if (j->late) {
            PROBLEM("%s (%s): not ended when no job had ended for %d s", j->work_id, j->kind->name,
                    STALL_MS / 1000);
        }
        if (n_ok && j->parked) {
            two_places++;
            PROBLEM("%s (%s): delivered and parked in %s", j->work_id, j->kind->name,
                    j->park_queue);
            continue;
        }
        if (j->parked) {
            if (j->parked > 1) {
                two_places++;
                PROBLEM("%s (%s): parked %d times", j->work_id, j->kind->name, j->parked);
            }
            if (!j->kind->parked || strcmp(j->park_queue, "pending_corrections.invalid") != 0 ||
                strncmp(j->park_reason, j->kind->parked, strlen(j->kind->parked)) != 0) {
                wrong++;
                PROBLEM("%s (%s): parked in %s with '%.150s'", j->work_id, j->kind->name,
                        j->park_queue, j->park_reason);
            }
            continue;
        }
        json_t *first = json_array_get(j->oks, 0);
        const char *body = json_string_value(json_object_get(first, "body"));
        const char *id =
            json_string_value(json_object_get(json_object_get(first, "headers"), "webhook-id"));
        if (n_ok > 1) {
            dup_jobs++;
            dup_extra += (int)n_ok - 1;
            for (size_t k = 1; k < n_ok; k++) {
                json_t *q = json_array_get(j->oks, k);
                const char *b2 = json_string_value(json_object_get(q, "body"));
                const char *id2 =
                    json_string_value(json_object_get(json_object_get(q, "headers"), "webhook-id"));
                if (!body || !b2 || !id || !id2 || strcmp(body, b2) != 0 || strcmp(id, id2) != 0) {
                    dup_differ++;
                    PROBLEM("%s (%s): duplicate callbacks differ: %s %.120s / %s %.120s",
                            j->work_id, j->kind->name, id ? id : "-", body ? body : "",
                            id2 ? id2 : "-", b2 ? b2 : "");
                    break;
                }
            }
        }
        bool ok;
        if (j->kind->body) {
            char want[512];
            const char *at = strstr(j->kind->body, "WID");
            snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - j->kind->body), j->kind->body,
                     j->work_id, at + 3);
            ok = body && strcmp(body, want) == 0;
        } else if (j->kind->error) {
            json_t *b = body ? json_loads(body, 0, NULL) : NULL;
            const char *err = json_string_value(json_object_get(b, "error"));
            ok = json_is_false(json_object_get(b, "success")) && err &&
                 strncmp(err, j->kind->error, strlen(j->kind->error)) == 0;
            json_decref(b);
        } else {
            ok = false; /* a kind that should have been parked */
        }
        if (!ok) {
            wrong++;
            /* an error the job's kind does not explain: an infrastructure fault reported as
             * the job's failure */
            if (body && strstr(body, "\"success\":false"))
                infra_as_job++;
            PROBLEM("%s (%s): %.250s", j->work_id, j->kind->name, body ? body : "(no body)");
            if (wrong <= 3) {
                printf("chaos: %s (%s) has a wrong result; its daemons' log lines:\n", j->work_id,
                       j->kind->name);
                print_job_logs(j->work_id, 25);
            }
        }
    }

    double wall = (double)(ct_now_ms() - t0) / 1000.0;
    printf("chaos: jobs=%d faults=%d (", n_jobs, total_faults);
    for (enum fault f = 0; f < F_N; f++)
        printf("%s%s %d", f ? ", " : "", fault_names[f], faults[f]);
    int delivered = 0, parked = 0;
    for (int i = 0; i < n_jobs; i++) {
        delivered += json_array_size(jobs[i].oks) > 0;
        parked += jobs[i].parked > 0;
    }
    printf(") delivered=%d parked=%d lost=%d late=%d stuck=%ld ended_twice=%d duplicates=%d (extra "
           "callbacks %d, differing %d) "
           "wrong_results=%d infra_faults_as_job_failures=%d unexpected_parked=%d stray=%d "
           "containers_left=%zu daemons_stopped_cleanly=%s wall=%.1fs\n",
           delivered, parked, lost, late - lost, left_messages, two_places, dup_jobs, dup_extra,
           dup_differ, wrong, infra_as_job, unexpected_parked, stray, containers,
           stopped ? "yes" : "no", wall);
    if (!ended || !is_quiet || !clean || left_messages)
        printf("chaos: every job ended: %s; pipeline quiet: %s; no container: %s; left:%s\n",
               ended ? "yes" : "no", is_quiet ? "yes" : "no", clean ? "yes" : "no",
               left_messages ? left_text : " nothing");
    if (pl)
        printf("chaos: problems:%s\n", problems);
    if (containers)
        printf("chaos: correction containers left:%s\n", left_containers);
    if (stray)
        printf("chaos: callbacks or parked messages of no job:%s\n", stray_text);
    fflush(stdout);

    ct_receiver_stop(&rcv);
    for (int i = 0; i < n_jobs; i++) {
        free(jobs[i].body);
        free(jobs[i].park_reason);
        free(jobs[i].park_queue);
        json_decref(jobs[i].oks);
    }
    free(jobs);
    free(good_file);
    free(big_file);

    if (lost || two_places || dup_differ || wrong || unexpected_parked || stray || containers ||
        left_messages || !ended || !is_quiet || !clean || !stopped)
        fail_msg("chaos: the promise does not hold (see the figures and problems above)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chaos, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
