/* The completer against the real broker and the real engine.
 *
 * Most tests play the starter by hand: they create labelled containers (as the starter does),
 * start them and publish their running messages themselves, so each test decides which comes
 * first, the message or the exit. Results are read from finished_corrections and matched to
 * their jobs by job_id: every job must have exactly one (the one exception, a SIGKILL between a
 * confirmed publish and its ack, is bounded in test_sigkill_and_restart). */
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
#include <unistd.h>
#include <cmocka.h>

#include "ids.h"
#include "support.h"

#define COMPLETER CT_BIN_DIR "/correctomatic-completer"
#define STARTER CT_BIN_DIR "/correctomatic-starter"
#define LABEL "correctomatic.job_id"
#define CALLBACK "http://receiver.invalid/grade"
#define WAIT_MS 30000

struct run {
    pid_t pid;
    char log[512];
};

/* A correction container made by hand, as the starter would have made it. */
struct job {
    char *cid;
    char job_id[IDS_UUID_LEN + 1];
    json_t *work_id; /* NULL: the job has none */
};

/* ---- processes ------------------------------------------------------------------------------ */

static void spawn(struct run *run, const char *path, const char *name, const char *const *base,
                  const char *const *extra)
{
    static char env[40][512];
    static char *envp[41];
    size_t n = 0;
    snprintf(env[n++], sizeof(env[0]), "RABBITMQ_HOST=%s", ct_env("CT_RABBITMQ_HOST"));
    snprintf(env[n++], sizeof(env[0]), "RABBITMQ_PORT=%s", ct_env("CT_RABBITMQ_PORT"));
    snprintf(env[n++], sizeof(env[0]), "DOCKER_HOST=%s", ct_env("CT_DOCKER_HOST"));
    for (size_t i = 0; base && base[i] && n < 40; i++) {
        /* extra overrides base */
        size_t klen = strcspn(base[i], "=") + 1;
        bool overridden = false;
        for (size_t k = 0; extra && extra[k]; k++)
            overridden = overridden || strncmp(extra[k], base[i], klen) == 0;
        if (!overridden)
            snprintf(env[n++], sizeof(env[0]), "%s", base[i]);
    }
    for (size_t i = 0; extra && extra[i] && n < 40; i++)
        snprintf(env[n++], sizeof(env[0]), "%s", extra[i]);
    for (size_t i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    snprintf(run->log, sizeof(run->log), "%s/%s.log", ct_env("CT_TMP"), name);
    unlink(run->log); /* log counts must not see an earlier run */
    char *argv[] = {(char *)path, NULL};
    run->pid = ct_spawn(path, argv, envp, run->log);
    assert_true(run->pid > 0);
    ct_track(run->pid);
}

static void start_completer(struct run *run, const char *name, const char *const *extra)
{
    static const char *const base[] = {"LOG_LEVEL=debug",
                                       "RABBITMQ_HEARTBEAT=2",
                                       "RETRY_MIN=100ms",
                                       "RETRY_MAX=2s",
                                       "RECONCILE_INTERVAL=1s",
                                       "SHUTDOWN_TIMEOUT=5s",
                                       NULL};
    char full[128];
    snprintf(full, sizeof(full), "completer-%s", name);
    spawn(run, COMPLETER, full, base, extra);
}

static void start_starter(struct run *run, const char *name, const char *const *extra)
{
    static const char *const base[] = {"LOG_LEVEL=debug", "RABBITMQ_HEARTBEAT=2", "RETRY_MAX=2s",
                                       "RECONCILE_INTERVAL=1s", NULL};
    char full[128];
    snprintf(full, sizeof(full), "starter-%s", name);
    spawn(run, STARTER, full, base, extra);
}

/* SIGTERM; the daemon must exit 0 within 20 s. */
static void stop(struct run *run)
{
    int status = -1;
    ct_untrack(run->pid);
    ct_kill(run->pid, SIGTERM);
    if (ct_wait_exit(run->pid, 20000, &status) < 0) {
        ct_kill(run->pid, SIGKILL);
        ct_wait_exit(run->pid, 5000, &status);
        fail_msg("%s did not exit within 20 s of SIGTERM", run->log);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s: exit status %d", run->log, status);
}

static void crash(struct run *run)
{
    int status = -1;
    ct_untrack(run->pid);
    ct_kill(run->pid, SIGKILL);
    assert_int_equal(ct_wait_exit(run->pid, 10000, &status), 0);
    assert_true(WIFSIGNALED(status));
}

/* ---- logs ----------------------------------------------------------------------------------- */

struct log_wait {
    const char *path;
    const char *needle;
    const char *also; /* NULL, or a second string the same line must hold */
    int count;
};

static int log_count(const struct log_wait *w)
{
    size_t len;
    char *s = ct_read_file(w->path, &len);
    int n = 0;
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, w->needle) && (!w->also || strstr(line, w->also)))
            n++;
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(s);
    return n;
}

