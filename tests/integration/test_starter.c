/* The starter against the real broker and the real engine. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "support.h"

#define STARTER CT_BIN_DIR "/correctomatic-starter"
#define LABEL "correctomatic.job_id"
#define WAIT_MS 30000

/* Starts the starter with the test servers, short retry delays and extra "NAME=VALUE"
 * settings. */
static void start_starter(struct ct_daemon *run, const char *name, const char *const *extra)
{
    const char *env[32] = {"RETRY_MAX=2s", "RECONCILE_INTERVAL=1s"};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    ct_daemon_start(run, "starter", name, env);
}

static int stop_starter(struct ct_daemon *run)
{
    return ct_daemon_stop(run);
}

static void wait_log(struct ct_daemon *run, const char *needle, int count)
{
    ct_daemon_wait_log(run, needle, count, WAIT_MS);
}

static char *exercise(const char *name, const char *content)
{
    return ct_tmpfile(name, content, strlen(content));
}

static void publish_job(const char *work_id, const char *image, const char *file,
                        const char *callback, const char *params_json, const char *message_id)
{
    json_t *o = json_object();
    if (work_id)
        json_object_set_new(o, "work_id", json_string(work_id));
    json_object_set_new(o, "image", json_string(image));
    json_object_set_new(o, "file", json_string(file));
    if (callback)
        json_object_set_new(o, "callback", json_string(callback));
    if (params_json)
        json_object_set_new(o, "params", ct_json(params_json));
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ct_amqp_publish("pending_corrections", body, message_id);
    free(body);
}

static json_t *get_json(const char *queue)
{
    struct ct_msg *m = ct_amqp_get(queue, WAIT_MS);
    if (!m)
        fail_msg("no message on %s", queue);
    json_t *j = ct_json(m->body);
    assert_string_equal(m->content_type, "application/json");
    assert_int_equal(m->delivery_mode, 2);
    ct_msg_free(m);
    return j;
}

static size_t count_containers(void)
{
    json_t *l = ct_docker_list(LABEL);
    size_t n = json_array_size(l);
    json_decref(l);
    return n;
}

static bool json_array_has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (json_is_string(v) &&
                                    strcmp(json_string_value(v), s) == 0) return true;
    return false;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_happy_path(void **state)
{
    (void)state;
    struct ct_daemon run;
    const char *content = "print('hello')\n\x01\xff binary too";
    char *file = exercise("happy.py", content);
    start_starter(&run, "happy",
                  (const char *[]){"CORRECTION_MEMORY=64m", "CORRECTION_CPUS=0.5",
                                   "CORRECTION_PIDS=64", "SLEEP=0", NULL});
    publish_job("w-happy", "ct-sleeper:latest", file, "http://127.0.0.1:9/cb",
                "[\"EXERCISE=6\",\"EXPR=a=b\",\"SLEEP=60\"]", NULL);
    json_t *running = get_json("running_corrections");
    const char *cid = json_string_value(json_object_get(running, "container_id"));
    const char *job_id = json_string_value(json_object_get(running, "job_id"));
    assert_non_null(cid);
    assert_int_equal(strlen(cid), 64);
    assert_non_null(job_id);
    assert_string_equal(json_string_value(json_object_get(running, "work_id")), "w-happy");
    assert_string_equal(json_string_value(json_object_get(running, "callback")),
                        "http://127.0.0.1:9/cb");

    json_t *c = ct_docker_inspect(cid);
    assert_non_null(c);
    char name[128];
    snprintf(name, sizeof(name), "/correction-%s", job_id);
    assert_string_equal(json_string_value(json_object_get(c, "Name")), name);
    json_t *st = json_object_get(c, "State");
    assert_true(json_is_true(json_object_get(st, "Running")) ||
                json_integer_value(json_object_get(st, "ExitCode")) == 0);
    json_t *cfg = json_object_get(c, "Config");
    json_t *env = json_object_get(cfg, "Env");
    assert_true(json_array_has(env, "EXERCISE=6"));
    assert_true(json_array_has(env, "EXPR=a=b"));
    json_t *labels = json_object_get(cfg, "Labels");
    assert_string_equal(json_string_value(json_object_get(labels, "correctomatic.job_id")), job_id);
    assert_string_equal(json_string_value(json_object_get(labels, "correctomatic.work_id")),
                        "\"w-happy\"");
    assert_string_equal(json_string_value(json_object_get(labels, "correctomatic.callback")),
                        "http://127.0.0.1:9/cb");
    assert_non_null(json_object_get(labels, "correctomatic.deadline"));
    assert_non_null(json_object_get(labels, "correctomatic.host"));
    json_t *hc = json_object_get(c, "HostConfig");
    assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "none");
    assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 64 * 1024 * 1024);
    assert_int_equal(json_integer_value(json_object_get(hc, "MemorySwap")), 64 * 1024 * 1024);
    assert_int_equal(json_integer_value(json_object_get(hc, "NanoCpus")), 500000000);
    assert_int_equal(json_integer_value(json_object_get(hc, "PidsLimit")), 64);
    assert_true(json_array_has(json_object_get(hc, "CapDrop"), "ALL"));
    assert_true(json_array_has(json_object_get(hc, "SecurityOpt"), "no-new-privileges"));
    assert_false(json_is_true(json_object_get(hc, "AutoRemove")));
    json_t *lc = json_object_get(hc, "LogConfig");
    assert_string_equal(json_string_value(json_object_get(lc, "Type")), "json-file");
    assert_non_null(json_object_get(json_object_get(lc, "Config"), "max-size"));

    size_t len = 0;
    char *got = ct_docker_read_file(cid, "/tmp/exercise", &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(content));
    assert_memory_equal(got, content, len);
    free(got);

    /* The pending message was acked: nothing ready, nothing unacked. */
    assert_int_equal(ct_amqp_count("pending_corrections"), 0);
    assert_int_equal(count_containers(), 1);
    assert_int_equal(access(file, F_OK), 0); /* kept without DELETE_EXERCISE_FILE */
    json_decref(c);
    json_decref(running);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

