/* The pipeline on a three-node RabbitMQ cluster with quorum queues (#15): the daemons get every
 * node (RABBITMQ_HOST=host:port,...); two Docker hosts, the second over tcp:// with mutual TLS;
 * the node the daemons are connected to stops mid-batch and comes back, then a host goes for
 * good. Every job still ends in one callback (its result, or "host lost"), nothing parked, no
 * message or container left.
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

/* Whether the receiver's request q is a callback answered 200; if so, its body's work_id (a
 * string, else "") into wid. */
static bool ok_work_id(json_t *q, char *wid, size_t len)
{
    if (json_integer_value(json_object_get(q, "status")) != 200)
        return false;
    json_t *b = json_loads(json_string_value(json_object_get(q, "body")), 0, NULL);
    const char *w = json_string_value(json_object_get(b, "work_id"));
    snprintf(wid, len, "%s", w ? w : "");
    json_decref(b);
    return true;
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
    size_t pl = strlen(prefix);
    json_array_foreach(reqs, k, q)
    {
        char wid[128];
        if (ok_work_id(q, wid, sizeof(wid)) && strncmp(wid, prefix, pl) == 0) {
            int i = atoi(wid + pl);
            if (i >= 0 && i < n)
                seen[i] = 1;
        }
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

/* Callbacks answered 200 whose body's work_id is wid. */
static int deliveries_of(const struct ct_receiver *rcv, const char *wid)
{
    json_t *reqs = ct_receiver_requests(rcv);
    int n = 0;
    size_t k;
    json_t *q;
    json_array_foreach(reqs, k, q)
    {
        char w[128];
        n += ok_work_id(q, w, sizeof(w)) && strcmp(w, wid) == 0;
    }
    json_decref(reqs);
    return n;
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

/* The correction containers of an engine (its unix socket), in any state. */
static json_t *list_on(const char *docker_host)
{
    char saved[700];
    snprintf(saved, sizeof(saved), "%s", ct_env("CT_DOCKER_HOST"));
    setenv("CT_DOCKER_HOST", docker_host, 1);
    json_t *l = ct_docker_list("correctomatic.job_id");
    setenv("CT_DOCKER_HOST", saved, 1);
    return l;
}

/* Correction containers running on an engine now (its unix socket). */
static int running_on(const char *docker_host)
{
    json_t *l = list_on(docker_host);
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
enum { K_OK, K_SLEEPER, K_FAIL, K_LONG };
static const struct kind2 kinds2[] = {
    [K_OK] = {"ct-ok:latest", NULL,
              "{\"comments\":[\"well done\"],\"grade\":10,\"success\":true,\"work_id\":\""},
    [K_SLEEPER] = {"ct-sleeper:latest", ",\"params\":[\"SLEEP=1\"]",
                   "{\"comments\":[\"slept\"],\"grade\":10,\"success\":true,\"work_id\":\""},
    [K_FAIL] = {"ct-fail:latest", NULL,
                "{\"error\":\"compilation failed\",\"success\":false,\"work_id\":\""},
    [K_LONG] = {"ct-sleeper:latest", ",\"params\":[\"SLEEP=8\"]",
                "{\"comments\":[\"slept\"],\"grade\":10,\"success\":true,\"work_id\":\""},
};

static void publish_job(int i, int kind, const char *file, const char *callback)
{
    const struct kind2 *k = &kinds2[kind];
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"work_id\":\"two-%d\",\"image\":\"%s\",\"file\":\"%s\",\"callback\":\"%s\"%s}", i,
             k->image, file, callback, k->params ? k->params : "");
    /* with a message_id, as a publisher that wants a repeat recognisable does: every delivery
     * of the message is one job_id, whichever host takes it */
    char id[32];
    snprintf(id, sizeof(id), "msg-two-%d", i);
    ct_amqp_publish("pending_corrections", body, id);
}

/* The work_ids ("two-<n>": n) of the correction containers on an engine (its unix socket), in
 * any state, as a 0/1 map of n jobs (map may be NULL); in running_long those of the jobs from
 * first_long on that run now. Returns how many run such a job. */
static int containers_on(const char *docker_host, char *map, char *running_long, int n,
                         int first_long)
{
    json_t *l = list_on(docker_host);
    int count = 0;
    size_t i;
    json_t *c;
    json_array_foreach(l, i, c)
    {
        const char *label = json_string_value(
            json_object_get(json_object_get(c, "Labels"), "correctomatic.work_id"));
        int k;
        if (!label || sscanf(label, "\"two-%d\"", &k) != 1 || k < 0 || k >= n)
            continue;
        if (map)
            map[k] = 1;
        if (k >= first_long &&
            strcmp(json_string_value(json_object_get(c, "State")), "running") == 0) {
            running_long[k] = 1;
            count++;
        }
    }
    json_decref(l);
    return count;
}

/* Whether host B (its engine's unix socket) runs one of the jobs from first_long on, and its
 * completer has had the running message of each such job. */
static bool long_job_held(const char *docker_host, const struct ct_daemon *cb, int n,
                          int first_long)
{
    char *running = calloc((size_t)n, 1);
    assert_non_null(running);
    bool held = containers_on(docker_host, NULL, running, n, first_long) > 0;
    for (int k = 0; held && k < n; k++) {
        char also[40];
        snprintf(also, sizeof(also), "work_id=two-%d ", k);
        held = !running[k] || ct_file_count_lines(cb->log, "msg=\"running message ", also) > 0;
    }
    free(running);
    return held;
}

/* The whole story in one run, on the three-node cluster with quorum queues:
 * - host A (the suite's engine, its unix socket, MAX_RUNNING=3) and host B (an engine of this
 *   test, reached over tcp:// with DOCKER_TLS_VERIFY and a client certificate, MAX_RUNNING=2),
 *   each with its starter, its completer and a RUNNING_QUEUE of its own, share
 *   pending_corrections; one notifier per broker node (each has its node first in its list);
 * - 200 mixed jobs; both hosts take work, neither ever runs more than its MAX_RUNNING (sampled
 *   from the engines' lists every 100 ms);
 * - mid-batch node 1, the one the stages are on, stops and comes back: the daemons on it move;
 * - later host B goes for good (its daemons killed, its engine stopped) while it runs one of the
 *   last, long jobs: its pending jobs go to host A, its running ones end as "host lost" once
 *   their time limit plus HOST_LOST_GRACE has passed;
 * - every job ends in exactly one callback: its own result (or "host lost" for a job that was on
 *   host B when it went), signed; a repeat (at least once: a node lost between a POST and its
 *   ack) is the same delivery again, same webhook-id, same body; nothing parked or left. */
static void test_two_hosts_node_and_host_lost(void **state)
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
    enum { TIMEOUT_S = 20, GRACE_S = 4 };
#define SECRET "CALLBACK_SECRET=whsec_Y2x1c3Rlci10ZXN0LXNlY3JldC1rZXktMDEyMzQ1Njc4OQ=="
    const char *const env_a[] = {hosts,
                                 "QUEUE_TYPE=quorum",
                                 "MAX_RUNNING=3",
                                 "RUNNING_QUEUE=running_corrections.host-a",
                                 "CORRECTION_TIMEOUT=20s",
                                 "HOST_LOST_GRACE=4s",
                                 "CONTAINER_RETENTION=5s",
                                 NULL};
    const char *const env_bd[] = {hosts,
                                  "QUEUE_TYPE=quorum",
                                  "MAX_RUNNING=2",
                                  "RUNNING_QUEUE=running_corrections.host-b",
                                  "CORRECTION_TIMEOUT=20s",
                                  "HOST_LOST_GRACE=4s",
                                  docker_b,
                                  "DOCKER_TLS_VERIFY=1",
                                  certs_b,
                                  NULL};
    struct ct_daemon sa, ca, sb, cb, n[3];
    ct_daemon_start(&sa, "starter", "host-a", env_a);
    ct_daemon_start(&ca, "completer", "host-a", env_a);
    ct_daemon_start(&sb, "starter", "host-b", env_bd);
    ct_daemon_start(&cb, "completer", "host-b", env_bd);
    /* notifier k: node k first, then the others */
    for (int k = 0; k < 3; k++) {
        char list[300], name[32];
        snprintf(list, sizeof(list), "RABBITMQ_HOST=127.0.0.1:%s,127.0.0.1:%s,127.0.0.1:%s",
                 ct_env(k == 0   ? "CT_CLUSTER_PORT_1"
                        : k == 1 ? "CT_CLUSTER_PORT_2"
                                 : "CT_CLUSTER_PORT_3"),
                 ct_env(k == 0   ? "CT_CLUSTER_PORT_2"
                        : k == 1 ? "CT_CLUSTER_PORT_3"
                                 : "CT_CLUSTER_PORT_1"),
                 ct_env(k == 0   ? "CT_CLUSTER_PORT_3"
                        : k == 1 ? "CT_CLUSTER_PORT_1"
                                 : "CT_CLUSTER_PORT_2"));
        snprintf(name, sizeof(name), "notifier-%d", k + 1);
        const char *const env_n[] = {list, "QUEUE_TYPE=quorum", SECRET, NULL};
        ct_daemon_start(&n[k], "notifier", name, env_n);
    }
    /* the stages on node 1, the first of their list; notifier k on node k */
    char on_node[3][64];
    for (int k = 0; k < 3; k++) {
        char port[32];
        snprintf(port, sizeof(port), "CT_CLUSTER_PORT_%d", k + 1);
        snprintf(on_node[k], sizeof(on_node[k]), "node=127.0.0.1:%s", ct_env(port));
    }
    struct ct_daemon *on_1[] = {&sa, &ca, &sb, &cb, &n[0]};
    for (size_t i = 0; i < 5; i++)
        ct_daemon_wait_lines(on_1[i], "connected to RabbitMQ", on_node[0], 1, WAIT_MS);
    ct_daemon_wait_lines(&n[1], "connected to RabbitMQ", on_node[1], 1, WAIT_MS);
    ct_daemon_wait_lines(&n[2], "connected to RabbitMQ", on_node[2], 1, WAIT_MS);
    ct_daemon_wait_log(&sa, "consuming pending jobs", 1, WAIT_MS);
    ct_daemon_wait_log(&sb, "consuming pending jobs", 1, WAIT_MS); /* it counted host B's */

    /* 194 mixed jobs now; 6 long ones once node 1 is back, so that they are the last and
     * host B runs one of them when it goes. */
    enum { MIXED = 194, JOBS = 200 };
    char *file = ct_tmpfile("two-hosts.txt", "t", 1);
    int kind[JOBS];
    for (int i = 0; i < JOBS; i++)
        kind[i] = i < MIXED ? i % 3 : K_LONG;
    for (int i = 0; i < MIXED; i++)
        publish_job(i, kind[i], file, callback);

    /* While they run: never more than MAX_RUNNING on a host; the two events on the way. */
    int max_a = 0, max_b = 0, samples = 0, seen = 0, last_seen = -1, at_node_stop = -1,
        at_host_lost = -1;
    int64_t t0 = ct_now_ms(), last_progress = t0, long_published = 0, host_lost_at = 0;
    char on_b[JOBS] = {0}, long_b[JOBS] = {0};
    enum { BEFORE_NODE, NODE_DONE, HOST_LOST } phase = BEFORE_NODE;
    while ((seen = delivered(&rcv, "two-", JOBS)) < JOBS) {
        int a = running_on(saved_host), b = phase == HOST_LOST ? 0 : running_on(unix_b);
        max_a = a > max_a ? a : max_a;
        max_b = b > max_b ? b : max_b;
        samples++;
        if (phase == BEFORE_NODE && seen >= 30) {
            at_node_stop = seen;
            assert_int_equal(cluster("node-stop 1"), 0);
            for (size_t i = 0; i < 5; i++)
                ct_daemon_wait_log(on_1[i], "connected to RabbitMQ", 2, WAIT_MS);
            assert_int_equal(cluster("node-start 1"), 0);
            long_published = ct_now_ms();
            for (int i = MIXED; i < JOBS; i++)
                publish_job(i, kind[i], file, callback);
            phase = NODE_DONE;
        } else if (phase == NODE_DONE && long_job_held(unix_b, &cb, JOBS, MIXED)) {
            /* host B runs a long job and its completer holds every running message: it goes */
            ct_daemon_kill(&cb);
            ct_daemon_kill(&sb);
            at_host_lost = seen;
            host_lost_at = ct_now_ms();
            containers_on(unix_b, on_b, long_b, JOBS, MIXED);
            assert_int_equal(servers_b("stop"), 0);
            phase = HOST_LOST;
        }
        if (seen != last_seen) {
            last_seen = seen;
            last_progress = ct_now_ms();
        }
        /* a lost job takes its time limit plus the grace: wait that much more */
        if (ct_now_ms() - last_progress > WAIT_MS + (TIMEOUT_S + GRACE_S) * 1000) {
            char missing[400];
            delivered_missing(&rcv, "two-", JOBS, missing, sizeof(missing));
            fail_msg("no callback for %d s: %d of %d (phase %d); missing:%s",
                     WAIT_MS / 1000 + TIMEOUT_S + GRACE_S, seen, JOBS, (int)phase, missing);
        }
        usleep(100 * 1000);
    }
    assert_int_equal(phase, HOST_LOST);
    int64_t all_in = ct_now_ms();
    int started_a = ct_file_count_lines(sa.log, "correction started", NULL);
    int started_b = ct_file_count_lines(sb.log, "correction started", NULL);
    assert_true(max_a <= 3);
    assert_true(max_b <= 2);
    assert_true(started_a > 0);
    assert_true(started_b > 0);

    /* A delivery host A had begun when node 1 stopped may have left a container there that no
     * running message claims (created, or run with its running message unconfirmed) while the
     * message went to host B. Host A's completer deals with it after CONTAINER_RETENTION (5 s
     * here): removed if never started, else finished from its labels, one more callback, the
     * same delivery as the job's other one (same job_id, from the message_id). */
    int64_t waited = ct_now_ms();
    for (;;) {
        json_t *l = ct_docker_list("correctomatic.job_id");
        size_t left_n = json_array_size(l);
        if (left_n == 0) {
            json_decref(l);
            break;
        }
        if (ct_now_ms() - waited > WAIT_MS) {
            char *dump = json_dumps(l, JSON_COMPACT);
            fail_msg("%zu container(s) left on host A: %.1500s", left_n, dump ? dump : "?");
        }
        json_decref(l);
        usleep(200 * 1000);
    }
    int from_labels = 0;
    FILE *fl = fopen(ca.log, "r");
    assert_non_null(fl);
    char line[2048];
    while (fgets(line, sizeof(line), fl)) {
        const char *w = strstr(line, "work_id=two-");
        int k;
        if (!strstr(line, "finishing a container no running message claimed") || !w ||
            sscanf(w, "work_id=two-%d", &k) != 1)
            continue;
        from_labels++;
        char wid[32];
        snprintf(wid, sizeof(wid), "two-%d", k);
        int64_t since = ct_now_ms();
        while (deliveries_of(&rcv, wid) < 2) {
            if (ct_now_ms() - since > WAIT_MS)
                fail_msg("%s: finished from its container's labels, no second callback", wid);
            usleep(200 * 1000);
        }
    }
    fclose(fl);
    print_message(
        "note: %d unclaimed container(s) removed by host A's completer, %d finished "
        "from their labels\n",
        ct_file_count_lines(ca.log, "removed a correction container no running message", NULL),
        from_labels);

    /* Every job: one delivery (repeats the same), its own result or, only for a job whose
     * container was on host B when it went, "host lost"; not before its time limit plus the
     * grace (it started after the long jobs were published; less a second of rounding). */
    json_t *reqs = ct_receiver_requests(&rcv);
    int dups = 0, lost = 0, lost_long = 0;
    for (int i = 0; i < JOBS; i++) {
        char wid[32], want[512];
        snprintf(wid, sizeof(wid), "two-%d", i);
        snprintf(want, sizeof(want), "%s%s\"}", kinds2[kind[i]].body, wid);
        const char *first_id = NULL, *first_body = NULL;
        int got = 0;
        size_t k;
        json_t *q;
        json_array_foreach(reqs, k, q)
        {
            char w[128];
            if (!ok_work_id(q, w, sizeof(w)) || strcmp(w, wid) != 0)
                continue;
            const char *body = json_string_value(json_object_get(q, "body"));
            const char *id =
                json_string_value(json_object_get(json_object_get(q, "headers"), "webhook-id"));
            assert_non_null(id);
            if (!first_id) {
                first_id = id;
                first_body = body;
            } else if (strcmp(id, first_id) != 0 || strcmp(body, first_body) != 0) {
                fail_msg("%s: two different callbacks: %s (%s) and %s (%s)", wid, first_body,
                         first_id, body, id);
            }
            got++;
        }
        if (!got)
            fail_msg("%s: no callback", wid);
        dups += got - 1;
        if (strcmp(first_body, want) == 0)
            continue;
        json_t *b = json_loads(first_body, 0, NULL);
        const char *err = json_string_value(json_object_get(b, "error"));
        bool host_lost = json_is_false(json_object_get(b, "success")) && err &&
                         strncmp(err, "host lost - ", 12) == 0;
        json_decref(b);
        if (!host_lost || !on_b[i])
            fail_msg("%s: callback %s, expected %s%s", wid, first_body, want,
                     host_lost ? " (host lost, but it was not on host B when it went)" : "");
        lost++;
        lost_long += i >= MIXED;
    }
    json_decref(reqs);
    int lost_logged = ct_file_count_lines(ca.log, "correction lost with its Docker host", NULL);
    /* The jobs host B's starter had received and not started when it went: host A ran them. */
    int moved = 0;
    for (int i = 0; i < JOBS; i++) {
        char also[40];
        snprintf(also, sizeof(also), "work_id=two-%d ", i);
        if (ct_file_count_lines(sb.log, "msg=\"job received\"", also) == 0 ||
            ct_file_count_lines(sb.log, "msg=\"correction started\"", also) > 0)
            continue;
        if (ct_file_count_lines(sa.log, "msg=\"correction started\"", also) == 0)
            fail_msg("two-%d: received by host B, which went, and never started by host A", i);
        moved++;
    }
    print_message("note: %d jobs in %.1f s, %d samples; host A started %d (at most %d running), "
                  "host B %d (at most %d); node 1 stopped after %d callbacks, host B lost after "
                  "%d, holding %d job(s) it had not started, which host A ran; %d job(s) host "
                  "lost (%d long), all in %.1f s after host B went (time limit %d s, grace %d s); "
                  "%d repeated callback(s), each the same delivery\n",
                  JOBS, (double)(all_in - t0) / 1000.0, samples, started_a, max_a, started_b, max_b,
                  at_node_stop, at_host_lost, moved, lost, lost_long,
                  (double)(all_in - host_lost_at) / 1000.0, TIMEOUT_S, GRACE_S, dups);
    /* host B ran a long job when it went: at least that one is lost, and each lost job is
     * reported once by host A's completer */
    assert_true(lost_long >= 1);
    assert_int_equal(lost_logged, lost);
    assert_true(all_in - long_published >= (TIMEOUT_S + GRACE_S - 1) * 1000);

    /* Nothing left anywhere: no message ready or parked, no container. */
    assert_int_equal(ct_daemon_stop(&sa), 0);
    assert_int_equal(ct_daemon_stop(&ca), 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(ct_daemon_stop(&n[k]), 0);
    static const char *const queues[] = {"pending_corrections",
                                         "pending_corrections.invalid",
                                         "running_corrections.host-a",
                                         "running_corrections.host-a.invalid",
                                         "running_corrections.host-b",
                                         "running_corrections.host-b.invalid",
                                         "running_corrections.lost",
                                         "running_corrections.lost.invalid",
                                         "finished_corrections",
                                         "finished_corrections.invalid",
                                         "failed_callbacks"};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++)
        if (ct_amqp_count(queues[i]) > 0)
            fail_msg("%s holds %d message(s)", queues[i], ct_amqp_count(queues[i]));
    ct_receiver_stop(&rcv);
    free(file);
#undef SECRET
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
    /* host B of a test that failed before it stopped it */
    snprintf(hostb_dir, sizeof(hostb_dir), "%s/hostb", ct_env("CT_SERVERS_DIR"));
    if (access(hostb_dir, F_OK) == 0 && servers_b("stop") != 0)
        return -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_hosts_node_and_host_lost, setup, NULL),
        cmocka_unit_test_setup_teardown(test_host_lost, setup, NULL),
    };
    /* CT_TEST_FILTER=test_name (wildcards allowed): only those, while working on them */
    if (getenv("CT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
