/* The whole pipeline: the three daemons, the real broker, the real engine and a real HTTP
 * receiver, with a mixed batch of jobs. Every job ends in exactly one callback with the
 * expected body (or, without a usable callback, parked with its reason); nothing is left
 * behind: no correction container, no message in the pipeline's queues. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "support.h"

#define LABEL "correctomatic.job_id"

/* A kind of job, how many of it, and what its callback body must be. */
struct kind {
    const char *name;
    const char *image;
    const char *file; /* "GOOD", "SOLUTION", "WRONG" or a path */
    const char *params;
    int count;
    const char *body;         /* the exact body, WID standing for the work_id (or NULL) */
    const char *error_prefix; /* or: success false and the error starts with this */
};

static const struct kind kinds[] = {
    {"ok", "ct-ok", "GOOD", NULL, 30,
     "{\"comments\":[\"well done\"],\"grade\":10,\"success\":true,\"work_id\":\"WID\"}", NULL},
    {"separator", "ct-separator", "GOOD", NULL, 10,
     "{\"comments\":[\"separated\",\"by markers\"],\"grade\":7.5,\"success\":true,\"work_id\":"
     "\"WID\"}",
     NULL},
    {"stderr", "ct-stderr", "GOOD", NULL, 10,
     "{\"comments\":[\"stderr ignored\"],\"grade\":5,\"success\":true,\"work_id\":\"WID\"}", NULL},
    {"fail", "ct-fail", "GOOD", NULL, 10,
     "{\"error\":\"compilation failed\",\"success\":false,\"work_id\":\"WID\"}", NULL},
    {"sum-right", "ct-sumgrader", "SOLUTION", NULL, 6,
     "{\"comments\":[\"sum of 2 and 3: ok\",\"sum of 10 and -4: ok\",\"sum of 0 and 0: ok\"],"
     "\"grade\":10,\"success\":true,\"work_id\":\"WID\"}",
     NULL},
    {"sum-wrong", "ct-sumgrader", "WRONG", "[\"POINTS=9\"]", 5,
     "{\"comments\":[\"sum of 2 and 3: expected 5\",\"sum of 10 and -4: expected 6\",\"sum of 0 "
     "and 0: ok\"],\"grade\":3,\"success\":true,\"work_id\":\"WID\"}",
     NULL},
    {"invalid", "ct-invalid", "GOOD", NULL, 8, NULL, "no response found - "},
    {"timeout", "ct-sleeper", "GOOD", "[\"SLEEP=120\"]", 4, NULL, "time limit exceeded - "},
    {"oom", "ct-memhog", "GOOD", NULL, 4, NULL, "memory limit exceeded - "},
    {"no-image", "ct-no-such-image", "GOOD", NULL, 4, NULL, "image not found - "},
    /* outside EXERCISE_DIR: refused before anything is looked up */
    {"no-file", "ct-ok", "/nonexistent/exercise.txt", NULL, 4, NULL, "file not allowed - "},
};

#define BAD_CALLBACKS 5

struct oom_seen {
    const struct ct_oom_watch *watch;
    const char *label; /* the work_id label's value */
};

static bool oom_seen(void *ud)
{
    const struct oom_seen *s = ud;
    return ct_oom_watch_saw(s->watch, NULL, "correctomatic.work_id", s->label);
}