static void test_dont_start_and_delete_file(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("dont-start.txt", "x");
    start_starter(&run, "dontstart",
                  (const char *[]){"DONT_START_CONTAINER=S", "DELETE_EXERCISE_FILE=yes", NULL});
    publish_job("w-ds", "ct-ok:latest", file, "https://example.invalid/cb", NULL, NULL);
    json_t *running = get_json("running_corrections");
    const char *cid = json_string_value(json_object_get(running, "container_id"));
    json_t *c = ct_docker_inspect(cid);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "State"), "Status")),
                        "created");
    size_t len;
    char *got = ct_docker_read_file(cid, "/tmp/exercise", &len);
    assert_non_null(got);
    assert_int_equal(len, 1);
    free(got);
    wait_log(&run, "container created (not started)", 1);
    assert_int_equal(access(file, F_OK), -1); /* deleted once safely inside */
    json_decref(c);
    json_decref(running);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

static void test_image_without_tmp(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("notmp.txt", "content");
    start_starter(&run, "notmp", (const char *[]){"DONT_START_CONTAINER=true", NULL});
    publish_job("w-notmp", "ct-notmp:latest", file, "http://h/cb", NULL, NULL);
    json_t *running = get_json("running_corrections");
    size_t len;
    char *got = ct_docker_read_file(json_string_value(json_object_get(running, "container_id")),
                                    "/tmp/exercise", &len);
    assert_non_null(got);
    assert_memory_equal(got, "content", 7);
    free(got);
    json_decref(running);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

struct fault_case {
    const char *body;   /* FILE, BIG and LINK stand for test files */
    const char *expect; /* prefix of correction_data or of the reason header */
    bool to_invalid;    /* parked (no usable callback) rather than reported */
};

static void test_job_faults(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *good = exercise("good.txt", "fine");
    char *big = ct_tmpfile("big.txt", NULL, 0);
    FILE *f = fopen(big, "w");
    for (int i = 0; i < 2000; i++)
        fputs("0123456789", f);
    fclose(f);
    char outside[512];
    snprintf(outside, sizeof(outside), "%s/../outside.txt", ct_env("CT_TMP"));
    f = fopen(outside, "w");
    fputs("no", f);
    fclose(f);
    char link[600];
    snprintf(link, sizeof(link), "%s/escape-link", ct_env("CT_TMP"));
    unlink(link);
    assert_int_equal(symlink(outside, link), 0);

    char exdir[600];
    snprintf(exdir, sizeof(exdir), "EXERCISE_DIR=%s", ct_env("CT_TMP"));
    start_starter(
        &run, "faults",
        (const char *[]){exdir, "MAX_EXERCISE_BYTES=10k", "DONT_START_CONTAINER=1", NULL});

    char bodies[10][1200];
    const struct fault_case cases[] = {
        {"this is not json", "invalid message - not valid JSON", true},
        {"{\"work_id\":1,\"image\":\"ct-ok\",\"file\":\"FILE\"}",
         "invalid message - missing field 'callback'", true},
        {"{\"work_id\":2,\"image\":\"ct-ok\",\"file\":\"FILE\",\"callback\":\"ftp://h/x\"}",
         "invalid callback - ", true},
        {"{\"work_id\":3,\"file\":\"FILE\",\"callback\":\"http://h/cb\"}",
         "invalid message - missing field 'image'", false},
        {"{\"work_id\":4,\"image\":\"ct-no-such-image:latest\",\"file\":\"FILE\",\"callback\":"
         "\"http:"
         "//h/cb\"}",
         "image not found - ", false},
        {"{\"work_id\":5,\"image\":\"ct-ok\",\"file\":\"/nonexistent/x.txt\",\"callback\":\"http://"
         "h/cb\"}",
         "file not found - ", false},
        {"{\"work_id\":6,\"image\":\"ct-ok\",\"file\":\"BIG\",\"callback\":\"http://h/cb\"}",
         "file too large - ", false},
        {"{\"work_id\":7,\"image\":\"ct-ok\",\"file\":\"LINK\",\"callback\":\"http://h/cb\"}",
         "file not allowed - ", false},
        {"{\"work_id\":8,\"image\":\"ct-ok\",\"file\":\"FILE\",\"callback\":\"http://h/"
         "cb\",\"params\":[\"1BAD=x\"]}",
         "invalid param - ", false},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    size_t n_invalid = 0, n_finished = 0;
    for (size_t i = 0; i < n; i++) {
        const char *tpl = cases[i].body;
        const char *tok = strstr(tpl, "FILE")   ? "FILE"
                          : strstr(tpl, "BIG")  ? "BIG"
                          : strstr(tpl, "LINK") ? "LINK"
                                                : NULL;
        const char *val = !tok                       ? ""
                          : strcmp(tok, "FILE") == 0 ? good
                          : strcmp(tok, "BIG") == 0  ? big
                                                     : link;
        const char *at = tok ? strstr(tpl, tok) : NULL;
        if (at)
            snprintf(bodies[i], sizeof(bodies[i]), "%.*s%s%s", (int)(at - tpl), tpl, val,
                     at + strlen(tok));
        else
            snprintf(bodies[i], sizeof(bodies[i]), "%s", tpl);
        ct_amqp_publish("pending_corrections", bodies[i], NULL);
        if (cases[i].to_invalid)
            n_invalid++;
        else
            n_finished++;
    }
    /* Every job ends in its place, with its reason. */
    bool seen[16] = {0};
    for (size_t k = 0; k < n_finished; k++) {
        json_t *j = get_json("finished_corrections");
        assert_true(json_is_true(json_object_get(j, "error")));
        assert_string_equal(json_string_value(json_object_get(j, "callback")), "http://h/cb");
        json_int_t w = json_integer_value(json_object_get(j, "work_id"));
        assert_true(w >= 1 && w < (json_int_t)n);
        const char *data = json_string_value(json_object_get(j, "correction_data"));
        assert_non_null(data);
        /* work_id N is cases[N] */
        if (strncmp(data, cases[w].expect, strlen(cases[w].expect)) != 0)
            fail_msg("work %d: got '%s', expected '%s...'", (int)w, data, cases[w].expect);
        assert_false(cases[w].to_invalid);
        seen[w] = true;
        json_decref(j);
    }
    for (size_t k = 0; k < n_invalid; k++) {
        struct ct_msg *m = ct_amqp_get("pending_corrections.invalid", WAIT_MS);
        assert_non_null(m);
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        assert_non_null(reason);
        bool matched = false;
        for (size_t i = 0; i < n; i++) {
            if (cases[i].to_invalid && strcmp(m->body, bodies[i]) == 0) {
                if (strncmp(reason, cases[i].expect, strlen(cases[i].expect)) != 0)
                    fail_msg("case %zu: reason '%s', expected '%s...'", i, reason, cases[i].expect);
                assert_false(seen[i]);
                seen[i] = matched = true;
            }
        }
        if (!matched)
            fail_msg("unexpected parked message: %s", m->body);
        ct_msg_free(m);
    }
    for (size_t i = 0; i < n; i++)
        assert_true(seen[i]);
    /* Nothing else anywhere; no container left behind. */
    assert_int_equal(ct_amqp_count("pending_corrections"), 0);
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    assert_int_equal(count_containers(), 0);
    assert_int_equal(stop_starter(&run), 0);
    unlink(outside);
    unlink(link);
    free(good);
    free(big);
}

static void test_start_failure_removes_container(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("badcmd.txt", "x");
    start_starter(&run, "badcmd", NULL);
    publish_job("w-badcmd", "ct-badcmd:latest", file, "http://h/cb", NULL, NULL);
    json_t *j = get_json("finished_corrections");
    const char *data = json_string_value(json_object_get(j, "correction_data"));
    assert_non_null(data);
    if (strncmp(data, "container start failed - ", 25) != 0)
        fail_msg("unexpected reason: %s", data);
    assert_true(json_is_true(json_object_get(j, "error")));
    assert_string_equal(json_string_value(json_object_get(j, "work_id")), "w-badcmd");
    assert_non_null(json_object_get(j, "job_id"));
    json_decref(j);
    /* the container that could not start is gone, nothing announced as running */
    assert_int_equal(count_containers(), 0);
    assert_null(ct_amqp_get("running_corrections", 500));
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

static void test_redelivery_one_container(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("redeliver.txt", "abc");
    start_starter(&run, "redeliver", (const char *[]){"DONT_START_CONTAINER=true", NULL});
    /* The same message twice, as a redelivery after a crash would bring it. */
    publish_job("w-dup", "ct-ok:latest", file, "http://h/cb", NULL, "msg-0001");
    json_t *r1 = get_json("running_corrections");
    publish_job("w-dup", "ct-ok:latest", file, "http://h/cb", NULL, "msg-0001");
    json_t *r2 = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r1, "container_id")),
                        json_string_value(json_object_get(r2, "container_id")));
    assert_string_equal(json_string_value(json_object_get(r1, "job_id")),
                        json_string_value(json_object_get(r2, "job_id")));
    assert_int_equal(count_containers(), 1);
    /* Identical bodies without a message_id are the same job too. */
    publish_job("w-dup2", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r3 = get_json("running_corrections");
    publish_job("w-dup2", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r4 = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r3, "container_id")),
                        json_string_value(json_object_get(r4, "container_id")));
    assert_int_equal(count_containers(), 2);
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
    json_decref(r4);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

