/* The notifier against the real broker and a real HTTP receiver (tests/support/receiver.py).
 *
 * Every test starts its own receiver on 127.0.0.1 (a free port), which logs each request as one
 * JSON line and answers by path (/ok, /fail-once/<key>, /status/<code>, /redirect, /gone,
 * /retry-after/<secs>, /slow). Retry delays are short ("1s,1s,2s" style) so that retries,
 * dead-lettering and parking happen within seconds. */
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "netns.h"
#include "support.h"
#include "text.h"

#define PYTHON "/usr/bin/python3"
#define WAIT_MS 30000
#define FINISHED "finished_corrections"
#define FAILED "failed_callbacks"
#define INVALID "finished_corrections.invalid"
#define RETRY_PREFIX "finished_corrections.retry."
/* The example key of the Standard Webhooks specification. */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define OTHER_SECRET "whsec_c2VjcmV0LW9mLWFub3RoZXItc2VydmljZQ=="

/* ---- queues ------------------------------------------------------------------------------ */

/* Deletes every retry queue (their TTLs differ between tests) and empties the others. */
static void clean_queues(void)
{
    long status = 0;
    json_t *all = ct_mgmt("GET", "/queues/%2F?columns=name", NULL, &status);
    size_t i;
    json_t *q;
    json_array_foreach(all, i, q)
    {
        const char *name = json_string_value(json_object_get(q, "name"));
        if (name && strncmp(name, RETRY_PREFIX, strlen(RETRY_PREFIX)) == 0)
            ct_amqp_delete(name);
    }
    json_decref(all);
    ct_amqp_declare(FINISHED);
    ct_amqp_purge(FINISHED);
    ct_amqp_declare(FAILED);
    ct_amqp_purge(FAILED);
    ct_amqp_declare(INVALID);
    ct_amqp_purge(INVALID);
}

static int setup(void **state)
{
    (void)state;
    clean_queues();
    return 0;
}

static struct ct_netns test_ns;
/* When set, the notifier runs inside this namespace (and reaches the broker through its
 * bridge). */
static const struct ct_netns *spawn_ns;

static int teardown(void **state)
{
    (void)state;
    ct_kill_tracked();
    spawn_ns = NULL;
    ct_netns_destroy(&test_ns); /* when a test made one */
    clean_queues();
    return 0;
}

static char *retry_queue(const char *delay)
{
    static char name[128];
    snprintf(name, sizeof(name), RETRY_PREFIX "%s", delay);
    return name;
}

/* Up to n messages of the queue, left in it (management API, requeued): an array of
 * {"payload", "properties": {"headers": ...}}. */
static json_t *peek(const char *queue, int n)
{
    char path[256], body[128];
    snprintf(path, sizeof(path), "/queues/%%2F/%s/get", queue);
    snprintf(body, sizeof(body),
             "{\"count\":%d,\"ackmode\":\"ack_requeue_true\",\"encoding\":\"auto\"}", n);
    long status = 0;
    json_t *r = ct_mgmt("POST", path, body, &status);
    if (status != 200 || !json_is_array(r))
        fail_msg("peek %s: HTTP %ld", queue, status);
    return r;
}

struct peek_wait {
    const char *queue;
    json_t *msg; /* the first message, once there */
};

static bool peeked(void *ud)
{
    struct peek_wait *w = ud;
    json_t *got = peek(w->queue, 1);
    if (json_array_size(got) == 1)
        w->msg = json_incref(json_array_get(got, 0));
    json_decref(got);
    return w->msg != NULL;
}

struct count_wait {
    const char *queue;
    int n;
};

static bool queue_has(void *ud)
{
    struct count_wait *w = ud;
    return ct_amqp_count(w->queue) == w->n;
}

static void wait_queue(const char *queue, int n, int timeout_ms)
{
    struct count_wait w = {queue, n};
    if (!ct_wait_until(queue_has, &w, timeout_ms))
        fail_msg("%s holds %d messages, expected %d", queue, ct_amqp_count(queue), n);
}

/* A finished_corrections message; work_id_json and job_id may be NULL (left out). */
static char *finished(const char *work_id_json, bool error, const char *data_json,
                      const char *callback, const char *job_id)
{
    json_t *o = json_object();
    if (work_id_json)
        json_object_set_new(o, "work_id", ct_json(work_id_json));
    json_object_set_new(o, "error", json_boolean(error));
    json_object_set_new(o, "correction_data", error ? json_string(data_json) : ct_json(data_json));
    json_object_set_new(o, "callback", json_string(callback));
    if (job_id)
        json_object_set_new(o, "job_id", json_string(job_id));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void publish(const char *work_id_json, bool error, const char *data_json,
                    const char *callback, const char *job_id)
{
    char *body = finished(work_id_json, error, data_json, callback, job_id);
    ct_amqp_publish(FINISHED, body, NULL);
    free(body);
}

/* ---- requests logged by the receiver ----------------------------------------------------- */

static const char *req_str(json_t *req, const char *key)
{
    return json_string_value(json_object_get(req, key));
}

static const char *req_header(json_t *req, const char *name)
{
    return json_string_value(json_object_get(json_object_get(req, "headers"), name));
}

static long req_status(json_t *req)
{
    json_t *s = json_object_get(req, "status");
    return json_is_integer(s) ? (long)json_integer_value(s) : -1;
}

/* ---- the notifier ------------------------------------------------------------------------ */

/* Starts the notifier with the test servers (the namespace's bridge when the test made one),
 * short retry delays and extra "NAME=VALUE" settings (which win over the defaults here);
 * argument: NULL or "--replay-failed". */
static void notifier_spawn(struct ct_daemon *run, const char *name, const char *arg,
                           const char *const *extra)
{
    char port[64];
    snprintf(port, sizeof(port), "RABBITMQ_PORT=%d", CT_NETNS_AMQP_PORT);
    const char *in_ns[] = {"RABBITMQ_HOST=127.0.0.1", port, "CALLBACK_RETRY_DELAYS=1s,1s,2s",
                           NULL};
    const char *const *defaults = spawn_ns ? in_ns : in_ns + 2;
    struct ct_daemon_how how = {.arg = arg, .ns = spawn_ns};
    ct_daemon_start_how(run, "notifier", name, &how, defaults, extra);
}

static void notifier_start(struct ct_daemon *run, const char *name, const char *const *extra)
{
    notifier_spawn(run, name, NULL, extra);
}

static void assert_exit(struct ct_daemon *run, int code)
{
    int status = ct_daemon_stop(run);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != code)
        fail_msg("the notifier ended with status 0x%x, expected exit %d (log: %s)", status, code,
                 run->log);
}

/* Lines of the log that contain every needle (NULL-terminated). */
static int log_lines(const char *path, const char *const *needles)
{
    char *s = ct_read_file(path, NULL);
    int n = 0;
    for (char *line = s, *nl; line && *line; line = nl ? nl + 1 : line + strlen(line)) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        bool all = true;
        for (size_t i = 0; needles[i] && all; i++)
            all = strstr(line, needles[i]) != NULL;
        n += all;
    }
    free(s);
    return n;
}

struct log_wait {
    const char *path;
    const char *const *needles;
    int count;
};

static bool log_has(void *ud)
{
    struct log_wait *w = ud;
    return log_lines(w->path, w->needles) >= w->count;
}

#define WAIT_LOG(run, count, ...)                                                                  \
    do {                                                                                           \
        const char *const needles_[] = {__VA_ARGS__, NULL};                                        \
        struct log_wait w_ = {(run)->log, needles_, (count)};                                      \
        if (!ct_wait_until(log_has, &w_, WAIT_MS))                                                 \
            fail_msg("no %d line(s) with '%s' in %s", (count), needles_[0], (run)->log);           \
    } while (0)

/* A parked message's headers, checked. */
static void assert_parked(json_t *headers, const char *reason_prefix, long attempts,
                          const char *last_error_prefix)
{
    const char *reason = json_string_value(json_object_get(headers, "x-correctomatic-reason"));
    const char *last = json_string_value(json_object_get(headers, "x-correctomatic-last-error"));
    json_t *att = json_object_get(headers, "x-correctomatic-attempts");
    if (!reason || strncmp(reason, reason_prefix, strlen(reason_prefix)) != 0)
        fail_msg("reason '%s', expected '%s...'", reason ? reason : "(none)", reason_prefix);
    if (!json_is_integer(att) || json_integer_value(att) != attempts)
        fail_msg("attempts %lld, expected %ld", (long long)json_integer_value(att), attempts);
    if (!last || strncmp(last, last_error_prefix, strlen(last_error_prefix)) != 0)
        fail_msg("last error '%s', expected '%s...'", last ? last : "(none)", last_error_prefix);
}