static void test_mixed_batch(void **state)
{
    (void)state;
    char *good = ct_tmpfile("e2e-good.txt", "anything", 8);
    char *solution = ct_tmpfile("e2e-solution.sh", "echo $(($1 + $2))\n", 18);
    char *wrong = ct_tmpfile("e2e-wrong.sh", "echo $(($1 * $2))\n", 18);

    struct ct_receiver rcv;
    ct_receiver_start(&rcv, "e2e", 0, true);
    char callback[256];
    ct_receiver_url(callback, sizeof(callback), &rcv, "/ok");

    char exdir[600];
    snprintf(exdir, sizeof(exdir), "EXERCISE_DIR=%s", ct_env("CT_TMP"));
    struct ct_daemon starter, completer, notifier;
    ct_daemon_start(&starter, "starter", "e2e",
                    (const char *const[]){exdir, "MAX_RUNNING=8", "CORRECTION_MEMORY=16m",
                                          "RECONCILE_INTERVAL=1s", "CORRECTION_TIMEOUT=6s", NULL});
    /* The time limit is the starter's (its deadline label, from the container's creation); the
     * completer's CORRECTION_TIMEOUT only applies to containers without the label. */
    ct_daemon_start(&completer, "completer", "e2e",
                    (const char *const[]){"CORRECTION_TIMEOUT=6s", "RECONCILE_INTERVAL=2s", NULL});
    ct_daemon_start(&notifier, "notifier", "e2e",
                    (const char *const[]){"CALLBACK_RETRY_DELAYS=1s,2s", NULL});

    struct ct_oom_watch oom;
    ct_oom_watch_start(&oom);
    int total = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (int i = 0; i < kinds[k].count; i++) {
            const char *file = kinds[k].file;
            if (strcmp(file, "GOOD") == 0)
                file = good;
            else if (strcmp(file, "SOLUTION") == 0)
                file = solution;
            else if (strcmp(file, "WRONG") == 0)
                file = wrong;
            char body[2048], wid[64];
            snprintf(wid, sizeof(wid), "e2e-%s-%d", kinds[k].name, i);
            snprintf(body, sizeof(body),
                     "{\"work_id\":\"%s\",\"image\":\"%s:latest\",\"file\":\"%s\",\"callback\":"
                     "\"%s\"%s%s}",
                     wid, kinds[k].image, file, callback, kinds[k].params ? ",\"params\":" : "",
                     kinds[k].params ? kinds[k].params : "");
            ct_amqp_publish("pending_corrections", body, NULL);
            total++;
        }
    }
    /* Jobs without a usable callback: no callback can be made, they are parked. */
    for (int i = 0; i < BAD_CALLBACKS; i++) {
        char body[1024];
        snprintf(body, sizeof(body),
                 "{\"work_id\":\"e2e-badcb-%d\",\"image\":\"ct-ok:latest\",\"file\":\"%s\","
                 "\"callback\":\"ftp://127.0.0.1/x\"}",
                 i, good);
        ct_amqp_publish("pending_corrections", body, NULL);
    }
    assert_true(total >= 95 && total + BAD_CALLBACKS >= 100);
    int64_t t0 = ct_now_ms();
    /* as long as callbacks keep coming: a loaded 2-core machine runs a few jobs a minute */
    ct_receiver_wait_progress(&rcv, "/ok", 200, total, 60000, 900000);
    printf("e2e: %d callbacks in %.1f s\n", total, (double)(ct_now_ms() - t0) / 1000.0);

    /* Exactly one callback per job, each with the expected body. */
    json_t *reqs = ct_receiver_requests(&rcv);
    json_t *seen = json_object();
    size_t i;
    json_t *q;
    json_array_foreach(reqs, i, q)
    {
        const char *body = json_string_value(json_object_get(q, "body"));
        json_t *b = ct_json(body);
        const char *wid = json_string_value(json_object_get(b, "work_id"));
        if (!wid)
            fail_msg("callback without work_id: %s", body);
        if (json_object_get(seen, wid))
            fail_msg("two callbacks for %s", wid);
        json_object_set_new(seen, wid, json_true());
        const struct kind *kind = NULL;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            size_t n = strlen(kinds[k].name);
            if (strncmp(wid + 4, kinds[k].name, n) == 0 && wid[4 + n] == '-' &&
                (!kind || n > strlen(kind->name)))
                kind = &kinds[k];
        }
        if (!kind)
            fail_msg("callback for an unknown job %s", wid);
        if (kind->body) {
            char want[2048];
            const char *at = strstr(kind->body, "WID");
            assert_non_null(at);
            snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - kind->body), kind->body, wid,
                     at + 3);
            if (strcmp(body, want) != 0)
                fail_msg("%s: body\n  %s\nexpected\n  %s", wid, body, want);
        } else {
            const char *err = json_string_value(json_object_get(b, "error"));
            char label[80];
            snprintf(label, sizeof(label), "\"%s\"", wid);
            if (err && strcmp(kind->error_prefix, "memory limit exceeded - ") == 0 &&
                strncmp(err, "container killed - ", 19) == 0 &&
                strstr(err, "reaches its memory limit") &&
                !ct_oom_watch_saw(&oom, NULL, "correctomatic.work_id", label)) {
                /* the engine lost this OOM kill: a SIGKILL is all it reported, and all the
                 * pipeline can say is that memory may be why */
                printf("e2e: %s: the engine reported no OOM kill: %s\n", wid, err);
            } else if (err && strcmp(kind->error_prefix, "memory limit exceeded - ") == 0 &&
                       strncmp(err, "memory limit exceeded - ", 24) == 0) {
                /* and the engine did report this one (the watch itself is checked) */
                assert_true(ct_wait_until(oom_seen, &(struct oom_seen){&oom, label}, 30000));
            } else if (!json_is_false(json_object_get(b, "success")) || !err ||
                       strncmp(err, kind->error_prefix, strlen(kind->error_prefix)) != 0)
                fail_msg("%s: body %s, expected an error starting '%s'", wid, body,
                         kind->error_prefix);
        }
        json_decref(b);
    }
    assert_int_equal((int)json_object_size(seen), total);
    json_decref(seen);
    ct_oom_watch_stop(&oom);
    json_decref(reqs);

    /* The parked ones, with their reason. */
    for (int k = 0; k < BAD_CALLBACKS; k++) {
        struct ct_msg *m = ct_amqp_get("pending_corrections.invalid", 10000);
        assert_non_null(m);
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        assert_non_null(reason);
        assert_non_null(strstr(reason, "invalid callback"));
        ct_msg_free(m);
    }

    /* Nothing left behind. */
    assert_int_equal(ct_daemon_stop(&notifier), 0);
    assert_int_equal(ct_daemon_stop(&completer), 0);
    assert_int_equal(ct_daemon_stop(&starter), 0);
    json_t *left = ct_docker_list(LABEL);
    if (json_array_size(left) != 0)
        fail_msg("%zu correction containers left behind", json_array_size(left));
    json_decref(left);
    static const char *const queues[] = {"pending_corrections",  "pending_corrections.invalid",
                                         "running_corrections",  "running_corrections.invalid",
                                         "finished_corrections", "failed_callbacks"};
    for (size_t k = 0; k < sizeof(queues) / sizeof(queues[0]); k++) {
        int n = ct_amqp_count(queues[k]);
        if (n != 0)
            fail_msg("%d message(s) left in %s", n, queues[k]);
    }
    /* and no callback came twice after the daemons stopped */
    assert_int_equal(ct_receiver_count(&rcv, NULL, -1), total);
    ct_receiver_stop(&rcv);
    free(good);
    free(solution);
    free(wrong);
}