static void test_max_running(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("sleep.txt", "zzz");
    start_starter(&run, "maxrunning", (const char *[]){"MAX_RUNNING=2", NULL});
    char wid[16];
    for (int i = 0; i < 5; i++) {
        snprintf(wid, sizeof(wid), "w-max-%d", i);
        publish_job(wid, "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=300\"]", NULL);
    }
    json_t *a = get_json("running_corrections");
    json_t *b = get_json("running_corrections");
    /* The others wait in the queue, not in the starter. */
    assert_null(ct_amqp_get("running_corrections", 3000));
    assert_int_equal(ct_amqp_count("pending_corrections"), 3);
    assert_int_equal(count_containers(), 2);
    /* A correction ends: one more starts. */
    long status;
    char path[128];
    snprintf(path, sizeof(path), "/containers/%s/kill",
             json_string_value(json_object_get(a, "container_id")));
    json_decref(ct_docker("POST", path, NULL, &status));
    assert_int_equal(status, 204);
    json_t *c = get_json("running_corrections");
    assert_null(ct_amqp_get("running_corrections", 2000));
    assert_int_equal(ct_amqp_count("pending_corrections"), 2);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
    /* Stopped: the waiting jobs are still in the queue. */
    assert_int_equal(ct_amqp_count("pending_corrections"), 2);
    free(file);
}