/* Nothing left anywhere once the notifier has stopped (unacked messages would be back). */
static void assert_queues_empty(const char *const *retry_queues)
{
    assert_int_equal(ct_amqp_count(FINISHED), 0);
    assert_int_equal(ct_amqp_count(FAILED), 0);
    assert_int_equal(ct_amqp_count(INVALID), 0);
    for (size_t i = 0; retry_queues && retry_queues[i]; i++)
        assert_int_equal(ct_amqp_count(retry_queue(retry_queues[i])), 0);
}

/* Runs receiver.py verify; returns its exit code and its JSON summary in *summary. */
static int verify_signatures(const struct ct_receiver *r, const char *secret, json_t **summary)
{
    char out[600];
    snprintf(out, sizeof(out), "%s.verify", r->log);
    unlink(out);
    char *argv[] = {PYTHON,         (char *)ct_receiver_script(),
                    "verify",       "--log",
                    (char *)r->log, "--secret",
                    (char *)secret, NULL};
    pid_t pid = ct_spawn(PYTHON, argv, NULL, out);
    int status = -1;
    assert_int_equal(ct_wait_exit(pid, 30000, &status), 0);
    char *s = ct_read_file(out, NULL);
    *summary = s ? json_loads(s, 0, NULL) : NULL;
    if (!*summary)
        fail_msg("receiver.py verify printed: %s", s ? s : "(nothing)");
    free(s);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static json_int_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* ---- tests ------------------------------------------------------------------------------- */

/* Success and error bodies byte for byte, and the headers. */
static void test_bodies(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "bodies", 0, true);
    notifier_start(&run, "bodies", NULL);
    char cb1[128], cb2[128], cb3[128];
    ct_receiver_url(cb1, sizeof(cb1), &r, "/ok?case=success");
    ct_receiver_url(cb2, sizeof(cb2), &r, "/ok?case=error");
    ct_receiver_url(cb3, sizeof(cb3), &r, "/ok?case=nowork");
    /* The container's own work_id is overridden; keys sorted at every depth; UTF-8 as is. */
    publish("\"w-1\"", false,
            "{\"success\":true,\"grade\":7.5,\"comments\":[\"ok\",\"\xc3\xb1 \\\"q\\\" / "
            "\xe2\x82\xac\"],\"work_id\":\"evil\",\"zeta\":1,\"alpha\":{\"b\":1,\"a\":[2,{\"d\":"
            "null,\"c\":true}]}}",
            cb1, "job-bodies-1");
    publish("42", true, "image not found - no such image: ct-nope", cb2, NULL);
    publish(NULL, false, "{\"success\":false,\"error\":\"compilation failed\",\"work_id\":1}", cb3,
            NULL);
    ct_receiver_wait(&r, NULL, 200, 3, WAIT_MS);
    assert_exit(&run, 0);

    const struct {
        const char *path, *body;
    } want[] = {
        {"/ok?case=success",
         "{\"alpha\":{\"a\":[2,{\"c\":true,\"d\":null}],\"b\":1},\"comments\":[\"ok\",\"\xc3\xb1 "
         "\\\"q\\\" / \xe2\x82\xac\"],\"grade\":7.5,\"success\":true,\"work_id\":\"w-1\",\"zeta\":"
         "1}"},
        {"/ok?case=error",
         "{\"error\":\"image not found - no such image: ct-nope\",\"success\":false,\"work_id\":"
         "42}"},
        {"/ok?case=nowork", "{\"error\":\"compilation failed\",\"success\":false}"},
    };
    json_t *all = ct_receiver_requests(&r);
    assert_int_equal(json_array_size(all), 3);
    for (size_t k = 0; k < 3; k++) {
        json_t *q = NULL;
        size_t i;
        json_t *x;
        json_array_foreach(all, i, x) if (strcmp(req_str(x, "path"), want[k].path) == 0) q = x;
        if (!q)
            fail_msg("no request to %s", want[k].path);
        assert_string_equal(req_str(q, "method"), "POST");
        assert_string_equal(req_str(q, "body"), want[k].body);
        assert_string_equal(req_header(q, "content-type"), "application/json");
        const char *ua = req_header(q, "user-agent");
        assert_non_null(ua);
        assert_true(strncmp(ua, "correctomatic-notifier/", 23) == 0 && strlen(ua) > 23);
        char len[24];
        snprintf(len, sizeof(len), "%zu", strlen(want[k].body));
        assert_string_equal(req_header(q, "content-length"), len);
        /* no secret, no signature */
        assert_null(req_header(q, "webhook-signature"));
        assert_null(req_header(q, "webhook-id"));
    }
    json_decref(all);
    assert_queues_empty((const char *[]){"1000ms", "2000ms", NULL});
    ct_receiver_stop(&r);
}

static bool is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return true;
}

/* Standard Webhooks signatures, checked by Python's hmac; webhook-id stable across retries. */
static void test_signatures(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "signatures", 0, true);
    notifier_start(&run, "signatures", (const char *[]){"CALLBACK_SECRET=" SECRET, NULL});
    char cb1[128], cb2[128];
    ct_receiver_url(cb1, sizeof(cb1), &r, "/ok");
    ct_receiver_url(cb2, sizeof(cb2), &r, "/fail-once/sig");
    publish("\"w-sig-1\"", false,
            "{\"success\":true,\"grade\":10,\"comments\":[\"\xc3\xa9t\xc3\xa9\"]}", cb1,
            "3f2c9a1e-7d4b-4c1a-9f0e-1a2b3c4d5e6f");
    publish("\"w-sig-2\"", true, "runtime error - exit 1", cb2, NULL); /* no job_id */
    /* a long job id is the webhook-id all the same */
    char long_id[129];
    memset(long_id, 'j', 128);
    long_id[128] = '\0';
    publish("\"w-sig-3\"", false, "{\"success\":true,\"grade\":0}", cb1, long_id);
    ct_receiver_wait(&r, NULL, 200, 3, WAIT_MS);
    assert_exit(&run, 0);

    json_t *all = ct_receiver_requests(&r);
    assert_int_equal(json_array_size(all), 4);
    const char *retry_id = NULL, *retry_body = NULL;
    size_t i;
    json_t *q;
    time_t now = time(NULL);
    json_array_foreach(all, i, q)
    {
        const char *id = req_header(q, "webhook-id");
        const char *ts = req_header(q, "webhook-timestamp");
        const char *sig = req_header(q, "webhook-signature");
        assert_non_null(id);
        assert_non_null(ts);
        assert_non_null(sig);
        assert_true(strncmp(sig, "v1,", 3) == 0 && strlen(sig) == 3 + 44);
        long long t = atoll(ts);
        assert_true(t > now - 120 && t <= now + 5);
        const char *work = strstr(req_str(q, "body"), "\"work_id\":\"w-sig-");
        assert_non_null(work);
        if (work[17] == '1') {
            assert_string_equal(id, "3f2c9a1e-7d4b-4c1a-9f0e-1a2b3c4d5e6f");
        } else if (work[17] == '3') {
            assert_string_equal(id, long_id);
        } else if (!retry_id) {
            /* no job_id: an id derived from the message, the same on every attempt */
            assert_true(is_uuid(id));
            retry_id = id;
            retry_body = req_str(q, "body");
        } else {
            assert_string_equal(id, retry_id);
            assert_string_equal(req_str(q, "body"), retry_body);
        }
    }
    assert_non_null(retry_id);

    json_t *summary = NULL;
    assert_int_equal(verify_signatures(&r, SECRET, &summary), 0);
    assert_int_equal(jint(summary, "checked"), 4);
    assert_int_equal(jint(summary, "valid"), 4);
    json_decref(summary);
    /* the check is not vacuous: another key fails it */
    assert_int_equal(verify_signatures(&r, OTHER_SECRET, &summary), 1);
    assert_int_equal(jint(summary, "invalid"), 4);
    json_decref(summary);
    json_decref(all);
    /* the secret never reaches the log */
    assert_int_equal(log_lines(run.log, (const char *[]){"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", NULL}),
                     0);
    ct_receiver_stop(&r);
}

/* 500 then 200: delivered once, on the second attempt; the waiting retry holds no prefetch slot
 * (with one callback at a time, a later message is delivered meanwhile). */
