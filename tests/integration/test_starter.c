/* The starter against the real broker and the real engine. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <stdatomic.h>

#include "msg.h"
#include "support.h"
#include "text.h"

#define STARTER CT_BIN_DIR "/correctomatic-starter"
#define LABEL "correctomatic.job_id"
#define WAIT_MS 30000

/* The log of the starter started last, whose last lines a message that does not come prints
 * (the logs go with the servers' folder); "" once it is stopped. */
static char starter_log[sizeof(((struct ct_daemon *)0)->log)];

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
    snprintf(starter_log, sizeof(starter_log), "%s", run->log);
}

static int stop_starter(struct ct_daemon *run)
{
    if (strcmp(starter_log, run->log) == 0)
        starter_log[0] = '\0';
    return ct_daemon_stop(run);
}

/* The last `max` lines of the starter's log (starter_log), on stdout. */
static void print_starter_tail(int max)
{
    char *log = starter_log[0] ? ct_read_file(starter_log, NULL) : NULL;
    if (!log)
        return;
    const char *end = log + strlen(log), *from = end;
    int n = 0;
    while (from > log && !(from[-1] == '\n' && from < end && ++n >= max))
        from--;
    printf("%s, its last lines:\n%s", starter_log, from);
    fflush(stdout);
    free(log);
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
    if (!m) {
        print_starter_tail(100);
        fail_msg("no message on %s", queue);
    }
    json_t *j = ct_json(m->body);
    assert_string_equal(m->content_type, "application/json");
    assert_int_equal(m->delivery_mode, 2);
    /* when it was published, for the next stages' metrics */
    int64_t age = (int64_t)time(NULL) - (int64_t)m->timestamp;
    if (m->timestamp == 0 || age < -5 || age > 3600)
        fail_msg("%s: timestamp %llu, now %lld", queue, (unsigned long long)m->timestamp,
                 (long long)time(NULL));
    if (strcmp(queue, "pending_corrections.invalid") != 0 &&
        json_integer_value(json_object_get(m->headers, "x-correctomatic-submitted-ms")) <= 0)
        fail_msg("%s: no x-correctomatic-submitted-ms header", queue);
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
    assert_int_equal(strncmp(json_string_value(json_object_get(c, "Name")), "/correction-", 12), 0);
    json_t *st = json_object_get(c, "State");
    assert_true(json_is_true(json_object_get(st, "Running")) ||
                json_integer_value(json_object_get(st, "ExitCode")) == 0);
    json_t *cfg = json_object_get(c, "Config");
    json_t *env = json_object_get(cfg, "Env");
    assert_true(json_array_has(env, "EXERCISE=6"));
    assert_true(json_array_has(env, "EXPR=a=b"));
    json_t *labels = json_object_get(cfg, "Labels");
    assert_string_equal(json_string_value(json_object_get(labels, "correctomatic.job_id")), job_id);
    assert_non_null(json_string_value(json_object_get(labels, "correctomatic.submission")));
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
    if (ct_engine_is_podman()) {
        /* Podman shows the capabilities it dropped, one by one; none is left (below) */
        assert_true(json_array_has(json_object_get(hc, "CapDrop"), "SETUID"));
        assert_true(json_array_has(json_object_get(hc, "CapDrop"), "DAC_OVERRIDE"));
        assert_int_equal(json_array_size(json_object_get(hc, "CapAdd")), 0);
    } else {
        assert_true(json_array_has(json_object_get(hc, "CapDrop"), "ALL"));
    }
    assert_true(json_array_has(json_object_get(hc, "SecurityOpt"), "no-new-privileges"));
    assert_false(json_is_true(json_object_get(hc, "AutoRemove")));
    json_t *lc = json_object_get(hc, "LogConfig");
    assert_string_equal(json_string_value(json_object_get(lc, "Type")), "json-file");
    if (!ct_engine_is_podman()) /* Podman's inspect shows no log options (Config null) */
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

    char missing[600];
    snprintf(missing, sizeof(missing), "%s/nonexistent/x.txt", ct_env("CT_TMP"));
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
        {"{\"work_id\":5,\"image\":\"ct-ok\",\"file\":\"MISSING\",\"callback\":\"http://"
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
        const char *tok = strstr(tpl, "FILE")      ? "FILE"
                          : strstr(tpl, "BIG")     ? "BIG"
                          : strstr(tpl, "LINK")    ? "LINK"
                          : strstr(tpl, "MISSING") ? "MISSING"
                                                   : NULL;
        const char *val = !tok                       ? ""
                          : strcmp(tok, "FILE") == 0 ? good
                          : strcmp(tok, "BIG") == 0  ? big
                          : strcmp(tok, "LINK") == 0 ? link
                                                     : missing;
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

/* ---- submissions only from beneath EXERCISE_DIR (issue 11, item 1) ------------------------- */

/* A file beside the upload folder (CT_TMP), outside it: the Docker client key, say. */
static char *outside_path(const char *name)
{
    char parent[PATH_MAX], *path = NULL;
    char up[PATH_MAX];
    snprintf(up, sizeof(up), "%s/..", ct_env("CT_TMP"));
    assert_non_null(realpath(up, parent));
    assert_true(asprintf(&path, "%s/%s", parent, name) > 0);
    return path;
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Waits for the error result of work_id and checks its reason. */
static void expect_error(json_t *j, const char *prefix)
{
    const char *data = json_string_value(json_object_get(j, "correction_data"));
    assert_true(json_is_true(json_object_get(j, "error")));
    assert_non_null(data);
    if (strncmp(data, prefix, strlen(prefix)) != 0)
        fail_msg("work %s: got '%s', expected '%s...'",
                 json_string_value(json_object_get(j, "work_id")), data, prefix);
}

/* A job names the Docker client key (or any file outside EXERCISE_DIR), directly, with ../,
 * through an absolute link, a relative link leading out, a folder link leading out, /proc, or
 * a relative path: "file not allowed" each time, nothing uploaded, and DELETE_EXERCISE_FILE
 * deletes nothing. */
static void test_submission_outside_refused(void **state)
{
    (void)state;
    struct ct_daemon run;
    const char *tmp = ct_env("CT_TMP");
    char *key = outside_path("s11-key.pem");
    write_file(key, "-----BEGIN PRIVATE KEY----- not for students");
    char p[7][PATH_MAX + 64];
    snprintf(p[0], sizeof(p[0]), "%s", key);
    snprintf(p[1], sizeof(p[1]), "%s/../s11-key.pem", tmp);
    snprintf(p[2], sizeof(p[2]), "%s/s11-abs-link", tmp);
    unlink(p[2]);
    assert_int_equal(symlink(key, p[2]), 0);
    snprintf(p[3], sizeof(p[3]), "%s/s11-rel-link", tmp);
    unlink(p[3]);
    assert_int_equal(symlink("../s11-key.pem", p[3]), 0);
    char dirlink[PATH_MAX];
    snprintf(dirlink, sizeof(dirlink), "%s/s11-up", tmp);
    unlink(dirlink);
    assert_int_equal(symlink("..", dirlink), 0);
    snprintf(p[4], sizeof(p[4]), "%s/s11-key.pem", dirlink);
    snprintf(p[5], sizeof(p[5]), "/proc/self/root%s", key);
    snprintf(p[6], sizeof(p[6]), "s11-key.pem");
    char *good = exercise("s11-good.txt", "inside");

    start_starter(&run, "outside",
                  (const char *[]){"DONT_START_CONTAINER=true", "DELETE_EXERCISE_FILE=true", NULL});
    char wid[32];
    for (int i = 0; i < 7; i++) {
        snprintf(wid, sizeof(wid), "w-out-%d", i);
        publish_job(wid, "ct-echo:latest", p[i], "http://h/cb", NULL, NULL);
    }
    for (int i = 0; i < 7; i++) {
        json_t *j = get_json("finished_corrections");
        expect_error(j, "file not allowed - ");
        json_decref(j);
    }
    assert_int_equal(count_containers(), 0);
    assert_null(ct_amqp_get("running_corrections", 0));
    /* A file inside still goes in, and is deleted. */
    publish_job("w-in", "ct-echo:latest", good, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    size_t len;
    char *got = ct_docker_read_file(json_string_value(json_object_get(r, "container_id")),
                                    "/tmp/exercise", &len);
    assert_non_null(got);
    assert_string_equal(got, "inside");
    free(got);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    assert_int_equal(access(good, F_OK), -1);
    assert_int_equal(access(key, F_OK), 0); /* never deleted */
    unlink(key);
    for (int i = 2; i < 4; i++)
        unlink(p[i]);
    unlink(dirlink);
    free(key);
    free(good);
}

/* A folder of the path swapped, as fast as the test can, for a link leading out of
 * EXERCISE_DIR, while jobs are read and their files deleted: no container ever holds the
 * outside file, and no outside file is ever deleted. */
static atomic_int swapping;

static void *swapper(void *ud)
{
    const char *a = ud;
    char b[PATH_MAX + 8];
    snprintf(b, sizeof(b), "%s-alt", a);
    while (atomic_load(&swapping))
        renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
    return NULL;
}

#define SWAP_JOBS 24

static void test_submission_swap_race(void **state)
{
    (void)state;
    struct ct_daemon run;
    const char *tmp = ct_env("CT_TMP");
    char *out = outside_path("s11-outside");
    char sw[PATH_MAX], alt[PATH_MAX + 8], f[PATH_MAX + 32], cmd[3 * PATH_MAX];
    snprintf(sw, sizeof(sw), "%s/s11-swap", tmp);
    snprintf(alt, sizeof(alt), "%s-alt", sw);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", sw, alt, out);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(sw, 0755), 0);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(symlink("../s11-outside", alt), 0); /* relative, leading out */
    for (int i = 0; i < SWAP_JOBS; i++) {
        char content[32];
        snprintf(f, sizeof(f), "%s/f%d", sw, i);
        snprintf(content, sizeof(content), "INSIDE-%d", i);
        write_file(f, content);
        snprintf(f, sizeof(f), "%s/f%d", out, i);
        snprintf(content, sizeof(content), "SECRET-%d", i);
        write_file(f, content);
    }
    start_starter(&run, "swap",
                  (const char *[]){"DONT_START_CONTAINER=true", "DELETE_EXERCISE_FILE=true", NULL});
    wait_log(&run, "consuming pending jobs", 1);
    pthread_t t;
    atomic_store(&swapping, 1);
    assert_int_equal(pthread_create(&t, NULL, swapper, sw), 0);
    char wid[32];
    for (int i = 0; i < SWAP_JOBS; i++) {
        snprintf(wid, sizeof(wid), "w-swap-%d", i);
        snprintf(f, sizeof(f), "%s/f%d", sw, i);
        publish_job(wid, "ct-echo:latest", f, "http://h/cb", NULL, NULL);
    }
    int started = 0, refused = 0;
    int64_t deadline = ct_now_ms() + 240000;
    while (started + refused < SWAP_JOBS && ct_now_ms() < deadline) {
        struct ct_msg *m = ct_amqp_get("running_corrections", 0);
        if (m) {
            json_t *r = ct_json(m->body);
            size_t len;
            char *got = ct_docker_read_file(json_string_value(json_object_get(r, "container_id")),
                                            "/tmp/exercise", &len);
            assert_non_null(got);
            if (strncmp(got, "INSIDE-", 7) != 0)
                fail_msg("a container holds '%s'", got);
            free(got);
            json_decref(r);
            ct_msg_free(m);
            started++;
            continue;
        }
        m = ct_amqp_get("finished_corrections", 50);
        if (m) {
            json_t *j = ct_json(m->body);
            expect_error(j, "file not allowed - ");
            json_decref(j);
            ct_msg_free(m);
            refused++;
        }
    }
    /* Every delete has been tried once the starter has stopped: still swapping until then. */
    assert_int_equal(stop_starter(&run), 0);
    atomic_store(&swapping, 0);
    pthread_join(t, NULL);
    print_message("swap race: %d started, %d refused\n", started, refused);
    assert_int_equal(started + refused, SWAP_JOBS);
    assert_true(started > 0);
    for (int i = 0; i < SWAP_JOBS; i++) {
        snprintf(f, sizeof(f), "%s/f%d", out, i);
        if (access(f, F_OK) != 0)
            fail_msg("%s was deleted", f);
    }
    assert_int_equal(system(cmd), 0);
    free(out);
}

/* ALLOW_ANY_EXERCISE_PATH=true, the explicit choice for local testing: any readable file. */
static void test_any_path_opt_out(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *anywhere = outside_path("s11-anywhere.txt");
    write_file(anywhere, "from anywhere");
    start_starter(&run, "anypath",
                  (const char *[]){"EXERCISE_DIR=", "ALLOW_ANY_EXERCISE_PATH=true",
                                   "DONT_START_CONTAINER=true", NULL});
    wait_log(&run, "ALLOW_ANY_EXERCISE_PATH=true: a job may name any file", 1);
    publish_job("w-any", "ct-echo:latest", anywhere, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    size_t len;
    char *got = ct_docker_read_file(json_string_value(json_object_get(r, "container_id")),
                                    "/tmp/exercise", &len);
    assert_non_null(got);
    assert_string_equal(got, "from anywhere");
    free(got);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    unlink(anywhere);
    free(anywhere);
}

/* ---- credentials in callbacks (issue 11, item 4) --------------------------------------------- */

#define SECRET_CB "http://alice:pw-s3cret@127.0.0.1:9/cb?token=tok-s3cret&x=1#frag-s3cret"

/* A callback with user:password@, a token and a fragment: the messages carry it whole (the
 * contract), but no label and no line of the starter's log holds a secret. */
static void test_callback_secrets(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("s11-secret-cb.txt", "x");
    start_starter(&run, "secretcb", (const char *[]){"DONT_START_CONTAINER=true", NULL});
    publish_job("w-secret-ok", "ct-ok:latest", file, SECRET_CB, NULL, NULL);
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "callback")), SECRET_CB);
    json_t *c = ct_docker_inspect(json_string_value(json_object_get(r, "container_id")));
    assert_non_null(c);
    json_t *labels = json_object_get(json_object_get(c, "Config"), "Labels");
    assert_null(json_object_get(labels, "correctomatic.callback"));
    assert_string_equal(
        json_string_value(json_object_get(labels, "correctomatic.callback_redacted")),
        "http://***@127.0.0.1:9/cb?token=***&x=***#***");
    char *dump = json_dumps(labels, JSON_COMPACT);
    assert_null(strstr(dump, "s3cret"));
    free(dump);
    json_decref(c);
    json_decref(r);

    /* A job that fails, and one whose callback is refused: their log lines hide it too. */
    publish_job("w-secret-fail", "ct-no-such-image:latest", file, SECRET_CB, NULL, NULL);
    json_t *j = get_json("finished_corrections");
    expect_error(j, "image not found - ");
    assert_string_equal(json_string_value(json_object_get(j, "callback")), SECRET_CB);
    json_decref(j);
    publish_job("w-secret-ftp", "ct-ok:latest", file,
                "ftp://alice:pw-s3cret@127.0.0.1/x?token=tok-s3cret", NULL, NULL);
    struct ct_msg *m = ct_amqp_get("pending_corrections.invalid", WAIT_MS);
    assert_non_null(m);
    const char *reason = json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
    assert_non_null(reason);
    assert_int_equal(strncmp(reason, "invalid callback - ", 19), 0);
    assert_null(strstr(reason, "s3cret"));
    ct_msg_free(m);
    wait_log(&run, "message parked in pending_corrections.invalid", 1);
    assert_int_equal(stop_starter(&run), 0);
    assert_true(ct_file_count(run.log, "w-secret-fail") > 0); /* its lines are there ... */
    assert_int_equal(ct_file_count(run.log, "s3cret"), 0);    /* ... without the secrets */
    free(file);
}

/* ---- the container policy (issue 11, item 5) --------------------------------------------- */

/* Runs script in a ct-shell correction started by run; returns its output (stdout and stderr)
 * once it has exited, and its container's inspection in *ret_inspect. */
static char *shell_job(const char *work_id, const char *script, json_t **ret_inspect)
{
    char name[64];
    snprintf(name, sizeof(name), "%s.sh", work_id);
    char *file = exercise(name, script);
    publish_job(work_id, "ct-shell:latest", file, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    const char *cid = json_string_value(json_object_get(r, "container_id"));
    assert_non_null(cid);
    assert_true(ct_docker_wait(cid, 60000) >= 0);
    char *out = ct_docker_logs(cid, true, true, NULL);
    assert_non_null(out);
    *ret_inspect = ct_docker_inspect(cid);
    assert_non_null(*ret_inspect);
    json_decref(r);
    free(file);
    return out;
}

static void expect_output(const char *out, const char *line)
{
    if (!strstr(out, line))
        fail_msg("'%s' is not in the correction's output:\n%s", line, out);
}

static json_int_t ulimit_of(json_t *inspect, const char *name)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(json_object_get(inspect, "HostConfig"), "Ulimits"), i, u)
    {
        const char *n = json_string_value(json_object_get(u, "Name"));
        if (strncmp(n, "RLIMIT_", 7) == 0) /* Podman shows RLIMIT_FSIZE for fsize */
            n += 7;
        if (strcasecmp(n, name) == 0) {
            assert_int_equal(json_integer_value(json_object_get(u, "Soft")),
                             json_integer_value(json_object_get(u, "Hard")));
            return json_integer_value(json_object_get(u, "Soft"));
        }
    }
    fail_msg("no %s ulimit", name);
    return -1;
}

#define LIMITS_SCRIPT                                                                              \
    "head -c 2097152 /dev/zero > /tmp/big; echo \"big rc=$?\"\n"                                   \
    "echo \"big size=$(wc -c < /tmp/big)\"\n"                                                      \
    "head -c 1000 /dev/zero > /tmp/small; echo \"small rc=$?\"\n"                                  \
    "mkdir /tmp/many; i=0; while [ $i -lt 40 ]; do : > /tmp/many/f$i; i=$((i+1)); done\n"          \
    "paste /tmp/many/* > /dev/null; echo \"paste of 40 files rc=$?\"\n"                            \
    "echo \"nofile=$(ulimit -n)\"\n"

/* A correction writing a file past CORRECTION_MAX_FILE_SIZE: the write fails (SIGXFSZ, the
 * file stops at the limit); one opening files past CORRECTION_MAX_OPEN_FILES is refused. */
static void test_file_and_open_limits(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_starter(
        &run, "limits",
        (const char *[]){"CORRECTION_MAX_FILE_SIZE=1m", "CORRECTION_MAX_OPEN_FILES=16", NULL});
    json_t *c;
    char *out = shell_job("w-limits", LIMITS_SCRIPT, &c);
    assert_int_equal(ulimit_of(c, "fsize"), 1024 * 1024);
    assert_int_equal(ulimit_of(c, "nofile"), 16);
    expect_output(out, "big rc=153"); /* 128 + SIGXFSZ */
    expect_output(out, "big size=1048576");
    expect_output(out, "small rc=0");
    expect_output(out, "paste of 40 files rc=1"); /* it holds them all open at once */
    expect_output(out, "nofile=16");
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);

    /* The defaults: 64 MiB files, 1024 open files; a 2 MiB file is fine. */
    start_starter(&run, "limits-default", NULL);
    out = shell_job("w-limits-default", LIMITS_SCRIPT, &c);
    assert_int_equal(ulimit_of(c, "fsize"), 64 * 1024 * 1024);
    assert_int_equal(ulimit_of(c, "nofile"), 1024);
    expect_output(out, "big rc=0");
    expect_output(out, "big size=2097152");
    expect_output(out, "paste of 40 files rc=0");
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
}