static bool log_has(void *ud)
{
    struct log_wait *w = ud;
    return log_count(w) >= w->count;
}

/* Waits for count lines holding needle (and also, unless NULL). */
static void wait_log(const struct run *run, const char *needle, const char *also, int count)
{
    struct log_wait w = {run->log, needle, also, count};
    if (!ct_wait_until(log_has, &w, WAIT_MS))
        fail_msg("'%s'%s%s did not appear %d time(s) in %s", needle, also ? " with " : "",
                 also ? also : "", count, run->log);
}

static int count_log(const struct run *run, const char *needle, const char *also)
{
    struct log_wait w = {run->log, needle, also, 0};
    return log_count(&w);
}

/* ---- jobs by hand --------------------------------------------------------------------------- */

/* Creates a labelled container of image: work_id_json is the job's work_id as JSON (NULL: none),
 * script (NULL: the image's own CMD) replaces the command with `sh -c script`, host_config is
 * stolen. Started when start is true. */
static void make_job(struct job *job, const char *image, const char *work_id_json,
                     const char *const env[], const char *script, json_t *host_config, bool start)
{
    memset(job, 0, sizeof(*job));
    assert_int_equal(ids_uuid_random(job->job_id), 0);
    job->work_id = work_id_json ? ct_json(work_id_json) : NULL;
    json_t *labels = json_pack("{s:s,s:s}", LABEL, job->job_id, "correctomatic.callback", CALLBACK);
    if (work_id_json)
        json_object_set_new(labels, "correctomatic.work_id", json_string(work_id_json));
    json_t *req = json_pack("{s:s,s:o}", "Image", image, "Labels", labels);
    if (env) {
        json_t *e = json_array();
        for (size_t i = 0; env[i]; i++)
            json_array_append_new(e, json_string(env[i]));
        json_object_set_new(req, "Env", e);
    }
    if (script)
        json_object_set_new(req, "Cmd", json_pack("[s,s,s]", "sh", "-c", script));
    json_object_set_new(req, "HostConfig",
                        host_config ? host_config : json_pack("{s:s}", "NetworkMode", "none"));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    long st;
    json_t *res = ct_docker("POST", "/containers/create", body, &st);
    free(body);
    const char *id = json_string_value(json_object_get(res, "Id"));
    if (st != 201 || !id)
        fail_msg("docker create %s: status %ld", image, st);
    job->cid = strdup(id);
    json_decref(res);
    if (start)
        ct_docker_start(job->cid);
}

static void job_free(struct job *job)
{
    free(job->cid);
    json_decref(job->work_id);
    memset(job, 0, sizeof(*job));
}

/* The running message the starter would publish; legacy: the key "id" and no job_id. */
static char *running_body(const struct job *job, bool legacy)
{
    json_t *o = json_object();
    if (job->work_id)
        json_object_set(o, "work_id", job->work_id);
    json_object_set_new(o, legacy ? "id" : "container_id", json_string(job->cid));
    json_object_set_new(o, "callback", json_string(CALLBACK));
    if (!legacy)
        json_object_set_new(o, "job_id", json_string(job->job_id));
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return body;
}

static void publish_running(const struct job *job, bool legacy)
{
    char *body = running_body(job, legacy);
    ct_amqp_publish("running_corrections", body, legacy ? NULL : job->job_id);
    free(body);
}

static void wait_exited(const struct job *job)
{
    int code = ct_docker_wait(job->cid, WAIT_MS);
    if (code == -ETIMEDOUT)
        fail_msg("container %s did not exit", job->cid);
}

/* ---- results -------------------------------------------------------------------------------- */

/* One result from finished_corrections, with the properties every result must have. */
static json_t *get_result(void)
{
    struct ct_msg *m = ct_amqp_get("finished_corrections", WAIT_MS);
    if (!m)
        fail_msg("no result on finished_corrections");
    json_t *j = ct_json(m->body);
    assert_string_equal(m->content_type, "application/json");
    assert_int_equal(m->delivery_mode, 2);
    const char *jid = json_string_value(json_object_get(j, "job_id"));
    assert_non_null(jid);
    assert_non_null(m->message_id);
    assert_string_equal(m->message_id, jid);
    assert_true(json_is_boolean(json_object_get(j, "error")));
    assert_string_equal(json_string_value(json_object_get(j, "callback")), CALLBACK);
    ct_msg_free(m);
    return j;
}