static void test_500_then_200(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "500", 0, true);
    notifier_start(&run, "500",
                   (const char *[]){"CONCURRENT_NOTIFIERS=1", "CALLBACK_RETRY_DELAYS=2s,2s", NULL});
    char cb1[128], cb2[128];
    ct_receiver_url(cb1, sizeof(cb1), &r, "/fail-once/k500");
    ct_receiver_url(cb2, sizeof(cb2), &r, "/ok");
    publish("\"w-500\"", false, "{\"success\":true,\"grade\":1}", cb1, "job-500");
    ct_receiver_wait(&r, "/fail-once/k500", 500, 1, WAIT_MS);
    /* Waiting in the retry queue with its attempts and last error. */
    struct peek_wait pw = {retry_queue("2000ms"), NULL};
    if (!ct_wait_until(peeked, &pw, 5000))
        fail_msg("the failed message did not show up in %s", pw.queue);
    json_t *waiting = pw.msg;
    json_t *h = json_object_get(json_object_get(waiting, "properties"), "headers");
    assert_int_equal(jint(h, "x-correctomatic-attempts"), 1);
    assert_string_equal(json_string_value(json_object_get(h, "x-correctomatic-last-error")),
                        "HTTP 500");
    json_decref(waiting);
    publish("\"w-next\"", false, "{\"success\":true,\"grade\":2}", cb2, "job-next");
    ct_receiver_wait(&r, "/fail-once/k500", 200, 1, WAIT_MS);
    WAIT_LOG(&run, 1, "callback delivered", "work_id=w-500", "attempt=2");
    assert_exit(&run, 0);

    json_t *all = ct_receiver_requests(&r);
    assert_int_equal(json_array_size(all), 3);
    /* in order: the failure, the other message (not blocked), the retry */
    assert_string_equal(req_str(json_array_get(all, 0), "path"), "/fail-once/k500");
    assert_int_equal(req_status(json_array_get(all, 0)), 500);
    assert_string_equal(req_str(json_array_get(all, 1), "path"), "/ok");
    assert_string_equal(req_str(json_array_get(all, 2), "path"), "/fail-once/k500");
    assert_int_equal(req_status(json_array_get(all, 2)), 200);
    assert_string_equal(req_str(json_array_get(all, 0), "body"),
                        req_str(json_array_get(all, 2), "body"));
    double gap = json_real_value(json_object_get(json_array_get(all, 2), "time")) -
                 json_real_value(json_object_get(json_array_get(all, 0), "time"));
    assert_true(gap >= 1.7); /* 2 s, jitter at most 10% */
    json_decref(all);
    assert_int_equal(
        log_lines(run.log, (const char *[]){"callback delivered", "work_id=w-500", NULL}), 1);
    assert_queues_empty((const char *[]){"2000ms", NULL});
    ct_receiver_stop(&r);
}

/* Nobody listens on the callback's port for a while: retried, then delivered. */
static void test_receiver_down_then_up(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "down", 0, true);
    int port = r.port;
    ct_receiver_stop(&r); /* the port is now closed */
    char cb[128];
    ct_receiver_url(cb, sizeof(cb), &r, "/ok");
    notifier_start(&run, "down",
                   (const char *[]){"CALLBACK_RETRY_DELAYS=1s,1s,1s,1s,1s,1s,1s,1s", NULL});
    publish("\"w-down\"", false, "{\"success\":true,\"grade\":3}", cb, NULL);
    WAIT_LOG(&run, 2, "callback failed, will retry", "work_id=w-down");
    ct_receiver_start(&r, "down", port, false);
    ct_receiver_wait(&r, "/ok", 200, 1, WAIT_MS);
    assert_exit(&run, 0);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 1);
    assert_int_equal(
        log_lines(run.log, (const char *[]){"callback delivered", "work_id=w-down", NULL}), 1);
    /* the first delivered attempt is the third or later */
    assert_int_equal(log_lines(run.log, (const char *[]){"callback delivered", "attempt=1 ", NULL}),
                     0);
    assert_int_equal(log_lines(run.log, (const char *[]){"callback delivered", "attempt=2 ", NULL}),
                     0);
    assert_queues_empty((const char *[]){"1000ms", NULL});
    ct_receiver_stop(&r);
}

/* A receiver that never answers: each attempt times out, is retried, and finally parked. */
static void test_timeout(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "slow", 0, true);
    notifier_start(&run, "slow",
                   (const char *[]){"CALLBACK_TIMEOUT=1s", "CALLBACK_RETRY_DELAYS=1s,1s", NULL});
    char cb[128];
    ct_receiver_url(cb, sizeof(cb), &r, "/slow");
    publish("\"w-slow\"", false, "{\"success\":true,\"grade\":4}", cb, NULL);
    struct ct_msg *m = ct_amqp_get(FAILED, WAIT_MS);
    if (!m)
        fail_msg("not parked (log %s)", run.log);
    assert_parked(m->headers, "gave up after 3 attempts - no answer within 1000 ms", 3,
                  "no answer within 1000 ms");
    json_t *body = ct_json(m->body);
    assert_string_equal(json_string_value(json_object_get(body, "work_id")), "w-slow");
    json_decref(body);
    ct_msg_free(m);
    assert_int_equal(ct_receiver_count(&r, "/slow", -1), 3);
    assert_exit(&run, 0);
    assert_queues_empty((const char *[]){"1000ms", NULL});
    ct_receiver_stop(&r);
}

/* 3xx is an answer that is not 2xx: retried, never followed. */
static void test_redirect_not_followed(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "redirect", 0, true);
    notifier_start(&run, "redirect", (const char *[]){"CALLBACK_RETRY_DELAYS=1s", NULL});
    char cb[128];
    ct_receiver_url(cb, sizeof(cb), &r, "/redirect");
    publish("\"w-302\"", false, "{\"success\":true,\"grade\":5}", cb, NULL);
    struct ct_msg *m = ct_amqp_get(FAILED, WAIT_MS);
    if (!m)
        fail_msg("not parked (log %s)", run.log);
    assert_parked(m->headers, "gave up after 2 attempts - HTTP 302", 2, "HTTP 302");
    ct_msg_free(m);
    assert_int_equal(ct_receiver_count(&r, "/redirect", 302), 2);
    assert_int_equal(ct_receiver_count(&r, "/ok", -1), 0);
    assert_exit(&run, 0);
    assert_queues_empty((const char *[]){"1000ms", NULL});
    ct_receiver_stop(&r);
}

/* 410 Gone: parked at once, no retry. */
static void test_gone(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "gone", 0, true);
    notifier_start(&run, "gone", NULL);
    char cb[128];
    ct_receiver_url(cb, sizeof(cb), &r, "/gone");
    publish("\"w-410\"", false, "{\"success\":true,\"grade\":6}", cb, NULL);
    struct ct_msg *m = ct_amqp_get(FAILED, WAIT_MS);
    if (!m)
        fail_msg("not parked (log %s)", run.log);
    assert_parked(m->headers, "callback gone", 1, "HTTP 410");
    ct_msg_free(m);
    assert_exit(&run, 0);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 1);
    assert_int_equal(log_lines(run.log, (const char *[]){"will retry", NULL}), 0);
    assert_queues_empty((const char *[]){"1000ms", "2000ms", NULL});
    ct_receiver_stop(&r);
}

/* Retry-After moves the retry to the first level at least that long. */
static void test_retry_after(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "retry-after", 0, true);
    notifier_start(&run, "retry-after", (const char *[]){"CALLBACK_RETRY_DELAYS=1s,3s,3s", NULL});
    char cb[128];
    ct_receiver_url(cb, sizeof(cb), &r, "/retry-after/2");
    publish("\"w-ra\"", false, "{\"success\":true,\"grade\":7}", cb, NULL);
    ct_receiver_wait(&r, "/retry-after/2", 200, 1, WAIT_MS);
    assert_exit(&run, 0);
    json_t *all = ct_receiver_requests(&r);
    assert_int_equal(json_array_size(all), 2);
    assert_int_equal(req_status(json_array_get(all, 0)), 503);
    double gap = json_real_value(json_object_get(json_array_get(all, 1), "time")) -
                 json_real_value(json_object_get(json_array_get(all, 0), "time"));
    if (gap < 2.0) /* the first level (1 s) would have been too early */
        fail_msg("retried %.2f s after a Retry-After of 2 s", gap);
    json_decref(all);
    assert_int_equal(log_lines(run.log, (const char *[]){"will retry", "retry_in_s=3", NULL}), 1);
    assert_queues_empty((const char *[]){"1000ms", "3000ms", NULL});
    ct_receiver_stop(&r);
}

/* SIGKILL while messages wait in a retry queue: they come back on their own and the next
 * notifier delivers them. */