/* The root is written at /etc: "/" of an imported image is 0555 under Podman (0755 under
 * Docker), and root without capabilities cannot write a 0555 folder of its own. */
#define RO_SCRIPT                                                                                  \
    "# s11-ro-marker\n"                                                                            \
    "echo \"uid=$(id -u)\"\n"                                                                      \
    "echo \"first line: $(head -n 1 /tmp/exercise)\"\n"                                            \
    "touch /etc/s11-root 2>/dev/null && echo 'root writable' || echo 'root read-only'\n"           \
    "echo hi > /tmp/scratch && echo 'tmp writable' || echo 'tmp not writable'\n"                   \
    "ls -ln /tmp/exercise\n"

/* CORRECTION_READ_ONLY and CORRECTION_USER: the root cannot be written, /tmp can, the
 * submission is at /tmp/exercise and a user other than root reads it. */
static void test_read_only_non_root(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_starter(
        &run, "readonly",
        (const char *[]){"CORRECTION_READ_ONLY=true", "CORRECTION_USER=65534:65534", NULL});
    json_t *c;
    char *out = shell_job("w-ro", RO_SCRIPT, &c);
    expect_output(out, "uid=65534");
    expect_output(out, "first line: # s11-ro-marker");
    expect_output(out, "root read-only");
    expect_output(out, "tmp writable");
    json_t *hc = json_object_get(c, "HostConfig");
    assert_true(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "Config"), "User")),
                        "65534:65534");
    /* /tmp is an anonymous volume, gone with the container (removed with v=1) */
    json_t *m = json_array_get(json_object_get(c, "Mounts"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "Type")), "volume");
    assert_string_equal(json_string_value(json_object_get(m, "Destination")), "/tmp");
    char vol[300];
    snprintf(vol, sizeof(vol), "/volumes/%s", json_string_value(json_object_get(m, "Name")));
    long status;
    json_decref(ct_docker("GET", vol, NULL, &status));
    assert_int_equal(status, 200);
    ct_docker_remove_labelled(LABEL);
    json_decref(ct_docker("GET", vol, NULL, &status));
    assert_int_equal(status, 404);
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);

    /* Without them, the image's own user (root here) and a writable root. */
    start_starter(&run, "readwrite", NULL);
    out = shell_job("w-rw", RO_SCRIPT, &c);
    expect_output(out, "uid=0");
    expect_output(out, "root writable");
    expect_output(out, "tmp writable");
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
}

static size_t count_volumes(void)
{
    long status;
    json_t *v = ct_docker("GET", "/volumes", NULL, &status);
    assert_int_equal(status, 200);
    size_t n = json_array_size(json_object_get(v, "Volumes"));
    json_decref(v);
    return n;
}

/* An image with a VOLUME whose container the starter removes (it cannot start): its anonymous
 * volumes go with it, the read-only /tmp one too. */
static void test_volumes_removed_by_starter(void **state)
{
    (void)state;
    struct ct_daemon run;
    size_t before = count_volumes();
    char *file = exercise("s11-badvolume.txt", "x");
    start_starter(&run, "badvolume", (const char *[]){"CORRECTION_READ_ONLY=true", NULL});
    publish_job("w-badvolume", "ct-badvolume:latest", file, "http://h/cb", NULL, NULL);
    json_t *j = get_json("finished_corrections");
    expect_error(j, "container start failed - ");
    json_decref(j);
    assert_int_equal(count_containers(), 0);
    assert_int_equal(count_volumes(), before);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* CORRECTION_RUNTIME naming a runtime the engine lacks (there is no runsc here): the caller
 * hears it at once, nothing is left behind. */
/* GET /readyz of a daemon on port: its status, and whether its body has needle. */
static long readyz(int port, const char *needle, bool *has)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
    long st = 0;
    char *body = ct_http_get(url, &st);
    *has = body && needle && strstr(body, needle);
    free(body);
    return st;
}

struct refused_arg {
    int port;
    const char *needle;
};

static bool refused_readyz(void *ud)
{
    struct refused_arg *a = ud;
    bool has;
    return readyz(a->port, a->needle, &has) == 503 && has;
}

static bool ready_readyz(void *ud)
{
    bool has;
    return readyz(*(int *)ud, NULL, &has) == 200;
}

/* The messages ready in pending_corrections are *(int *)ud. */
static bool pending_is(void *ud)
{
    return ct_amqp_count("pending_corrections") == *(int *)ud;
}

/* The hard limit of open files of the test engine's process (its containers' init cannot
 * raise nofile above it); 0 when unknown. */
static long long engine_nofile_hard(void)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/docker/docker.pid", ct_env("CT_SERVERS_DIR"));
    char *pid = ct_read_file(path, NULL);
    if (!pid)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/limits", atoi(pid));
    free(pid);
    char *limits = ct_read_file(path, NULL);
    const char *line = limits ? strstr(limits, "Max open files") : NULL;
    long long soft = 0, hard = 0;
    if (!line || sscanf(line, "Max open files %lld %lld", &soft, &hard) != 2)
        hard = 0;
    free(limits);
    return hard;
}

/* The engine refuses the starter's own container settings: no job is at fault, none fails.
 * The job waits (its message held, then back in the queue when the starter stops), the
 * starter says not ready and why, and nothing is left behind; once the setting is mended the
 * job runs. */
