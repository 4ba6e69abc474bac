/* The pipeline on a three-node RabbitMQ cluster with quorum queues (#15): the daemons get every
 * node (RABBITMQ_HOST=host:port,...), and the node they are connected to stops mid-batch and
 * comes back. Every job still ends in its callback, none twice with different results, nothing
 * parked, no message or container left.
 *
 * The cluster is private to this test: tests/cluster.sh starts it in $CT_SERVERS_DIR/cluster
 * (three servers.sh RabbitMQ nodes, joined), and servers.sh stop stops it with the rest should
 * the test die first. The engine is the suite's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "support.h"

#define CLUSTER CT_SOURCE_DIR "/tests/cluster.sh"
#define WAIT_MS 60000

static char cluster_dir[600];

static int cluster(const char *args)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "CT_CLUSTER_DIR='%s' '%s' %s >>'%s/cluster.log' 2>&1", cluster_dir,
             CLUSTER, args, ct_env("CT_TMP"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The env file's "export NAME='value'" lines, into the environment: every one, or (only) the
 * one named only. */
static void load_env(const char *path, const char *only)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("no %s", path);
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char name[128], value[800];
        if (sscanf(line, "export %127[A-Z_0-9]='%799[^']'", name, value) == 2 &&
            (!only || strcmp(name, only) == 0))
            setenv(name, value, 1);
    }
    fclose(f);
}

static char saved_port[32], saved_mgmt[32];