/* Several Docker hosts: each host's starter and completer share a RUNNING_QUEUE of their own,
 * so a completer only ever sees its own host's containers. */
static void test_running_queue_per_host(void **state)
{
    (void)state;
    const char *q = "running_corrections.host-a";
    ct_amqp_delete(q);
    ct_amqp_delete("running_corrections.host-a.invalid");
    char *good = ct_tmpfile("e2e-host.txt", "x", 1);
    struct ct_receiver rcv;
    ct_receiver_start(&rcv, "e2e-host", 0, true);
    char callback[256], body[1024];
    ct_receiver_url(callback, sizeof(callback), &rcv, "/ok");

    struct ct_daemon starter, completer;
    ct_daemon_start(&starter, "starter", "e2e-host",
                    (const char *const[]){"RUNNING_QUEUE=running_corrections.host-a",
                                          "DONT_START_CONTAINER=true", NULL});
    ct_daemon_wait_log(&starter, "consuming pending jobs", 1, 30000); /* queues declared */
    snprintf(body, sizeof(body),
             "{\"work_id\":\"host-a-1\",\"image\":\"ct-ok:latest\",\"file\":\"%s\","
             "\"callback\":\"%s\"}",
             good, callback);
    ct_amqp_publish("pending_corrections", body, NULL);
    /* announced on the host's own queue, not on the shared one */
    struct ct_msg *m = ct_amqp_get(q, 30000);
    assert_non_null(m);
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    json_t *running = ct_json(m->body);
    ct_amqp_publish(q, m->body, m->message_id); /* back, for the completer */
    ct_msg_free(m);

    struct ct_daemon notifier;
    ct_daemon_start(&completer, "completer", "e2e-host",
                    (const char *const[]){"RUNNING_QUEUE=running_corrections.host-a", NULL});
    ct_daemon_start(&notifier, "notifier", "e2e-host", NULL);
    ct_daemon_wait_log(&completer, "connected to RabbitMQ", 1, 30000);
    ct_docker_start(json_string_value(json_object_get(running, "container_id")));
    ct_receiver_wait(&rcv, "/ok", 200, 1, 60000);
    json_t *reqs = ct_receiver_requests(&rcv);
    assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "body")),
                        "{\"comments\":[\"well done\"],\"grade\":10,\"success\":true,"
                        "\"work_id\":\"host-a-1\"}");
    json_decref(reqs);
    json_decref(running);
    assert_int_equal(ct_daemon_stop(&notifier), 0);
    assert_int_equal(ct_daemon_stop(&completer), 0);
    assert_int_equal(ct_daemon_stop(&starter), 0);
    assert_int_equal(ct_amqp_count(q), 0);

    /* a bad queue name stops the daemon at start, naming the variable */
    struct ct_daemon bad;
    ct_daemon_start(&bad, "completer", "e2e-badq",
                    (const char *const[]){"RUNNING_QUEUE=bad name", NULL});
    int status = -1;
    assert_int_equal(ct_wait_exit(bad.pid, 10000, &status), 0);
    ct_untrack(bad.pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    assert_true(ct_file_count(bad.log, "RUNNING_QUEUE") > 0);

    ct_receiver_stop(&rcv);
    ct_amqp_delete(q);
    ct_amqp_delete("running_corrections.host-a.invalid");
    free(good);
}