static void test_settings_refused(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("s11-runtime.txt", "x");
    int port = ct_free_port();
    char listen[64];
    snprintf(listen, sizeof(listen), "METRICS_LISTEN=127.0.0.1:%d", port);

    /* create refused (400): an unknown runtime */
    start_starter(
        &run, "runtime",
        (const char *[]){"CORRECTION_RUNTIME=runsc", "JOB_RETRY_BUDGET=1s", listen, NULL});
    publish_job("w-settings", "ct-ok:latest", file, "http://h/cb", NULL, "m-settings");
    wait_log(&run, "the engine refuses the container settings, will retry", 2);
    ct_daemon_wait_log(&run, "setting=CORRECTION_RUNTIME", 1, WAIT_MS);
    assert_true(ct_wait_until(refused_readyz, &(struct refused_arg){port, "runsc"}, WAIT_MS));
    assert_int_equal(count_containers(), 0);
    assert_int_equal(stop_starter(&run), 0);
    /* not failed (a budget of 1 s is long spent): back in its queue, untouched */
    assert_true(ct_wait_until(pending_is, &(int){1}, WAIT_MS));
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    assert_int_equal(ct_amqp_count("running_corrections"), 0);

    /* start refused (404): a network that does not exist yet. The container made for each try
     * is discarded; once the network is there, the next try runs. */
    char *net = ct_unique("ct-late-net");
    char netenv[128];
    snprintf(netenv, sizeof(netenv), "CORRECTION_NETWORK=%s", net);
    start_starter(&run, "network",
                  (const char *[]){netenv, "JOB_RETRY_BUDGET=1s", "RETRY_MAX=1s", listen, NULL});
    wait_log(&run, "the engine refuses the container settings, will retry", 2);
    ct_daemon_wait_log(&run, "setting=CORRECTION_NETWORK", 1, WAIT_MS);
    assert_true(ct_wait_until(refused_readyz, &(struct refused_arg){port, net}, WAIT_MS));
    assert_true(count_containers() <= 1);
    char body[256];
    snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Internal\":true}", net);
    long st;
    json_decref(ct_docker("POST", "/networks/create", body, &st));
    assert_int_equal(st, 201);
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), "w-settings");
    json_decref(r);
    wait_log(&run, "the Docker engine takes the container settings again", 1);
    assert_true(ct_wait_until(ready_readyz, &port, WAIT_MS));
    assert_int_equal(count_containers(), 1);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    assert_int_equal(stop_starter(&run), 0);
    ct_docker_remove_labelled(LABEL);
    char path[160];
    snprintf(path, sizeof(path), "/networks/%s", net);
    json_decref(ct_docker("DELETE", path, NULL, &st));
    assert_int_equal(st, 204);
    free(net);

    /* start refused (500, from runc): nofile above the engine's own hard limit */
    long long hard = engine_nofile_hard();
    if (hard > 0 && hard < 1048576) {
        start_starter(
            &run, "nofile",
            (const char *[]){"CORRECTION_MAX_OPEN_FILES=1048576", "JOB_RETRY_BUDGET=1s", NULL});
        publish_job("w-nofile", "ct-ok:latest", file, "http://h/cb", NULL, "m-nofile");
        wait_log(&run, "the engine refuses the container settings, will retry", 2);
        ct_daemon_wait_log(&run, "setting=CORRECTION_MAX_OPEN_FILES", 1, WAIT_MS);
        assert_int_equal(stop_starter(&run), 0);
        assert_true(count_containers() <= 1);
        assert_true(ct_wait_until(pending_is, &(int){1}, WAIT_MS));
        assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    } else {
        printf("the engine's nofile hard limit is %lld: no ulimit above it to try\n", hard);
    }
    free(file);
}

/* No such user in the image (CORRECTION_USER): the image's fault, reported at once, not after
 * the retry budget (an hour here). */
static void test_user_missing_from_image(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("s11-user.txt", "x");
    start_starter(&run, "nouser",
                  (const char *[]){"CORRECTION_USER=nosuchuser", "JOB_RETRY_BUDGET=1h", NULL});
    publish_job("w-nouser", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *j = get_json("finished_corrections");
    expect_error(j, "container start failed - ");
    const char *data = json_string_value(json_object_get(j, "correction_data"));
    if (!strstr(data, "nosuchuser"))
        fail_msg("the error does not name the user: %s", data);
    json_decref(j);
    assert_int_equal(count_containers(), 0);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* ---- per-job limits (extension) -------------------------------------------------------------- */

static void publish_limits(const char *work_id, const char *file, const char *limits_json)
{
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"work_id\":\"%s\",\"image\":\"ct-ok:latest\",\"file\":\"%s\","
                         "\"callback\":\"http://h/cb\",\"limits\":%s}",
                         work_id, file, limits_json) > 0);
    ct_amqp_publish("pending_corrections", body, NULL);
    free(body);
}

/* The container of the next running message: its memory, CPUs and seconds to its deadline. */
static void next_limits(json_int_t *memory, json_int_t *nanocpus, long long *seconds)
{
    json_t *r = get_json("running_corrections");
    json_t *c = ct_docker_inspect(json_string_value(json_object_get(r, "container_id")));
    assert_non_null(c);
    json_t *hc = json_object_get(c, "HostConfig");
    *memory = json_integer_value(json_object_get(hc, "Memory"));
    *nanocpus = json_integer_value(json_object_get(hc, "NanoCpus"));
    const char *deadline = json_string_value(json_object_get(
        json_object_get(json_object_get(c, "Config"), "Labels"), "correctomatic.deadline"));
    assert_non_null(deadline);
    *seconds = atoll(deadline) - (long long)time(NULL);
    json_decref(c);
    json_decref(r);
}

/* "limits" in a pending message lowers the configured time, memory and CPUs for that job,
 * never raises them; a value that is not a usable number is the job's error. */
static void test_job_limits(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("s11-limits.txt", "x");
    start_starter(&run, "joblimits",
                  (const char *[]){"DONT_START_CONTAINER=true", "CORRECTION_TIMEOUT=60s",
                                   "CORRECTION_MEMORY=64m", "CORRECTION_CPUS=1", NULL});
    json_int_t mem, cpus;
    long long secs;
    publish_limits("w-lower", file, "{\"time\":5,\"memory\":33554432,\"cpus\":0.5}");
    next_limits(&mem, &cpus, &secs);
    assert_int_equal(mem, 32 * 1024 * 1024);
    assert_int_equal(cpus, 500000000);
    if (secs < 2 || secs > 6) /* the deadline is rounded to the nearest second */
        fail_msg("deadline in %lld s, expected 5", secs);
    publish_limits("w-higher", file, "{\"time\":3600,\"memory\":1e12,\"cpus\":64,\"gpu\":1}");
    next_limits(&mem, &cpus, &secs);
    assert_int_equal(mem, 64 * 1024 * 1024);
    assert_int_equal(cpus, 1000000000);
    assert_true(secs >= 55 && secs <= 61);
    publish_limits("w-none", file, "{}");
    next_limits(&mem, &cpus, &secs);
    assert_int_equal(mem, 64 * 1024 * 1024);
    publish_limits("w-bad-memory", file, "{\"memory\":\"lots\"}");
    json_t *j = get_json("finished_corrections");
    expect_error(j, "invalid message - limits.memory");
    json_decref(j);
    publish_limits("w-bad-limits", file, "5");
    j = get_json("finished_corrections");
    expect_error(j, "invalid message - 'limits' is not an object");
    json_decref(j);
    publish_limits("w-tiny", file, "{\"memory\":1024}");
    j = get_json("finished_corrections");
    expect_error(j, "invalid message - limits.memory");
    json_decref(j);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
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
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

static void test_redelivery_one_container(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("redeliver.txt", "abc");
    start_starter(&run, "redeliver", (const char *[]){"DONT_START_CONTAINER=true", NULL});
    /* With a message_id the publisher names the job: the same message twice is one job. */
    publish_job("w-dup", "ct-ok:latest", file, "http://h/cb", NULL, "msg-0001");
    json_t *r1 = get_json("running_corrections");
    publish_job("w-dup", "ct-ok:latest", file, "http://h/cb", NULL, "msg-0001");
    json_t *r2 = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r1, "container_id")),
                        json_string_value(json_object_get(r2, "container_id")));
    assert_string_equal(json_string_value(json_object_get(r1, "job_id")),
                        json_string_value(json_object_get(r2, "job_id")));
    assert_int_equal(count_containers(), 1);
    json_decref(r1);
    json_decref(r2);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* Item 8: without a message_id, the same bytes published again are a new submission (a
 * re-grade), never a redelivery: a run of its own, under a job_id (webhook-id) of its own,
 * whether the first container still exists or not. */