static int group_setup(void **state)
{
    (void)state;
    snprintf(cluster_dir, sizeof(cluster_dir), "%s/cluster", ct_env("CT_SERVERS_DIR"));
    if (cluster("start") != 0) {
        fprintf(stderr, "cluster.sh start failed: see %s/cluster.log\n", ct_env("CT_TMP"));
        return -1;
    }
    char env[700];
    snprintf(env, sizeof(env), "%s/env", cluster_dir);
    load_env(env, NULL);
    /* the test's own AMQP and management calls go to node 3, which stays up */
    snprintf(saved_port, sizeof(saved_port), "%s", ct_env("CT_RABBITMQ_PORT"));
    snprintf(saved_mgmt, sizeof(saved_mgmt), "%s", ct_env("CT_RABBITMQ_MGMT_PORT"));
    setenv("CT_RABBITMQ_PORT", ct_env("CT_CLUSTER_PORT_3"), 1);
    setenv("CT_RABBITMQ_MGMT_PORT", ct_env("CT_CLUSTER_MGMT_PORT_3"), 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    setenv("CT_RABBITMQ_PORT", saved_port, 1);
    setenv("CT_RABBITMQ_MGMT_PORT", saved_mgmt, 1);
    return cluster("stop") == 0 ? 0 : -1;
}

/* How many of the jobs <prefix>0..n-1 have had a callback answered 200 (each counted once);
 * with missing, the first of those that have not, as "<id> <id> ...". */
static int delivered_missing(const struct ct_receiver *rcv, const char *prefix, int n,
                             char *missing, size_t missing_len)
{
    char *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    json_t *reqs = ct_receiver_requests(rcv);
    size_t k;
    json_t *q;
    json_array_foreach(reqs, k, q)
    {
        if (json_integer_value(json_object_get(q, "status")) != 200)
            continue;
        json_t *b = json_loads(json_string_value(json_object_get(q, "body")), 0, NULL);
        const char *wid = json_string_value(json_object_get(b, "work_id"));
        size_t pl = strlen(prefix);
        if (wid && strncmp(wid, prefix, pl) == 0) {
            int i = atoi(wid + pl);
            if (i >= 0 && i < n)
                seen[i] = 1;
        }
        json_decref(b);
    }
    json_decref(reqs);
    int count = 0;
    size_t ml = 0;
    if (missing && missing_len)
        missing[0] = '\0';
    for (int i = 0; i < n; i++) {
        count += seen[i];
        if (!seen[i] && missing && ml + 40 < missing_len)
            ml += (size_t)snprintf(missing + ml, missing_len - ml, " %s%d", prefix, i);
    }
    free(seen);
    return count;
}

static int delivered(const struct ct_receiver *rcv, const char *prefix, int n)
{
    return delivered_missing(rcv, prefix, n, NULL, 0);
}

/* Waits while callbacks keep coming (fails after WAIT_MS without a new job delivered). */
static void wait_all_delivered(const struct ct_receiver *rcv, const char *prefix, int n)
{
    int last = -1;
    int64_t since = ct_now_ms();
    for (;;) {
        int got = delivered(rcv, prefix, n);
        if (got == n)
            return;
        if (got != last) {
            last = got;
            since = ct_now_ms();
        } else if (ct_now_ms() - since > WAIT_MS) {
            char missing[400];
            delivered_missing(rcv, prefix, n, missing, sizeof(missing));
            fail_msg("%d of %d jobs delivered, none more for %d s; missing:%s", got, n,
                     WAIT_MS / 1000, missing);
        }
        usleep(200 * 1000);
    }
}

struct job {
    char work_id[24];
    bool sleeper;
};

static void test_node_lost(void **state)
{
    (void)state;
    enum { OK_JOBS = 45, SLEEPERS = 15, JOBS = OK_JOBS + SLEEPERS };
    struct ct_receiver rcv;
    ct_receiver_start(&rcv, "cluster", 0, true);
    char callback[256];
    ct_receiver_url(callback, sizeof(callback), &rcv, "/ok");
    char hosts[300];
    snprintf(hosts, sizeof(hosts), "RABBITMQ_HOST=%s", ct_env("CT_CLUSTER_HOSTS"));
    /* signed: each callback has its webhook-id, the same for every delivery of a job */
    const char *const env[] = {
        hosts,
        "QUEUE_TYPE=quorum",
        "MAX_RUNNING=6",
        "CORRECTION_TIMEOUT=60s",
        "CALLBACK_SECRET=whsec_Y2x1c3Rlci10ZXN0LXNlY3JldC1rZXktMDEyMzQ1Njc4OQ==",
        NULL};
    static const char *const programs[3] = {"starter", "completer", "notifier"};
    struct ct_daemon d[3];
    for (int k = 0; k < 3; k++)
        ct_daemon_start(&d[k], programs[k], "cluster", env);
    /* all on node 1, the first of the list */
    char on_first[64];
    snprintf(on_first, sizeof(on_first), "node=127.0.0.1:%s", ct_env("CT_CLUSTER_PORT_1"));
    for (int k = 0; k < 3; k++)
        ct_daemon_wait_lines(&d[k], "connected to RabbitMQ", on_first, 1, WAIT_MS);
    ct_daemon_wait_log(&d[0], "consuming pending jobs", 1, WAIT_MS);

    char *file = ct_tmpfile("cluster.txt", "c", 1);
    struct job jobs[JOBS];
    for (int i = 0; i < JOBS; i++) {
        jobs[i].sleeper = i % (JOBS / SLEEPERS) == 0;
        snprintf(jobs[i].work_id, sizeof(jobs[i].work_id), "cluster-%d", i);
        char body[2048];
        snprintf(body, sizeof(body),
                 "{\"work_id\":\"%s\",\"image\":\"%s\",\"file\":\"%s\",\"callback\":\"%s\"%s}",
                 jobs[i].work_id, jobs[i].sleeper ? "ct-sleeper:latest" : "ct-ok:latest", file,
                 callback, jobs[i].sleeper ? ",\"params\":[\"SLEEP=4\"]" : "");
        ct_amqp_publish("pending_corrections", body, NULL);
    }
    /* Mid-batch (some delivered, sleepers running), node 1 stops: each daemon moves on. */
    ct_receiver_wait(&rcv, "/ok", 200, 3, WAIT_MS);
    assert_int_equal(cluster("node-stop 1"), 0);
    int delivered_at_stop = ct_receiver_count(&rcv, "/ok", 200);
    for (int k = 0; k < 3; k++)
        ct_daemon_wait_log(&d[k], "connected to RabbitMQ", 2, WAIT_MS);
    assert_int_equal(cluster("node-start 1"), 0);
    print_message("note: node 1 stopped after %d of %d callbacks\n", delivered_at_stop, JOBS);
    /* Every job's callback (a count would not do: a duplicate may come before the last). */
    wait_all_delivered(&rcv, "cluster-", JOBS);

    /* Every job: its callback, the right one; a duplicate (at least once: a node lost between
     * a POST and its ack) only with the same webhook-id and body. */
    json_t *reqs = ct_receiver_requests(&rcv);
    int dups = 0;
    for (int i = 0; i < JOBS; i++) {
        char want[2048];
        snprintf(want, sizeof(want),
                 "{\"comments\":[\"%s\"],\"grade\":10,\"success\":true,\"work_id\":\"%s\"}",
                 jobs[i].sleeper ? "slept" : "well done", jobs[i].work_id);
        const char *first_id = NULL;
        int n = 0;
        size_t k;
        json_t *q;
        json_array_foreach(reqs, k, q)
        {
            const char *body = json_string_value(json_object_get(q, "body"));
            if (!body || !strstr(body, jobs[i].work_id) ||
                json_integer_value(json_object_get(q, "status")) != 200)
                continue;
            json_t *b = json_loads(body, 0, NULL);
            bool mine =
                b && strcmp(json_string_value(json_object_get(b, "work_id")), jobs[i].work_id) == 0;
            json_decref(b);
            if (!mine)
                continue;
            if (strcmp(body, want) != 0)
                fail_msg("%s: callback %s, expected %s", jobs[i].work_id, body, want);
            const char *id =
                json_string_value(json_object_get(json_object_get(q, "headers"), "webhook-id"));
            assert_non_null(id);
            if (!first_id)
                first_id = id;
            else
                assert_string_equal(id, first_id);
            n++;
        }
        if (n == 0)
            fail_msg("%s: no callback", jobs[i].work_id);
        dups += n - 1;
    }
    json_decref(reqs);
    print_message("note: %d duplicate callback(s), each identical to the first\n", dups);

    /* Nothing left anywhere: no message ready or parked, no container. */
    for (int k = 0; k < 3; k++)
        assert_int_equal(ct_daemon_stop(&d[k]), 0);
    static const char *const queues[] = {"pending_corrections",  "pending_corrections.invalid",
                                         "running_corrections",  "running_corrections.invalid",
                                         "finished_corrections", "finished_corrections.invalid",
                                         "failed_callbacks"};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++)
        if (ct_amqp_count(queues[i]) != 0)
            fail_msg("%s holds %d message(s)", queues[i], ct_amqp_count(queues[i]));
    json_t *left = ct_docker_list("correctomatic.job_id");
    assert_int_equal(json_array_size(left), 0);
    json_decref(left);
    ct_receiver_stop(&rcv);
    free(file);
}