/* Reads one result per job (in any order) into results[i], matched by job_id; fails on a result
 * of an unknown job or a second result for a job. */
static void collect(struct job *jobs, size_t n, json_t **results)
{
    for (size_t i = 0; i < n; i++)
        results[i] = NULL;
    for (size_t k = 0; k < n; k++) {
        json_t *r = get_result();
        const char *jid = json_string_value(json_object_get(r, "job_id"));
        size_t i = 0;
        while (i < n && strcmp(jobs[i].job_id, jid) != 0)
            i++;
        if (i == n)
            fail_msg("a result of an unknown job: %s", jid);
        if (results[i])
            fail_msg("a second result for job %s", jid);
        results[i] = r;
        /* work_id is the message's, whatever the container printed. */
        json_t *w = json_object_get(r, "work_id");
        if (jobs[i].work_id)
            assert_true(w && json_equal(w, jobs[i].work_id));
        else
            assert_null(w);
    }
}

static void free_results(json_t **results, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(results[i]);
}

static void assert_success(json_t *r, const char *response_json)
{
    if (!json_is_false(json_object_get(r, "error"))) {
        char *s = json_dumps(r, JSON_COMPACT);
        fail_msg("expected a successful result, got %s", s);
    }
    json_t *want = ct_json(response_json);
    json_t *got = json_object_get(r, "correction_data");
    if (!json_equal(want, got)) {
        char *s = json_dumps(got, JSON_COMPACT);
        fail_msg("correction_data %s, expected %s", s, response_json);
    }
    json_decref(want);
}

/* An error result whose correction_data starts with "<reason> - ". */
static void assert_error(json_t *r, const char *reason)
{
    const char *data = json_string_value(json_object_get(r, "correction_data"));
    if (!json_is_true(json_object_get(r, "error")) || !data) {
        char *s = json_dumps(r, JSON_COMPACT);
        fail_msg("expected an error result (%s), got %s", reason, s);
    }
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s - ", reason);
    if (strncmp(data, prefix, strlen(prefix)) != 0)
        fail_msg("correction_data '%s', expected '%s...'", data, prefix);
}

static bool error_contains(json_t *r, const char *s)
{
    const char *data = json_string_value(json_object_get(r, "correction_data"));
    return data && strstr(data, s);
}

static size_t count_containers(void)
{
    json_t *l = ct_docker_list(LABEL);
    size_t n = json_array_size(l);
    json_decref(l);
    return n;
}

static bool no_containers(void *ud)
{
    (void)ud;
    return count_containers() == 0;
}

static bool running_settled(void *ud)
{
    (void)ud;
    return ct_mgmt_queue_int("running_corrections", "messages_ready") == 0 &&
           ct_mgmt_queue_int("running_corrections", "messages_unacknowledged") == 0;
}

struct unacked {
    long n;
};

static bool running_unacked(void *ud)
{
    struct unacked *u = ud;
    return ct_mgmt_queue_int("running_corrections", "messages_unacknowledged") == u->n;
}

static void wait_unacked(long n)
{
    struct unacked u = {n};
    if (!ct_wait_until(running_unacked, &u, WAIT_MS))
        fail_msg("running_corrections: %ld unacked, expected %ld",
                 ct_mgmt_queue_int("running_corrections", "messages_unacknowledged"), n);
}

/* The end state of every test: all results read, every running message acked, every
 * correction container removed. */
static void assert_all_clean(void)
{
    if (!ct_wait_until(no_containers, NULL, WAIT_MS))
        fail_msg("%zu correction container(s) left behind", count_containers());
    if (!ct_wait_until(running_settled, NULL, WAIT_MS))
        fail_msg("running_corrections not settled: %ld ready, %ld unacked",
                 ct_mgmt_queue_int("running_corrections", "messages_ready"),
                 ct_mgmt_queue_int("running_corrections", "messages_unacknowledged"));
    struct ct_msg *extra = ct_amqp_get("finished_corrections", 0);
    if (extra)
        fail_msg("an extra result: %s", extra->body);
}

#define OK_RESPONSE "{\"success\":true,\"grade\":10,\"comments\":[\"well done\"]}"
#define SEPARATOR_RESPONSE                                                                         \
    "{\"success\":true,\"grade\":7.5,\"comments\":[\"separated\",\"by markers\"]}"
#define STDERR_RESPONSE "{\"success\":true,\"grade\":5,\"comments\":[\"stderr ignored\"]}"
#define FAIL_RESPONSE "{\"success\":false,\"error\":\"compilation failed\"}"
#define SLEPT_RESPONSE "{\"success\":true,\"grade\":10,\"comments\":[\"slept\"]}"
#define NOTMP_RESPONSE "{\"success\":true,\"grade\":10,\"comments\":[\"no tmp\"]}"