/* correctomatic-submit: a job validated and published, its callback received by --wait. */
static void test_submit_round_trip(void **state)
{
    (void)state;
    char exdir[600], uploads[600], spec[1300], out[600];
    const char *tmp = ct_env("CT_TMP");
    snprintf(exdir, sizeof(exdir), "EXERCISE_DIR=%s", tmp);
    snprintf(uploads, sizeof(uploads), "%s/uploads", tmp);
    mkdir(uploads, 0755);
    snprintf(spec, sizeof(spec), "%s:%s", uploads, uploads);
    char *solution = ct_tmpfile("submit-solution.sh", "echo $(($1 + $2))\n", 18);

    struct ct_daemon starter, completer, notifier;
    ct_daemon_start(&starter, "starter", "submit", (const char *const[]){exdir, NULL});
    ct_daemon_start(&completer, "completer", "submit", NULL);
    ct_daemon_start(&notifier, "notifier", "submit", NULL);
    ct_daemon_wait_log(&starter, "consuming pending jobs", 1, 30000);

    /* --uploads copies the file into the shared folder; --wait listens for the callback */
    char env_host[300], env_port[64];
    snprintf(env_host, sizeof(env_host), "RABBITMQ_HOST=%s", ct_env("CT_RABBITMQ_HOST"));
    snprintf(env_port, sizeof(env_port), "RABBITMQ_PORT=%s", ct_env("CT_RABBITMQ_PORT"));
    char *envp[] = {env_host, env_port, NULL};
    char path[512];
    snprintf(path, sizeof(path), "%s/correctomatic-submit", CT_BIN_DIR);
    snprintf(out, sizeof(out), "%s/submit-out.log", tmp);
    unlink(out);
    char *argv[] = {path,        "--image", "ct-sumgrader:latest", "--file",   solution,
                    "--uploads", spec,      "--work-id",           "submit-1", "--param",
                    "POINTS=20", "--wait",  "--timeout",           "60",       NULL};
    pid_t pid = ct_spawn(path, argv, envp, out);
    int status = -1;
    assert_int_equal(ct_wait_exit(pid, 90000, &status), 0);
    char *text = ct_read_file(out, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("correctomatic-submit ended with 0x%x:\n%s", status, text ? text : "");
    assert_non_null(strstr(text, "published to pending_corrections"));
    assert_non_null(strstr(text, "callback received"));
    assert_non_null(strstr(text, "\"grade\": 20"));
    assert_non_null(strstr(text, "\"work_id\": \"submit-1\""));
    free(text);

    /* a job the starter would refuse is refused before publishing (exit 2) */
    snprintf(out, sizeof(out), "%s/submit-bad.log", tmp);
    char *bad[] = {path,     "--image",    "ct-ok:latest", "--file",
                   solution, "--callback", "ftp://x/",     NULL};
    pid = ct_spawn(path, bad, envp, out);
    assert_int_equal(ct_wait_exit(pid, 30000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    assert_true(ct_file_count(out, "invalid callback") > 0);
    assert_int_equal(ct_amqp_count("pending_corrections"), 0);

    assert_int_equal(ct_daemon_stop(&notifier), 0);
    assert_int_equal(ct_daemon_stop(&completer), 0);
    assert_int_equal(ct_daemon_stop(&starter), 0);
    free(solution);
}

/* correctomatic-status --json: its exit status, and the queue's object in *queue (NULL when not
 * listed; the caller decrefs). */
static int status_json(const char *queue, json_t **ret)
{
    char env_host[300], env_port[64], out[600], path[512];
    snprintf(env_host, sizeof(env_host), "RABBITMQ_HOST=%s", ct_env("CT_RABBITMQ_HOST"));
    snprintf(env_port, sizeof(env_port), "RABBITMQ_PORT=%s", ct_env("CT_RABBITMQ_PORT"));
    char *envp[] = {env_host, env_port, NULL};
    snprintf(path, sizeof(path), "%s/correctomatic-status", CT_BIN_DIR);
    snprintf(out, sizeof(out), "%s/status-out.json", ct_env("CT_TMP"));
    unlink(out);
    char *argv[] = {path, "--json", NULL};
    pid_t pid = ct_spawn(path, argv, envp, out);
    int status = -1;
    assert_int_equal(ct_wait_exit(pid, 30000, &status), 0);
    assert_true(WIFEXITED(status));
    json_t *root = json_load_file(out, 0, NULL);
    assert_non_null(root);
    *ret = NULL;
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(root, "queues"), i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "name")), queue) == 0)
            *ret = json_incref(q);
    }
    assert_int_equal(json_is_true(json_object_get(root, "healthy")), WEXITSTATUS(status) == 0);
    json_decref(root);
    return WEXITSTATUS(status);
}

