/* The completer against the real broker and the real engine.
 *
 * Most tests play the starter by hand: they create labelled containers (as the starter does),
 * start them and publish their running messages themselves, so each test decides which comes
 * first, the message or the exit. Results are read from finished_corrections and matched to
 * their jobs by job_id: every job must have exactly one (the one exception, a SIGKILL between a
 * confirmed publish and its ack, is bounded in test_sigkill_and_restart). */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ids.h"
#include "docker_compat.h"
#include "support.h"
#include "text.h"

#define LABEL "correctomatic.job_id"
#define CALLBACK "http://receiver.invalid/grade"
#define WAIT_MS 30000

/* A correction container made by hand, as the starter would have made it. */
struct job {
    char *cid;
    char job_id[IDS_UUID_LEN + 1];
    json_t *work_id; /* NULL: the job has none */
};

/* ---- processes (tests/support's ct_daemon_*) ------------------------------------------- */

static void start_completer(struct ct_daemon *d, const char *name, const char *const *extra)
{
    static const char *const defaults[] = {"RETRY_MIN=100ms", "RETRY_MAX=2s",
                                           "RECONCILE_INTERVAL=1s", "SHUTDOWN_TIMEOUT=5s", NULL};
    ct_daemon_start_over(d, "completer", name, defaults, extra);
}

static void start_starter(struct ct_daemon *d, const char *name, const char *const *extra)
{
    static const char *const defaults[] = {"RETRY_MAX=2s", "RECONCILE_INTERVAL=1s", NULL};
    ct_daemon_start_over(d, "starter", name, defaults, extra);
}

/* SIGTERM; the daemon must exit 0 within 20 s. */
static void stop(struct ct_daemon *d)
{
    int status = ct_daemon_stop(d);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s: exit status %d", d->log, status);
}

/* SIGKILL of a daemon that was still running. */
static void crash(struct ct_daemon *d)
{
    assert_int_equal(kill(d->pid, 0), 0);
    ct_daemon_kill(d);
}

/* Waits for count lines holding needle (and also, unless NULL). */
static void wait_log(const struct ct_daemon *d, const char *needle, const char *also, int count)
{
    ct_daemon_wait_lines(d, needle, also, count, WAIT_MS);
}

static int count_log(const struct ct_daemon *d, const char *needle, const char *also)
{
    return ct_file_count_lines(d->log, needle, also);
}

/* ---- jobs by hand --------------------------------------------------------------------------- */

/* Creates a labelled container of image: work_id_json is the job's work_id as JSON (NULL: none),
 * script (NULL: the image's own CMD) replaces the command with `sh -c script`, host_config is
 * stolen. Started when start is true. labels (stolen, may be NULL) changes the starter's labels:
 * a string sets one, a JSON null removes one. */