/* ---- the race, both ways -------------------------------------------------------------------- */

static void test_message_first(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "message-first", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job jobs[2];
    /* Created, not started: the message is known long before the exit. */
    make_job(&jobs[0], "ct-ok:latest", "\"w-first\"", NULL, NULL, NULL, false);
    publish_running(&jobs[0], false);
    wait_log(&run, "running message received", jobs[0].cid, 1);
    /* The usual case: the message arrives while the container runs. */
    make_job(&jobs[1], "ct-sleeper:latest", "\"w-running\"", (const char *[]){"SLEEP=1", NULL},
             NULL, NULL, true);
    publish_running(&jobs[1], false);
    wait_log(&run, "running message received", jobs[1].cid, 1);
    assert_null(ct_amqp_get("finished_corrections", 0));
    ct_docker_start(jobs[0].cid);

    json_t *results[2];
    collect(jobs, 2, results);
    assert_success(results[0], OK_RESPONSE);
    assert_success(results[1], SLEPT_RESPONSE);
    wait_log(&run, "correction finished", jobs[0].cid, 1);
    assert_all_clean();
    free_results(results, 2);
    for (size_t i = 0; i < 2; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* The starter makes the container (DONT_START_CONTAINER) and the running message; the test
 * starts the container once the completer holds the message. */
static void test_message_first_with_starter(void **state)
{
    (void)state;
    struct run starter, completer;
    char *file = ct_tmpfile("completer-starter.txt", "x", 1);
    start_starter(&starter, "completer-dont-start",
                  (const char *[]){"DONT_START_CONTAINER=true", NULL});
    start_completer(&completer, "with-starter", NULL);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "work_id", "w-starter", "image",
                          "ct-separator:latest", "file", file, "callback", CALLBACK);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ct_amqp_publish("pending_corrections", body, NULL);
    free(body);
    wait_log(&completer, "running message received", NULL, 1);
    json_t *list = ct_docker_list(LABEL);
    assert_int_equal(json_array_size(list), 1);
    json_t *ct = json_array_get(list, 0);
    const char *cid = json_string_value(json_object_get(ct, "Id"));
    const char *jid = json_string_value(json_object_get(json_object_get(ct, "Labels"), LABEL));
    assert_string_equal(json_string_value(json_object_get(ct, "State")), "created");
    ct_docker_start(cid);

    json_t *r = get_result();
    assert_success(r, SEPARATOR_RESPONSE);
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), "w-starter");
    assert_string_equal(json_string_value(json_object_get(r, "job_id")), jid);
    assert_all_clean();
    json_decref(r);
    json_decref(list);
    stop(&completer);
    stop(&starter);
    free(file);
}