static void test_killed_while_waiting(void **state)
{
    (void)state;
    enum { N = 5 };
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "kill", 0, true);
    const char *const extra[] = {"CALLBACK_RETRY_DELAYS=4s,4s", NULL};
    notifier_start(&run, "kill", extra);
    for (int i = 0; i < N; i++) {
        char path[64], cb[128], wid[32];
        snprintf(path, sizeof(path), "/fail-once/kill-%d", i);
        ct_receiver_url(cb, sizeof(cb), &r, path);
        snprintf(wid, sizeof(wid), "\"w-kill-%d\"", i);
        publish(wid, false, "{\"success\":true,\"grade\":8}", cb, NULL);
    }
    ct_receiver_wait(&r, NULL, 500, N, WAIT_MS);
    wait_queue(retry_queue("4000ms"), N, 3000);
    ct_kill(run.pid, SIGKILL);
    int status;
    assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
    ct_untrack(run.pid);
    assert_true(WIFSIGNALED(status));
    /* No notifier: the retries expire back into finished_corrections. */
    wait_queue(FINISHED, N, 10000);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), N);
    notifier_start(&run, "kill-again", extra);
    ct_receiver_wait(&r, NULL, 200, N, WAIT_MS);
    assert_exit(&run, 0);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/fail-once/kill-%d", i);
        assert_int_equal(ct_receiver_count(&r, path, 500), 1);
        assert_int_equal(ct_receiver_count(&r, path, 200), 1);
    }
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 2 * N);
    assert_int_equal(log_lines(run.log, (const char *[]){"callback delivered", "attempt=2", NULL}),
                     N);
    assert_queues_empty((const char *[]){"4000ms", NULL});
    ct_receiver_stop(&r);
}

struct parked_case {
    const char *work_id;  /* in the body */
    const char *callback; /* PORT stands for the receiver's port */
    const char *reason;   /* prefix of the reason, first run (CALLBACK_DENY_PRIVATE=true) */
    const char *reason2;  /* after --replay-failed, CALLBACK_ALLOW_HOSTS=127.0.0.1; NULL:
                             delivered */
};

/* Bad URLs and refused addresses parked with their reasons in failed_callbacks (a message that
 * is not a finished message at all goes to finished_corrections.invalid instead, see
 * test_unreadable_parked_invalid); --replay-failed sends them back. */
static void test_bad_urls_and_replay(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "bad", 0, true);
    const struct parked_case cases[] = {
        {"b-ftp", "ftp://127.0.0.1:PORT/ok", "invalid callback - callback 'ftp://",
         "invalid callback - callback 'ftp://"},
        {"b-meta", "http://169.254.169.254/latest/meta-data/",
         "callback refused - cloud metadata address 169.254.169.254",
         "callback refused - host '169.254.169.254' is not in CALLBACK_ALLOW_HOSTS"},
        {"b-zero", "http://0.0.0.0:PORT/ok", "callback refused - unspecified address 0.0.0.0",
         "callback refused - host '0.0.0.0' is not in CALLBACK_ALLOW_HOSTS"},
        {"b-loop", "http://127.0.0.1:PORT/ok", "callback refused - loopback address 127.0.0.1",
         NULL},
        {"b-name", "http://localhost:PORT/ok", "callback refused - loopback address",
         "callback refused - host 'localhost' is not in CALLBACK_ALLOW_HOSTS"},
        {"b-space", "http://127.0.0.1:PORT/o k", "invalid callback - callback URL contains a space",
         "invalid callback - callback URL contains a space"},
        {"b-bracket", "http://[::1/x", "invalid callback - callback 'http://[::1/x' is not a valid",
         "invalid callback - callback 'http://[::1/x' is not a valid"},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    char bodies[N][512];
    for (size_t i = 0; i < N; i++) {
        char cb[256];
        const char *at = strstr(cases[i].callback, "PORT");
        if (at)
            snprintf(cb, sizeof(cb), "%.*s%d%s", (int)(at - cases[i].callback), cases[i].callback,
                     r.port, at + 4);
        else
            snprintf(cb, sizeof(cb), "%s", cases[i].callback);
        if (cases[i].work_id) {
            char wid[64];
            snprintf(wid, sizeof(wid), "\"%s\"", cases[i].work_id);
            char *b = finished(wid, false, "{\"success\":true,\"grade\":9}", cb, NULL);
            snprintf(bodies[i], sizeof(bodies[i]), "%s", b);
            free(b);
        }
        ct_amqp_publish(FINISHED, bodies[i], NULL);
    }

    notifier_start(&run, "bad", (const char *[]){"CALLBACK_DENY_PRIVATE=true", NULL});
    wait_queue(FAILED, N, WAIT_MS);
    json_t *parked = peek(FAILED, N + 1);
    assert_int_equal(json_array_size(parked), N);
    bool seen[N] = {0};
    size_t k;
    json_t *p;
    json_array_foreach(parked, k, p)
    {
        const char *payload = json_string_value(json_object_get(p, "payload"));
        json_t *h = json_object_get(json_object_get(p, "properties"), "headers");
        size_t i = 0;
        while (i < N && strcmp(bodies[i], payload) != 0)
            i++;
        if (i == N)
            fail_msg("unexpected parked message %s", payload);
        assert_false(seen[i]);
        seen[i] = true;
        assert_parked(h, cases[i].reason, 0, cases[i].reason);
    }
    json_decref(parked);
    assert_exit(&run, 0);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 0); /* nothing reached the receiver */

    /* --replay-failed: everything back in finished_corrections, at once */
    notifier_spawn(&run, "replay", "--replay-failed", NULL);
    int status = -1;
    assert_int_equal(ct_wait_exit(run.pid, 30000, &status), 0);
    ct_untrack(run.pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char moved[64];
    snprintf(moved, sizeof(moved), "%d message(s) moved", N);
    assert_int_equal(log_lines(run.log, (const char *[]){moved, NULL}), 1);
    assert_int_equal(ct_amqp_count(FAILED), 0);
    assert_int_equal(ct_amqp_count(FINISHED), N);

    /* Loopback allowed now, but only the host 127.0.0.1. */
    notifier_start(&run, "bad-again", (const char *[]){"CALLBACK_ALLOW_HOSTS=127.0.0.1", NULL});
    ct_receiver_wait(&r, "/ok", 200, 1, WAIT_MS);
    wait_queue(FAILED, N - 1, WAIT_MS);
    assert_exit(&run, 0);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 1);
    json_t *all = ct_receiver_requests(&r);
    json_t *got = ct_json(req_str(json_array_get(all, 0), "body"));
    assert_string_equal(json_string_value(json_object_get(got, "work_id")), "b-loop");
    json_decref(got);
    json_decref(all);
    for (size_t n = 0; n < N - 1; n++) {
        struct ct_msg *m = ct_amqp_get(FAILED, 0);
        assert_non_null(m);
        size_t i = 0;
        while (i < N && strcmp(bodies[i], m->body) != 0)
            i++;
        assert_true(i < N);
        assert_non_null(cases[i].reason2);
        assert_parked(m->headers, cases[i].reason2, 0, cases[i].reason2);
        ct_msg_free(m);
    }
    assert_queues_empty(NULL);
    ct_receiver_stop(&r);
}

/* 1,000 results, a tenth of them failing once: the receiver counts exactly 1,000 deliveries,
 * every one signed, none missing, none twice. */