static void test_resubmission_is_a_new_job(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("resubmit.txt", "abc");
    start_starter(&run, "resubmit", (const char *[]){"DONT_START_CONTAINER=true", NULL});
    publish_job("w-again", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r1 = get_json("running_corrections");
    publish_job("w-again", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r2 = get_json("running_corrections");
    const char *c1 = json_string_value(json_object_get(r1, "container_id"));
    const char *c2 = json_string_value(json_object_get(r2, "container_id"));
    const char *j1 = json_string_value(json_object_get(r1, "job_id"));
    const char *j2 = json_string_value(json_object_get(r2, "job_id"));
    assert_non_null(c1);
    assert_non_null(c2);
    assert_non_null(j1);
    assert_non_null(j2);
    assert_string_not_equal(c1, c2);
    assert_string_not_equal(j1, j2);
    assert_int_equal(count_containers(), 2);
    /* Both gone: a third submission still gets an id of its own. */
    ct_docker_remove_labelled(LABEL);
    publish_job("w-again", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r3 = get_json("running_corrections");
    const char *j3 = json_string_value(json_object_get(r3, "job_id"));
    assert_non_null(j3);
    assert_string_not_equal(j3, j1);
    assert_string_not_equal(j3, j2);
    assert_int_equal(count_containers(), 1);
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* MAX_RUNNING=2, five jobs: two run, hold (HOLD_JOBS) wait in the starter's hand, the others
 * in the queue; a correction's end starts the next. */
static void max_running(const char *name, unsigned hold)
{
    struct ct_daemon run;
    char *file = exercise("sleep.txt", "zzz");
    char hold_env[32];
    snprintf(hold_env, sizeof(hold_env), "HOLD_JOBS=%u", hold);
    start_starter(&run, name, (const char *[]){"MAX_RUNNING=2", hold_env, NULL});
    char wid[16];
    for (int i = 0; i < 5; i++) {
        snprintf(wid, sizeof(wid), "w-max-%d", i);
        publish_job(wid, "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=300\"]", NULL);
    }
    json_t *a = get_json("running_corrections");
    json_t *b = get_json("running_corrections");
    /* The others wait in the queue, but for the held ones: the starter says it is at capacity
     * (its consumer paused), and every job is accounted for (two running, the held ones, the
     * rest back in the queue); only then is the absence of a third meaningful. */
    wait_log(&run, "at capacity, pending jobs wait in the queue", 1);
    assert_true(ct_wait_until(pending_is, &(int){3 - (int)hold}, WAIT_MS));
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    assert_int_equal(count_containers(), 2);
    /* A correction ends: one more starts (a held one), another is held. */
    long status;
    char path[128];
    snprintf(path, sizeof(path), "/containers/%s/kill",
             json_string_value(json_object_get(a, "container_id")));
    json_decref(ct_docker("POST", path, NULL, &status));
    assert_int_equal(status, 204);
    json_t *c = get_json("running_corrections");
    /* a held one started, and the queue gave up one more to be held */
    assert_true(ct_wait_until(pending_is, &(int){2 - (int)hold}, WAIT_MS));
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    assert_int_equal(count_containers(), 3); /* a killed one stays: no completer here */
    json_decref(a);
    json_decref(b);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
    /* Stopped: the waiting jobs are in the queue, the held ones back in it. */
    assert_int_equal(ct_amqp_count("pending_corrections"), 2);
    free(file);
}

static void test_max_running(void **state)
{
    (void)state;
    max_running("maxrunning", 1); /* the default */
}

static void test_max_running_hold_none(void **state)
{
    (void)state;
    max_running("maxrunning-0", 0);
}

/* The network mode of CORRECTION_NETWORK=isolated on the test engine: "default" (a namespace
 * with loopback only) on the dockerd of tests/servers.sh (--bridge=none), "none" on an engine
 * with a network named bridge (Podman always has one: its default network answers to it). */
static const char *isolated_mode(void)
{
    long st;
    json_decref(ct_docker("GET", "/networks/bridge", NULL, &st));
    assert_true(st == 200 || st == 404);
    return st == 404 ? "default" : "none";
}

static void test_docker_outage(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("outage.txt", "abc");
    char mode_line[64];
    snprintf(mode_line, sizeof(mode_line), "network_mode=%s", isolated_mode());
    start_starter(
        &run, "docker-outage",
        (const char *[]){"DONT_START_CONTAINER=true", "CORRECTION_NETWORK=isolated", NULL});
    wait_log(&run, "consuming pending jobs", 1);
    wait_log(&run, mode_line, 1);
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
    assert_int_equal(ct_amqp_count("finished_corrections"), 0); /* all three went running */
    assert_int_equal(count_containers(), 3);
    /* CORRECTION_NETWORK=isolated: the engine went away, so its networks were read again
     * (none meanwhile; the log says each change). An engine with a bridge (Podman) gets none
     * all along: no change to log. */
    if (strcmp(isolated_mode(), "default") == 0)
        wait_log(&run, mode_line, 2);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* The broker lists the connection of the daemon named `name` (a "<prog> <version> on <host>,
 * pid <pid>" string): the management API's connections, which it refreshes every few
 * seconds. */
static bool connection_listed(void *ud)
{
    const char *want = ud;
    long st;
    json_t *list = ct_mgmt("GET", "/connections", NULL, &st);
    bool found = false;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *name = json_string_value(
            json_object_get(json_object_get(c, "client_properties"), "connection_name"));
        if (name && strcmp(name, want) == 0)
            found = true;
    }
    json_decref(list);
    return found;
}

/* Which connection is which daemon, in the management UI: program, version, host, pid. */
static void test_connection_named(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_starter(&run, "named", NULL);
    wait_log(&run, "connected to RabbitMQ", 1);
    char host[256] = "", want[400];
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    snprintf(want, sizeof(want), "correctomatic-starter %s on %s, pid %ld", CT_VERSION, host,
             (long)run.pid);
    assert_true(ct_wait_until(connection_listed, want, 30000));
    assert_int_equal(stop_starter(&run), 0);
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

/* Reads every running message there is now, recording which container each job (work_id
 * "w-term-<i>") was announced with: a job announced twice must name the same container. */
static void drain_running(char ids[][80], int n)
{
    struct ct_msg *m;
    while ((m = ct_amqp_get("running_corrections", 0))) {
        json_t *j = ct_json(m->body);
        const char *w = json_string_value(json_object_get(j, "work_id"));
        const char *cid = json_string_value(json_object_get(j, "container_id"));
        assert_non_null(w);
        assert_non_null(cid);
        int i = -1;
        assert_int_equal(sscanf(w, "w-term-%d", &i), 1);
        assert_true(i >= 0 && i < n);
        if (ids[i][0] && strcmp(ids[i], cid) != 0)
            fail_msg("%s announced with two containers: %s and %s", w, ids[i], cid);
        snprintf(ids[i], sizeof(ids[i]), "%s", cid);
        json_decref(j);
        ct_msg_free(m);
    }
}

struct announced {
    char (*ids)[80];
    int n;
};

static bool all_announced(void *ud)
{
    struct announced *a = ud;
    drain_running(a->ids, a->n);
    for (int i = 0; i < a->n; i++)
        if (!a->ids[i][0])
            return false;
    return true;
}

/* SIGTERM while jobs are in flight. What the design guarantees, whatever the timing (a loaded
 * machine may pass SHUTDOWN_TIMEOUT with jobs mid-way): every job is announced on
 * running_corrections or back in pending_corrections; once a starter runs again, each job
 * returned adopts the container it had (if it had one), so there is exactly one container per
 * job, and every container is claimed by a running message. */
static void test_sigterm_in_flight(void **state)
{
    (void)state;
    struct ct_daemon run;
    enum { N = 20 };
    static char ids[N][80];
    memset(ids, 0, sizeof(ids));
    char *file = exercise("sigterm.txt", "abc");
    start_starter(&run, "sigterm", (const char *[]){"MAX_RUNNING=50", "SHUTDOWN_TIMEOUT=2s", NULL});
    wait_log(&run, "consuming pending jobs", 1);
    for (int i = 0; i < N; i++) {
        char wid[16];
        snprintf(wid, sizeof(wid), "w-term-%d", i);
        publish_job(wid, "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    }
    /* a loaded machine may take long to start the first of twenty at once */
    ct_daemon_wait_log(&run, "correction started", 1, 180000);
    assert_int_equal(stop_starter(&run), 0);
    /* Nothing lost: every job announced or still pending (a job returned at the deadline
     * while its running message was unconfirmed may be both). */
    drain_running(ids, N);
    int announced = 0;
    for (int i = 0; i < N; i++)
        announced += ids[i][0] != 0;
    int pending = ct_amqp_count("pending_corrections");
    if (announced + pending < N)
        fail_msg("announced %d + pending %d < %d", announced, pending, N);
    /* Every job returned is taken up again, adopting its container. */
    start_starter(&run, "sigterm-2", (const char *[]){"MAX_RUNNING=50", NULL});
    struct announced a = {ids, N};
    if (!ct_wait_until(all_announced, &a, 300000))
        fail_msg("not every job was announced after the restart");
    assert_int_equal(ct_amqp_count("pending_corrections"), 0);
    json_t *l = ct_docker_list(LABEL);
    if (json_array_size(l) != N)
        fail_msg("%zu containers for %d jobs", json_array_size(l), N);
    size_t k;
    json_t *c;
    json_array_foreach(l, k, c)
    {
        const char *id = json_string_value(json_object_get(c, "Id"));
        bool claimed = false;
        for (int i = 0; i < N; i++)
            claimed = claimed || strcmp(ids[i], id) == 0;
        if (!claimed)
            fail_msg("container %s is claimed by no running message", id);
    }
    json_decref(l);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* ---- fault injection ------------------------------------------------------------------------ */

/* tests/support/dockerproxy.py between a starter and the engine: it answers the requests its
 * rules match (a 500, a hang) and forwards the others. */
struct proxy {
    pid_t pid;
    char sock[256];
    char rules[512];
    char log[512];
    char env[300]; /* DOCKER_HOST=unix://<sock> */
};

static bool path_exists(void *ud)
{
    return access(ud, F_OK) == 0;
}

static void proxy_rules(struct proxy *p, const char *json)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.new", p->rules);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(json, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, p->rules), 0);
}

static void proxy_start(struct proxy *p, const char *name, const char *rules_json)
{
    char script[1024], out[600];
    snprintf(script, sizeof(script), "%s", __FILE__);
    char *slash = strrchr(script, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof(script) - (size_t)(slash - script), "/../support/dockerproxy.py");
    const char *tmp = ct_env("CT_TMP");
    snprintf(p->sock, sizeof(p->sock), "%s/px-%s.sock", tmp, name);
    snprintf(p->rules, sizeof(p->rules), "%s/proxy-%s.rules", tmp, name);
    snprintf(p->log, sizeof(p->log), "%s/proxy-%s.log", tmp, name);
    snprintf(out, sizeof(out), "%s/proxy-%s.out", tmp, name);
    snprintf(p->env, sizeof(p->env), "DOCKER_HOST=unix://%s", p->sock);
    unlink(p->sock);
    unlink(p->log);
    proxy_rules(p, rules_json);
    const char *upstream = ct_env("CT_DOCKER_HOST") + strlen("unix://");
    char *argv[] = {"python3", script,   "--listen", p->sock, "--upstream", (char *)upstream,
                    "--rules", p->rules, "--log",    p->log,  NULL};
    p->pid = ct_spawn("/usr/bin/python3", argv, NULL, out);
    ct_track(p->pid);
    if (!ct_wait_until(path_exists, p->sock, 20000))
        fail_msg("the Docker proxy did not start (see %s)", out);
}

static void proxy_stop(struct proxy *p)
{
    ct_terminate(p->pid, 5000);
    ct_untrack(p->pid);
    unlink(p->sock);
}

/* How many requests the rule `id` answered. */
static int proxy_count(const struct proxy *p, const char *id)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\"rule\": \"%s\"", id);
    return ct_file_count(p->log, needle);
}

struct proxy_wait {
    const struct proxy *p;
    const char *id;
    int n;
};

static bool proxy_reached(void *ud)
{
    struct proxy_wait *w = ud;
    return proxy_count(w->p, w->id) >= w->n;
}

static void proxy_wait(const struct proxy *p, const char *id, int n)
{
    struct proxy_wait w = {p, id, n};
    if (!ct_wait_until(proxy_reached, &w, WAIT_MS))
        fail_msg("the proxy's rule %s applied %d times, not %d", id, proxy_count(p, id), n);
}

/* A broker memory alarm: the broker stops reading from connections that publish, so a publish
 * stays unconfirmed. Cleared by the teardown whatever happens. */
static bool alarm_set;

static bool alarm_is(void *ud)
{
    long status = 0;
    json_t *nodes = ct_mgmt("GET", "/nodes", NULL, &status);
    bool on = json_is_true(json_object_get(json_array_get(nodes, 0), "mem_alarm"));
    json_decref(nodes);
    return status == 200 && on == *(bool *)ud;
}

static void broker_alarm(bool on)
{
    char *argv[] = {
        (char *)ct_env("CT_SERVERS"), "rabbitmqctl", "-q", "set_vm_memory_high_watermark",
        on ? "0.0000001" : "0.4",     NULL};
    char log[512];
    snprintf(log, sizeof(log), "%s/rabbitmqctl.log", ct_env("CT_TMP"));
    pid_t pid = ct_spawn(argv[0], argv, NULL, log);
    int status = -1;
    assert_int_equal(ct_wait_exit(pid, 120000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    alarm_set = on;
    if (!ct_wait_until(alarm_is, &on, WAIT_MS))
        fail_msg("the broker's memory alarm is not %s", on ? "on" : "off");
}

static bool publisher_blocked(void *ud)
{
    (void)ud;
    long status = 0;
    json_t *conns = ct_mgmt("GET", "/connections", NULL, &status);
    bool blocked = false;
    size_t i;
    json_t *c;
    json_array_foreach(conns, i, c)
    {
        const char *st = json_string_value(json_object_get(c, "state"));
        blocked = blocked || (st && strcmp(st, "blocked") == 0);
    }
    json_decref(conns);
    return blocked;
}

/* Waits until a connection has published under the alarm (the broker then says "blocked"). */
static void wait_publish_blocked(void)
{
    if (!ct_wait_until(publisher_blocked, NULL, WAIT_MS))
        fail_msg("no connection blocked by the alarm: nothing was published");
}

static int alarm_teardown(void **state)
{
    if (alarm_set)
        broker_alarm(false);
    return ct_reset_pipeline_fixture(state);
}

static bool queue_has(void *ud)
{
    const char *const *q = ud;
    return ct_amqp_count(q[0]) >= atoi(q[1]);
}

/* Waits until the queue holds at least n ready messages. */
static void wait_queue(const char *queue, int n)
{
    char count[16];
    snprintf(count, sizeof(count), "%d", n);
    const char *q[] = {queue, count};
    if (!ct_wait_until(queue_has, q, WAIT_MS))
        fail_msg("%s holds %d messages, not %d", queue, ct_amqp_count(queue), n);
}

static json_t *only_container(void)
{
    json_t *l = ct_docker_list(LABEL);
    assert_int_equal(json_array_size(l), 1);
    json_t *c = json_incref(json_array_get(l, 0));
    json_decref(l);
    return c;
}

/* The same bytes twice at MAX_RUNNING=1, none held: the second is returned to the queue untouched
 * (redelivered=true when it comes back) while the first runs; it is still a new job, not a
 * redelivery of the first. */
static void test_resubmission_returned_at_capacity(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("capacity.txt", "abc");
    publish_job("w-cap", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=3\"]", NULL);
    publish_job("w-cap", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=3\"]", NULL);
    start_starter(&run, "capacity", (const char *[]){"MAX_RUNNING=1", "HOLD_JOBS=0", NULL});
    json_t *r1 = get_json("running_corrections");
    json_t *r2 = get_json("running_corrections");
    assert_string_not_equal(json_string_value(json_object_get(r1, "job_id")),
                            json_string_value(json_object_get(r2, "job_id")));
    assert_string_not_equal(json_string_value(json_object_get(r1, "container_id")),
                            json_string_value(json_object_get(r2, "container_id")));
    assert_int_equal(count_containers(), 2);
    json_decref(r1);
    json_decref(r2);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* The same message_id twice at once (both delivered together): one container, which both
 * running messages name; the second waits for the first instead of taking its container for
 * an earlier delivery's. */
static void test_same_message_id_at_once(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("twice.txt", "abc");
    publish_job("w-twice", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", "msg-twice");
    publish_job("w-twice", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", "msg-twice");
    start_starter(&run, "twice", NULL);
    json_t *r1 = get_json("running_corrections");
    json_t *r2 = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r1, "container_id")),
                        json_string_value(json_object_get(r2, "container_id")));
    assert_string_equal(json_string_value(json_object_get(r1, "job_id")),
                        json_string_value(json_object_get(r2, "job_id")));
    json_t *c = only_container();
    assert_string_equal(json_string_value(json_object_get(c, "Id")),
                        json_string_value(json_object_get(r1, "container_id")));
    assert_string_equal(json_string_value(json_object_get(c, "State")), "running");
    json_decref(c);
    json_decref(r1);
    json_decref(r2);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* ---- faults: the engine's or the job's (items 3 and 4 of issue 10) ----------------------------
 */

/* A 500 on start while the engine is stopping (it does not answer /_ping right after) is the
 * engine's fault, whatever its text says ("no such file or directory" here): retried, the job
 * runs. The container, still "created", may all the same have run (an engine that stops as it
 * runs it comes back with that state and the run's log): it is replaced by a new one, never
 * started a second time. */
static void test_start_fault_engine_stopping(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("stopping.txt", "abc");
    proxy_start(&px, "stopping",
                "{\"rules\": ["
                "{\"id\": \"start\", \"method\": \"POST\", \"path\": \"/containers/[^/]+/start$\", "
                "\"times\": 1, \"status\": 500, \"message\": \"failed to update store for object "
                "type *libnetwork.endpoint: open : no such file or directory\"},"
                "{\"id\": \"ping\", \"path\": \"^/_ping$\", \"times\": 1, \"status\": 500, "
                "\"message\": \"engine stopping\"}]}");
    start_starter(&run, "stopping", (const char *[]){px.env, "RETRY_MIN=100ms", NULL});
    publish_job("w-stopping", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", NULL);
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), "w-stopping");
    assert_int_equal(proxy_count(&px, "start"), 1);
    assert_int_equal(proxy_count(&px, "ping"), 1);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    json_t *c = only_container();
    assert_string_equal(json_string_value(json_object_get(c, "Id")),
                        json_string_value(json_object_get(r, "container_id")));
    assert_string_equal(json_string_value(json_object_get(c, "State")), "running");
    assert_int_equal(ct_file_count(run.log, "job failed"), 0);
    assert_int_equal(ct_file_count(run.log, "the container may have run: replacing it"), 1);
    json_decref(c);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    proxy_stop(&px);
    free(file);
}

/* A start that reached the engine but whose answer was lost (a dockerd restart cuts the
 * connection; /_ping fails right after) ran the container all the same: the retry looks before
 * it starts again, and the correction runs once. Started twice, its log would hold the response
 * twice. */
static bool container_exited(void *ud)
{
    json_t *ins = ct_docker_inspect(ud);
    const char *st = json_string_value(json_object_get(json_object_get(ins, "State"), "Status"));
    bool over = !st || strcmp(st, "exited") == 0;
    json_decref(ins);
    return over;
}

static void test_start_answer_lost(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("lost-start.txt", "abc");
    proxy_start(&px, "lost-start",
                "{\"rules\": ["
                "{\"id\": \"start\", \"method\": \"POST\", \"path\": \"/containers/[^/]+/start$\", "
                "\"times\": 1, \"drop_answer\": true},"
                "{\"id\": \"ping\", \"path\": \"^/_ping$\", \"times\": 1, \"status\": 500, "
                "\"message\": \"engine restarting\"}]}");
    start_starter(&run, "lost-start", (const char *[]){px.env, "RETRY_MIN=100ms", NULL});
    publish_job("w-lost-start", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), "w-lost-start");
    assert_int_equal(proxy_count(&px, "start"), 1);
    assert_int_equal(proxy_count(&px, "ping"), 1);
    const char *cid = json_string_value(json_object_get(r, "container_id"));
    if (!ct_wait_until(container_exited, (void *)cid, WAIT_MS))
        fail_msg("the container did not exit");
    char *path = NULL;
    assert_true(asprintf(&path, "/containers/%s/logs?stdout=1&stderr=0", cid) > 0);
    long st;
    size_t len;
    char *logs = ct_docker_raw("GET", path, NULL, NULL, 0, &st, &len);
    assert_int_equal(st, 200);
    size_t runs = 0;
    for (const char *p = logs; (p = memmem(p, len - (size_t)(p - logs), "\"success\"", 9)); p += 9)
        runs++;
    assert_int_equal(runs, 1);
    assert_int_equal(ct_file_count(run.log, "the container started despite the error"), 1);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    free(logs);
    free(path);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    proxy_stop(&px);
    free(file);
}

/* A retried start answered "endpoint ... already exists" (a 403 an engine restart leaves
 * behind) while the engine is healthy: not the image's fault (its command is not what failed):
 * the container is replaced by a new one, under a new name, and the job runs. */
static void test_start_fault_stale_endpoint(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("endpoint.txt", "abc");
    proxy_start(&px, "endpoint",
                "{\"rules\": [{\"id\": \"start\", \"method\": \"POST\", "
                "\"path\": \"/containers/[^/]+/start$\", \"times\": 2, \"status\": 403, "
                "\"message\": \"endpoint with name correction-x already exists in network "
                "none\"}]}");
    start_starter(&run, "endpoint", (const char *[]){px.env, "RETRY_MIN=100ms", NULL});
    publish_job("w-endpoint", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", NULL);
    json_t *r = get_json("running_corrections");
    assert_int_equal(proxy_count(&px, "start"), 2);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    /* the containers that could not start were removed; the one running has a new name */
    json_t *c = only_container();
    assert_string_equal(json_string_value(json_object_get(c, "Id")),
                        json_string_value(json_object_get(r, "container_id")));
    const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
    assert_non_null(name);
    assert_non_null(strstr(name, json_string_value(json_object_get(r, "job_id"))));
    assert_int_equal(ct_file_count(run.log, "creating the container again"), 2);
    json_decref(c);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    proxy_stop(&px);
    free(file);
}

/* A 5xx that persists for one job (its image, say) while the engine answers: retried within
 * JOB_RETRY_BUDGET, then an error the caller hears; meanwhile the job holds no MAX_RUNNING
 * slot, and another job runs. */
static void test_retry_budget_and_slot(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("budget.txt", "abc");
    proxy_start(&px, "budget",
                "{\"rules\": [{\"id\": \"create\", \"method\": \"POST\", "
                "\"path\": \"^/containers/create$\", \"body\": \"ct-echo\", \"status\": 500, "
                "\"message\": \"the image is broken\"}]}");
    start_starter(&run, "budget",
                  (const char *[]){px.env, "MAX_RUNNING=1", "RETRY_MIN=200ms", "RETRY_MAX=1s",
                                   "JOB_RETRY_BUDGET=8s", NULL});
    int64_t t0 = ct_now_ms();
    publish_job("w-broken", "ct-echo:latest", file, "http://h/cb", NULL, NULL);
    proxy_wait(&px, "create", 2);
    /* the broken job waits to retry: the other one gets the only slot */
    publish_job("w-fine", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), "w-fine");
    json_decref(r);
    json_t *j = get_json("finished_corrections");
    int64_t took = ct_now_ms() - t0;
    assert_string_equal(json_string_value(json_object_get(j, "work_id")), "w-broken");
    assert_true(json_is_true(json_object_get(j, "error")));
    const char *data = json_string_value(json_object_get(j, "correction_data"));
    assert_non_null(data);
    if (strcmp(data, "container create failed - the image is broken") != 0)
        fail_msg("unexpected reason: %s", data);
    if (took < 8000)
        fail_msg("reported after %lld ms, before JOB_RETRY_BUDGET", (long long)took);
    assert_true(proxy_count(&px, "create") >= 3);
    json_decref(j);
    assert_int_equal(stop_starter(&run), 0);
    proxy_stop(&px);
    free(file);
}

/* The same for an upload that keeps failing with a 5xx: "upload failed" once the budget is
 * spent, and the container is removed. */
static void test_retry_budget_upload(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("budget-upload.txt", "abc");
    proxy_start(&px, "budget-upload",
                "{\"rules\": [{\"id\": \"upload\", \"method\": \"PUT\", "
                "\"path\": \"^/containers/[^/]+/archive$\", \"status\": 500, "
                "\"message\": \"cannot extract the archive\"}]}");
    start_starter(
        &run, "budget-upload",
        (const char *[]){px.env, "RETRY_MIN=200ms", "RETRY_MAX=1s", "JOB_RETRY_BUDGET=2s", NULL});
    publish_job("w-upload", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    json_t *j = get_json("finished_corrections");
    const char *data = json_string_value(json_object_get(j, "correction_data"));
    assert_non_null(data);
    if (strcmp(data, "upload failed - cannot extract the archive") != 0)
        fail_msg("unexpected reason: %s", data);
    assert_true(proxy_count(&px, "upload") >= 2);
    assert_int_equal(count_containers(), 0);
    json_decref(j);
    assert_int_equal(stop_starter(&run), 0);
    proxy_stop(&px);
    free(file);
}

/* DOCKER_PULL and a registry that cannot be reached: the pull is retried within
 * JOB_RETRY_BUDGET (the engine answers), then "image pull failed" for the caller. */
static void test_pull_unreachable_registry(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("pull.txt", "abc");
    start_starter(&run, "pull-unreachable",
                  (const char *[]){"DOCKER_PULL=true", "RETRY_MIN=200ms", "RETRY_MAX=1s",
                                   "JOB_RETRY_BUDGET=3s", NULL});
    publish_job("w-pull", "127.0.0.1:1/ct/nothing:1", file, "http://h/cb", NULL, NULL);
    json_t *j = get_json("finished_corrections");
    assert_string_equal(json_string_value(json_object_get(j, "work_id")), "w-pull");
    const char *data = json_string_value(json_object_get(j, "correction_data"));
    assert_non_null(data);
    if (strncmp(data, "image pull failed - 127.0.0.1:1/ct/nothing:1: ", 46) != 0)
        fail_msg("unexpected reason: %s", data);
    assert_true(ct_file_count(run.log, "infrastructure fault, will retry") >= 1);
    assert_int_equal(count_containers(), 0);
    json_decref(j);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* ---- shutdown with a publish unconfirmed (item 5) ---------------------------------------- */

static void test_shutdown_publish_unconfirmed(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("alarm.txt", "abc");
    publish_job("w-alarm", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", NULL);
    broker_alarm(true);
    start_starter(&run, "alarm", (const char *[]){"SHUTDOWN_TIMEOUT=1s", NULL});
    wait_publish_blocked(); /* the running message is published, not confirmed */
    int status = stop_starter(&run);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the starter did not exit cleanly (wait status 0x%x)", status);
    assert_int_equal(ct_file_count(run.log, "shutdown timeout, unfinished jobs returned"), 1);
    broker_alarm(false);
    /* the job is back in the queue */
    wait_queue("pending_corrections", 1);
    struct ct_msg *m = ct_amqp_get("pending_corrections", WAIT_MS);
    assert_non_null(m);
    assert_non_null(strstr(m->body, "w-alarm"));
    ct_msg_free(m);
    free(file);
}

/* ---- redelivery (items 8 and 9) ------------------------------------------------------------ */

/* The starter dies after creating a container and before its ack; the redelivered message
 * adopts that container (one container), even with the file deleted since (CHECK_FILE: the
 * file is in the container already). */
static void test_redelivery_adopts_container(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("adopt.txt", "adopt me");
    proxy_start(&px, "adopt",
                "{\"rules\": [{\"id\": \"start\", \"method\": \"POST\", "
                "\"path\": \"/containers/[^/]+/start$\", \"hang\": true}]}");
    start_starter(&run, "adopt-1", (const char *[]){px.env, NULL});
    publish_job("w-adopt", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", NULL);
    proxy_wait(&px, "start", 1); /* created and uploaded, the start hangs */
    ct_daemon_kill(&run);
    proxy_stop(&px);
    json_t *c = only_container();
    char id[80];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "Id")));
    json_decref(c);
    unlink(file); /* as DELETE_EXERCISE_FILE would have after a lost ack */
    start_starter(&run, "adopt-2", (const char *[]){"DELETE_EXERCISE_FILE=true", NULL});
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "container_id")), id);
    c = only_container();
    assert_string_equal(json_string_value(json_object_get(c, "Id")), id);
    assert_string_equal(json_string_value(json_object_get(c, "State")), "running");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "Labels"), "correctomatic.job_id")),
        json_string_value(json_object_get(r, "job_id")));
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    assert_int_equal(ct_file_count(run.log, "file not found"), 0);
    json_decref(c);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* A redelivery that finds its container created, never started, with its file still there: the
 * earlier delivery may have asked for the start just before it died (a request the engine may
 * still run), so the container is replaced by one of its own under a new name rather than
 * started a second time: exactly one container remains, the one the running message names. */
static void test_redelivery_replaces_created_container(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("replace.txt", "replace me");
    proxy_start(&px, "replace",
                "{\"rules\": [{\"id\": \"start\", \"method\": \"POST\", "
                "\"path\": \"/containers/[^/]+/start$\", \"hang\": true}]}");
    start_starter(&run, "replace-1", (const char *[]){px.env, NULL});
    publish_job("w-replace", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", NULL);
    proxy_wait(&px, "start", 1); /* created and uploaded, the start hangs */
    ct_daemon_kill(&run);
    proxy_stop(&px);
    json_t *c = only_container();
    char id[80];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "Id")));
    json_decref(c);
    start_starter(&run, "replace-2", NULL);
    json_t *r = get_json("running_corrections");
    const char *rid = json_string_value(json_object_get(r, "container_id"));
    assert_non_null(rid);
    assert_string_not_equal(rid, id);
    c = only_container();
    assert_string_equal(json_string_value(json_object_get(c, "Id")), rid);
    assert_string_equal(json_string_value(json_object_get(c, "State")), "running");
    assert_int_equal(ct_file_count(run.log, "replacing the created container"), 1);
    json_decref(c);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* DELETE_EXERCISE_FILE and a lost ack: the correction runs, its file is gone, the message comes
 * back. The redelivery finds the running container before looking for the file. */
static void test_redelivery_file_deleted(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("lostack.txt", "abc");
    publish_job("w-lostack", "ct-sleeper:latest", file, "http://h/cb", "[\"SLEEP=60\"]", NULL);
    broker_alarm(true);
    start_starter(&run, "lostack-1", (const char *[]){"DELETE_EXERCISE_FILE=true", NULL});
    wait_publish_blocked(); /* started; the running message is not confirmed */
    ct_daemon_kill(&run);
    unlink(file);
    broker_alarm(false);
    json_t *c = only_container();
    char id[80];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "Id")));
    json_decref(c);
    start_starter(&run, "lostack-2", (const char *[]){"DELETE_EXERCISE_FILE=true", NULL});
    wait_log(&run, "correction started", 1);
    /* every running message names that one container (the first starter's publish may have
     * reached the broker too) */
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "container_id")), id);
    json_decref(r);
    struct ct_msg *m;
    while ((m = ct_amqp_get("running_corrections", 0))) {
        assert_non_null(strstr(m->body, id));
        ct_msg_free(m);
    }
    assert_int_equal(count_containers(), 1);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    assert_int_equal(ct_file_count(run.log, "file not found"), 0);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* ---- text and sizes (items 1, 2 and 6) ------------------------------------------------------- */