struct status_want {
    const char *queue;
    int code;
};

static bool status_is(void *ud)
{
    const struct status_want *w = ud;
    json_t *q = NULL;
    int code = status_json(w->queue, &q);
    json_decref(q);
    return code == w->code;
}

/* correctomatic-status with STATUS_DAEMONS=daemons (NULL: unset) and the extra arguments
 * (NULL-terminated; NULL: none), its output into out: its exit status. */
static int status_run(const char *daemons, const char *const *args, const char *out)
{
    char env_host[300], env_port[64], env_daemons[1024], path[512];
    snprintf(env_host, sizeof(env_host), "RABBITMQ_HOST=%s", ct_env("CT_RABBITMQ_HOST"));
    snprintf(env_port, sizeof(env_port), "RABBITMQ_PORT=%s", ct_env("CT_RABBITMQ_PORT"));
    snprintf(env_daemons, sizeof(env_daemons), "STATUS_DAEMONS=%s", daemons ? daemons : "");
    char *envp[] = {env_host, env_port, env_daemons, NULL};
    snprintf(path, sizeof(path), "%s/correctomatic-status", CT_BIN_DIR);
    char *argv[16] = {path};
    size_t n = 1;
    for (size_t i = 0; args && args[i]; i++) {
        assert_true(n + 1 < sizeof(argv) / sizeof(argv[0]));
        argv[n++] = (char *)args[i];
    }
    unlink(out);
    pid_t pid = ct_spawn(path, argv, envp, out);
    int status = -1;
    assert_int_equal(ct_wait_exit(pid, 30000, &status), 0);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The same with --json first: the whole object (the caller decrefs), the exit status in
 * *code. */
static json_t *status_daemons_json(const char *daemons, const char *const *args, int *code)
{
    char out[600];
    const char *argv[16] = {"--json"};
    size_t n = 1;
    for (size_t i = 0; args && args[i]; i++) {
        assert_true(n + 1 < sizeof(argv) / sizeof(argv[0]));
        argv[n++] = args[i];
    }
    snprintf(out, sizeof(out), "%s/status-daemons.json", ct_env("CT_TMP"));
    *code = status_run(daemons, argv, out);
    json_t *root = json_load_file(out, 0, NULL);
    if (!root) {
        char *text = ct_read_file(out, NULL);
        fail_msg("correctomatic-status --json (exit %d) wrote:\n%s", *code, text ? text : "");
    }
    assert_int_equal(json_is_true(json_object_get(root, "healthy")), *code == 0);
    return root;
}

/* The daemon shown with this address (borrowed), or NULL. */
static json_t *status_daemon(json_t *root, const char *address)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(root, "daemons"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "address")), address) == 0)
            return d;
    }
    return NULL;
}