static void test_thousand(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "thousand", 0, true);
    notifier_start(&run, "thousand",
                   (const char *[]){"CALLBACK_SECRET=" SECRET, "LOG_LEVEL=info", NULL});
    int64_t t0 = ct_now_ms();
    for (int i = 0; i < N; i++) {
        char path[64], cb[128], wid[32], job[64];
        if (i % 10 == 0)
            snprintf(path, sizeof(path), "/fail-once/t%d", i);
        else
            snprintf(path, sizeof(path), "/ok");
        ct_receiver_url(cb, sizeof(cb), &r, path);
        snprintf(wid, sizeof(wid), "\"w-%04d\"", i);
        snprintf(job, sizeof(job), "job-thousand-%04d", i);
        /* half of them without a job_id: the webhook-id is then derived from the message */
        publish(wid, i % 3 == 0,
                i % 3 == 0 ? "runtime error - boom" : "{\"success\":true,\"grade\":1}", cb,
                i % 2 ? job : NULL);
    }
    print_message("published %d messages in %lld ms\n", N, (long long)(ct_now_ms() - t0));
    ct_receiver_wait(&r, NULL, 200, N, 90000);
    print_message("delivered in %lld ms\n", (long long)(ct_now_ms() - t0));
    assert_exit(&run, 0);

    json_t *all = ct_receiver_requests(&r);
    json_t *work_ids = json_object(), *hook_ids = json_object();
    int ok = 0, failed = 0;
    size_t i;
    json_t *q;
    json_array_foreach(all, i, q)
    {
        if (req_status(q) == 500) {
            failed++;
            continue;
        }
        assert_int_equal(req_status(q), 200);
        ok++;
        json_t *body = ct_json(req_str(q, "body"));
        const char *w = json_string_value(json_object_get(body, "work_id"));
        assert_non_null(w);
        if (json_object_get(work_ids, w))
            fail_msg("%s delivered twice", w);
        json_object_set_new(work_ids, w, json_true());
        const char *id = req_header(q, "webhook-id");
        assert_non_null(id);
        if (json_object_get(hook_ids, id))
            fail_msg("webhook-id %s delivered twice", id);
        json_object_set_new(hook_ids, id, json_true());
        json_decref(body);
    }
    assert_int_equal(ok, N);
    assert_int_equal(failed, N / 10);
    assert_int_equal(json_object_size(work_ids), N);
    assert_int_equal(json_object_size(hook_ids), N);
    for (int k = 0; k < N; k++) {
        char wid[32];
        snprintf(wid, sizeof(wid), "w-%04d", k);
        if (!json_object_get(work_ids, wid))
            fail_msg("%s missing", wid);
    }
    json_decref(work_ids);
    json_decref(hook_ids);
    json_decref(all);
    json_t *summary = NULL;
    assert_int_equal(verify_signatures(&r, SECRET, &summary), 0);
    assert_int_equal(jint(summary, "valid"), N + N / 10);
    json_decref(summary);
    assert_queues_empty((const char *[]){"1000ms", "2000ms", NULL});
    ct_receiver_stop(&r);
}

/* ---- what the notifier cannot read, sizes, reconnections, receivers' answers ------------- */

/* A message that is not a finished message (not JSON, not an object, a field missing or
 * empty) is parked whole in finished_corrections.invalid with its reason and message_id, never
 * in failed_callbacks (which holds callbacks that could not be delivered), and nothing is
 * POSTed. */
static void test_unreadable_parked_invalid(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "unreadable", 0, true);
    char cb[128];
    ct_receiver_url(cb, sizeof(cb), &r, "/ok");
    char missing[256], empty[256];
    snprintf(missing, sizeof(missing), "{\"work_id\":\"u-3\",\"error\":false,\"callback\":\"%s\"}",
             cb);
    snprintf(empty, sizeof(empty),
             "{\"work_id\":\"u-4\",\"error\":false,\"correction_data\":{\"success\":true,"
             "\"grade\":1},\"callback\":\"\"}");
    const struct {
        const char *body, *reason;
    } cases[] = {
        {"this is not json", "invalid message - not valid JSON"},
        {"[1,2]", "invalid message - expected a JSON object"},
        {missing, "invalid message - "},
        {empty, "invalid message - field 'callback' is empty"},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "m-unreadable-%d", i);
        ct_amqp_publish(FINISHED, cases[i].body, id);
    }
    notifier_start(&run, "unreadable", NULL);
    wait_queue(INVALID, N, WAIT_MS);
    WAIT_LOG(&run, N, "invalid message parked in " INVALID);
    assert_exit(&run, 0);
    for (int n = 0; n < N; n++) {
        struct ct_msg *m = ct_amqp_get(INVALID, 0);
        assert_non_null(m);
        int i = 0;
        while (i < N && strcmp(cases[i].body, m->body) != 0)
            i++;
        if (i == N)
            fail_msg("unexpected parked message %s", m->body);
        char id[32];
        snprintf(id, sizeof(id), "m-unreadable-%d", i);
        assert_non_null(m->message_id);
        assert_string_equal(m->message_id, id);
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        if (!reason || strncmp(reason, cases[i].reason, strlen(cases[i].reason)) != 0)
            fail_msg("case %d: reason '%s', expected '%s...'", i, reason ? reason : "(none)",
                     cases[i].reason);
        ct_msg_free(m);
    }
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 0);
    assert_queues_empty(NULL);
    ct_receiver_stop(&r);
}

/* A finished message of exactly len bytes (padding in the response). */
static char *finished_of_size(const char *work_id, const char *callback, size_t len)
{
    char *base =
        finished(work_id, false, "{\"success\":true,\"grade\":1,\"pad\":\"\"}", callback, NULL);
    size_t n = strlen(base);
    assert_true(len >= n);
    char *s = malloc(len + 1);
    assert_non_null(s);
    const char *at = strstr(base, "\"pad\":\"\"") + 7; /* the closing quote of the pad */
    size_t head = (size_t)(at - base);
    memcpy(s, base, head);
    memset(s + head, 'p', len - n);
    memcpy(s + head + (len - n), at, n - head + 1);
    free(base);
    assert_int_equal(strlen(s), len);
    return s;
}

/* The size rule at MAX_MESSAGE_BYTES (16 KiB here, the least allowed): limit-1 and limit are
 * delivered, and a message at the limit that fails once comes back from its retry queue (the
 * notifier's own copy, with its headers, still fits) and is delivered; limit+1 is parked whole in
 * finished_corrections.invalid with its reason, never dropped, never POSTed. */
static void test_message_size_limits(void **state)
{
    (void)state;
    enum { LIMIT = 16384 };
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "sizes", 0, true);
    char ok[128], once[128];
    ct_receiver_url(ok, sizeof(ok), &r, "/ok");
    ct_receiver_url(once, sizeof(once), &r, "/fail-once/limit");
    char *below = finished_of_size("\"w-below\"", ok, LIMIT - 1);
    char *at = finished_of_size("\"w-at\"", once, LIMIT);
    char *above = finished_of_size("\"w-above\"", ok, LIMIT + 1);
    ct_amqp_publish(FINISHED, below, NULL);
    ct_amqp_publish(FINISHED, at, NULL);
    ct_amqp_publish(FINISHED, above, "m-above");
    notifier_start(&run, "sizes", (const char *[]){"MAX_MESSAGE_BYTES=16k", NULL});
    WAIT_LOG(&run, 1, "callback delivered", "work_id=w-below", "attempt=1");
    WAIT_LOG(&run, 1, "callback delivered", "work_id=w-at", "attempt=2");
    wait_queue(INVALID, 1, WAIT_MS);
    WAIT_LOG(&run, 1, "message parked", "16385 bytes");
    assert_exit(&run, 0);
    struct ct_msg *m = ct_amqp_get(INVALID, 0);
    assert_non_null(m);
    assert_string_equal(m->body, above);
    assert_string_equal(m->message_id, "m-above");
    assert_string_equal(json_string_value(json_object_get(m->headers, "x-correctomatic-reason")),
                        "message too large - 16385 bytes, more than the 16384 accepted");
    ct_msg_free(m);
    assert_int_equal(ct_receiver_count(&r, "/ok", 200), 1);
    assert_int_equal(ct_receiver_count(&r, "/fail-once/limit", 500), 1);
    assert_int_equal(ct_receiver_count(&r, "/fail-once/limit", 200), 1);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 3);
    assert_queues_empty((const char *[]){"1000ms", "2000ms", NULL});
    free(below);
    free(at);
    free(above);
    ct_receiver_stop(&r);
}

/* The notifier's connection as the management API names it, or NULL (its connection_name is
 * "correctomatic-notifier <version> on <host>, pid <pid>"). */
static char *notifier_connection(void)
{
    long status = 0;
    json_t *all = ct_mgmt("GET", "/connections", NULL, &status);
    char *name = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c)
    {
        const char *cn = json_string_value(
            json_object_get(json_object_get(c, "client_properties"), "connection_name"));
        if (cn && strncmp(cn, "correctomatic-notifier ", 23) == 0 && !name)
            name = strdup(json_string_value(json_object_get(c, "name")));
    }
    json_decref(all);
    return name;
}

static bool has_notifier_connection(void *ud)
{
    char **name = ud;
    *name = notifier_connection();
    return *name != NULL;
}

/* Closes the notifier's connection from the broker's side (as an operator, or a broker
 * restart, would). */
static void kill_notifier_connection(void)
{
    char *name = NULL;
    if (!ct_wait_until(has_notifier_connection, &name, WAIT_MS))
        fail_msg("the notifier's connection does not show in the management API");
    char path[512] = "/connections/", *p = path + strlen(path);
    for (const unsigned char *c = (const unsigned char *)name; *c && p < path + sizeof(path) - 4;
         c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '.' || *c == '-' || *c == '_')
            *p++ = (char)*c;
        else
            p += sprintf(p, "%%%02X", *c);
    }
    *p = '\0';
    long status = 0;
    json_decref(ct_mgmt("DELETE", path, NULL, &status));
    if (status != 204 && status != 200)
        fail_msg("DELETE %s: HTTP %ld", path, status);
    free(name);
}