/* ---- two Docker hosts on the cluster, the second over tcp:// with mutual TLS */

static char hostb_dir[700];

static int servers_b(const char *args)
{
    char cmd[1600];
    snprintf(cmd, sizeof(cmd), "CT_DOCKER_TLS=1 CT_SERVERS_DIR='%s' '%s' %s >>'%s/hostb.log' 2>&1",
             hostb_dir, ct_env("CT_SERVERS"), args, ct_env("CT_TMP"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Correction containers running on an engine now (its unix socket). */
static int running_on(const char *docker_host)
{
    char saved[700];
    snprintf(saved, sizeof(saved), "%s", ct_env("CT_DOCKER_HOST"));
    setenv("CT_DOCKER_HOST", docker_host, 1);
    json_t *l = ct_docker_list("correctomatic.job_id");
    setenv("CT_DOCKER_HOST", saved, 1);
    int n = 0;
    size_t i;
    json_t *c;
    json_array_foreach(l, i, c) n +=
        strcmp(json_string_value(json_object_get(c, "State")), "running") == 0;
    json_decref(l);
    return n;
}

struct kind2 {
    const char *image, *params;
    const char *body; /* the callback's body up to the work_id's value */
};
static const struct kind2 kinds2[] = {
    {"ct-ok:latest", NULL,
     "{\"comments\":[\"well done\"],\"grade\":10,\"success\":true,\"work_id\":\""},
    {"ct-sleeper:latest", ",\"params\":[\"SLEEP=1\"]",
     "{\"comments\":[\"slept\"],\"grade\":10,\"success\":true,\"work_id\":\""},
    {"ct-fail:latest", NULL, "{\"error\":\"compilation failed\",\"success\":false,\"work_id\":\""},
};

/* Host A (the suite's engine, its unix socket, MAX_RUNNING=3) and host B (an engine of this
 * test, reached over tcp:// with DOCKER_TLS_VERIFY and a client certificate, MAX_RUNNING=2),
 * each with its starter, its completer and a RUNNING_QUEUE of its own, share
 * pending_corrections; one notifier. 200 mixed jobs: both hosts take work, neither ever runs
 * more than its MAX_RUNNING (sampled from the engines' lists), every job ends in its callback. */
static void test_two_hosts_tls(void **state)
{
    (void)state;
    snprintf(hostb_dir, sizeof(hostb_dir), "%s/hostb", ct_env("CT_SERVERS_DIR"));
    assert_int_equal(servers_b("start-docker"), 0);
    char env_b[800];
    snprintf(env_b, sizeof(env_b), "%s/env", hostb_dir);
    char saved_host[700];
    snprintf(saved_host, sizeof(saved_host), "%s", ct_env("CT_DOCKER_HOST"));
    load_env(env_b, "CT_DOCKER_TLS_HOST");
    load_env(env_b, "CT_DOCKER_CERT_PATH");
    char unix_b[800];
    snprintf(unix_b, sizeof(unix_b), "unix://%s/docker/docker.sock", hostb_dir);

    /* Without the client certificate the engine refuses the connection. */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "curl -s -m 10 --cacert '%s/ca.pem' https://127.0.0.1:%s/_ping >/dev/null",
             ct_env("CT_DOCKER_CERT_PATH"), strrchr(ct_env("CT_DOCKER_TLS_HOST"), ':') + 1);
    assert_int_not_equal(system(cmd), 0);

    struct ct_receiver rcv;
    ct_receiver_start(&rcv, "two-hosts", 0, true);
    char callback[256];
    ct_receiver_url(callback, sizeof(callback), &rcv, "/ok");
    char hosts[300], docker_b[300], certs_b[800];
    snprintf(hosts, sizeof(hosts), "RABBITMQ_HOST=%s", ct_env("CT_CLUSTER_HOSTS"));
    snprintf(docker_b, sizeof(docker_b), "DOCKER_HOST=%s", ct_env("CT_DOCKER_TLS_HOST"));
    snprintf(certs_b, sizeof(certs_b), "DOCKER_CERT_PATH=%s", ct_env("CT_DOCKER_CERT_PATH"));
    const char *const env_a[] = {hosts, "QUEUE_TYPE=quorum", "MAX_RUNNING=3",
                                 "RUNNING_QUEUE=running_corrections.host-a", NULL};
    const char *const env_bd[] = {hosts,           "QUEUE_TYPE=quorum",
                                  "MAX_RUNNING=2", "RUNNING_QUEUE=running_corrections.host-b",
                                  docker_b,        "DOCKER_TLS_VERIFY=1",
                                  certs_b,         NULL};
    const char *const env_n[] = {hosts, "QUEUE_TYPE=quorum", NULL};
    struct ct_daemon sa, ca, sb, cb, n;
    ct_daemon_start(&sa, "starter", "host-a", env_a);
    ct_daemon_start(&ca, "completer", "host-a", env_a);
    ct_daemon_start(&sb, "starter", "host-b", env_bd);
    ct_daemon_start(&cb, "completer", "host-b", env_bd);
    ct_daemon_start(&n, "notifier", "two-hosts", env_n);
    ct_daemon_wait_log(&sa, "consuming pending jobs", 1, WAIT_MS);
    ct_daemon_wait_log(&sb, "consuming pending jobs", 1, WAIT_MS); /* it counted host B's */
    ct_daemon_wait_log(&cb, "connected to RabbitMQ", 1, WAIT_MS);
    ct_daemon_wait_log(&n, "connected to RabbitMQ", 1, WAIT_MS);

    enum { JOBS = 200 };
    char *file = ct_tmpfile("two-hosts.txt", "t", 1);
    for (int i = 0; i < JOBS; i++) {
        const struct kind2 *k = &kinds2[i % 3];
        char body[2048];
        snprintf(body, sizeof(body),
                 "{\"work_id\":\"two-%d\",\"image\":\"%s\",\"file\":\"%s\",\"callback\":\"%s\"%s}",
                 i, k->image, file, callback, k->params ? k->params : "");
        ct_amqp_publish("pending_corrections", body, NULL);
    }
    /* While they run: never more than MAX_RUNNING on a host. */
    int max_a = 0, max_b = 0, samples = 0;
    int64_t t0 = ct_now_ms(), last_progress = t0;
    int seen = 0;
    while (delivered(&rcv, "two-", JOBS) < JOBS) {
        int a = running_on(saved_host), b = running_on(unix_b);
        max_a = a > max_a ? a : max_a;
        max_b = b > max_b ? b : max_b;
        samples++;
        int now_seen = delivered(&rcv, "two-", JOBS);
        if (now_seen > seen) {
            seen = now_seen;
            last_progress = ct_now_ms();
        }
        if (ct_now_ms() - last_progress > WAIT_MS)
            fail_msg("no callback for %d s: %d of %d", WAIT_MS / 1000, seen, JOBS);
        usleep(100 * 1000);
    }
    int started_a = ct_file_count_lines(sa.log, "correction started", NULL);
    int started_b = ct_file_count_lines(sb.log, "correction started", NULL);
    print_message("note: %d jobs in %.1f s; host A started %d (at most %d running at once), "
                  "host B %d (at most %d), %d samples\n",
                  JOBS, (double)(ct_now_ms() - t0) / 1000.0, started_a, max_a, started_b, max_b,
                  samples);
    assert_true(max_a <= 3);
    assert_true(max_b <= 2);
    assert_true(started_a > 0);
    assert_true(started_b > 0);
    assert_true(started_a + started_b >= JOBS);

    json_t *reqs = ct_receiver_requests(&rcv);
    for (int i = 0; i < JOBS; i++) {
        char wid[32], want[512];
        snprintf(wid, sizeof(wid), "two-%d", i);
        snprintf(want, sizeof(want), "%s%s\"}", kinds2[i % 3].body, wid);
        int found = 0;
        size_t k;
        json_t *q;
        json_array_foreach(reqs, k, q)
        {
            const char *body = json_string_value(json_object_get(q, "body"));
            if (body && strcmp(body, want) == 0)
                found++;
        }
        if (found == 0)
            fail_msg("two-%d: no callback %s", i, want);
    }
    json_decref(reqs);

    struct ct_daemon *all[] = {&sa, &ca, &sb, &cb, &n};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(ct_daemon_stop(all[i]), 0);
    assert_int_equal(running_on(saved_host) + running_on(unix_b), 0);
    ct_receiver_stop(&rcv);
    free(file);
    assert_int_equal(servers_b("stop"), 0);
}

/* A Docker host that never comes back (lost.h): host B's starter and completer die for good
 * and its engine is gone, with three corrections running there. Their running messages expire
 * at their time limit plus HOST_LOST_GRACE, are dead-lettered to running_corrections.lost, and
 * host A's completer reports each to its caller as "host lost", not before that time. */
static void test_host_lost(void **state)
{
    (void)state;
    snprintf(hostb_dir, sizeof(hostb_dir), "%s/hostb", ct_env("CT_SERVERS_DIR"));
    assert_int_equal(servers_b("start-docker"), 0);
    char unix_b[800], docker_b[820];
    snprintf(unix_b, sizeof(unix_b), "unix://%s/docker/docker.sock", hostb_dir);
    snprintf(docker_b, sizeof(docker_b), "DOCKER_HOST=%s", unix_b);

    struct ct_receiver rcv;
    ct_receiver_start(&rcv, "host-lost", 0, true);
    char callback[256];
    ct_receiver_url(callback, sizeof(callback), &rcv, "/ok");
    char hosts[300];
    snprintf(hosts, sizeof(hosts), "RABBITMQ_HOST=%s", ct_env("CT_CLUSTER_HOSTS"));
    enum { TIMEOUT_S = 8, GRACE_S = 4, JOBS = 3 };
    const char *const env_a[] = {hosts, "QUEUE_TYPE=quorum", "HOST_LOST_GRACE=4s",
                                 "RUNNING_QUEUE=running_corrections.lost-a", NULL};
    const char *const env_b[] = {hosts,
                                 "QUEUE_TYPE=quorum",
                                 "HOST_LOST_GRACE=4s",
                                 "CORRECTION_TIMEOUT=8s",
                                 "RUNNING_QUEUE=running_corrections.lost-b",
                                 docker_b,
                                 NULL};
    const char *const env_n[] = {hosts, "QUEUE_TYPE=quorum", NULL};
    struct ct_daemon ca, sb, cb, n;
    ct_daemon_start(&ca, "completer", "lost-a", env_a);
    ct_daemon_start(&sb, "starter", "lost-b", env_b);
    ct_daemon_start(&cb, "completer", "lost-b", env_b);
    ct_daemon_start(&n, "notifier", "host-lost", env_n);
    ct_daemon_wait_log(&ca, "connected to RabbitMQ", 1, WAIT_MS);
    ct_daemon_wait_log(&sb, "consuming pending jobs", 1, WAIT_MS);
    ct_daemon_wait_log(&cb, "connected to RabbitMQ", 1, WAIT_MS);
    ct_daemon_wait_log(&n, "connected to RabbitMQ", 1, WAIT_MS);

    char *file = ct_tmpfile("host-lost.txt", "l", 1);
    int64_t published = ct_now_ms();
    for (int i = 0; i < JOBS; i++) {
        char body[2048];
        snprintf(body, sizeof(body),
                 "{\"work_id\":\"lost-%d\",\"image\":\"ct-sleeper:latest\",\"file\":\"%s\","
                 "\"callback\":\"%s\",\"params\":[\"SLEEP=300\"]}",
                 i, file, callback);
        ct_amqp_publish("pending_corrections", body, NULL);
    }
    /* Running on host B, its completer holding their running messages... */
    ct_daemon_wait_log(&sb, "correction started", JOBS, WAIT_MS);
    ct_daemon_wait_log(&cb, "running message received", JOBS, WAIT_MS);
    /* ...when the host goes, for good. */
    ct_daemon_kill(&cb);
    ct_daemon_kill(&sb);
    assert_int_equal(servers_b("stop"), 0);

    /* Each comes back as "host lost", from host A's completer. */
    wait_all_delivered(&rcv, "lost-", JOBS);
    int64_t reported = ct_now_ms();
    json_t *reqs = ct_receiver_requests(&rcv);
    size_t k;
    json_t *q;
    json_array_foreach(reqs, k, q)
    {
        const char *body = json_string_value(json_object_get(q, "body"));
        json_t *b = json_loads(body, 0, NULL);
        const char *err = json_string_value(json_object_get(b, "error"));
        if (!json_is_false(json_object_get(b, "success")) || !err ||
            strncmp(err, "host lost - ", 12) != 0)
            fail_msg("not a host lost result: %s", body);
        json_decref(b);
    }
    json_decref(reqs);
    print_message("note: %d jobs reported lost %.1f s after their publication (time limit %d s, "
                  "grace %d s)\n",
                  JOBS, (double)(reported - published) / 1000.0, TIMEOUT_S, GRACE_S);
    /* not before their time limit plus the grace (less a second: the deadline is rounded) */
    assert_true(reported - published >= (TIMEOUT_S + GRACE_S - 1) * 1000);
    assert_int_equal(ct_file_count_lines(ca.log, "correction lost with its Docker host", NULL),
                     JOBS);
    assert_int_equal(ct_amqp_count("running_corrections.lost-b"), 0);
    assert_int_equal(ct_amqp_count("running_corrections.lost"), 0);
    assert_int_equal(ct_amqp_count("running_corrections.lost.invalid"), 0);
    assert_int_equal(ct_daemon_stop(&ca), 0);
    assert_int_equal(ct_daemon_stop(&n), 0);
    ct_receiver_stop(&rcv);
    free(file);
}

/* The suite's reset declares classic queues: here only the leftovers of a failed test go. */
static int setup(void **state)
{
    (void)state;
    ct_kill_tracked();
    ct_docker_remove_labelled("correctomatic.job_id");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_node_lost, setup, NULL),
        cmocka_unit_test_setup_teardown(test_two_hosts_tls, setup, NULL),
        cmocka_unit_test_setup_teardown(test_host_lost, setup, NULL),
    };
    /* CT_TEST_FILTER=test_name (wildcards allowed): only those, while working on them */
    if (getenv("CT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