/* A param name with accented letters: its error detail is cut at a byte count, mid-character
 * before; it must end as an error the caller hears, in valid UTF-8, not loop. */
static void test_accented_param_name(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("accent.txt", "abc");
    char param[256] = "[\"a";
    for (int i = 0; i < 60; i++)
        strcat(param, "\xc3\xa9");
    strcat(param, "=1\"]");
    start_starter(&run, "accent", NULL);
    publish_job("w-accent", "ct-ok:latest", file, "http://h/cb", param, NULL);
    struct ct_msg *m = ct_amqp_get("finished_corrections", WAIT_MS);
    assert_non_null(m);
    assert_true(text_utf8_valid(m->body, m->len));
    json_t *j = ct_json(m->body);
    const char *data = json_string_value(json_object_get(j, "correction_data"));
    assert_non_null(data);
    if (strncmp(data, "invalid param - ", 16) != 0)
        fail_msg("unexpected reason: %s", data);
    assert_true(text_utf8_valid(data, strlen(data)));
    assert_true(json_is_true(json_object_get(j, "error")));
    assert_int_equal(ct_file_count(run.log, "infrastructure fault"), 0);
    json_decref(j);
    ct_msg_free(m);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* Every field of the running message is bounded: with MAX_MESSAGE_BYTES at its minimum and the
 * largest work_id and callback, it still fits, and so do the labels. */
static void test_running_message_bounds(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("bounds.txt", "abc");
    char max_bytes[64];
    snprintf(max_bytes, sizeof(max_bytes), "MAX_MESSAGE_BYTES=%d", MSG_MIN_MESSAGE_BYTES);
    static char wid[MSG_MAX_WORK_ID_BYTES + 1], cb[MSG_MAX_URL_BYTES + 1];
    memset(wid, 'w', MSG_MAX_WORK_ID_BYTES);
    wid[MSG_MAX_WORK_ID_BYTES] = '\0';
    int n = snprintf(cb, sizeof(cb), "http://receiver.example/");
    memset(cb + n, 'c', sizeof(cb) - 1 - (size_t)n);
    cb[sizeof(cb) - 1] = '\0';
    start_starter(&run, "bounds", (const char *[]){max_bytes, "DONT_START_CONTAINER=true", NULL});
    publish_job(wid, "ct-ok:latest", file, cb, NULL, NULL);
    struct ct_msg *m = ct_amqp_get("running_corrections", WAIT_MS);
    assert_non_null(m);
    assert_true(m->len <= MSG_MIN_MESSAGE_BYTES);
    json_t *r = ct_json(m->body);
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), wid);
    assert_string_equal(json_string_value(json_object_get(r, "callback")), cb);
    json_t *c = ct_docker_inspect(json_string_value(json_object_get(r, "container_id")));
    assert_non_null(c);
    json_t *labels = json_object_get(json_object_get(c, "Config"), "Labels");
    assert_string_equal(json_string_value(json_object_get(labels, "correctomatic.callback")), cb);
    assert_int_equal(strlen(json_string_value(json_object_get(labels, "correctomatic.work_id"))),
                     MSG_MAX_WORK_ID_BYTES + 2);
    json_decref(c);
    json_decref(r);
    ct_msg_free(m);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* A pending message over MAX_MESSAGE_BYTES is parked in pending_corrections.invalid with its
 * reason (the link does it before the starter sees it), never dropped; the next job runs. */