struct outcomes {
    const char *log;
    int n;
};

static bool outcomes_seen(void *ud)
{
    struct outcomes *o = ud;
    const char *const phrases[] = {"will retry", "callback parked in",
                                   "callback failed on a lost RabbitMQ connection"};
    int n = 0;
    for (size_t i = 0; i < 3; i++)
        n += log_lines(o->log, (const char *[]){"work_id=w-dup-", phrases[i], NULL});
    return n >= o->n;
}

/* A POST that fails after the connection it came on was lost must not leave a second copy:
 * the broker requeued the delivery, and its redelivery retries (or parks) it. Two slow
 * receivers' answers (500, 410) land after a reconnection: exactly one copy in the retry
 * queue, one in failed_callbacks, and two POSTs each. */
static void test_reconnect_no_duplicates(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "reconnect", 0, true);
    notifier_start(&run, "reconnect",
                   (const char *[]){"CALLBACK_RETRY_DELAYS=1h", "CALLBACK_TIMEOUT=30s", NULL});
    char cb500[128], cb410[128];
    ct_receiver_url(cb500, sizeof(cb500), &r, "/delay/6000/500");
    ct_receiver_url(cb410, sizeof(cb410), &r, "/delay/6000/410");
    publish("\"w-dup-500\"", false, "{\"success\":true,\"grade\":1}", cb500, "job-dup-500");
    publish("\"w-dup-410\"", false, "{\"success\":true,\"grade\":1}", cb410, "job-dup-410");
    /* both POSTs held by the receiver: now the connection goes */
    ct_receiver_wait(&r, "/delay/6000/500", -1, 1, WAIT_MS);
    ct_receiver_wait(&r, "/delay/6000/410", -1, 1, WAIT_MS);
    kill_notifier_connection();
    WAIT_LOG(&run, 1, "lost RabbitMQ");
    WAIT_LOG(&run, 2, "connected to RabbitMQ");
    /* the redeliveries are POSTed while the first attempts are still held */
    ct_receiver_wait(&r, "/delay/6000/500", -1, 2, WAIT_MS);
    ct_receiver_wait(&r, "/delay/6000/410", -1, 2, WAIT_MS);
    /* every attempt's outcome, whichever way it went (4 in all) */
    struct outcomes o = {run.log, 4};
    if (!ct_wait_until(outcomes_seen, &o, WAIT_MS))
        fail_msg("not every attempt ended (log %s)", run.log);
    assert_exit(&run, 0); /* waits for its publishes to be confirmed */
    assert_int_equal(ct_amqp_count(retry_queue("3600000ms")), 1);
    assert_int_equal(ct_amqp_count(FAILED), 1);
    assert_int_equal(ct_amqp_count(FINISHED), 0);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 4);
    assert_int_equal(
        log_lines(run.log, (const char *[]){"callback failed on a lost RabbitMQ connection", NULL}),
        2);
    ct_receiver_stop(&r);
}

/* A 2xx is delivered whatever the size of its body (read up to CALLBACK_MAX_RESPONSE_BYTES,
 * then dropped); a big non-2xx is an HTTP failure like any other. */
static void test_big_answers(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "big", 0, true);
    notifier_start(
        &run, "big",
        (const char *[]){"CALLBACK_MAX_RESPONSE_BYTES=1k", "CALLBACK_RETRY_DELAYS=1s", NULL});
    char cb200[128], cb500[128];
    ct_receiver_url(cb200, sizeof(cb200), &r, "/big/200/300000");
    ct_receiver_url(cb500, sizeof(cb500), &r, "/big/500/300000");
    publish("\"w-big-200\"", false, "{\"success\":true,\"grade\":1}", cb200, NULL);
    publish("\"w-big-500\"", false, "{\"success\":true,\"grade\":1}", cb500, NULL);
    WAIT_LOG(&run, 1, "callback delivered", "work_id=w-big-200", "status=200", "attempt=1");
    struct ct_msg *m = ct_amqp_get(FAILED, WAIT_MS);
    if (!m)
        fail_msg("not parked (log %s)", run.log);
    assert_parked(m->headers, "gave up after 2 attempts - HTTP 500", 2, "HTTP 500");
    ct_msg_free(m);
    assert_exit(&run, 0);
    assert_int_equal(ct_receiver_count(&r, "/big/200/300000", 200), 1);
    assert_int_equal(ct_receiver_count(&r, "/big/500/300000", 500), 2);
    assert_int_equal(log_lines(run.log, (const char *[]){"will retry", "w-big-200", NULL}), 0);
    assert_queues_empty((const char *[]){"1000ms", NULL});
    ct_receiver_stop(&r);
}

/* Text from outside that lands in a header is valid UTF-8: a callback host of 400 bytes of
 * two-byte characters, quoted (cut to 255 bytes) in the reason of a refusal, is cut at a
 * character boundary. */
static void test_outside_text_utf8(void **state)
{
    (void)state;
    struct ct_daemon run;
    char cb[512] = "http://";
    for (int i = 0; i < 200; i++)
        strcat(cb, "\xc3\xa9");
    strcat(cb, "/x");
    publish("\"w-utf8\"", false, "{\"success\":true,\"grade\":1}", cb, NULL);
    notifier_start(&run, "utf8", (const char *[]){"CALLBACK_ALLOW_HOSTS=127.0.0.1", NULL});
    struct ct_msg *m = ct_amqp_get(FAILED, WAIT_MS);
    if (!m)
        fail_msg("not parked (log %s)", run.log);
    json_t *reason = json_object_get(m->headers, "x-correctomatic-reason");
    const char *text = json_string_value(reason);
    assert_non_null(text);
    if (!text_utf8_valid(text, json_string_length(reason)))
        fail_msg("reason not valid UTF-8: %s", text);
    assert_true(strncmp(text, "callback refused - host '\xc3\xa9\xc3\xa9", 29) == 0);
    assert_non_null(strstr(text, "\xc3\xa9' is not in CALLBACK_ALLOW_HOSTS"));
    ct_msg_free(m);
    assert_exit(&run, 0);
    assert_queues_empty(NULL);
}

/* ---- the address policy, in a network namespace ----------------------------------------- */

/* Every metadata address the notifier refuses whatever CALLBACK_DENY_PRIVATE says, bound in the
 * test's namespace and named in its /etc/hosts. */
static const struct {
    const char *name, *addr;
} META[] = {
    {"aws-imds.test", "169.254.169.254"}, /* also GCP, Azure IMDS, Oracle, DO, Hetzner */
    {"aws-ecs.test", "169.254.170.2"},         {"aws-eks.test", "169.254.170.23"},
    {"scaleway.test", "169.254.42.42"},        {"tencent.test", "169.254.0.23"},
    {"alibaba.test", "100.100.100.200"},       {"azure-wireserver.test", "168.63.129.16"},
    {"oracle-classic.test", "192.0.0.192"},    {"aws-imds6.test", "fd00:ec2::254"},
    {"aws-eks6.test", "fd00:ec2::23"},         {"gcp6.test", "fd20:ce::254"},
    {"oracle6.test", "fd00:c1::a9fe:a9fe"},    {"scaleway6.test", "fd00:42::42"},
    {"nat64.test", "64:ff9b::a9fe:a9fe"},      {"sixtofour.test", "2002:a9fe:a9fe::1"},
    {"mapped.test", "::ffff:169.254.169.254"}, /* reaches 169.254.169.254 if let through */
};
enum { N_META = sizeof(META) / sizeof(META[0]) };

/* A namespace with every address of META (and the names of META, control.test and the
 * two-address names of the happy-eyeballs test), the notifier spawned inside it, and a
 * receiver on [::]:80 in it that sees a request to any of its addresses. */
static void meta_namespace(struct ct_receiver *r, const char *receiver_name)
{
    static char hosts[4096];
    const char *addrs[N_META + 1];
    size_t n = 0, o = 0;
    o += (size_t)snprintf(hosts + o, sizeof(hosts) - o,
                          "127.0.0.1 localhost\n127.0.0.1 control.test\n"
                          "169.254.169.254 metadata.google.internal\n"
                          "fd00:ec2::254 dual6.test\n127.0.0.1 dual6.test\n"
                          "169.254.169.254 dual4.test\n127.0.0.1 dual4.test\n");
    for (size_t i = 0; i < N_META; i++) {
        o += (size_t)snprintf(hosts + o, sizeof(hosts) - o, "%s %s\n", META[i].addr, META[i].name);
        if (strncmp(META[i].addr, "::ffff:", 7) != 0)
            addrs[n++] = META[i].addr;
    }
    addrs[n] = NULL;
    ct_netns_create(&test_ns, addrs, hosts);
    spawn_ns = &test_ns;
    ct_netns_receiver_start(&test_ns, r, receiver_name, 80);
}