static void test_docker_outage(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("outage.txt", "abc");
    start_starter(&run, "docker-outage", (const char *[]){"DONT_START_CONTAINER=true", NULL});
    wait_log(&run, "consuming pending jobs", 1);
    assert_int_equal(ct_servers("docker-stop"), 0);
    for (int i = 0; i < 3; i++) {
        char wid[16];
        snprintf(wid, sizeof(wid), "w-out-%d", i);
        publish_job(wid, "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    }
    wait_log(&run, "infrastructure fault, will retry", 1);
    assert_int_equal(ct_servers("docker-start"), 0);
    for (int i = 0; i < 3; i++)
        json_decref(get_json("running_corrections"));
    assert_null(ct_amqp_get("finished_corrections", 500));
    assert_int_equal(count_containers(), 3);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

static void test_broker_restart(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("broker.txt", "abc");
    start_starter(&run, "broker-restart", (const char *[]){"DONT_START_CONTAINER=true", NULL});
    wait_log(&run, "connected to RabbitMQ", 1);
    assert_int_equal(ct_servers("rabbitmq-stop-app"), 0);
    wait_log(&run, "lost RabbitMQ", 1);
    assert_int_equal(ct_servers("rabbitmq-start-app"), 0);
    wait_log(&run, "connected to RabbitMQ", 2);
    publish_job("w-broker", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), "w-broker");
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

static void test_sigterm_in_flight(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("sigterm.txt", "abc");
    start_starter(&run, "sigterm", (const char *[]){"MAX_RUNNING=50", NULL});
    wait_log(&run, "consuming pending jobs", 1);
    const int n = 20;
    for (int i = 0; i < n; i++) {
        char wid[16];
        snprintf(wid, sizeof(wid), "w-term-%d", i);
        publish_job(wid, "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    }
    wait_log(&run, "correction started", 1);
    assert_int_equal(stop_starter(&run), 0);
    /* Nothing lost: every job is either announced as running or still pending. */
    int running = ct_amqp_count("running_corrections");
    int pending = ct_amqp_count("pending_corrections");
    if (running + pending != n)
        fail_msg("running %d + pending %d != %d", running, pending, n);
    /* and every announced container exists */
    assert_int_equal((int)count_containers(), running);
    free(file);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_starter(&run, "badconfig", (const char *[]){"MAX_RUNNING=zero", NULL});
    int status = -1;
    assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ct_untrack(run.pid);
    assert_true(ct_file_count(run.log, "MAX_RUNNING") > 0);

    start_starter(&run, "badconfig2", (const char *[]){"CORRECTION_MEMORY=lots", NULL});
    assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ct_untrack(run.pid);
    assert_true(ct_file_count(run.log, "CORRECTION_MEMORY") > 0);

    char *argv[] = {STARTER, "--help", NULL};
    char log[512];
    snprintf(log, sizeof(log), "%s/starter-help.log", ct_env("CT_TMP"));
    unlink(log);
    pid_t pid = ct_spawn(STARTER, argv, NULL, log);
    assert_int_equal(ct_wait_exit(pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *names[] = {"RABBITMQ_HOST",       "RABBITMQ_PORT",   "RABBITMQ_USER",
                           "RABBITMQ_PASSWORD",   "RABBITMQ_VHOST",  "DOCKER_HOST",
                           "LOG_LEVEL",           "MAX_RUNNING",     "CORRECTION_NETWORK",
                           "CORRECTION_MEMORY",   "CORRECTION_CPUS", "CORRECTION_PIDS",
                           "MAX_EXERCISE_BYTES",  "EXERCISE_DIR",    "DELETE_EXERCISE_FILE",
                           "DONT_START_CONTAINER"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (ct_file_count(log, names[i]) == 0)
            fail_msg("--help does not list %s", names[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_happy_path, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_dont_start_and_delete_file, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_image_without_tmp, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_job_faults, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_start_failure_removes_container,
                                        ct_reset_pipeline_fixture, ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_redelivery_one_container, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_max_running, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_sigterm_in_flight, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_config_errors, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_broker_restart, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_docker_outage, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