static void test_oversized_pending_parked(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("oversized.txt", "abc");
    char max_bytes[64];
    snprintf(max_bytes, sizeof(max_bytes), "MAX_MESSAGE_BYTES=%d", MSG_MIN_MESSAGE_BYTES);
    start_starter(&run, "oversized",
                  (const char *[]){max_bytes, "DONT_START_CONTAINER=true", NULL});
    static char big[MSG_MIN_MESSAGE_BYTES + 4096];
    int n = snprintf(big, sizeof(big),
                     "{\"work_id\":\"w-big\",\"image\":\"ct-ok\",\"file\":\"%s\","
                     "\"callback\":\"http://h/cb\",\"params\":[\"X=",
                     file);
    memset(big + n, 'x', MSG_MIN_MESSAGE_BYTES);
    snprintf(big + n + MSG_MIN_MESSAGE_BYTES, sizeof(big) - (size_t)n - MSG_MIN_MESSAGE_BYTES,
             "\"]}");
    ct_amqp_publish("pending_corrections", big, NULL);
    publish_job("w-after", "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    struct ct_msg *m = ct_amqp_get("pending_corrections.invalid", WAIT_MS);
    assert_non_null(m);
    assert_int_equal(m->len, strlen(big));
    assert_memory_equal(m->body, big, m->len);
    const char *reason = json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
    assert_non_null(reason);
    if (strncmp(reason, "message too large - ", 20) != 0)
        fail_msg("unexpected reason: %s", reason);
    ct_msg_free(m);
    json_t *r = get_json("running_corrections");
    assert_string_equal(json_string_value(json_object_get(r, "work_id")), "w-after");
    json_decref(r);
    assert_int_equal(ct_amqp_count("pending_corrections"), 0);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    assert_int_equal(stop_starter(&run), 0);
    free(file);
}

/* ---- EXERCISE_MODE=bind (issue 12) ------------------------------------------------------- */

/* The starter in bind mode, the engine seeing the files where the starter does. */
static void start_bind(struct ct_daemon *run, const char *name, const char *extra)
{
    char host[PATH_MAX + 32];
    snprintf(host, sizeof(host), "EXERCISE_HOST_DIR=%s", ct_env("CT_TMP"));
    start_starter(run, name, (const char *[]){"EXERCISE_MODE=bind", host, extra, NULL});
}

/* The bind mount of /tmp/exercise in an inspection, or NULL. */
static json_t *exercise_mount(json_t *inspect)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(inspect, "Mounts"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "Destination")), "/tmp/exercise") == 0 &&
            strcmp(json_string_value(json_object_get(m, "Type")), "bind") == 0)
            return m;
    }
    return NULL;
}

static void expect_bound(json_t *inspect, const char *file)
{
    json_t *m = exercise_mount(inspect);
    if (!m)
        fail_msg("no bind mount at /tmp/exercise: %s",
                 json_dumps(json_object_get(inspect, "Mounts"), JSON_COMPACT));
    assert_string_equal(json_string_value(json_object_get(m, "Source")), file);
    assert_true(json_is_false(json_object_get(m, "RW")));
}

#define BIND_SCRIPT                                                                                \
    "# s12-bind-marker\n"                                                                          \
    "echo \"uid=$(id -u)\"\n"                                                                      \
    "echo \"first line: $(head -n 1 /tmp/exercise)\"\n"                                            \
    "echo x >> /tmp/exercise 2>/dev/null && echo 'exercise writable' || echo 'exercise "           \
    "read-only'\n"                                                                                 \
    "rm -f /tmp/exercise 2>/dev/null; [ -e /tmp/exercise ] && echo 'exercise still there'\n"       \
    "echo hi > /tmp/scratch && echo 'tmp writable' || echo 'tmp not writable'\n"

/* EXERCISE_MODE=bind: the submission is mounted read-only at /tmp/exercise from its path under
 * EXERCISE_HOST_DIR, nothing uploaded: the correction reads it, cannot write or remove it, and
 * /tmp stays writable; the same with CORRECTION_READ_ONLY and a user other than root (the
 * mount inside the /tmp volume); an image without /tmp gets the mount point. */