static void test_exit_first(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "exit-first", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job jobs[2];
    make_job(&jobs[0], "ct-stderr:latest", "\"w-exit-first\"", NULL, NULL, NULL, true);
    /* A legacy message: "id" instead of "container_id", no job_id (the label has it). */
    make_job(&jobs[1], "ct-fail:latest", "\"w-legacy\"", NULL, NULL, NULL, true);
    for (size_t i = 0; i < 2; i++) {
        wait_exited(&jobs[i]);
        wait_log(&run, "container exited before its running message", jobs[i].cid, 1);
    }
    assert_int_equal(count_containers(), 2); /* nothing claims them yet: kept */
    publish_running(&jobs[0], false);
    publish_running(&jobs[1], true);

    json_t *results[2];
    collect(jobs, 2, results);
    assert_success(results[0], STDERR_RESPONSE);
    assert_success(results[1], FAIL_RESPONSE); /* success:false is a response, not an error */
    assert_all_clean();
    free_results(results, 2);
    for (size_t i = 0; i < 2; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* Containers exited and messages queued before the completer starts; every response shape of
 * the test images. */
static void test_both_before_start(void **state)
{
    (void)state;
    struct {
        const char *image, *work_id, *response;
    } cases[] = {
        {"ct-ok:latest", "\"w-ok\"", OK_RESPONSE},
        {"ct-separator:latest", "17", SEPARATOR_RESPONSE},
        {"ct-stderr:latest", "\"w-stderr\"", STDERR_RESPONSE},
        {"ct-fail:latest", "\"w-fail\"", FAIL_RESPONSE},
        {"ct-notmp:latest", NULL, NOTMP_RESPONSE},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    struct job jobs[N];
    for (size_t i = 0; i < N; i++)
        make_job(&jobs[i], cases[i].image, cases[i].work_id, NULL, NULL, NULL, true);
    for (size_t i = 0; i < N; i++) {
        wait_exited(&jobs[i]);
        publish_running(&jobs[i], false);
    }
    struct run run;
    start_completer(&run, "both-before", NULL);
    json_t *results[N];
    collect(jobs, N, results);
    for (size_t i = 0; i < N; i++)
        assert_success(results[i], cases[i].response);
    assert_true(json_is_integer(json_object_get(results[1], "work_id")));
    assert_all_clean();
    free_results(results, N);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* ---- error reasons -------------------------------------------------------------------------- */

static void test_error_reasons(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "errors",
                    (const char *[]){"MAX_OUTPUT_BYTES=1k", "CORRECTION_TIMEOUT=3s", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum {
        GARBAGE,
        EMPTY,
        BAD_JSON,
        BAD_FORMAT,
        TWO_BLOCKS,
        TOO_LARGE,
        TIMEOUT,
        TIMEOUT_STARTED_LATE,
        OOM,
        KILLED,
        REMOVED,
        N
    };
    struct job jobs[N];
    make_job(&jobs[GARBAGE], "ct-invalid:latest", "\"w-garbage\"", NULL, NULL, NULL, true);
    make_job(&jobs[EMPTY], "ct-ok:latest", "\"w-empty\"", NULL, "exit 3", NULL, true);
    make_job(&jobs[BAD_JSON], "ct-ok:latest", "\"w-bad-json\"", NULL,
             "echo '{\"success\": tru'; echo 'first'; echo 'last words' >&2; exit 1", NULL, true);
    make_job(&jobs[BAD_FORMAT], "ct-ok:latest", "\"w-bad-format\"", NULL,
             "echo '{\"success\":true}'", NULL, true);
    make_job(&jobs[TWO_BLOCKS], "ct-ok:latest", "\"w-two-blocks\"", NULL,
             "for i in 1 2; do echo '-----BEGIN CORRECTOMATIC RESPONSE-----'; "
             "echo '{\"success\":true,\"grade\":1}'; echo '-----END CORRECTOMATIC RESPONSE-----'; "
             "done",
             NULL, true);
    /* Over MAX_OUTPUT_BYTES, although a valid response ends it. */
    make_job(&jobs[TOO_LARGE], "ct-ok:latest", "\"w-too-large\"", NULL,
             "yes 0123456789abcdef | head -c 4096; echo '-----BEGIN CORRECTOMATIC RESPONSE-----'; "
             "echo '{\"success\":true,\"grade\":1}'; echo '-----END CORRECTOMATIC RESPONSE-----'",
             NULL, true);
    make_job(&jobs[TIMEOUT], "ct-sleeper:latest", "\"w-timeout\"",
             (const char *[]){"SLEEP=300", NULL}, NULL, NULL, true);
    /* Started only after its message is held: the start event arms the deadline. */
    make_job(&jobs[TIMEOUT_STARTED_LATE], "ct-sleeper:latest", "\"w-timeout-late\"",
             (const char *[]){"SLEEP=300", NULL}, NULL, NULL, false);
    make_job(&jobs[OOM], "ct-memhog:latest", "\"w-oom\"", NULL, NULL,
             json_pack("{s:s,s:I,s:I}", "NetworkMode", "none", "Memory", (json_int_t)16 << 20,
                       "MemorySwap", (json_int_t)16 << 20),
             true);
    /* Started late too, so that their deadline cannot come first on a slow machine. */
    make_job(&jobs[KILLED], "ct-sleeper:latest", "\"w-killed\"",
             (const char *[]){"SLEEP=300", NULL}, NULL, NULL, false);
    make_job(&jobs[REMOVED], "ct-sleeper:latest", "\"w-removed\"",
             (const char *[]){"SLEEP=300", NULL}, NULL, NULL, false);
    for (size_t i = 0; i < N; i++)
        publish_running(&jobs[i], false);
    /* Killed and removed by someone else while the completer holds their messages. */
    wait_log(&run, "running message received", jobs[KILLED].cid, 1);
    wait_log(&run, "running message received", jobs[REMOVED].cid, 1);
    wait_log(&run, "running message received", jobs[TIMEOUT_STARTED_LATE].cid, 1);
    ct_docker_start(jobs[TIMEOUT_STARTED_LATE].cid);
    ct_docker_start(jobs[KILLED].cid);
    ct_docker_start(jobs[REMOVED].cid);
    char path[160];
    long st;
    snprintf(path, sizeof(path), "/containers/%s/kill", jobs[KILLED].cid);
    json_decref(ct_docker("POST", path, NULL, &st));
    assert_int_equal(st, 204);
    snprintf(path, sizeof(path), "/containers/%s?force=1", jobs[REMOVED].cid);
    json_decref(ct_docker("DELETE", path, NULL, &st));
    assert_int_equal(st, 204);

    json_t *results[N];
    collect(jobs, N, results);
    assert_error(results[GARBAGE], "no response found");
    assert_error(results[EMPTY], "no response found");
    assert_true(error_contains(results[EMPTY], "exit code 3"));
    assert_error(results[BAD_JSON], "invalid JSON");
    assert_true(error_contains(results[BAD_JSON], "exit code 1"));
    assert_true(error_contains(results[BAD_JSON], "last words")); /* the stderr tail */
    assert_error(results[BAD_FORMAT], "invalid response format");
    assert_error(results[TWO_BLOCKS], "more than one response block");
    assert_error(results[TOO_LARGE], "output too large");
    assert_error(results[TIMEOUT], "time limit exceeded");
    wait_log(&run, "time limit reached, killing the container", jobs[TIMEOUT].cid, 1);
    assert_error(results[TIMEOUT_STARTED_LATE], "time limit exceeded");
    assert_error(results[OOM], "memory limit exceeded");
    assert_error(results[KILLED], "container killed");
    assert_true(error_contains(results[KILLED], "exit code 137"));
    assert_error(results[REMOVED], "container missing");
    assert_int_equal(count_log(&run, "correction failed", NULL), N);
    assert_all_clean();
    free_results(results, N);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* ---- one result per job --------------------------------------------------------------------- */

static void test_duplicate_running_message(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "duplicate", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job job;
    make_job(&job, "ct-ok:latest", "\"w-dup\"", NULL, NULL, NULL, false);
    /* Twice while it runs (a redelivery, a starter that published twice): both are held. */
    publish_running(&job, false);
    publish_running(&job, false);
    wait_unacked(2);
    ct_docker_start(job.cid);
    json_t *r;
    collect(&job, 1, &r);
    assert_success(r, OK_RESPONSE);
    assert_all_clean(); /* both acked */
    /* Once more after the result: acked, no second result. */
    publish_running(&job, false);
    wait_log(&run, "duplicate running message of a finished job, acked", job.cid, 1);
    assert_all_clean();
    json_decref(r);
    job_free(&job);
    stop(&run);
}

/* The container cannot change work_id: the result carries the message's. */
static void test_container_cannot_change_work_id(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "work-id", NULL);
    struct job jobs[3];
    make_job(&jobs[0], "ct-ok:latest", "\"w-real\"", NULL,
             "echo '{\"success\":true,\"grade\":3,\"work_id\":\"evil\",\"extra\":{\"a\":1}}'", NULL,
             true);
    make_job(&jobs[1], "ct-ok:latest", "42", NULL,
             "echo noise; echo '--BEGIN CORRECTOMATIC RESPONSE--'; "
             "echo '{\"success\":false,\"error\":\"no\",\"work_id\":43}'; "
             "echo '--END CORRECTOMATIC RESPONSE--'",
             NULL, true);
    /* No work_id in the job: none in the result either. */
    make_job(&jobs[2], "ct-ok:latest", NULL, NULL,
             "echo '{\"success\":true,\"comments\":[],\"work_id\":\"evil\"}'", NULL, true);
    for (size_t i = 0; i < 3; i++)
        publish_running(&jobs[i], false);
    json_t *results[3];
    collect(jobs, 3, results); /* checks work_id */
    assert_success(results[0], "{\"success\":true,\"grade\":3,\"extra\":{\"a\":1}}");
    assert_success(results[1], "{\"success\":false,\"error\":\"no\"}");
    assert_success(results[2], "{\"success\":true,\"comments\":[]}");
    assert_all_clean();
    free_results(results, 3);
    for (size_t i = 0; i < 3; i++)
        job_free(&jobs[i]);
    stop(&run);
}

static void test_invalid_running_messages(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "invalid", NULL);
    const char *bodies[] = {
        "not json at all",
        "{\"work_id\":\"w\",\"container_id\":\"abc\",\"callback\":\"http://h/cb\"}",
        "{\"work_id\":\"w\",\"container_id\":"
        "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
    };
    for (size_t i = 0; i < 3; i++)
        ct_amqp_publish("running_corrections", bodies[i], NULL);
    for (size_t i = 0; i < 3; i++) {
        struct ct_msg *m = ct_amqp_get("running_corrections.invalid", WAIT_MS);
        assert_non_null(m);
        assert_string_equal(m->body, bodies[i]); /* one consumer: in order */
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        assert_non_null(reason);
        assert_true(strlen(reason) > 0);
        ct_msg_free(m);
    }
    assert_all_clean();
    stop(&run);
}

/* A long correction: its running message is re-published (below RabbitMQ's consumer timeout)
 * and the copy comes back to the same job. An exited container no message claims is removed
 * after CONTAINER_RETENTION; a message that comes later reports it missing. */
static void test_renewal_and_retention(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "renewal",
                    (const char *[]){"MESSAGE_RENEW_AFTER=1s", "CONTAINER_RETENTION=1s", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job jobs[2];
    make_job(&jobs[0], "ct-sleeper:latest", "\"w-long\"", (const char *[]){"SLEEP=5", NULL}, NULL,
             NULL, true);
    publish_running(&jobs[0], false);
    make_job(&jobs[1], "ct-ok:latest", "\"w-unclaimed\"", NULL, NULL, NULL, true);
    wait_log(&run, "running message renewed", jobs[0].cid, 1);
    wait_log(&run, "removed an exited correction container no running message claimed", jobs[1].cid,
             1);
    assert_null(ct_docker_inspect(jobs[1].cid));
    publish_running(&jobs[1], false);
    json_t *results[2];
    collect(jobs, 2, results);
    assert_success(results[0], SLEPT_RESPONSE);
    assert_error(results[1], "container missing");
    assert_all_clean();
    free_results(results, 2);
    for (size_t i = 0; i < 2; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* ---- crash and restart ---------------------------------------------------------------------- */

static void test_sigkill_and_restart(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "crash-1", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { DONE, RUNNING, CREATED, EXIT_WHILE_DOWN, EXIT_THEN_MESSAGE, N };
    struct job jobs[N];
    /* DONE finishes before the crash and must not come back. */
    make_job(&jobs[DONE], "ct-ok:latest", "\"w-done\"", NULL, NULL, NULL, true);
    publish_running(&jobs[DONE], false);
    json_t *done;
    collect(&jobs[DONE], 1, &done);
    assert_success(done, OK_RESPONSE);
    json_decref(done);
    if (!ct_wait_until(no_containers, NULL, WAIT_MS))
        fail_msg("the finished container was not removed");
    /* In flight at the crash: a running container and a created one, messages held. */
    make_job(&jobs[RUNNING], "ct-sleeper:latest", "\"w-running\"",
             (const char *[]){"SLEEP=2", NULL}, NULL, NULL, true);
    make_job(&jobs[CREATED], "ct-ok:latest", "\"w-created\"", NULL, NULL, NULL, false);
    publish_running(&jobs[RUNNING], false);
    publish_running(&jobs[CREATED], false);
    wait_log(&run, "running message received", jobs[RUNNING].cid, 1);
    wait_log(&run, "running message received", jobs[CREATED].cid, 1);
    wait_unacked(2);
    crash(&run);

    /* While it is down: CREATED runs, RUNNING ends, another job exits with its message queued,
     * and one exits whose message only comes after the restart. */
    ct_docker_start(jobs[CREATED].cid);
    make_job(&jobs[EXIT_WHILE_DOWN], "ct-fail:latest", "\"w-down\"", NULL, NULL, NULL, true);
    make_job(&jobs[EXIT_THEN_MESSAGE], "ct-separator:latest", "\"w-late\"", NULL, NULL, NULL, true);
    publish_running(&jobs[EXIT_WHILE_DOWN], false);
    for (size_t i = RUNNING; i < N; i++)
        wait_exited(&jobs[i]);

    start_completer(&run, "crash-2", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    publish_running(&jobs[EXIT_THEN_MESSAGE], false);
    json_t *results[N - 1];
    collect(&jobs[RUNNING], N - 1, results);
    assert_success(results[0], SLEPT_RESPONSE);
    assert_success(results[1], OK_RESPONSE);
    assert_success(results[2], FAIL_RESPONSE);
    assert_success(results[3], SEPARATOR_RESPONSE);
    assert_all_clean();
    free_results(results, N - 1);

    /* A crash in the middle of a stream of finishing jobs, then a restart: every job gets its
     * result. */
    enum { M = 30 };
    struct job many[M];
    for (size_t i = 0; i < M; i++) {
        char wid[32];
        snprintf(wid, sizeof(wid), "\"w-many-%zu\"", i);
        make_job(&many[i], "ct-ok:latest", wid, NULL, NULL, NULL, true);
        publish_running(&many[i], false);
    }
    wait_log(&run, "correction finished", "w-many-", 3);
    crash(&run);
    start_completer(&run, "crash-3", NULL);
    /* At least once each; a result confirmed in the instant before the kill, whose ack never
     * left, is published again by the next process under the same message_id (job_id). */
    bool seen[M] = {false};
    size_t n_seen = 0, dups = 0;
    while (n_seen < M) {
        json_t *r = get_result();
        const char *jid = json_string_value(json_object_get(r, "job_id"));
        size_t i = 0;
        while (i < M && strcmp(many[i].job_id, jid) != 0)
            i++;
        if (i == M)
            fail_msg("a result of an unknown job: %s", jid);
        assert_success(r, OK_RESPONSE);
        assert_true(json_equal(json_object_get(r, "work_id"), many[i].work_id));
        if (seen[i])
            dups++;
        else
            n_seen++;
        seen[i] = true;
        json_decref(r);
    }
    /* A container is removed only after its result is confirmed: once none is left, every
     * result is in the queue, and the rest of it is duplicates. */
    if (!ct_wait_until(no_containers, NULL, WAIT_MS))
        fail_msg("%zu correction container(s) left behind", count_containers());
    if (!ct_wait_until(running_settled, NULL, WAIT_MS))
        fail_msg("running_corrections not settled after the restart");
    struct ct_msg *m;
    while ((m = ct_amqp_get("finished_corrections", 0))) {
        json_t *r = ct_json(m->body);
        const char *jid = json_string_value(json_object_get(r, "job_id"));
        size_t i = 0;
        while (i < M && jid && strcmp(many[i].job_id, jid) != 0)
            i++;
        if (i == M || !m->message_id || strcmp(m->message_id, jid) != 0)
            fail_msg("an unexpected result: %s", m->body);
        assert_success(r, OK_RESPONSE);
        dups++;
        json_decref(r);
        ct_msg_free(m);
    }
    if (dups)
        print_message("note: %zu result(s) published again after the SIGKILL\n", dups);
    assert_true(dups <= 2);
    assert_all_clean();
    for (size_t i = 0; i < M; i++)
        job_free(&many[i]);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* ---- a burst --------------------------------------------------------------------------------- */

/* The engine restarts while corrections run: one exits while the engine is down, one is
 * started after it is back. Every job completes once. */
static void test_docker_restart(void **state)
{
    (void)state;
    struct run run;
    start_completer(&run, "docker-restart", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job jobs[2];
    make_job(&jobs[0], "ct-sleeper:latest", "\"w-restart-a\"", (const char *[]){"SLEEP=2", NULL},
             NULL, NULL, true);
    make_job(&jobs[1], "ct-ok:latest", "\"w-restart-b\"", NULL, NULL, NULL, false);
    publish_running(&jobs[0], false);
    publish_running(&jobs[1], false);
    wait_log(&run, "running message received", jobs[0].cid, 1);
    wait_log(&run, "running message received", jobs[1].cid, 1);
    assert_int_equal(ct_servers("docker-stop"), 0);
    /* The completer notices (its events stream ends, its lists fail) while the sleeper
     * finishes under the stopped engine (live-restore keeps it running). */
    wait_log(&run, "docker events stream ended", NULL, 1);
    wait_log(&run, "cannot list correction containers", NULL, 1);
    assert_int_equal(ct_servers("docker-start"), 0);
    ct_docker_start(jobs[1].cid);
    json_t *results[2];
    collect(jobs, 2, results);
    assert_success(results[0], SLEPT_RESPONSE);
    assert_success(results[1], OK_RESPONSE);
    assert_all_clean();
    free_results(results, 2);
    for (size_t i = 0; i < 2; i++)
        job_free(&jobs[i]);
    stop(&run);
}

static void test_burst_200(void **state)
{
    (void)state;
    enum { N = 200 };
    struct run run;
    start_completer(&run, "burst", (const char *[]){"LOG_LEVEL=info", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    static struct job jobs[N];
    static json_t *results[N];
    /* Both orders, interleaved, while the completer is finishing the earlier ones. */
    for (int i = 0; i < N; i++) {
        char wid[16];
        snprintf(wid, sizeof(wid), "%d", i);
        make_job(&jobs[i], "ct-ok:latest", wid, NULL, NULL, NULL, false);
        if (i % 2 == 0) {
            publish_running(&jobs[i], false);
            ct_docker_start(jobs[i].cid);
        } else {
            ct_docker_start(jobs[i].cid);
            publish_running(&jobs[i], false);
        }
    }
    collect(jobs, N, results); /* each exactly once, with its own work_id */
    for (int i = 0; i < N; i++)
        assert_success(results[i], OK_RESPONSE);
    assert_all_clean();
    free_results(results, N);
    for (int i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_message_first, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_message_first_with_starter, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_exit_first, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_both_before_start, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_error_reasons, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_duplicate_running_message, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_container_cannot_change_work_id,
                                        ct_reset_pipeline_fixture, ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_invalid_running_messages, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_renewal_and_retention, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_sigkill_and_restart, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_docker_restart, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_burst_200, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