struct daemons_want {
    const char *daemons;
    const char *const *args;
    int code;
    size_t ready; /* daemons shown alive and ready */
};

static bool daemons_are(void *ud)
{
    const struct daemons_want *w = ud;
    int code;
    json_t *root = status_daemons_json(w->daemons, w->args, &code);
    size_t i, ready = 0;
    json_t *d;
    json_array_foreach(json_object_get(root, "daemons"), i, d)
    {
        if (json_is_true(json_object_get(d, "alive")) && json_is_true(json_object_get(d, "ready")))
            ready++;
    }
    json_decref(root);
    return code == w->code && ready == w->ready;
}

static long json_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is not an integer", key);
    return (long)json_integer_value(v);
}

/* correctomatic-status: healthy with the three daemons consuming; a stage queue without its
 * consumer, or a parked message, needs attention (exit 1); no broker: exit 2. With the daemons'
 * metrics addresses (STATUS_DAEMONS and --daemon), each daemon alive and ready with its
 * figures; a daemon stopped, or nothing at an address, needs attention; a bad address: exit 2. */
static void test_status(void **state)
{
    (void)state;
    char exdir[600];
    snprintf(exdir, sizeof(exdir), "EXERCISE_DIR=%s", ct_env("CT_TMP"));
    int ports[3] = {ct_free_port(), ct_free_port(), ct_free_port()};
    char listen[3][64], addr[3][32];
    for (int k = 0; k < 3; k++) {
        snprintf(listen[k], sizeof(listen[k]), "METRICS_LISTEN=127.0.0.1:%d", ports[k]);
        snprintf(addr[k], sizeof(addr[k]), "127.0.0.1:%d", ports[k]);
    }
    struct ct_daemon starter, completer, notifier;
    ct_daemon_start(&starter, "starter", "status", (const char *const[]){exdir, listen[0], NULL});
    ct_daemon_start(&completer, "completer", "status", (const char *const[]){listen[1], NULL});
    ct_daemon_start(&notifier, "notifier", "status", (const char *const[]){listen[2], NULL});
    struct status_want healthy = {"pending_corrections", 0};
    assert_true(ct_wait_until(status_is, &healthy, 60000));
    json_t *q = NULL;
    assert_int_equal(status_json("finished_corrections", &q), 0);
    assert_non_null(q);
    assert_true(json_integer_value(json_object_get(q, "consumers")) >= 1);
    assert_string_equal(json_string_value(json_object_get(q, "consumer")), "notifier");
    json_decref(q);
    assert_int_equal(status_json("finished_corrections.retry.5000ms", &q), 0);
    assert_non_null(q);
    assert_string_equal(json_string_value(json_object_get(q, "role")), "retry");
    json_decref(q);

    /* the daemons, from STATUS_DAEMONS and --daemon together: alive, ready, their figures */
    char two[128];
    snprintf(two, sizeof(two), "%s, %s", addr[0], addr[1]);
    const char *const third[] = {"--daemon", addr[2], NULL};
    struct daemons_want all_ready = {two, third, 0, 3};
    assert_true(ct_wait_until(daemons_are, &all_ready, 60000));
    int code = -1;
    json_t *root = status_daemons_json(two, third, &code);
    assert_int_equal(code, 0);
    assert_int_equal(json_array_size(json_object_get(root, "daemons")), 3);
    static const char *const names[] = {"correctomatic-starter", "correctomatic-completer",
                                        "correctomatic-notifier"};
    for (int k = 0; k < 3; k++) {
        json_t *d = json_array_get(json_object_get(root, "daemons"), (size_t)k);
        assert_string_equal(json_string_value(json_object_get(d, "address")), addr[k]);
        assert_true(json_is_true(json_object_get(d, "alive")));
        assert_true(json_is_true(json_object_get(d, "ready")));
        assert_null(json_object_get(d, "reason"));
        assert_string_equal(json_string_value(json_object_get(d, "daemon")), names[k]);
        assert_string_equal(json_string_value(json_object_get(d, "version")), CT_VERSION);
        assert_true(json_int(d, "uptime_s") >= 0 && json_int(d, "uptime_s") < 600);
        assert_true(json_int(d, "memory_bytes") > 0);
        assert_int_equal(json_int(d, "taken"), 0);
    }
    json_t *d = json_array_get(json_object_get(root, "daemons"), 0); /* the starter */
    assert_int_equal(json_int(d, "running"), 0);
    assert_true(json_int(d, "max_running") >= 1);
    assert_int_equal(json_int(d, "started"), 0);
    json_t *finished = json_object_get(d, "finished");
    assert_int_equal(json_int(finished, "graded"), 0);
    assert_int_equal(json_int(finished, "error"), 0);
    assert_int_equal(json_int(finished, "parked"), 0);
    assert_true(json_is_object(json_object_get(finished, "by_reason")));
    assert_null(json_object_get(d, "tracked"));
    d = json_array_get(json_object_get(root, "daemons"), 1); /* the completer */
    assert_int_equal(json_int(d, "tracked"), 0);
    assert_int_equal(json_int(json_object_get(d, "finished"), "graded"), 0);
    assert_null(json_object_get(d, "running"));
    d = json_array_get(json_object_get(root, "daemons"), 2); /* the notifier */
    assert_int_equal(json_int(d, "in_flight"), 0);
    assert_int_equal(json_int(d, "delivered"), 0);
    assert_int_equal(json_int(d, "parked"), 0);
    json_decref(root);
    /* the same as a table */
    char out[600];
    snprintf(out, sizeof(out), "%s/status-table.txt", ct_env("CT_TMP"));
    assert_int_equal(status_run(two, third, out), 0);
    assert_int_equal(ct_file_count(out, addr[2]), 1);
    assert_int_equal(ct_file_count(out, "running 0/"), 1);
    assert_int_equal(ct_file_count(out, "needs attention"), 0);

    /* the notifier gone: its queue has no consumer, its address does not answer */
    assert_int_equal(ct_daemon_stop(&notifier), 0);
    struct status_want attention = {"finished_corrections", 1};
    assert_true(ct_wait_until(status_is, &attention, 30000));
    assert_int_equal(status_json("finished_corrections", &q), 1);
    assert_string_equal(json_string_value(json_object_get(q, "problem")), "no consumer");
    json_decref(q);
    root = status_daemons_json(two, third, &code);
    assert_int_equal(code, 1);
    d = status_daemon(root, addr[2]);
    assert_non_null(d);
    assert_true(json_is_false(json_object_get(d, "alive")));
    assert_true(json_is_false(json_object_get(d, "ready")));
    assert_non_null(strstr(json_string_value(json_object_get(d, "reason")), "unreachable"));
    assert_true(json_is_true(json_object_get(status_daemon(root, addr[0]), "ready")));
    assert_true(json_is_true(json_object_get(status_daemon(root, addr[1]), "ready")));
    json_decref(root);
    ct_daemon_start(&notifier, "notifier", "status-2", (const char *const[]){listen[2], NULL});
    assert_true(ct_wait_until(status_is, &healthy, 60000));
    assert_true(ct_wait_until(daemons_are, &all_ready, 60000));

    /* nothing at a daemon's address: not alive, exit 1 */
    char nobody[32];
    snprintf(nobody, sizeof(nobody), "127.0.0.1:%d", ct_free_port());
    const char *const with_nobody[] = {"--daemon", addr[2], "--daemon", nobody, NULL};
    root = status_daemons_json(two, with_nobody, &code);
    assert_int_equal(code, 1);
    assert_int_equal(json_array_size(json_object_get(root, "daemons")), 4);
    d = status_daemon(root, nobody);
    assert_non_null(d);
    assert_true(json_is_false(json_object_get(d, "alive")));
    assert_null(json_object_get(d, "daemon"));
    for (int k = 0; k < 3; k++)
        assert_true(json_is_true(json_object_get(status_daemon(root, addr[k]), "ready")));
    json_decref(root);

    /* a bad address: exit 2, naming where it came from */
    snprintf(out, sizeof(out), "%s/status-bad-daemons.log", ct_env("CT_TMP"));
    assert_int_equal(status_run("starter", NULL, out), 2);
    assert_true(ct_file_count(out, "STATUS_DAEMONS") > 0);
    assert_int_equal(status_run(NULL, (const char *const[]){"--daemon", "h:0", NULL}, out), 2);
    assert_true(ct_file_count(out, "--daemon") > 0);

    /* a message parked */
    ct_amqp_publish("pending_corrections.invalid", "{}", NULL);
    assert_true(ct_wait_until(status_is, &attention, 30000));
    assert_int_equal(status_json("pending_corrections.invalid", &q), 1);
    assert_string_equal(json_string_value(json_object_get(q, "problem")), "messages parked");
    assert_int_equal(json_integer_value(json_object_get(q, "ready")), 1);
    json_decref(q);
    ct_amqp_purge("pending_corrections.invalid");

    assert_int_equal(ct_daemon_stop(&notifier), 0);
    assert_int_equal(ct_daemon_stop(&completer), 0);
    assert_int_equal(ct_daemon_stop(&starter), 0);

    /* no broker there: exit 2 */
    char path[512];
    snprintf(path, sizeof(path), "%s/correctomatic-status", CT_BIN_DIR);
    snprintf(out, sizeof(out), "%s/status-nobroker.log", ct_env("CT_TMP"));
    char *envp[] = {"RABBITMQ_HOST=127.0.0.1", "RABBITMQ_PORT=1", NULL};
    char *argv[] = {path, NULL};
    int st = -1;
    assert_int_equal(ct_wait_exit(ct_spawn(path, argv, envp, out), 30000, &st), 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    assert_true(ct_file_count(out, "cannot connect to RabbitMQ") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mixed_batch, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_running_queue_per_host, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_submit_round_trip, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_status, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