static void make_job_labels(struct job *job, const char *image, const char *work_id_json,
                            const char *const env[], const char *script, json_t *host_config,
                            bool start, json_t *labels_change)
{
    memset(job, 0, sizeof(*job));
    assert_int_equal(ids_uuid_random(job->job_id), 0);
    job->work_id = work_id_json ? ct_json(work_id_json) : NULL;
    json_t *labels = json_pack("{s:s,s:s}", LABEL, job->job_id, "correctomatic.callback", CALLBACK);
    if (work_id_json)
        json_object_set_new(labels, "correctomatic.work_id", json_string(work_id_json));
    const char *key;
    json_t *value;
    json_object_foreach(labels_change, key, value)
    {
        if (json_is_null(value))
            json_object_del(labels, key);
        else
            json_object_set(labels, key, value);
    }
    json_decref(labels_change);
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
    json_t *fixed = NULL; /* as the starter's client sends it (docker_compat.h) */
    if (ct_engine_is_podman() && docker_compat_create_config(req, &fixed) == 0 && fixed) {
        json_decref(req);
        req = fixed;
    }
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

static void make_job(struct job *job, const char *image, const char *work_id_json,
                     const char *const env[], const char *script, json_t *host_config, bool start)
{
    make_job_labels(job, image, work_id_json, env, script, host_config, start, NULL);
}

/* The deadline label as the starter writes it: unix seconds, in_s from now. */
static json_t *deadline_in(int in_s)
{
    char s[32];
    snprintf(s, sizeof(s), "%lld", (long long)time(NULL) + in_s);
    return json_pack("{s:s}", "correctomatic.deadline", s);
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
    /* Valid UTF-8 (whatever the container printed) and within the notifier's limit. */
    if (!text_utf8_valid(m->body, m->len))
        fail_msg("a result that is not valid UTF-8 (%zu bytes)", m->len);
    assert_true(m->len <= 1024 * 1024);
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
    struct ct_daemon run;
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
    struct ct_daemon starter, completer;
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
    struct ct_daemon run;
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
    struct ct_daemon run;
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
    struct ct_daemon run;
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
    /* A deadline label far away: on a loaded machine the memory hog may take longer than
     * CORRECTION_TIMEOUT to reach its limit. */
    make_job_labels(&jobs[OOM], "ct-memhog:latest", "\"w-oom\"", NULL, NULL,
                    json_pack("{s:s,s:I,s:I}", "NetworkMode", "none", "Memory",
                              (json_int_t)16 << 20, "MemorySwap", (json_int_t)16 << 20),
                    true, deadline_in(600));
    /* Started late too, and with a deadline label far away (it wins over CORRECTION_TIMEOUT),
     * so that their deadline cannot come first on a slow machine. */
    make_job_labels(&jobs[KILLED], "ct-sleeper:latest", "\"w-killed\"",
                    (const char *[]){"SLEEP=300", NULL}, NULL, NULL, false, deadline_in(600));
    make_job_labels(&jobs[REMOVED], "ct-sleeper:latest", "\"w-removed\"",
                    (const char *[]){"SLEEP=300", NULL}, NULL, NULL, false, deadline_in(600));
    struct ct_oom_watch oom;
    ct_oom_watch_start(&oom);
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
    /* The engine loses a few OOM kills under load: then a SIGKILL under a memory limit is all
     * it reports, and the result says that memory may be why. */
    if (ct_oom_watch_saw(&oom, jobs[OOM].cid, NULL, NULL) ||
        !error_contains(results[OOM], "reaches its memory limit"))
        assert_error(results[OOM], "memory limit exceeded");
    else
        assert_error(results[OOM], "container killed");
    ct_oom_watch_stop(&oom);
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
    struct ct_daemon run;
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
    struct ct_daemon run;
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

/* Running messages the completer cannot accept are parked in running_corrections.invalid with
 * the reason: not JSON, a bad shape, too large, a container that is not a correction container
 * (left alone: never killed or removed for a message), a container of another job (which a later,
 * right message still claims). */
static void test_invalid_running_messages(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_completer(&run, "invalid", (const char *[]){"MAX_MESSAGE_BYTES=16k", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    static char big[20000];
    snprintf(big, sizeof(big), "{\"work_id\":\"");
    size_t at = strlen(big);
    memset(big + at, 'w', sizeof(big) - at - 200);
    snprintf(big + sizeof(big) - 200, 200,
             "\",\"container_id\":\"%064d\",\"callback\":\"http://h/cb\"}", 0);
    const char *bodies[] = {
        "not json at all",
        "{\"work_id\":\"w\",\"container_id\":\"abc\",\"callback\":\"http://h/cb\"}",
        "{\"work_id\":\"w\",\"container_id\":"
        "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
        big, /* over MAX_MESSAGE_BYTES */
    };
    enum { SYNC = sizeof(bodies) / sizeof(bodies[0]) };
    for (size_t i = 0; i < SYNC; i++)
        ct_amqp_publish("running_corrections", bodies[i], NULL);
    for (size_t i = 0; i < SYNC; i++) {
        struct ct_msg *m = ct_amqp_get("running_corrections.invalid", WAIT_MS);
        assert_non_null(m);
        assert_string_equal(m->body, bodies[i]); /* one consumer: in order */
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        assert_non_null(reason);
        assert_true(strlen(reason) > 0);
        ct_msg_free(m);
    }

    /* A container without our labels, running; and one of ours, claimed with another job_id. */
    json_t *stranger_labels = json_pack("{s:s}", "ct.test.stranger", "1");
    json_t *stranger_hc = json_pack("{s:s}", "NetworkMode", "none");
    char *stranger = ct_docker_create("ct-sleeper:latest", (const char *[]){"SLEEP=300", NULL},
                                      stranger_labels, stranger_hc);
    json_decref(stranger_labels);
    json_decref(stranger_hc); /* ct_docker_create takes no reference */
    ct_docker_start(stranger);
    struct job strange_job = {.cid = stranger};
    assert_int_equal(ids_uuid_random(strange_job.job_id), 0);
    struct job mine, impostor;
    make_job(&mine, "ct-ok:latest", "\"w-mine\"", NULL, NULL, NULL, true);
    impostor = mine;
    assert_int_equal(ids_uuid_random(impostor.job_id), 0);
    wait_exited(&mine);
    char *stranger_body = running_body(&strange_job, false);
    char *impostor_body = running_body(&impostor, false);
    /* Legacy messages (no job_id) naming it for another job: another callback, another
     * work_id. */
    char *legacy_body = running_body(&mine, true);
    json_t *lo = ct_json(legacy_body);
    free(legacy_body);
    json_object_set_new(lo, "callback", json_string("http://127.0.0.1:9/elsewhere"));
    char *legacy_cb_body = json_dumps(lo, JSON_COMPACT);
    json_object_set_new(lo, "callback", json_string(CALLBACK));
    json_object_set_new(lo, "work_id", json_string("w-someone-else"));
    char *legacy_wid_body = json_dumps(lo, JSON_COMPACT);
    json_decref(lo);
    ct_amqp_publish("running_corrections", stranger_body, NULL);
    ct_amqp_publish("running_corrections", impostor_body, NULL);
    ct_amqp_publish("running_corrections", legacy_cb_body, NULL);
    ct_amqp_publish("running_corrections", legacy_wid_body, NULL);
    bool seen_stranger = false, seen_impostor = false, seen_legacy_cb = false,
         seen_legacy_wid = false;
    for (size_t i = 0; i < 4; i++) {
        struct ct_msg *m = ct_amqp_get("running_corrections.invalid", WAIT_MS);
        assert_non_null(m);
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        assert_non_null(reason);
        if (strcmp(m->body, stranger_body) == 0) {
            assert_non_null(strstr(reason, "not a correction container"));
            seen_stranger = true;
        } else if (strcmp(m->body, legacy_cb_body) == 0) {
            assert_non_null(strstr(reason, "no job_id, another callback"));
            seen_legacy_cb = true;
        } else if (strcmp(m->body, legacy_wid_body) == 0) {
            assert_non_null(strstr(reason, "no job_id, another work_id"));
            seen_legacy_wid = true;
        } else {
            assert_string_equal(m->body, impostor_body);
            assert_non_null(strstr(reason, "belongs to job"));
            seen_impostor = true;
        }
        ct_msg_free(m);
    }
    assert_true(seen_stranger && seen_impostor && seen_legacy_cb && seen_legacy_wid);
    free(legacy_cb_body);
    free(legacy_wid_body);
    /* The right message still claims its container. */
    publish_running(&mine, false);
    json_t *r;
    collect(&mine, 1, &r);
    assert_success(r, OK_RESPONSE);
    json_decref(r);
    assert_all_clean();
    /* The stranger was never touched. */
    json_t *ins = ct_docker_inspect(stranger);
    assert_non_null(ins);
    assert_true(json_is_true(json_object_get(json_object_get(ins, "State"), "Running")));
    json_decref(ins);
    ct_docker_remove_labelled("ct.test.stranger");
    free(stranger_body);
    free(impostor_body);
    free(stranger);
    job_free(&mine);
    stop(&run);
}

/* A long correction: its running message is re-published (below RabbitMQ's consumer timeout)
 * and the copy comes back to the same job. Containers no running message claims are kept for
 * CONTAINER_RETENTION; then an exited one with usable labels is reported from them (a message
 * that comes later is a duplicate), an exited one without a callback label is removed (a
 * message that comes later reports it missing), and one never started is removed without a
 * result. */
static void test_renewal_and_retention(void **state)
{
    (void)state;
    struct ct_daemon run;
    /* The retention is longer than a loaded engine may take between create and start: a
     * container still created after it is removed. */
    start_completer(&run, "renewal",
                    (const char *[]){"MESSAGE_RENEW_AFTER=1s", "CONTAINER_RETENTION=6s", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { LONG, LABELS, NO_CALLBACK, CREATED, N };
    struct job jobs[N];
    make_job(&jobs[LONG], "ct-sleeper:latest", "\"w-long\"", (const char *[]){"SLEEP=5", NULL},
             NULL, NULL, false);
    publish_running(&jobs[LONG], false); /* claimed before it starts */
    wait_log(&run, "running message received", jobs[LONG].cid, 1);
    ct_docker_start(jobs[LONG].cid);
    /* Its work_id label is JSON: the number comes back as a number. */
    make_job(&jobs[LABELS], "ct-ok:latest", "77", NULL, NULL, NULL, true);
    make_job_labels(&jobs[NO_CALLBACK], "ct-ok:latest", "\"w-no-callback\"", NULL, NULL, NULL, true,
                    json_pack("{s:n}", "correctomatic.callback"));
    make_job(&jobs[CREATED], "ct-ok:latest", "\"w-created\"", NULL, NULL, NULL, false);
    wait_log(&run, "running message renewed", jobs[LONG].cid, 1);
    wait_log(&run, "finishing a container no running message claimed, from its labels",
             jobs[LABELS].cid, 1);
    wait_log(&run, "removed a correction container no running message claimed",
             jobs[NO_CALLBACK].cid, 1);
    wait_log(&run, "removed a correction container no running message claimed", jobs[CREATED].cid,
             1);
    assert_null(ct_docker_inspect(jobs[NO_CALLBACK].cid));
    assert_null(ct_docker_inspect(jobs[CREATED].cid));
    json_t *results[2];
    collect(&jobs[LONG], 2, results); /* LONG and LABELS; checks the label's work_id */
    assert_success(results[0], SLEPT_RESPONSE);
    assert_success(results[1], OK_RESPONSE);
    assert_true(json_is_integer(json_object_get(results[1], "work_id")));
    free_results(results, 2);
    /* Late messages: a duplicate of the job reported from its labels; a missing container. */
    publish_running(&jobs[LABELS], false);
    wait_log(&run, "duplicate running message of a finished job, acked", jobs[LABELS].cid, 1);
    publish_running(&jobs[NO_CALLBACK], false);
    json_t *missing;
    collect(&jobs[NO_CALLBACK], 1, &missing);
    assert_error(missing, "container missing");
    json_decref(missing);
    assert_all_clean();
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* ---- the labels are the truth --------------------------------------------------------------- */

/* Every labelled container gets its time limit, claimed or not: the deadline label when present
 * (whatever CORRECTION_TIMEOUT says), else StartedAt + CORRECTION_TIMEOUT. An unclaimed
 * container killed at its deadline is reported from its labels after CONTAINER_RETENTION. */
static void test_deadline_from_labels(void **state)
{
    (void)state;
    struct ct_daemon run;
    /* The retention is longer than a loaded engine may take between create and start. */
    start_completer(&run, "deadline",
                    (const char *[]){"CORRECTION_TIMEOUT=4s", "CONTAINER_RETENTION=6s", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { UNCLAIMED, UNCLAIMED_NO_LABEL, CLAIMED_SHORT, CLAIMED_LONG, N };
    struct job jobs[N];
    const char *const forever[] = {"SLEEP=300", NULL};
    make_job_labels(&jobs[UNCLAIMED], "ct-sleeper:latest", "\"w-unclaimed\"", forever, NULL, NULL,
                    true, deadline_in(2));
    make_job(&jobs[UNCLAIMED_NO_LABEL], "ct-sleeper:latest", "\"w-no-label\"", forever, NULL, NULL,
             true);
    make_job_labels(&jobs[CLAIMED_SHORT], "ct-sleeper:latest", "\"w-short\"", forever, NULL, NULL,
                    true, deadline_in(2));
    /* Longer than CORRECTION_TIMEOUT, within its label's deadline: not killed. */
    make_job_labels(&jobs[CLAIMED_LONG], "ct-sleeper:latest", "\"w-long\"",
                    (const char *[]){"SLEEP=7", NULL}, NULL, NULL, true, deadline_in(120));
    publish_running(&jobs[CLAIMED_SHORT], false);
    publish_running(&jobs[CLAIMED_LONG], false);
    wait_log(&run, "time limit reached, killing the container", jobs[UNCLAIMED].cid, 1);
    wait_log(&run, "time limit reached, killing the container", jobs[UNCLAIMED_NO_LABEL].cid, 1);
    wait_log(&run, "finishing a container no running message claimed, from its labels",
             jobs[UNCLAIMED].cid, 1);
    json_t *results[N];
    collect(jobs, N, results);
    assert_error(results[UNCLAIMED], "time limit exceeded");
    assert_error(results[UNCLAIMED_NO_LABEL], "time limit exceeded");
    assert_true(error_contains(results[UNCLAIMED_NO_LABEL], "longer than 4 s"));
    assert_error(results[CLAIMED_SHORT], "time limit exceeded");
    assert_false(error_contains(results[CLAIMED_SHORT], "longer than 4 s")); /* the label's */
    assert_success(results[CLAIMED_LONG], SLEPT_RESPONSE);
    assert_int_equal(count_log(&run, "time limit reached", jobs[CLAIMED_LONG].cid), 0);
    assert_all_clean();
    free_results(results, N);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* ct-volume: ct-ok with a VOLUME (an anonymous volume per container). */
static void make_volume_image(void)
{
    if (ct_docker_image_exists("ct-volume:latest"))
        return;
    char *id = ct_docker_create("ct-ok:latest", NULL, NULL, NULL);
    char path[256];
    long st;
    snprintf(path, sizeof(path), "/commit?container=%s&repo=ct-volume&tag=latest&changes=%s", id,
             "VOLUME%20%2Fdata");
    /* a JSON body ("{}": keep the container's config), else curl sends a form content type
     * that the engine refuses */
    json_t *r = ct_docker("POST", path, "{}", &st);
    if (st != 201) {
        char *msg = r ? json_dumps(r, JSON_ENCODE_ANY) : NULL;
        fail_msg("commit of ct-volume: %ld %s", st, msg ? msg : "(no body)");
    }
    json_decref(r);
    snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
    json_decref(ct_docker("DELETE", path, NULL, &st));
    free(id);
}

static char *volume_of(const char *cid)
{
    json_t *ins = ct_docker_inspect(cid);
    json_t *mount = json_array_get(json_object_get(ins, "Mounts"), 0);
    const char *name = json_string_value(json_object_get(mount, "Name"));
    assert_non_null(name);
    assert_string_equal(json_string_value(json_object_get(mount, "Type")), "volume");
    char *r = strdup(name);
    json_decref(ins);
    return r;
}

static bool volume_exists(const char *name)
{
    char path[256];
    long st;
    snprintf(path, sizeof(path), "/volumes/%s", name);
    json_decref(ct_docker("GET", path, NULL, &st));
    return st == 200;
}

/* Containers are removed with their anonymous volumes: a finished one, and an unclaimed one
 * never started. */
static void test_volumes_removed(void **state)
{
    (void)state;
    make_volume_image();
    struct ct_daemon run;
    start_completer(&run, "volumes", (const char *[]){"CONTAINER_RETENTION=3s", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { FINISHED, UNCLAIMED, N };
    struct job jobs[N];
    make_job(&jobs[FINISHED], "ct-volume:latest", "\"w-volume\"", NULL, NULL, NULL, false);
    make_job(&jobs[UNCLAIMED], "ct-volume:latest", "\"w-volume-created\"", NULL, NULL, NULL, false);
    char *volumes[N];
    for (size_t i = 0; i < N; i++) {
        volumes[i] = volume_of(jobs[i].cid);
        assert_true(volume_exists(volumes[i]));
    }
    publish_running(&jobs[FINISHED], false); /* claimed before it starts */
    wait_log(&run, "running message received", jobs[FINISHED].cid, 1);
    ct_docker_start(jobs[FINISHED].cid);
    json_t *r;
    collect(&jobs[FINISHED], 1, &r);
    assert_success(r, OK_RESPONSE);
    json_decref(r);
    wait_log(&run, "removed a correction container no running message claimed", jobs[UNCLAIMED].cid,
             1);
    assert_all_clean();
    for (size_t i = 0; i < N; i++) {
        if (volume_exists(volumes[i]))
            fail_msg("the anonymous volume %s of container %s was left behind", volumes[i],
                     jobs[i].cid);
        free(volumes[i]);
        job_free(&jobs[i]);
    }
    stop(&run);
}

/* ---- a Docker API proxy that holds answers -------------------------------------------------- */

/* Forwards every connection to the engine byte for byte, except that once a client asks for
 * GET .../containers/<held>/json, that connection's answer is held (not read from the engine)
 * until the engine's events stream has carried the container's "die" (and one more second, so
 * that the completer sees the die first). Curl does not pipeline: the answer held is that
 * inspect's. */
struct proxy_pair {
    int cfd, sfd;
    bool holding;
    int held_idx;
};

struct proxy {
    char path[108];
    char upstream[108];
    int lfd;
    pthread_t thread;
    volatile bool stop;
    char held[4][65];
    size_t n_held;
    bool asked[4]; /* its inspect was asked for (and held) */
    bool died[4];  /* its die event went by */
    int64_t release_at[4];
    volatile int released; /* answers released so far */
};

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static bool pump(int from, int to, char *buf, size_t len, ssize_t *ret_n)
{
    ssize_t n = read(from, buf, len);
    *ret_n = n;
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void *proxy_main(void *ud)
{
    struct proxy *p = ud;
    enum { MAXP = 64 };
    struct proxy_pair pairs[MAXP];
    size_t n = 0;
    static char buf[65536];
    while (!p->stop) {
        struct pollfd fds[1 + 2 * MAXP];
        size_t nf = 0;
        fds[nf++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        int64_t now = ct_now_ms();
        int timeout = 100;
        for (size_t i = 0; i < n; i++) {
            struct proxy_pair *pp = &pairs[i];
            if (pp->holding && p->died[pp->held_idx] && now >= p->release_at[pp->held_idx]) {
                pp->holding = false;
                p->released++;
            }
            fds[nf++] = (struct pollfd){.fd = pp->cfd, .events = POLLIN};
            fds[nf++] = (struct pollfd){.fd = pp->sfd, .events = pp->holding ? 0 : POLLIN};
        }
        if (poll(fds, nf, timeout) < 0)
            continue;
        if ((fds[0].revents & POLLIN) && n < MAXP) {
            int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
            int sfd = cfd >= 0 ? unix_connect(p->upstream) : -1;
            if (sfd >= 0)
                pairs[n++] = (struct proxy_pair){.cfd = cfd, .sfd = sfd};
            else if (cfd >= 0)
                close(cfd);
        }
        for (size_t i = 0, f = 1; i < n && f + 1 < nf; i++, f += 2) {
            struct proxy_pair *pp = &pairs[i];
            bool ok = true;
            ssize_t got;
            if (fds[f].revents & (POLLIN | POLLHUP | POLLERR)) {
                ok = pump(pp->cfd, pp->sfd, buf, sizeof(buf), &got);
                for (size_t h = 0; ok && h < p->n_held; h++) {
                    char needle[128];
                    snprintf(needle, sizeof(needle), "/containers/%s/json", p->held[h]);
                    if (!p->asked[h] && memmem(buf, (size_t)got, needle, strlen(needle))) {
                        p->asked[h] = true;
                        pp->holding = true;
                        pp->held_idx = (int)h;
                    }
                }
            }
            if (ok && (fds[f + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
                ok = pump(pp->sfd, pp->cfd, buf, sizeof(buf), &got);
                for (size_t h = 0; ok && h < p->n_held; h++)
                    if (!p->died[h] && memmem(buf, (size_t)got, p->held[h], 64) &&
                        memmem(buf, (size_t)got, "\"die\"", 5)) {
                        p->died[h] = true;
                        p->release_at[h] = ct_now_ms() + 1000;
                    }
            }
            if (!ok) {
                close(pp->cfd);
                close(pp->sfd);
                pairs[i] = pairs[--n];
                break; /* fds no longer match: poll again */
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        close(pairs[i].cfd);
        close(pairs[i].sfd);
    }
    return NULL;
}

static void proxy_start(struct proxy *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    const char *host = ct_env("CT_DOCKER_HOST");
    assert_true(strncmp(host, "unix://", 7) == 0);
    snprintf(p->upstream, sizeof(p->upstream), "%s", host + 7);
    snprintf(p->path, sizeof(p->path), "%s/%s.sock", ct_env("CT_TMP"), name);
    unlink(p->path);
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", p->path);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(p->lfd, 64), 0);
    assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

static void proxy_stop(struct proxy *p)
{
    p->stop = true;
    pthread_join(p->thread, NULL);
    close(p->lfd);
    unlink(p->path);
}

/* Two running messages for one container, both come while its first inspect is held (by the
 * proxy, until after the container's exit): each claim is judged on its own once the inspect
 * answers. The job's own message gets the result; the other (another job_id) is parked, not
 * acked along with the first. */
static void test_two_claims_during_inspect(void **state)
{
    (void)state;
    struct proxy proxy;
    proxy_start(&proxy, "docker-proxy-claims");
    char docker_host[160];
    snprintf(docker_host, sizeof(docker_host), "DOCKER_HOST=unix://%s", proxy.path);
    struct ct_daemon run;
    start_completer(&run, "two-claims",
                    (const char *[]){docker_host, "RECONCILE_INTERVAL=1h", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job mine;
    make_job(&mine, "ct-sleeper:latest", "\"w-claim\"", (const char *[]){"SLEEP=3", NULL}, NULL,
             NULL, false);
    struct job impostor = mine; /* the same container, another job */
    assert_int_equal(ids_uuid_random(impostor.job_id), 0);
    snprintf(proxy.held[0], sizeof(proxy.held[0]), "%s", mine.cid);
    proxy.n_held = 1;
    ct_docker_start(mine.cid);
    publish_running(&mine, false);
    char *impostor_body = running_body(&impostor, false);
    ct_amqp_publish("running_corrections", impostor_body, NULL);
    struct ct_msg *m = ct_amqp_get("running_corrections.invalid", WAIT_MS);
    assert_non_null(m);
    assert_string_equal(m->body, impostor_body);
    const char *reason = json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
    assert_non_null(reason);
    assert_non_null(strstr(reason, "belongs to job"));
    ct_msg_free(m);
    json_t *results[1];
    collect(&mine, 1, results);
    assert_success(results[0], SLEPT_RESPONSE);
    /* The race did happen: the inspect's answer was held past the exit. */
    assert_true(proxy.asked[0]);
    assert_true(proxy.released >= 1);
    assert_all_clean();
    free_results(results, 1);
    free(impostor_body);
    job_free(&mine);
    stop(&run);
    proxy_stop(&proxy);
}

/* A die event while the completer's inspect of a running container is in flight: the job is
 * finished from the die at once (not at the next reconcile, here an hour away), and an answer
 * that says "running" from before the die never turns into a time limit near the deadline. */
static void test_die_during_inspect(void **state)
{
    (void)state;
    struct proxy proxy;
    proxy_start(&proxy, "docker-proxy");
    char docker_host[160];
    snprintf(docker_host, sizeof(docker_host), "DOCKER_HOST=unix://%s", proxy.path);
    struct ct_daemon run;
    /* CORRECTION_TIMEOUT for a container without the label: the near one's deadline. */
    start_completer(
        &run, "die-during-inspect",
        (const char *[]){docker_host, "RECONCILE_INTERVAL=1h", "CORRECTION_TIMEOUT=6s", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { NEAR, FAR, N };
    struct job jobs[N];
    /* NEAR: dies at 3 s, its inspect answered at about 4 s, its deadline at 6 s. */
    make_job(&jobs[NEAR], "ct-sleeper:latest", "\"w-near\"", (const char *[]){"SLEEP=3", NULL},
             NULL, NULL, false);
    make_job_labels(&jobs[FAR], "ct-sleeper:latest", "\"w-far\"", (const char *[]){"SLEEP=3", NULL},
                    NULL, NULL, false, deadline_in(600));
    for (size_t i = 0; i < N; i++)
        snprintf(proxy.held[i], sizeof(proxy.held[i]), "%s", jobs[i].cid);
    proxy.n_held = N;
    for (size_t i = 0; i < N; i++) {
        ct_docker_start(jobs[i].cid);
        publish_running(&jobs[i], false);
    }
    json_t *results[N];
    collect(jobs, N, results);
    assert_success(results[NEAR], SLEPT_RESPONSE);
    assert_success(results[FAR], SLEPT_RESPONSE);
    /* The race did happen: each inspect answer was held past the die. */
    assert_true(proxy.asked[NEAR] && proxy.asked[FAR]);
    assert_true(proxy.released >= 1);
    assert_int_equal(count_log(&run, "time limit reached", NULL), 0);
    assert_all_clean();
    free_results(results, N);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
    proxy_stop(&proxy);
}

/* ---- output: the log, the size of a result, text ------------------------------------------- */

static json_t *log_config(const char *max_size)
{
    return json_pack("{s:s,s:{s:s,s:{s:s,s:s}}}", "NetworkMode", "none", "LogConfig", "Type",
                     "json-file", "Config", "max-size", max_size, "max-file", "2");
}

#define NOISE_LINE "noise on stderr, noise on stderr, noise on stderr, noise on stderr, noise"

/* More stderr after the response than the json-file log keeps: "output too large" (the
 * response was rotated out), not "no response found". Within what the log keeps (two files, as
 * the starter creates them), the response survives a rotation. */
static void test_stderr_after_response(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_completer(&run, "stderr-flood", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { ROTATED_ONCE, FLOODED, QUIET, N };
    struct job jobs[N];
    make_job(&jobs[ROTATED_ONCE], "ct-ok:latest", "\"w-rotated-once\"", NULL,
             "echo '" OK_RESPONSE "'; yes '" NOISE_LINE "' | head -c 40000 >&2", log_config("64k"),
             true);
    make_job(&jobs[FLOODED], "ct-ok:latest", "\"w-flooded\"", NULL,
             "echo '" OK_RESPONSE "'; yes '" NOISE_LINE "' | head -c 400000 >&2", log_config("64k"),
             true);
    /* No response, little stderr: the log did not rotate, the usual reason. */
    make_job(&jobs[QUIET], "ct-ok:latest", "\"w-quiet\"", NULL,
             "echo 'not a response'; yes '" NOISE_LINE "' | head -c 5000 >&2; exit 2",
             log_config("64k"), true);
    for (size_t i = 0; i < N; i++)
        publish_running(&jobs[i], false);
    json_t *results[N];
    collect(jobs, N, results);
    assert_success(results[ROTATED_ONCE], OK_RESPONSE);
    if (ct_engine_is_podman()) {
        /* Podman keeps one file (the client asks for max-size x max-file), emptied when full,
         * and its inspect shows no log options: the completer cannot tell that the output was
         * cut, and the response is gone */
        assert_error(results[FLOODED], "no response found");
    } else {
        assert_error(results[FLOODED], "output too large");
        assert_true(error_contains(results[FLOODED], "log"));
    }
    assert_error(results[QUIET], "no response found");
    assert_true(error_contains(results[QUIET], "exit code 2"));
    assert_all_clean();
    free_results(results, N);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* The same through the starter: CORRECTION_LOG_SIZE of stderr after the response does not erase
 * it (the starter keeps two log files). */
static void test_stderr_after_response_with_starter(void **state)
{
    (void)state;
    struct ct_daemon starter, completer;
    char *file = ct_tmpfile("completer-log-size.txt", OK_RESPONSE "\n", strlen(OK_RESPONSE) + 1);
    start_starter(&starter, "completer-log-size",
                  (const char *[]){"CORRECTION_LOG_SIZE=40k", NULL});
    start_completer(&completer, "log-size", NULL);
    /* ct-echo prints the file on stdout, then its environment on stderr: ~56 KB of it, more than
     * one log file (so it rotated once), less than two. */
    static char big[2][28000];
    for (size_t i = 0; i < 2; i++) {
        snprintf(big[i], 8, "BIG%zu=", i);
        memset(big[i] + 5, 'x', sizeof(big[i]) - 6);
        big[i][sizeof(big[i]) - 1] = '\0';
    }
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:[s,s]}", "work_id", "w-log-size", "image", "ct-echo:latest",
                  "file", file, "callback", CALLBACK, "params", big[0], big[1]);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ct_amqp_publish("pending_corrections", body, NULL);
    free(body);
    json_t *r = get_result();
    assert_success(r, OK_RESPONSE);
    assert_all_clean();
    json_decref(r);
    stop(&completer);
    stop(&starter);
    free(file);
}

/* A response whose numbers grow when re-serialized (1e300 -> 1.0000000000000001e+300) past the
 * notifier's MAX_MESSAGE_BYTES: the caller hears "output too large", nothing is dropped. */
static void test_result_too_large(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_completer(&run, "result-too-large", (const char *[]){"MAX_OUTPUT_BYTES=1m", NULL});
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { GROWS, FITS, N };
    struct job jobs[N];
    /* ~300 KB printed, ~1.2 MB once serialized */
    make_job(&jobs[GROWS], "ct-ok:latest", "\"w-grows\"", NULL,
             "printf '{\"success\":true,\"grade\":1,\"x\":['; yes 1e300, | head -n 49999 | "
             "tr -d '\\n'; echo '1e300]}'",
             NULL, true);
    make_job(&jobs[FITS], "ct-ok:latest", "\"w-fits\"", NULL,
             "printf '{\"success\":true,\"grade\":1,\"x\":['; yes 1e300, | head -n 999 | "
             "tr -d '\\n'; echo '1e300]}'",
             NULL, true);
    for (size_t i = 0; i < N; i++)
        publish_running(&jobs[i], false);
    json_t *results[N];
    collect(jobs, N, results);
    assert_error(results[GROWS], "output too large");
    assert_true(error_contains(results[GROWS], "1048576"));
    assert_false(json_is_true(json_object_get(results[FITS], "error")));
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(results[FITS], "correction_data"), "x")),
        1000);
    assert_all_clean();
    free_results(results, N);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* Invalid UTF-8, a cut character, NUL bytes on stderr, binary stdout: every result is valid
 * UTF-8 (get_result checks) and none is retried forever. */
static void test_output_text(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_completer(&run, "text", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    enum { INVALID_STDERR, CUT_STDERR, NUL_STDERR, BINARY_STDOUT, BINARY_IN_BLOCK, UTF8_OK, N };
    struct job jobs[N];
    make_job(&jobs[INVALID_STDERR], "ct-ok:latest", "\"w-invalid\"", NULL,
             "printf 'bad \\377\\376 bytes\\n' >&2; exit 1", NULL, true);
    /* 600 bytes of é: the stderr tail (its last 400 bytes) starts inside a character */
    make_job(&jobs[CUT_STDERR], "ct-ok:latest", "\"w-cut\"", NULL,
             "yes \xc3\xa9 | head -n 300 | tr -d '\\n' >&2; printf x >&2; exit 1", NULL, true);
    make_job(&jobs[NUL_STDERR], "ct-ok:latest", "\"w-nul\"", NULL,
             "{ printf 'nul '; head -c 1 /dev/zero; printf ' byte\\n'; } >&2; exit 1", NULL, true);
    make_job(&jobs[BINARY_STDOUT], "ct-ok:latest", "\"w-binary\"", NULL,
             "printf '\\377\\376\\001\\200 binary\\n'; head -c 3000 /bin/busybox", NULL, true);
    make_job(&jobs[BINARY_IN_BLOCK], "ct-ok:latest", "\"w-binary-block\"", NULL,
             "printf -- '-----BEGIN CORRECTOMATIC RESPONSE-----\\n"
             "{\"success\":true,\"grade\":1,\"comments\":[\"\\377\\303\"]}\\n"
             "-----END CORRECTOMATIC RESPONSE-----\\n'",
             NULL, true);
    make_job(
        &jobs[UTF8_OK], "ct-ok:latest", "\"w-utf8\"", NULL,
        "echo '{\"success\":true,\"grade\":1,\"comments\":[\"tr\xc3\xa8s bien \xe2\x9c\x93\"]}'",
        NULL, true);
    for (size_t i = 0; i < N; i++)
        publish_running(&jobs[i], false);
    json_t *results[N];
    collect(jobs, N, results);
    assert_error(results[INVALID_STDERR], "no response found");
    assert_true(error_contains(results[INVALID_STDERR], "bad \xef\xbf\xbd\xef\xbf\xbd bytes"));
    assert_error(results[CUT_STDERR], "no response found");
    assert_true(error_contains(results[CUT_STDERR], "\xc3\xa9\xc3\xa9x"));
    assert_error(results[NUL_STDERR], "no response found");
    assert_true(error_contains(results[NUL_STDERR], "nul \xef\xbf\xbd byte"));
    assert_true(json_is_true(json_object_get(results[BINARY_STDOUT], "error")));
    /* Docker's json-file log (Go's JSON) already replaced the invalid bytes with U+FFFD. */
    assert_success(results[BINARY_IN_BLOCK],
                   "{\"success\":true,\"grade\":1,\"comments\":[\"\xef\xbf\xbd\xef\xbf\xbd\"]}");
    assert_success(
        results[UTF8_OK],
        "{\"success\":true,\"grade\":1,\"comments\":[\"tr\xc3\xa8s bien \xe2\x9c\x93\"]}");
    assert_int_equal(count_log(&run, "infrastructure fault", NULL), 0);
    assert_all_clean();
    free_results(results, N);
    for (size_t i = 0; i < N; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* ---- crash and restart ---------------------------------------------------------------------- */

static void test_sigkill_and_restart(void **state)
{
    (void)state;
    struct ct_daemon run;
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

/* Whether a process whose command line is exactly argv (NUL-separated, n bytes) exists. */
static bool process_exists(const char *argv, size_t n)
{
    DIR *d = opendir("/proc");
    if (!d)
        fail_msg("cannot read /proc");
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[64];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t got = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        found = got == n && memcmp(buf, argv, n) == 0;
    }
    closedir(d);
    return found;
}

/* The sleeper's sleep, by its unusual time limit, unique to this process (another test run
 * may share the machine): "sleep\03.<pid>" (see test_docker_restart). */
static char restart_sleep[32];
static char restart_sleep_argv[48];
static size_t restart_sleep_len;

static bool sleeper_running(void *ud)
{
    (void)ud;
    return process_exists(restart_sleep_argv, restart_sleep_len);
}

static bool sleeper_gone(void *ud)
{
    return !sleeper_running(ud);
}

/* The engine restarts while corrections run: one exits while the engine is down (and the
 * engine loses what it printed), one is started after it is back. Every job completes once,
 * with its own result: the one whose output was lost is run again. */
static void test_docker_restart(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_completer(&run, "docker-restart", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job jobs[2];
    snprintf(restart_sleep, sizeof(restart_sleep), "3.%06d", (int)(getpid() % 1000000));
    int n =
        snprintf(restart_sleep_argv, sizeof(restart_sleep_argv), "sleep%c%s", '\0', restart_sleep);
    restart_sleep_len = (size_t)n + 1; /* with the final NUL */
    char env_sleep[48];
    snprintf(env_sleep, sizeof(env_sleep), "SLEEP=%s", restart_sleep);
    make_job(&jobs[0], "ct-sleeper:latest", "\"w-restart-a\"", (const char *[]){env_sleep, NULL},
             NULL, NULL, true);
    make_job(&jobs[1], "ct-ok:latest", "\"w-restart-b\"", NULL, NULL, NULL, false);
    publish_running(&jobs[0], false);
    publish_running(&jobs[1], false);
    wait_log(&run, "running message received", jobs[0].cid, 1);
    wait_log(&run, "running message received", jobs[1].cid, 1);
    if (!ct_wait_until(sleeper_running, NULL, WAIT_MS))
        fail_msg("the sleeper's sleep %s is not running", restart_sleep);
    assert_int_equal(ct_servers("docker-stop"), 0);
    /* The completer notices (its events stream ends, its lists fail) while the sleeper
     * finishes under the stopped engine (live-restore keeps it running). */
    wait_log(&run, "docker events stream ended", NULL, 1);
    wait_log(&run, "cannot list correction containers", NULL, 1);
    if (!ct_wait_until(sleeper_gone, NULL, WAIT_MS))
        fail_msg("the sleeper's sleep %s does not end", restart_sleep);
    /* It printed its response and exited while the engine was down. */
    assert_int_equal(ct_servers("docker-start"), 0);
    ct_docker_start(jobs[1].cid);
    json_t *results[2];
    collect(jobs, 2, results);
    /* Never "no response found", nor "output lost": the engine's fault is not the job's. */
    assert_success(results[0], SLEPT_RESPONSE);
    assert_success(results[1], OK_RESPONSE);
    int reruns = count_log(&run, "running the correction again", jobs[0].cid);
    print_message("note: the sleeper was run %d more time(s)\n", reruns);
    assert_true(reruns <= 1);
    assert_int_equal(count_log(&run, "running the correction again", jobs[1].cid), 0);
    assert_all_clean();
    free_results(results, 2);
    for (size_t i = 0; i < 2; i++)
        job_free(&jobs[i]);
    stop(&run);
}

/* running_corrections.lost (completer/lost.h): an expired running message whose container is
 * on this engine (this host's completer was away longer than its time limit plus the grace)
 * goes back to the running queue and is finished the usual way; a message dead-lettered for
 * another reason (a quorum queue's delivery limit), or one that cannot be read, is parked in
 * running_corrections.lost.invalid with why. */
static void test_lost_queue(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_completer(&run, "lost", NULL);
    wait_log(&run, "connected to RabbitMQ", NULL, 1);
    struct job job;
    make_job(&job, "ct-ok:latest", "\"w-lost-ours\"", NULL, NULL, NULL, true);
    char *body = running_body(&job, false);
    json_t *expired = json_pack("{s:s,s:s}", "x-first-death-reason", "expired",
                                "x-first-death-queue", "running_corrections");
    struct ct_publish_opts o = {
        .content_type = "application/json", .message_id = job.job_id, .headers = expired};
    ct_amqp_publish_ex("running_corrections.lost", body, strlen(body), &o);
    json_t *r = get_result();
    assert_success(r, OK_RESPONSE);
    json_decref(r);
    wait_log(&run, "a running message of this host expired unclaimed", job.cid, 1);
    assert_all_clean();

    /* returned too often: parked, with where it came from */
    json_t *limit = json_pack("{s:s,s:s}", "x-first-death-reason", "delivery_limit",
                              "x-first-death-queue", "running_corrections");
    o.headers = limit;
    ct_amqp_publish_ex("running_corrections.lost", body, strlen(body), &o);
    struct ct_msg *m = ct_amqp_get("running_corrections.lost.invalid", WAIT_MS);
    assert_non_null(m);
    const char *why = json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
    assert_non_null(why);
    assert_non_null(strstr(why, "delivery_limit"));
    assert_non_null(strstr(why, "running_corrections"));
    assert_string_equal(m->body, body);
    ct_msg_free(m);

    /* expired, but not a running message */
    o.headers = expired;
    ct_amqp_publish_ex("running_corrections.lost", "{\"nope\":1}", 10, &o);
    m = ct_amqp_get("running_corrections.lost.invalid", WAIT_MS);
    assert_non_null(m);
    assert_non_null(json_string_value(json_object_get(m->headers, "x-correctomatic-reason")));
    ct_msg_free(m);
    assert_int_equal(ct_amqp_count("running_corrections.lost"), 0);

    json_decref(expired);
    json_decref(limit);
    free(body);
    job_free(&job);
    stop(&run);
}

static void test_burst_200(void **state)
{
    (void)state;
    enum { N = 200 };
    struct ct_daemon run;
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
        cmocka_unit_test_setup_teardown(test_deadline_from_labels, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_volumes_removed, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_die_during_inspect, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_two_claims_during_inspect, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_stderr_after_response, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_stderr_after_response_with_starter,
                                        ct_reset_pipeline_fixture, ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_result_too_large, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_output_text, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_sigkill_and_restart, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_lost_queue, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_docker_restart, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_burst_200, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    /* CT_TEST_FILTER=test_x* runs only those (while working on one). */
    if (getenv("CT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