/* The receiver's requests that came to an address other than 127.0.0.1. */
static int requests_not_local(const struct ct_receiver *r)
{
    json_t *all = ct_receiver_requests(r);
    size_t i;
    json_t *q;
    int n = 0;
    json_array_foreach(all, i, q)
    {
        const char *local = req_str(q, "local");
        if (!local || strcmp(local, "127.0.0.1") != 0) {
            print_message("request %s to %s\n", req_str(q, "path"), local ? local : "?");
            n++;
        }
    }
    json_decref(all);
    return n;
}

/* Each metadata address reached by name is refused at connection time (nothing arrives at
 * the addresses, bound to a receiver in a namespace of the test's own, so nothing could leave
 * the machine even if the guard failed) and parked with the reason, with the default policy
 * (CALLBACK_DENY_PRIVATE=false). A name that leads to 127.0.0.1 is delivered: the names, the
 * namespace and the receiver work. metadata.google.internal is refused by its name. */
static void test_metadata_by_name(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    meta_namespace(&r, "meta");
    for (size_t i = 0; i < N_META; i++) {
        char cb[256], wid[64];
        snprintf(cb, sizeof(cb), "http://%s/ok?token=meta-secret", META[i].name);
        snprintf(wid, sizeof(wid), "\"meta-%zu\"", i);
        publish(wid, false, "{\"success\":true,\"grade\":1}", cb, NULL);
    }
    publish("\"meta-gce\"", false, "{\"success\":true,\"grade\":1}",
            "http://metadata.google.internal/computeMetadata/v1/", NULL);
    publish("\"control\"", false, "{\"success\":true,\"grade\":1}", "http://control.test/ok", NULL);
    notifier_start(&run, "meta", NULL);
    ct_receiver_wait(&r, "/ok", 200, 1, WAIT_MS);
    wait_queue(FAILED, N_META + 1, WAIT_MS);
    assert_exit(&run, 0);

    assert_int_equal(ct_receiver_count(&r, NULL, -1), 1); /* the control, nothing else */
    assert_int_equal(requests_not_local(&r), 0);
    for (size_t k = 0; k < N_META + 1; k++) {
        struct ct_msg *m = ct_amqp_get(FAILED, 0);
        assert_non_null(m);
        json_t *body = ct_json(m->body);
        const char *wid = json_string_value(json_object_get(body, "work_id"));
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        assert_non_null(wid);
        assert_non_null(reason);
        char want[200];
        if (strcmp(wid, "meta-gce") == 0) {
            assert_string_equal(reason, "callback refused - cloud metadata host name "
                                        "metadata.google.internal");
        } else {
            size_t i = (size_t)atoi(wid + 5);
            assert_true(i < N_META);
            snprintf(want, sizeof(want), "callback refused - cloud metadata address %s",
                     META[i].addr);
            /* an IPv4-mapped name may come back from the resolver as its IPv4 address */
            if (strcmp(reason, want) != 0 &&
                !(strncmp(META[i].addr, "::ffff:", 7) == 0 &&
                  strcmp(reason, "callback refused - cloud metadata address 169.254.169.254") == 0))
                fail_msg("%s (%s): reason '%s', expected '%s'", wid, META[i].name, reason, want);
        }
        json_decref(body);
        ct_msg_free(m);
    }
    assert_queues_empty(NULL);
    ct_receiver_stop(&r);
}

/* A name with two addresses, a metadata one first: curl tries it, the policy refuses it, curl
 * connects to the other and the receiver answers 200. Delivered, never parked. When the other
 * address does not answer, the attempt failed (retried), it was not refused (parked). The refusal
 * logged for each is the sign the refused address was tried (if the resolver's order changed,
 * this test would fail on it rather than pass without testing anything). */
static void test_refused_then_connected(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    meta_namespace(&r, "dual");
    publish("\"dual6\"", false, "{\"success\":true,\"grade\":6}", "http://dual6.test/ok", NULL);
    publish("\"dual4\"", false, "{\"success\":true,\"grade\":4}", "http://dual4.test/ok", NULL);
    /* the other address does not answer (nothing on port 81): an ordinary failure, retried
     * later, not a refusal */
    publish("\"dual-down\"", false, "{\"success\":true,\"grade\":0}", "http://dual6.test:81/ok",
            NULL);
    notifier_start(&run, "dual", (const char *[]){"CALLBACK_RETRY_DELAYS=1h", NULL});
    ct_receiver_wait(&r, "/ok", 200, 2, WAIT_MS);
    WAIT_LOG(&run, 2, "callback delivered");
    WAIT_LOG(&run, 1, "callback address refused", "address=fd00:ec2::254", "dual6");
    WAIT_LOG(&run, 1, "callback address refused", "address=169.254.169.254", "dual4");
    WAIT_LOG(&run, 1, "callback failed, will retry", "dual-down",
             "(refused: cloud metadata address fd00:ec2::254)");
    wait_queue(retry_queue("3600000ms"), 1, WAIT_MS);
    assert_exit(&run, 0);
    assert_int_equal(requests_not_local(&r), 0);
    assert_int_equal(ct_receiver_count(&r, NULL, -1), 2);
    assert_int_equal(ct_amqp_count(FAILED), 0);
    assert_int_equal(ct_amqp_count(FINISHED), 0);
    ct_receiver_stop(&r);
}

/* ---- proxies ------------------------------------------------------------------------------ */

struct proxy {
    pid_t pid;
    int port;
    char log[512], port_file[512], out[512];
};

static bool proxy_port(void *ud)
{
    struct proxy *p = ud;
    char *s = ct_read_file(p->port_file, NULL);
    p->port = s ? atoi(s) : 0;
    free(s);
    return p->port > 0;
}

static void proxy_start(struct proxy *p)
{
    const char *tmp = ct_env("CT_TMP");
    snprintf(p->log, sizeof(p->log), "%s/proxy.jsonl", tmp);
    snprintf(p->port_file, sizeof(p->port_file), "%s/proxy.port", tmp);
    snprintf(p->out, sizeof(p->out), "%s/proxy.out", tmp);
    unlink(p->log);
    unlink(p->port_file);
    char script[1024];
    snprintf(script, sizeof(script), "%s", ct_receiver_script());
    snprintf(strrchr(script, '/'), sizeof(script) - (size_t)(strrchr(script, '/') - script),
             "/proxy.py");
    char *argv[] = {PYTHON, script, "--log", p->log, "--port-file", p->port_file, NULL};
    p->pid = ct_spawn(PYTHON, argv, NULL, p->out);
    ct_track(p->pid);
    if (!ct_wait_until(proxy_port, p, 10000))
        fail_msg("the proxy did not start (see %s)", p->out);
}

/* Lines of the proxy's log with the event (and the target when not NULL). */
static int proxy_count(const struct proxy *p, const char *event, const char *target)
{
    char *s = ct_read_file(p->log, NULL);
    int n = 0;
    for (char *line = s, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        json_t *e = json_loads(line, 0, NULL);
        const char *ev = json_string_value(json_object_get(e, "event"));
        const char *t = json_string_value(json_object_get(e, "target"));
        if (ev && strcmp(ev, event) == 0 && (!target || (t && strcmp(t, target) == 0)))
            n++;
        json_decref(e);
    }
    free(s);
    return n;
}

/* http_proxy and its kin in the notifier's environment are ignored: the callback goes to the
 * receiver directly and the proxy sees no connection. With CALLBACK_PROXY the callback goes
 * through that proxy; a literal metadata address and a metadata name are refused before it
 * (the proxy resolves names: the rest of the policy is the proxy's to enforce). */