static void test_bind_mode(void **state)
{
    (void)state;
    struct ct_daemon run;
    start_bind(&run, "bind", NULL);
    wait_log(&run, "exercise_mode=bind", 1);
    json_t *c;
    char *out = shell_job("w-bind", BIND_SCRIPT, &c);
    char file[PATH_MAX + 32];
    snprintf(file, sizeof(file), "%s/w-bind.sh", ct_env("CT_TMP"));
    expect_bound(c, file);
    expect_output(out, "uid=0");
    expect_output(out, "first line: # s12-bind-marker");
    expect_output(out, "exercise read-only");
    expect_output(out, "exercise still there");
    expect_output(out, "tmp writable");
    free(out);
    json_decref(c);

    /* ct-echo prints it; the file on the host is untouched */
    char *echo = exercise("s12-echo.txt", "s12 echo content");
    publish_job("w-bind-echo", "ct-echo:latest", echo, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    const char *cid = json_string_value(json_object_get(r, "container_id"));
    assert_true(ct_docker_wait(cid, 60000) >= 0);
    out = ct_docker_logs(cid, true, false, NULL);
    assert_non_null(out);
    assert_string_equal(out, "s12 echo content");
    free(out);
    c = ct_docker_inspect(cid);
    expect_bound(c, echo);
    json_decref(c);
    json_decref(r);

    /* an image without /tmp: the engine makes the mount point */
    char *notmp = exercise("s12-notmp.txt", "content");
    publish_job("w-bind-notmp", "ct-notmp:latest", notmp, "http://h/cb", NULL, NULL);
    r = get_json("running_corrections");
    cid = json_string_value(json_object_get(r, "container_id"));
    assert_int_equal(ct_docker_wait(cid, 60000), 0);
    out = ct_docker_logs(cid, true, false, NULL);
    assert_non_null(out);
    expect_output(out, "no tmp");
    free(out);
    c = ct_docker_inspect(cid);
    expect_bound(c, notmp);
    json_decref(c);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    ct_docker_remove_labelled(LABEL);

    start_bind(&run, "bind-ro", "CORRECTION_READ_ONLY=true");
    wait_log(&run, "exercise_mode=bind", 1);
    out = shell_job("w-bind-ro", BIND_SCRIPT "id -u\n", &c);
    snprintf(file, sizeof(file), "%s/w-bind-ro.sh", ct_env("CT_TMP"));
    expect_bound(c, file);
    expect_output(out, "first line: # s12-bind-marker");
    expect_output(out, "exercise read-only");
    expect_output(out, "tmp writable");
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
    ct_docker_remove_labelled(LABEL);

    start_starter(&run, "bind-user",
                  (const char *[]){"EXERCISE_MODE=bind", "CORRECTION_READ_ONLY=true",
                                   "CORRECTION_USER=65534:65534", NULL});
    wait_log(&run, "exercise_mode=bind", 1);
    out = shell_job("w-bind-user", BIND_SCRIPT, &c);
    expect_output(out, "uid=65534");
    expect_output(out, "first line: # s12-bind-marker");
    expect_output(out, "exercise read-only");
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
    free(echo);
    free(notmp);
}

/* EXERCISE_MODE=bind confines the file as the upload does: every path leading out of
 * EXERCISE_DIR is "file not allowed", nothing mounted. A file that cannot be mounted safely is
 * uploaded instead: one reached through a link inside the folder (the engine would follow the
 * link again when it mounts), one not readable by any user. */
static void test_bind_mode_confined(void **state)
{
    (void)state;
    struct ct_daemon run;
    const char *tmp = ct_env("CT_TMP");
    char *key = outside_path("s12-key.pem");
    write_file(key, "-----BEGIN PRIVATE KEY----- not for students");
    char p[7][PATH_MAX + 64];
    snprintf(p[0], sizeof(p[0]), "%s", key);
    snprintf(p[1], sizeof(p[1]), "%s/../s12-key.pem", tmp);
    snprintf(p[2], sizeof(p[2]), "%s/s12-abs-link", tmp);
    unlink(p[2]);
    assert_int_equal(symlink(key, p[2]), 0);
    snprintf(p[3], sizeof(p[3]), "%s/s12-rel-link", tmp);
    unlink(p[3]);
    assert_int_equal(symlink("../s12-key.pem", p[3]), 0);
    char dirlink[PATH_MAX];
    snprintf(dirlink, sizeof(dirlink), "%s/s12-up", tmp);
    unlink(dirlink);
    assert_int_equal(symlink("..", dirlink), 0);
    snprintf(p[4], sizeof(p[4]), "%s/s12-key.pem", dirlink);
    snprintf(p[5], sizeof(p[5]), "/proc/self/root%s", key);
    snprintf(p[6], sizeof(p[6]), "s12-key.pem");

    start_bind(&run, "bind-outside", "DONT_START_CONTAINER=true");
    char wid[32];
    for (int i = 0; i < 7; i++) {
        snprintf(wid, sizeof(wid), "w-bout-%d", i);
        publish_job(wid, "ct-echo:latest", p[i], "http://h/cb", NULL, NULL);
    }
    for (int i = 0; i < 7; i++) {
        json_t *j = get_json("finished_corrections");
        expect_error(j, "file not allowed - ");
        json_decref(j);
    }
    assert_int_equal(count_containers(), 0);
    assert_null(ct_amqp_get("running_corrections", 0));

    /* a link inside the folder to a file inside, through a folder link too: uploaded */
    char *target = exercise("s12-target.txt", "through a link");
    char sub[PATH_MAX + 32], link[PATH_MAX + 64], via[PATH_MAX + 96];
    snprintf(sub, sizeof(sub), "%s/s12-sub", tmp);
    snprintf(link, sizeof(link), "%s/s12-inner-link", tmp);
    snprintf(via, sizeof(via), "%s/s12-sub-link/s12-target.txt", tmp);
    unlink(link);
    assert_int_equal(symlink("s12-target.txt", link), 0);
    char sublink[PATH_MAX + 32];
    snprintf(sublink, sizeof(sublink), "%s/s12-sub-link", tmp);
    unlink(sublink);
    assert_int_equal(symlink(".", sublink), 0);
    char *secret = exercise("s12-private.txt", "owner only");
    assert_int_equal(chmod(secret, 0600), 0);
    const char *fallback[3] = {link, via, secret};
    const char *want[3] = {"through a link", "through a link", "owner only"};
    for (int i = 0; i < 3; i++) {
        snprintf(wid, sizeof(wid), "w-bfall-%d", i);
        publish_job(wid, "ct-echo:latest", fallback[i], "http://h/cb", NULL, NULL);
        json_t *r = get_json("running_corrections");
        const char *cid = json_string_value(json_object_get(r, "container_id"));
        json_t *c = ct_docker_inspect(cid);
        if (exercise_mount(c))
            fail_msg("%s was mounted", fallback[i]);
        size_t len;
        char *got = ct_docker_read_file(cid, "/tmp/exercise", &len);
        assert_non_null(got);
        assert_string_equal(got, want[i]);
        free(got);
        json_decref(c);
        json_decref(r);
    }
    /* said once each, and never for the files refused above */
    assert_int_equal(ct_file_count(run.log, "cannot be mounted, uploading it"), 3);
    assert_int_equal(ct_file_count(run.log, "not readable by any user"), 1);
    /* a plain one in a subfolder: mounted */
    assert_int_equal(mkdir(sub, 0755) == 0 || errno == EEXIST, 1);
    char plain[PATH_MAX + 64];
    snprintf(plain, sizeof(plain), "%s/s12-plain.txt", sub);
    write_file(plain, "plain");
    assert_int_equal(chmod(plain, 0644), 0);
    publish_job("w-bplain", "ct-echo:latest", plain, "http://h/cb", NULL, NULL);
    json_t *r = get_json("running_corrections");
    json_t *c = ct_docker_inspect(json_string_value(json_object_get(r, "container_id")));
    expect_bound(c, plain);
    json_decref(c);
    json_decref(r);
    assert_int_equal(stop_starter(&run), 0);
    assert_int_equal(access(key, F_OK), 0);
    unlink(key);
    for (int i = 2; i < 4; i++)
        unlink(p[i]);
    unlink(dirlink);
    unlink(link);
    unlink(sublink);
    unlink(plain);
    rmdir(sub);
    free(key);
    free(target);
    free(secret);
}

/* EXERCISE_MODE=bind: the engine mounts the file at start, by its path. A folder on the path
 * swapped for a link leading out after the job was taken (here while the create is retried)
 * must not make it mount the outside file: the path is checked again just before the start,
 * and the job is "file not allowed". */
static void test_bind_mode_swapped_before_start(void **state)
{
    (void)state;
    struct ct_daemon run;
    struct proxy px;
    const char *tmp = ct_env("CT_TMP");
    char *outside = outside_path("s12-outside");
    char dir[PATH_MAX + 32], real[PATH_MAX + 32], file[PATH_MAX + 64], secret[PATH_MAX + 64];
    snprintf(dir, sizeof(dir), "%s/s12-race", tmp);
    snprintf(real, sizeof(real), "%s/s12-race-real", tmp);
    snprintf(file, sizeof(file), "%s/sub.txt", dir);
    snprintf(secret, sizeof(secret), "%s/sub.txt", outside);
    char realfile[PATH_MAX + 64];
    snprintf(realfile, sizeof(realfile), "%s/sub.txt", real);
    unlink(realfile); /* what an interrupted run may have left */
    rmdir(real);
    unlink(dir);
    assert_true(mkdir(outside, 0755) == 0 || errno == EEXIST);
    write_file(secret, "OUTSIDE SECRET");
    assert_int_equal(chmod(secret, 0644), 0);
    assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
    write_file(file, "inside");
    assert_int_equal(chmod(file, 0644), 0);
    proxy_start(&px, "bindrace",
                "{\"rules\": [{\"id\": \"create\", \"method\": \"POST\", "
                "\"path\": \"^/containers/create$\", \"body\": \"ct-echo\", \"times\": 1, "
                "\"status\": 500, \"message\": \"busy\"}]}");
    char host[PATH_MAX + 32];
    snprintf(host, sizeof(host), "EXERCISE_HOST_DIR=%s", tmp);
    start_starter(&run, "bindrace",
                  (const char *[]){px.env, "EXERCISE_MODE=bind", host, "RETRY_MIN=1500ms", NULL});
    publish_job("w-bind-race", "ct-echo:latest", file, "http://h/cb", NULL, NULL);
    proxy_wait(&px, "create", 1);
    /* the job holds its checked path; the folder becomes a link to the outside one */
    assert_int_equal(rename(dir, real), 0);
    assert_int_equal(symlink(outside, dir), 0);
    json_t *j = get_json("finished_corrections");
    expect_error(j, "file not allowed - ");
    json_decref(j);
    assert_null(ct_amqp_get("running_corrections", 0));
    assert_int_equal(stop_starter(&run), 0);
    proxy_stop(&px);
    unlink(dir);
    unlink(secret);
    rmdir(outside);
    unlink(realfile);
    rmdir(real);
    free(outside);
}

/* Settings of bind mode refused at start: with DELETE_EXERCISE_FILE (the correction reads the
 * file until its container is gone), an unknown mode, a relative EXERCISE_HOST_DIR. */
static void test_bind_mode_config(void **state)
{
    (void)state;
    struct ct_daemon run;
    int status = -1;
    const char *bad[][3] = {
        {"EXERCISE_MODE=bind", "DELETE_EXERCISE_FILE=true", "DELETE_EXERCISE_FILE=true: a mounted"},
        {"EXERCISE_MODE=copy", NULL, "invalid EXERCISE_MODE"},
        {"EXERCISE_MODE=bind", "EXERCISE_HOST_DIR=uploads", "invalid EXERCISE_HOST_DIR"},
        {"EXERCISE_MODE=bind", "EXERCISE_HOST_DIR=/", "invalid EXERCISE_HOST_DIR"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        start_starter(&run, "badbind", (const char *[]){bad[i][0], bad[i][1], NULL});
        assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
        ct_untrack(run.pid);
        if (ct_file_count(run.log, bad[i][2]) == 0)
            fail_msg("%s %s: no '%s' in the log", bad[i][0], bad[i][1] ? bad[i][1] : "", bad[i][2]);
    }
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

    start_starter(&run, "badconfig3", (const char *[]){"JOB_RETRY_BUDGET=soon", NULL});
    assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ct_untrack(run.pid);
    assert_true(ct_file_count(run.log, "JOB_RETRY_BUDGET") > 0);

    /* No EXERCISE_DIR, no explicit opt-out: refused, saying how to set it. */
    start_starter(&run, "noexdir", (const char *[]){"EXERCISE_DIR=", NULL});
    assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ct_untrack(run.pid);
    assert_true(ct_file_count(run.log, "EXERCISE_DIR is not set") > 0);
    assert_true(ct_file_count(run.log, "ALLOW_ANY_EXERCISE_PATH=true") > 0);
    start_starter(&run, "bothexdir", (const char *[]){"ALLOW_ANY_EXERCISE_PATH=true", NULL});
    assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ct_untrack(run.pid);
    assert_true(ct_file_count(run.log, "choose one") > 0);
    const char *bad[][2] = {{"EXERCISE_DIR=/", "invalid EXERCISE_DIR"},
                            {"EXERCISE_DIR=relative/dir", "invalid EXERCISE_DIR"},
                            {"EXERCISE_DIR=/nonexistent-s11", "invalid EXERCISE_DIR"},
                            {"CORRECTION_USER=root\"x", "invalid CORRECTION_USER"},
                            {"CORRECTION_RUNTIME=a b", "invalid CORRECTION_RUNTIME"},
                            {"CORRECTION_MAX_FILE_SIZE=huge", "CORRECTION_MAX_FILE_SIZE"},
                            {"CORRECTION_MAX_OPEN_FILES=3", "CORRECTION_MAX_OPEN_FILES"},
                            {"CORRECTION_READ_ONLY=maybe", "CORRECTION_READ_ONLY"},
                            {"RABBITMQ_HOST=rmq-1,,rmq-3", "invalid RABBITMQ_HOST"},
                            {"RABBITMQ_HOST=rmq-1:99999", "a port must be 1 to 65535"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        start_starter(&run, "badsetting", (const char *[]){bad[i][0], NULL});
        assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
        ct_untrack(run.pid);
        if (ct_file_count(run.log, bad[i][1]) == 0)
            fail_msg("%s: no '%s' in the log", bad[i][0], bad[i][1]);
    }

    char *argv[] = {STARTER, "--help", NULL};
    char log[512];
    snprintf(log, sizeof(log), "%s/starter-help.log", ct_env("CT_TMP"));
    unlink(log);
    pid_t pid = ct_spawn(STARTER, argv, NULL, log);
    assert_int_equal(ct_wait_exit(pid, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *names[] = {"RABBITMQ_HOST",
                           "RABBITMQ_PORT",
                           "RABBITMQ_USER",
                           "RABBITMQ_PASSWORD",
                           "RABBITMQ_VHOST",
                           "DOCKER_HOST",
                           "LOG_LEVEL",
                           "MAX_RUNNING",
                           "CORRECTION_NETWORK",
                           "CORRECTION_MEMORY",
                           "CORRECTION_CPUS",
                           "CORRECTION_PIDS",
                           "MAX_EXERCISE_BYTES",
                           "EXERCISE_DIR",
                           "ALLOW_ANY_EXERCISE_PATH",
                           "DELETE_EXERCISE_FILE",
                           "DONT_START_CONTAINER",
                           "JOB_RETRY_BUDGET",
                           "CORRECTION_MAX_FILE_SIZE",
                           "CORRECTION_MAX_OPEN_FILES",
                           "CORRECTION_READ_ONLY",
                           "CORRECTION_USER",
                           "CORRECTION_RUNTIME",
                           "EXERCISE_MODE",
                           "EXERCISE_HOST_DIR"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (ct_file_count(log, names[i]) == 0)
            fail_msg("--help does not list %s", names[i]);
    }
}

/* ---- the network (issue 12: the price of "no network") --------------------------------- */

/* A TCP listener on every IPv4 address of this machine; its port in *port. */
static int host_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Every IPv4 address of this machine's interfaces (loopback first), space-separated. */
static void host_addresses(char *buf, size_t len)
{
    struct ifaddrs *ifs;
    assert_int_equal(getifaddrs(&ifs), 0);
    size_t n = (size_t)snprintf(buf, len, "127.0.0.1");
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof(a));
        if (strcmp(a, "127.0.0.1") != 0 && n < len)
            n += (size_t)snprintf(buf + n, len - n, " %s", a);
    }
    freeifaddrs(ifs);
    assert_true(n < len);
}

/* What a correction can see and reach of the network, printed by a ct-shell script: its
 * interfaces, its IPv4 routes, and a connection to every address of the host, on a port the
 * test listens on. */
#define NET_SCRIPT                                                                                 \
    "echo \"interfaces: $(ls /sys/class/net | tr '\\n' ' ')\"\n"                                   \
    "echo \"routes: $(tail -n +2 /proc/net/route | wc -l)\"\n"                                     \
    "for a in %s; do\n"                                                                            \
    "  if nc -w 5 $a %d -e true; then echo \"reached $a\"; else echo \"no way to $a\"; fi\n"       \
    "done\n"

/* Runs the network probe in a correction of a starter with extra settings; asserts its
 * NetworkMode and that it has the loopback interface only, no route, and reaches none of the
 * host's addresses. */
static void expect_no_way_out(const char *name, const char *const *extra, const char *mode,
                              const char *script, const char *addrs)
{
    struct ct_daemon run;
    json_t *c;
    char wid[64], line[128];
    snprintf(wid, sizeof(wid), "w-%s", name);
    start_starter(&run, name, extra);
    char *out = shell_job(wid, script, &c);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "HostConfig"), "NetworkMode")), mode);
    expect_output(out, "interfaces: lo \n");
    expect_output(out, "routes: 0\n");
    char *save = NULL, *list = strdup(addrs);
    assert_non_null(list);
    for (char *a = strtok_r(list, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
        snprintf(line, sizeof(line), "no way to %s\n", a);
        expect_output(out, line);
    }
    free(list);
    if (strstr(out, "reached"))
        fail_msg("a correction reached the host:\n%s", out);
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
}

