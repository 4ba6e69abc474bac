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

/* The env file's "export NAME='value'" lines, into the environment. */
static void load_env(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("no %s", path);
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char name[128], value[800];
        if (sscanf(line, "export %127[A-Z_0-9]='%799[^']'", name, value) == 2)
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
    load_env(env);
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
    ct_receiver_wait_progress(&rcv, "/ok", 200, JOBS, WAIT_MS, 10 * WAIT_MS);

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
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