static void test_proxy(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct proxy px;
    struct ct_daemon run;
    ct_receiver_start(&r, "proxy", 0, true);
    proxy_start(&px);
    char proxy_url[128], proxy_auth[160], cb[256];
    snprintf(proxy_url, sizeof(proxy_url), "http://127.0.0.1:%d", px.port);
    snprintf(proxy_auth, sizeof(proxy_auth), "CALLBACK_PROXY=http://pxuser:pxsecret@127.0.0.1:%d",
             px.port);
    char env[6][160];
    const char *names[] = {"http_proxy",  "https_proxy", "HTTP_PROXY",
                           "HTTPS_PROXY", "ALL_PROXY",   "all_proxy"};
    for (size_t i = 0; i < 6; i++)
        snprintf(env[i], sizeof(env[i]), "%s=%s", names[i], proxy_url);

    ct_receiver_url(cb, sizeof(cb), &r, "/ok");
    publish("\"direct\"", false, "{\"success\":true,\"grade\":1}", cb, NULL);
    notifier_start(&run, "proxy-env",
                   (const char *[]){env[0], env[1], env[2], env[3], env[4], env[5], NULL});
    ct_receiver_wait(&r, "/ok", 200, 1, WAIT_MS);
    WAIT_LOG(&run, 1, "callback delivered", "direct");
    assert_exit(&run, 0);
    assert_int_equal(proxy_count(&px, "connection", NULL), 0);
    assert_queues_empty(NULL);

    /* CALLBACK_PROXY: through it (its credentials never in the log) */
    publish("\"proxied\"", false, "{\"success\":true,\"grade\":2}", cb, NULL);
    publish("\"meta-literal\"", false, "{\"success\":true,\"grade\":3}",
            "http://169.254.169.254/latest/meta-data/", NULL);
    publish("\"meta-mapped\"", false, "{\"success\":true,\"grade\":3}",
            "http://[::ffff:a9fe:a9fe]/latest/meta-data/", NULL);
    publish("\"meta-name\"", false, "{\"success\":true,\"grade\":4}",
            "http://metadata.google.internal/computeMetadata/v1/", NULL);
    notifier_start(&run, "proxy-set",
                   (const char *[]){proxy_auth, env[0], env[4], "NO_PROXY=127.0.0.1", NULL});
    ct_receiver_wait(&r, "/ok", 200, 2, WAIT_MS);
    wait_queue(FAILED, 3, WAIT_MS);
    WAIT_LOG(&run, 1, "callback delivered", "proxied");
    assert_exit(&run, 0);
    assert_int_equal(proxy_count(&px, "request", NULL), 1);
    assert_int_equal(proxy_count(&px, "request", cb), 1);
    assert_int_equal(log_lines(run.log, (const char *[]){"pxsecret", NULL}), 0);
    assert_int_equal(log_lines(run.log, (const char *[]){"notifier running", "proxy=", NULL}), 1);
    const char *reasons[] = {"callback refused - cloud metadata address 169.254.169.254",
                             "callback refused - cloud metadata address ::ffff:a9fe:a9fe",
                             "callback refused - cloud metadata host name "
                             "metadata.google.internal"};
    bool seen[3] = {false, false, false};
    for (size_t k = 0; k < 3; k++) {
        struct ct_msg *m = ct_amqp_get(FAILED, 0);
        assert_non_null(m);
        const char *reason =
            json_string_value(json_object_get(m->headers, "x-correctomatic-reason"));
        size_t i = 0;
        while (i < 3 && !(reason && strcmp(reason, reasons[i]) == 0))
            i++;
        if (i == 3)
            fail_msg("unexpected reason '%s'", reason ? reason : "(none)");
        seen[i] = true;
        ct_msg_free(m);
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    assert_queues_empty(NULL);
    ct_receiver_stop(&r);
}

/* ---- secrets in logs ---------------------------------------------------------------------- */

/* No credential of a callback URL (userinfo, query values) reaches the notifier's log or a
 * parked message's headers, whatever happens to the callback: retried then delivered, parked
 * on 410, refused, invalid. The redacted forms are there instead. */
static void test_log_secrets(void **state)
{
    (void)state;
    struct ct_receiver r;
    struct ct_daemon run;
    ct_receiver_start(&r, "secrets", 0, true);
    char cb[5][256];
    snprintf(cb[0], sizeof(cb[0]), "http://alice:pw-SECRET1@127.0.0.1:%d/fail-once/s?token=SECRET2",
             r.port);
    snprintf(cb[1], sizeof(cb[1]), "http://bob:SECRET3@127.0.0.1:%d/gone?sig=SECRET4&v", r.port);
    snprintf(cb[2], sizeof(cb[2]), "ftp://carol:SECRET5@127.0.0.1:%d/x?t=SECRET6", r.port);
    snprintf(cb[3], sizeof(cb[3]), "http://dave:SECRET7@169.254.169.254/?k=SECRET8");
    snprintf(cb[4], sizeof(cb[4]), "http://erin:SECRET9@[::1/x?q=SECRET10");
    for (size_t i = 0; i < 5; i++) {
        char wid[32];
        snprintf(wid, sizeof(wid), "\"sec-%zu\"", i);
        publish(wid, false, "{\"success\":true,\"grade\":1}", cb[i], NULL);
    }
    notifier_start(&run, "secrets", NULL);
    ct_receiver_wait(&r, "/fail-once/s?token=SECRET2", 200, 1, WAIT_MS);
    wait_queue(FAILED, 4, WAIT_MS);
    WAIT_LOG(&run, 1, "callback delivered", "sec-0");
    assert_exit(&run, 0);
    /* the receiver got the credentials: they are the receiver's */
    json_t *all = ct_receiver_requests(&r);
    assert_true(json_array_size(all) >= 2);
    json_decref(all);

    const char *secrets[] = {"pw-SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5",
                             "SECRET6",    "SECRET7", "SECRET8", "SECRET9", "SECRET10"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (log_lines(run.log, (const char *[]){secrets[i], NULL}) > 0)
            fail_msg("%s in the log %s", secrets[i], run.log);
    char shown[128];
    snprintf(shown, sizeof(shown), "callback=\"http://***@127.0.0.1:%d/fail-once/s?token=***\"",
             r.port);
    assert_true(log_lines(run.log, (const char *[]){"callback failed, will retry", shown, NULL}) >=
                1);
    assert_true(log_lines(run.log, (const char *[]){"callback delivered", shown, NULL}) == 1);
    for (size_t k = 0; k < 4; k++) {
        struct ct_msg *m = ct_amqp_get(FAILED, 0);
        assert_non_null(m);
        char *h = json_dumps(m->headers, JSON_COMPACT);
        for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
            if (strstr(h, secrets[i]))
                fail_msg("%s in the parked headers %s", secrets[i], h);
        free(h);
        ct_msg_free(m);
    }
    assert_queues_empty(NULL);
    ct_receiver_stop(&r);
}

/* Bad settings stop the start with a message naming the variable (never the secret). */
static void test_config_errors(void **state)
{
    (void)state;
    struct ct_daemon run;
    const struct {
        const char *setting, *name;
    } bad[] = {
        {"CALLBACK_SECRET=whsec_not*base64!", "CALLBACK_SECRET"},
        {"CALLBACK_RETRY_DELAYS=5s,soon", "CALLBACK_RETRY_DELAYS"},
        {"CALLBACK_TIMEOUT=0", "CALLBACK_TIMEOUT"},
        {"CONCURRENT_NOTIFIERS=none", "CONCURRENT_NOTIFIERS"},
        {"CALLBACK_DENY_PRIVATE=maybe", "CALLBACK_DENY_PRIVATE"},
        /* socks5 would resolve the callback's name here and show only the proxy's address */
        {"CALLBACK_PROXY=socks5://user:proxypw@127.0.0.1:1080", "CALLBACK_PROXY"},
        {"CALLBACK_PROXY=http://", "CALLBACK_PROXY"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        notifier_start(&run, "badconfig", (const char *[]){bad[i].setting, NULL});
        int status = -1;
        assert_int_equal(ct_wait_exit(run.pid, 10000, &status), 0);
        ct_untrack(run.pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
        assert_true(log_lines(run.log, (const char *[]){bad[i].name, NULL}) > 0);
    }
    assert_int_equal(log_lines(run.log, (const char *[]){"not*base64", NULL}), 0);
    notifier_start(&run, "badconfig", (const char *[]){bad[5].setting, NULL});
    assert_int_equal(ct_wait_exit(run.pid, 10000, NULL), 0);
    ct_untrack(run.pid);
    assert_true(log_lines(run.log, (const char *[]){"CALLBACK_PROXY", NULL}) > 0);
    assert_int_equal(log_lines(run.log, (const char *[]){"proxypw", NULL}), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_then_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_down_then_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_urls_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_parked_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_size_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_no_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_text_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thousand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_connected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_secrets, setup, teardown),
    };
    if (getenv("CT_TEST_FILTER")) /* e.g. CT_TEST_FILTER='test_park*' */
        cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