/* The default CORRECTION_NETWORK (none), and "isolated" on this engine (started with
 * --bridge=none, tests/servers.sh: its default network mode is a namespace with loopback
 * only): a correction has the loopback interface only, no route, and reaches none of the
 * host's addresses. The same probe under the host's network reaches the listener: the probe
 * can tell. */
static void test_no_way_out(void **state)
{
    (void)state;
    int port;
    int lfd = host_listener(&port);
    char addrs[1024], script[2048];
    host_addresses(addrs, sizeof(addrs));
    snprintf(script, sizeof(script), NET_SCRIPT, addrs, port);

    expect_no_way_out("noway", NULL, "none", script, addrs);
    expect_no_way_out("noway-isolated", (const char *[]){"CORRECTION_NETWORK=isolated", NULL},
                      isolated_mode(), script, addrs);

    /* "isolated" on an engine that has a default bridge (the proxy says so): none. */
    struct proxy px;
    proxy_start(&px, "noway-bridge",
                "{\"rules\": [{\"id\": \"bridge\", \"method\": \"GET\", "
                "\"path\": \"^/networks/bridge$\", \"status\": 200, \"message\": \"bridge\"}]}");
    expect_no_way_out("noway-bridge", (const char *[]){px.env, "CORRECTION_NETWORK=isolated", NULL},
                      "none", script, addrs);
    assert_true(proxy_count(&px, "bridge") >= 1);
    proxy_stop(&px);

    struct ct_daemon run;
    json_t *c;
    start_starter(&run, "noway-host", (const char *[]){"CORRECTION_NETWORK=host", NULL});
    char *out = shell_job("w-noway-host", script, &c);
    expect_output(out, "reached 127.0.0.1\n");
    /* The connection the probe made is in the listener's queue. */
    int cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    close(cfd);
    free(out);
    json_decref(c);
    assert_int_equal(stop_starter(&run), 0);
    close(lfd);
}

/* The most setup calls the proxy saw in flight: over its log, in order, creates less the
 * starts that followed them (a job's start answers after its create). *first_alone: the first
 * create was followed by a start before any other create. */
static int setup_depth(const struct proxy *p, int *creates, bool *first_alone)
{
    size_t len;
    char *log = ct_read_file(p->log, &len);
    assert_non_null(log);
    int depth = 0, most = 0, starts = 0;
    *creates = 0;
    *first_alone = false;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "\"POST\""))
            continue;
        if (strstr(line, "\"/containers/create")) {
            (*creates)++;
            if (++depth > most)
                most = depth;
        } else if (strstr(line, "/start\"")) {
            depth--;
            if (++starts == 1 && *creates == 1)
                *first_alone = true;
        }
    }
    free(log);
    return most;
}

/* Run n jobs at once through a starter with MAX_STARTING=max_starting (MAX_RUNNING 4), each
 * create held up by the proxy for a second; returns setup_depth. */
static int burst_depth(const char *name, const char *max_starting, int n, bool *first_alone)
{
    struct ct_daemon run;
    struct proxy px;
    char *file = exercise("burst.txt", "abc");
    proxy_start(&px, name,
                "{\"rules\": [{\"id\": \"create\", \"method\": \"POST\", "
                "\"path\": \"^/containers/create\", \"delay_ms\": 1000}]}");
    for (int i = 0; i < n; i++) {
        char wid[64];
        snprintf(wid, sizeof(wid), "w-%s-%d", name, i);
        publish_job(wid, "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    }
    start_starter(&run, name, (const char *[]){px.env, "MAX_RUNNING=4", max_starting, NULL});
    for (int i = 0; i < n; i++)
        json_decref(get_json("running_corrections"));
    assert_int_equal(stop_starter(&run), 0);
    int creates;
    int depth = setup_depth(&px, &creates, first_alone);
    assert_int_equal(creates, n);
    proxy_stop(&px);
    free(file);
    return depth;
}

/* MAX_STARTING: a burst is set up a few containers at a time, in order, the first alone, so
 * the first job's container starts without waiting for the whole burst's. */
static void test_max_starting(void **state)
{
    (void)state;
    bool first_alone;
    assert_int_equal(burst_depth("starting-one", "MAX_STARTING=1", 3, &first_alone), 1);
    assert_true(first_alone);
    /* From idle the first job goes alone; then the other three together. */
    assert_int_equal(burst_depth("starting-three", "MAX_STARTING=3", 4, &first_alone), 3);
    assert_true(first_alone);
}

/* ---- QUEUE_TYPE=quorum, in a virtual host of its own (the other tests' classic queues of the
 * same names live in "/"). */

static char quorum_vhost[64];

static int rabbitmqctl(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' rabbitmqctl %s >/dev/null 2>&1", ct_env("CT_SERVERS"), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int quorum_setup(void **state)
{
    ct_reset_pipeline_fixture(state);
    snprintf(quorum_vhost, sizeof(quorum_vhost), "ct-quorum-%d", (int)getpid());
    char args[256];
    snprintf(args, sizeof(args), "add_vhost %s", quorum_vhost);
    if (rabbitmqctl(args) != 0)
        return -1;
    snprintf(args, sizeof(args), "set_permissions -p %s guest '.*' '.*' '.*'", quorum_vhost);
    if (rabbitmqctl(args) != 0)
        return -1;
    ct_amqp_use_vhost(quorum_vhost);
    return 0;
}

static int quorum_teardown(void **state)
{
    (void)state;
    ct_kill_tracked(); /* a failed test's daemons, before their virtual host goes */
    ct_amqp_use_vhost(NULL);
    char args[256];
    snprintf(args, sizeof(args), "delete_vhost %s", quorum_vhost);
    int r = rabbitmqctl(args);
    ct_docker_remove_labelled(LABEL);
    return r == 0 ? 0 : -1;
}

/* compose's definitions (compose/rabbitmq/init.sh) rendered for QUEUE_TYPE=quorum, their
 * queues made in the test's virtual host as the broker would import them: the daemons'
 * declares (starter, completer, notifier) must agree with them, or the broker refuses the
 * declare (PRECONDITION_FAILED) and the daemon uses the queue as it is, saying so. */
static void make_compose_queues(void)
{
    char out[600], cmd[2048];
    snprintf(out, sizeof(out), "%s/quorum-definitions.json", ct_env("CT_TMP"));
    snprintf(cmd, sizeof(cmd),
             "RABBITMQ_ADMIN_USER=a RABBITMQ_ADMIN_PASSWORD=b RABBITMQ_USER=c RABBITMQ_PASSWORD=d "
             "QUEUE_TYPE=quorum QUEUE_DELIVERY_LIMIT=2 CT_RENDER_ONLY=1 "
             "CT_DEFINITIONS_TEMPLATE='%s/compose/rabbitmq/definitions.json' "
             "CT_DEFINITIONS_OUT='%s' sh '%s/compose/rabbitmq/init.sh'",
             CT_SOURCE_DIR, out, CT_SOURCE_DIR);
    assert_int_equal(system(cmd), 0);
    json_error_t jerr;
    json_t *defs = json_load_file(out, 0, &jerr);
    if (!defs)
        fail_msg("%s: %s", out, jerr.text);
    json_t *queues = json_object_get(defs, "queues");
    assert_true(json_array_size(queues) >= 10);
    size_t i;
    json_t *q;
    json_array_foreach(queues, i, q)
    {
        const char *name = json_string_value(json_object_get(q, "name"));
        assert_non_null(name);
        json_t *body = json_pack("{s:b,s:b,s:O}", "durable", 1, "auto_delete", 0, "arguments",
                                 json_object_get(q, "arguments"));
        char *text = json_dumps(body, JSON_COMPACT);
        char path[512];
        snprintf(path, sizeof(path), "/queues/%s/%s", quorum_vhost, name);
        long status;
        json_decref(ct_mgmt("PUT", path, text, &status));
        if (status != 201 && status != 204)
            fail_msg("PUT %s: HTTP %ld", path, status);
        free(text);
        json_decref(body);
    }
    json_decref(defs);
}

/* On quorum queues every return of a message counts towards its delivery limit (RabbitMQ
 * 3.10-3.13), so the starter must not return healthy jobs as a matter of course: at capacity,
 * each time a slot frees, it asks the broker for no more than it may take. A burst of 16
 * quick jobs through MAX_RUNNING=2 (dozens of pauses and resumes) with a delivery limit of 2:
 * every job is started, none is parked by the broker. The queues are compose's, made first
 * (make_compose_queues). */
static void test_quorum_burst_at_capacity(void **state)
{
    (void)state;
    struct ct_daemon run;
    char *file = exercise("quorum.txt", "q");
    char vhost_env[96];
    snprintf(vhost_env, sizeof(vhost_env), "RABBITMQ_VHOST=%s", quorum_vhost);
    make_compose_queues();
    /* A queue declared otherwise is used as it is, with an error said before "connected". */
    static const char *const mismatch = "a queue exists with other arguments";
    struct ct_daemon other;
    const char *const others[] = {"notifier", "completer"};
    for (size_t i = 0; i < 2; i++) {
        ct_daemon_start(
            &other, others[i], "quorum",
            (const char *[]){vhost_env, "QUEUE_TYPE=quorum", "QUEUE_DELIVERY_LIMIT=2", NULL});
        ct_daemon_wait_log(&other, "connected to RabbitMQ", 1, WAIT_MS);
        assert_int_equal(ct_daemon_stop(&other), 0);
        assert_int_equal(ct_file_count_lines(other.log, mismatch, NULL), 0);
    }
    start_starter(&run, "quorum",
                  (const char *[]){vhost_env, "QUEUE_TYPE=quorum", "QUEUE_DELIVERY_LIMIT=2",
                                   "MAX_RUNNING=2", "HOLD_JOBS=1", NULL});
    wait_log(&run, "consuming pending jobs", 1);
    assert_int_equal(ct_file_count_lines(run.log, mismatch, NULL), 0);
    assert_int_equal(ct_file_count_lines(run.log, "lost RabbitMQ", NULL), 0);
    enum { JOBS = 16 };
    for (int i = 0; i < JOBS; i++) {
        char wid[32];
        snprintf(wid, sizeof(wid), "w-quorum-%d", i);
        publish_job(wid, "ct-ok:latest", file, "http://h/cb", NULL, NULL);
    }
    for (int i = 0; i < JOBS; i++)
        json_decref(get_json("running_corrections"));
    assert_int_equal(ct_amqp_count("pending_corrections"), 0);
    assert_int_equal(ct_amqp_count("pending_corrections.invalid"), 0);
    int paused = ct_file_count_lines(run.log, "at capacity, pending jobs wait in the queue", NULL);
    int returned =
        ct_file_count_lines(run.log, "delivery returned to the queue untouched: at capacity", NULL);
    print_message("note: the consumer paused %d time(s) for %d jobs; %d deliveries returned\n",
                  paused, JOBS, returned);
    assert_true(paused >= 2); /* it did run at capacity */
    assert_int_equal(stop_starter(&run), 0);
    free(file);
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
        cmocka_unit_test_setup_teardown(test_submission_outside_refused, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_submission_swap_race, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_any_path_opt_out, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_callback_secrets, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_file_and_open_limits, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_read_only_non_root, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_volumes_removed_by_starter, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_settings_refused, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_user_missing_from_image, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_job_limits, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_start_failure_removes_container,
                                        ct_reset_pipeline_fixture, ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_redelivery_one_container, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_same_message_id_at_once, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_max_running, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_max_running_hold_none, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_connection_named, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_sigterm_in_flight, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_bind_mode, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_bind_mode_confined, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_bind_mode_swapped_before_start,
                                        ct_reset_pipeline_fixture, ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_bind_mode_config, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_config_errors, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_broker_restart, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_docker_outage, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_resubmission_is_a_new_job, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_resubmission_returned_at_capacity,
                                        ct_reset_pipeline_fixture, ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_start_fault_engine_stopping, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_start_fault_stale_endpoint, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_retry_budget_and_slot, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_retry_budget_upload, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_pull_unreachable_registry, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_shutdown_publish_unconfirmed,
                                        ct_reset_pipeline_fixture, alarm_teardown),
        cmocka_unit_test_setup_teardown(test_start_answer_lost, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_redelivery_adopts_container, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_redelivery_replaces_created_container,
                                        ct_reset_pipeline_fixture, ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_redelivery_file_deleted, ct_reset_pipeline_fixture,
                                        alarm_teardown),
        cmocka_unit_test_setup_teardown(test_accented_param_name, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_running_message_bounds, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_oversized_pending_parked, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_max_starting, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
        cmocka_unit_test_setup_teardown(test_quorum_burst_at_capacity, quorum_setup,
                                        quorum_teardown),
        cmocka_unit_test_setup_teardown(test_no_way_out, ct_reset_pipeline_fixture,
                                        ct_reset_pipeline_fixture),
    };
    /* CT_TEST_FILTER=test_name (wildcards allowed): only those, while working on them */
    if (getenv("CT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
