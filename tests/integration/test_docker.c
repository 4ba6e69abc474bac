/* Integration tests for docker.c (and http.c under it) against a real dockerd.
 *
 * Needs CT_DOCKER_HOST (unix:///...docker.sock) and the test images ct-ok:latest (prints
 * {"success":true,"grade":10}) and ct-sleeper:latest (sleeps). Fails when CT_DOCKER_HOST is
 * missing. Every container it creates carries the label ct.test=<pid> and is removed at the
 * end. The loop is driven until a condition holds or a deadline passes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "docker.h"
#include "support.h"
#include "watch.h"

#define WAIT_MS 20000
#define OK_OUTPUT "{\"success\":true,\"grade\":10,\"comments\":[\"well done\"]}\n"

struct res {
    bool done;
    int calls;
    int err;
    long status;
    char *message;
    json_t *json;
    char *body;
    size_t body_len;
};

static struct {
    const char *host;
    uv_loop_t loop;
    uv_timer_t guard;
    docker *d;
    char label[64];     /* ct.test=<pid> */
    char label_val[32]; /* <pid> */
    char name[64];
    char id[80];
} T;

static void guard_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag or the deadline; the guard timer keeps UV_RUN_ONCE blocking. */
static bool run_until(uv_loop_t *loop, const bool *flag, uint64_t timeout_ms)
{
    uint64_t deadline;

    uv_update_time(loop);
    deadline = uv_now(loop) + timeout_ms;
    while (!*flag && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
    return *flag;
}

static void on_res(const struct docker_result *r, void *userdata)
{
    struct res *x = userdata;

    x->calls++;
    x->done = true;
    x->err = r->err;
    x->status = r->status;
    assert_non_null(r->message);
    x->message = strdup(r->message);
    x->json = json_incref(r->json);
    x->body_len = r->body_len;
    x->body = malloc(r->body_len + 1);
    assert_non_null(x->body);
    memcpy(x->body, r->body, r->body_len);
    x->body[r->body_len] = '\0';
}

static void res_clear(struct res *x)
{
    free(x->message);
    free(x->body);
    json_decref(x->json);
    memset(x, 0, sizeof(*x));
}

#define WAIT(x) assert_true(run_until(&T.loop, &(x)->done, WAIT_MS))

static docker *client(uv_loop_t *loop, const char *host, size_t max_response)
{
    struct docker_config cfg;
    struct ct_error err = {0};
    docker *d;

    docker_config_defaults(&cfg);
    cfg.host = host;
    if (max_response)
        cfg.max_response_bytes = max_response;
    if (docker_new(loop, &cfg, &d, &err) < 0)
        fail_msg("docker_new: %s", err.msg);
    return d;
}

static json_t *label_filter(void)
{
    return json_pack("{s:[s]}", "label", T.label);
}

/* A create config for image, labelled for this run. */
static json_t *create_config(const char *image)
{
    json_t *c = json_pack("{s:s, s:{s:s}, s:{s:s, s:I, s:b}}", "Image", image, "Labels", "ct.test",
                          T.label_val, "HostConfig", "NetworkMode", "none", "Memory",
                          (json_int_t)64 * 1024 * 1024, "AutoRemove", 0);
    assert_non_null(c);
    return c;
}

static void create(const char *name, const char *image, char *ret_id, size_t idlen)
{
    struct res r = {0};
    json_t *cfg = create_config(image);

    assert_int_equal(docker_container_create(T.d, name, cfg, on_res, &r), 0);
    json_decref(cfg);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 201);
    assert_non_null(json_string_value(json_object_get(r.json, "Id")));
    snprintf(ret_id, idlen, "%s", json_string_value(json_object_get(r.json, "Id")));
    res_clear(&r);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    T.host = getenv("CT_DOCKER_HOST");
    if (!T.host || !*T.host) {
        fprintf(stderr, "CT_DOCKER_HOST is not set: these tests need a real dockerd\n");
        return -1;
    }
    if (uv_loop_init(&T.loop) < 0 || uv_timer_init(&T.loop, &T.guard) < 0 ||
        uv_timer_start(&T.guard, guard_tick, 50, 50) < 0)
        return -1;
    snprintf(T.label_val, sizeof(T.label_val), "%ld", (long)getpid());
    snprintf(T.label, sizeof(T.label), "ct.test=%s", T.label_val);
    snprintf(T.name, sizeof(T.name), "ct-test-%s-main", T.label_val);
    T.d = client(&T.loop, T.host, 0);
    return T.d ? 0 : -1;
}

static int group_teardown(void **state)
{
    struct res r = {0};
    json_t *f, *c;
    size_t i;

    (void)state;
    if (!T.d)
        return -1; /* the setup failed */
    f = label_filter();
    /* Remove every container of this run. */
    if (docker_container_list(T.d, true, f, on_res, &r) == 0 &&
        run_until(&T.loop, &r.done, WAIT_MS) && json_is_array(r.json)) {
        json_array_foreach(r.json, i, c)
        {
            struct res rm = {0};
            const char *id = json_string_value(json_object_get(c, "Id"));
            if (id && docker_container_remove(T.d, id, true, on_res, &rm) == 0)
                run_until(&T.loop, &rm.done, WAIT_MS);
            res_clear(&rm);
        }
    }
    res_clear(&r);
    json_decref(f);
    docker_free(T.d);
    uv_close((uv_handle_t *)&T.guard, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    return uv_loop_close(&T.loop) == 0 ? 0 : -1;
}

/* ---- a tar stream by hand: one file, ustar ---- */

static size_t tar_one(unsigned char *buf, size_t cap, const char *name, const char *data)
{
    size_t len = strlen(data), total = 512 + (len + 511) / 512 * 512 + 1024;
    unsigned sum = 0;

    assert_true(total <= cap);
    memset(buf, 0, total);
    snprintf((char *)buf, 100, "%s", name);
    snprintf((char *)buf + 100, 8, "%07o", 0644);
    snprintf((char *)buf + 108, 8, "%07o", 0);
    snprintf((char *)buf + 116, 8, "%07o", 0);
    assert_true(len <= 07777777777); /* 11 octal digits */
    snprintf((char *)buf + 124, 12, "%011o", (unsigned)len);
    snprintf((char *)buf + 136, 12, "%011lo", (unsigned long)time(NULL));
    memset(buf + 148, ' ', 8);
    buf[156] = '0';
    memcpy(buf + 257, "ustar", 6);
    memcpy(buf + 263, "00", 2);
    for (int i = 0; i < 512; i++)
        sum += buf[i];
    snprintf((char *)buf + 148, 8, "%06o", sum);
    buf[155] = ' ';
    memcpy(buf + 512, data, len);
    return total;
}

/* ---- tests ---- */

static void test_ping(void **state)
{
    struct res r = {0};

    (void)state;
    assert_int_equal(docker_ping(T.d, on_res, &r), 0);
    /* Never called from inside the request itself. */
    assert_false(r.done);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "OK");
    assert_string_equal(r.message, "");
    assert_int_equal(r.calls, 1);
    res_clear(&r);
}

static void test_create_conflict_missing_image(void **state)
{
    struct res r = {0};
    json_t *cfg;

    (void)state;
    create(T.name, "ct-ok:latest", T.id, sizeof(T.id));

    cfg = create_config("ct-ok:latest");
    assert_int_equal(docker_container_create(T.d, T.name, cfg, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 409);
    assert_non_null(strstr(r.message, "already in use"));
    json_decref(cfg);
    res_clear(&r);

    cfg = create_config("ct-no-such-image:never");
    assert_int_equal(docker_container_create(T.d, NULL, cfg, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 404);
    /* Docker: "No such image", Podman: "no such image" */
    assert_non_null(strcasestr(r.message, "no such image"));
    json_decref(cfg);
    res_clear(&r);
}

static void test_inspect_created(void **state)
{
    struct res r = {0};
    json_t *labels;

    (void)state;
    /* By name, then by id. */
    assert_int_equal(docker_container_inspect(T.d, T.name, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "Id")), T.id);
    labels = json_object_get(json_object_get(r.json, "Config"), "Labels");
    assert_string_equal(json_string_value(json_object_get(labels, "ct.test")), T.label_val);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "HostConfig"), "NetworkMode")),
        "none");
    res_clear(&r);

    assert_int_equal(docker_container_inspect(T.d, "ct-test-no-such-container", on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 404);
    assert_non_null(strcasestr(r.message, "no such container"));
    res_clear(&r);
}

static void test_upload_and_read_back(void **state)
{
    static const char content[] = "hello from the test\n";
    unsigned char tar[4096];
    size_t len = tar_one(tar, sizeof(tar), "hello.txt", content);
    struct res r = {0};
    char *path;

    (void)state;
    assert_int_equal(docker_container_upload(T.d, T.id, "/tmp", tar, len, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    res_clear(&r);

    path = docker_path_for("/containers/", T.id, "/archive");
    assert_non_null(path);
    assert_int_equal(docker_query_add(&path, "path", "/tmp/hello.txt"), 0);
    assert_int_equal(docker_call(T.d, "GET", path, NULL, NULL, 0, on_res, &r), 0);
    free(path);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_true(r.body_len >= 1024);
    assert_string_equal(r.body, "hello.txt"); /* the tar header's name, NUL-padded */
    assert_non_null(memmem(r.body, r.body_len, content, strlen(content)));
    res_clear(&r);

    /* docker_container_stat: the file is there, another is not (a HEAD: no body either way) */
    assert_int_equal(docker_container_stat(T.d, T.id, "/tmp/hello.txt", on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    res_clear(&r);
    assert_int_equal(docker_container_stat(T.d, T.id, "/tmp/no-such-file", on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 404);
    res_clear(&r);
    assert_int_equal(docker_container_stat(T.d, T.id, "", on_res, &r), -EINVAL);
}

struct events_state {
    int count;
    bool seen; /* the die event of `want` */
    const char *want;
    int ends;
    bool end_done;
    int end_err;
    char end_msg[256];
    bool stop_in_callback;
    docker_events *ev;
};

static void on_event(json_t *event, void *userdata)
{
    struct events_state *s = userdata;
    const char *id = json_string_value(json_object_get(event, "id"));

    s->count++;
    assert_string_equal(json_string_value(json_object_get(event, "Type")), "container");
    assert_string_equal(json_string_value(json_object_get(event, "Action")), "die");
    if (id && s->want && strcmp(id, s->want) == 0)
        s->seen = true;
    if (s->stop_in_callback) {
        docker_events_stop(s->ev);
        s->seen = true;
    }
}

static void on_end(const struct docker_result *r, void *userdata)
{
    struct events_state *s = userdata;

    s->ends++;
    s->end_done = true;
    s->end_err = r->err;
    snprintf(s->end_msg, sizeof(s->end_msg), "%s", r->message);
}

static json_t *die_filter(void)
{
    return json_pack("{s:[s], s:[s], s:[s]}", "type", "container", "event", "die", "label",
                     T.label);
}

static void test_start_events_logs(void **state)
{
    struct events_state es = {.want = T.id};
    struct res r = {0}, ping = {0};
    json_t *f = die_filter();
    const unsigned char *b;
    size_t n = strlen(OK_OUTPUT);

    (void)state;
    /* since: the stream replays from there, so there is no race with the start. */
    assert_int_equal(
        docker_events_start(T.d, (int64_t)time(NULL) - 5, f, on_event, on_end, &es, &es.ev), 0);
    json_decref(f);

    assert_int_equal(docker_container_start(T.d, T.id, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 204);
    res_clear(&r);

    assert_true(run_until(&T.loop, &es.seen, WAIT_MS));
    assert_int_equal(es.ends, 0);

    assert_int_equal(docker_container_inspect(T.d, T.id, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "State"), "Status")), "exited");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "State"), "ExitCode")), 0);
    res_clear(&r);

    /* Logs: the raw multiplexed stream, one stdout frame (both streams, or stdout alone). */
    struct docker_logs out_only = {.out = true, .tail = 5, .since = "0.000"};
    assert_int_equal(docker_container_logs(T.d, T.id, NULL, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 8 + n);
    res_clear(&r);
    assert_int_equal(docker_container_logs(T.d, T.id, &out_only, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_null(r.json);
    assert_int_equal(r.body_len, 8 + n);
    b = (const unsigned char *)r.body;
    assert_int_equal(b[0], 1); /* stdout */
    assert_int_equal(b[1] | b[2] | b[3], 0);
    assert_int_equal(((size_t)b[4] << 24) | ((size_t)b[5] << 16) | ((size_t)b[6] << 8) | b[7], n);
    assert_memory_equal(r.body + 8, OK_OUTPUT, n);
    res_clear(&r);

    /* stderr alone: nothing was written there. */
    assert_int_equal(
        docker_container_logs(T.d, T.id, &(struct docker_logs){.err = true}, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    res_clear(&r);
    /* A since that is not a time is refused before any call. */
    assert_int_equal(
        docker_container_logs(T.d, T.id, &(struct docker_logs){.since = "1&x=y"}, on_res, &r),
        -EINVAL);

    /* Logs over max_bytes: -EFBIG with the first bytes kept. */
    assert_int_equal(
        docker_container_logs(T.d, T.id, &(struct docker_logs){.max_bytes = 10}, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, -EFBIG);
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body + 8, OK_OUTPUT, 2);
    res_clear(&r);

    /* Stopped: no on_end, even after another round trip. */
    docker_events_stop(es.ev);
    assert_int_equal(docker_ping(T.d, on_res, &ping), 0);
    WAIT(&ping);
    res_clear(&ping);
    assert_int_equal(es.ends, 0);
}

static void test_stop_events_inside_callback(void **state)
{
    struct events_state es = {.stop_in_callback = true};
    struct res ping = {0};
    json_t *f = die_filter();

    (void)state;
    /* Replays the die event of the main container; the first callback stops the stream. */
    assert_int_equal(
        docker_events_start(T.d, (int64_t)time(NULL) - 600, f, on_event, on_end, &es, &es.ev), 0);
    json_decref(f);
    assert_true(run_until(&T.loop, &es.seen, WAIT_MS));
    assert_int_equal(docker_ping(T.d, on_res, &ping), 0);
    WAIT(&ping);
    res_clear(&ping);
    assert_int_equal(es.count, 1);
    assert_int_equal(es.ends, 0);
}

static void test_wait_kill_remove(void **state)
{
    struct events_state es = {0};
    struct res r = {0};
    char name[96], id[80];
    json_t *f = die_filter();

    (void)state;
    snprintf(name, sizeof(name), "ct-test-%s-sleeper", T.label_val);
    create(name, "ct-sleeper:latest", id, sizeof(id));
    es.want = id;
    assert_int_equal(
        docker_events_start(T.d, (int64_t)time(NULL) - 5, f, on_event, on_end, &es, &es.ev), 0);
    json_decref(f);

    assert_int_equal(docker_container_start(T.d, id, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 204);
    res_clear(&r);

    /* A wait with a short timeout on a sleeping container times out. */
    assert_int_equal(docker_container_wait(T.d, id, "not-running", 300, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, -ETIMEDOUT);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.message, "timed out"));
    res_clear(&r);

    assert_int_equal(docker_container_kill(T.d, id, "SIGKILL", on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 204);
    res_clear(&r);

    assert_int_equal(docker_container_wait(T.d, id, "not-running", 0, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "StatusCode")), 137);
    res_clear(&r);
    assert_true(run_until(&T.loop, &es.seen, WAIT_MS));
    docker_events_stop(es.ev);

    /* Killing a stopped container: 409 with Docker's message. */
    assert_int_equal(docker_container_kill(T.d, id, NULL, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 409);
    assert_true(strlen(r.message) > 0);
    res_clear(&r);

    assert_int_equal(docker_container_remove(T.d, id, true, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 204);
    res_clear(&r);

    assert_int_equal(docker_container_inspect(T.d, id, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 404);
    res_clear(&r);
}

static void test_list_label_filter(void **state)
{
    struct res r = {0};
    json_t *f = label_filter(), *c;
    size_t i;
    bool found = false;

    (void)state;
    assert_int_equal(docker_container_list(T.d, true, f, on_res, &r), 0);
    json_decref(f);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 1); /* the sleeper is gone */
    json_array_foreach(r.json, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "Id")), T.id) == 0)
            found = true;
    }
    assert_true(found);
    res_clear(&r);

    /* Only running ones: none. */
    f = label_filter();
    assert_int_equal(docker_container_list(T.d, false, f, on_res, &r), 0);
    json_decref(f);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 0);
    res_clear(&r);
}

static void test_image_inspect(void **state)
{
    struct res r = {0};

    (void)state;
    assert_int_equal(docker_image_inspect(T.d, "ct-ok:latest", on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    assert_non_null(json_object_get(r.json, "Id"));
    res_clear(&r);
}

static void test_transport_error(void **state)
{
    char host[128];
    struct res r = {0};
    struct events_state es = {0};
    docker *d;

    (void)state;
    snprintf(host, sizeof(host), "unix:///tmp/ct-no-such-dir-%ld/docker.sock", (long)getpid());
    d = client(&T.loop, host, 0);
    assert_int_equal(docker_ping(d, on_res, &r), 0);
    WAIT(&r);
    assert_int_not_equal(r.err, 0);
    assert_int_equal(r.err, -ENOENT);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.message, "cannot connect to Docker at unix:///tmp/ct-no-such-dir"));
    res_clear(&r);

    /* The events stream ends once, with the same kind of error. */
    assert_int_equal(docker_events_start(d, 0, NULL, on_event, on_end, &es, NULL), 0);
    assert_true(run_until(&T.loop, &es.end_done, WAIT_MS));
    assert_int_equal(es.ends, 1);
    assert_int_equal(es.end_err, -ENOENT);
    assert_non_null(strstr(es.end_msg, "cannot connect to Docker"));
    docker_free(d);
}

static void test_response_too_big(void **state)
{
    struct res r = {0};
    docker *d = client(&T.loop, T.host, 256);

    (void)state;
    assert_int_equal(docker_image_inspect(d, "ct-ok:latest", on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, -EFBIG);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.message, "256"));
    res_clear(&r);

    /* Small answers still fit. */
    assert_int_equal(docker_ping(d, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    res_clear(&r);
    docker_free(d);
}

#define N_CONCURRENT 50

static void on_count(const struct docker_result *r, void *userdata)
{
    int *ok = userdata;

    if (r->err == 0 && r->status == 200 && json_is_object(r->json))
        ok[0]++;
    ok[1]++;
}

static void test_concurrent_calls(void **state)
{
    int counts[2] = {0, 0};
    bool all = false;
    uint64_t deadline;

    (void)state;
    for (int i = 0; i < N_CONCURRENT; i++)
        assert_int_equal(docker_container_inspect(T.d, T.id, on_count, counts), 0);
    uv_update_time(&T.loop);
    deadline = uv_now(&T.loop) + WAIT_MS;
    while (counts[1] < N_CONCURRENT && uv_now(&T.loop) < deadline) {
        uv_run(&T.loop, UV_RUN_ONCE);
        uv_update_time(&T.loop);
    }
    all = counts[1] == N_CONCURRENT;
    assert_true(all);
    assert_int_equal(counts[0], N_CONCURRENT);
}

static bool freed_client; /* set right before docker_free in the tests below */

static void on_never(const struct docker_result *r, void *userdata)
{
    (void)userdata;
    if (freed_client)
        fail_msg("callback after docker_free: err=%d status=%ld %s", r->err, r->status, r->message);
}

static void on_never_event(json_t *event, void *userdata)
{
    (void)event;
    (void)userdata;
}

/* docker_free with calls and a stream in flight: no callback, every handle released. */
static void test_free_with_pending(void **state)
{
    uv_loop_t loop;
    docker *d;
    struct res r = {0};
    uv_timer_t guard;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_timer_init(&loop, &guard), 0);
    assert_int_equal(uv_timer_start(&guard, guard_tick, 50, 50), 0);
    d = client(&loop, T.host, 0);
    /* First a finished call, so a kept-alive connection is in curl's cache. */
    assert_int_equal(docker_ping(d, on_res, &r), 0);
    assert_true(run_until(&loop, &r.done, WAIT_MS));
    res_clear(&r);
    for (int i = 0; i < 5; i++)
        assert_int_equal(docker_container_inspect(d, T.id, on_never, NULL), 0);
    assert_int_equal(docker_events_start(d, 0, NULL, on_never_event, on_never, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_NOWAIT); /* let the transfers start (some may even finish) */
    freed_client = true;
    docker_free(d);
    uv_close((uv_handle_t *)&guard, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    freed_client = false;
}

struct free_in_cb {
    docker *d;
    bool done;
    int calls;
};

static void on_free_client(const struct docker_result *r, void *userdata)
{
    struct free_in_cb *s = userdata;

    (void)r;
    s->calls++;
    s->done = true;
    docker_free(s->d); /* the other calls are cancelled: no callback for them */
}

static void test_free_inside_callback(void **state)
{
    struct free_in_cb s = {0};

    (void)state;
    s.d = client(&T.loop, T.host, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(docker_ping(s.d, on_free_client, &s), 0);
    assert_true(run_until(&T.loop, &s.done, WAIT_MS));
    /* A round trip on the main client lets any stray callback show up. */
    {
        struct res r = {0};
        assert_int_equal(docker_ping(T.d, on_res, &r), 0);
        WAIT(&r);
        res_clear(&r);
    }
    assert_int_equal(s.calls, 1);
}

/* ---- docker_cancel ---- */

static void on_cancelled(const struct docker_result *r, void *userdata)
{
    (void)userdata;
    fail_msg("callback of a cancelled call: err=%d status=%ld %s", r->err, r->status, r->message);
}

struct cancel_in_cb {
    docker *d;
    struct res *victim;
    unsigned cancelled;
    bool done;
};

static void on_cancel_other(const struct docker_result *r, void *userdata)
{
    struct cancel_in_cb *x = userdata;
    (void)r;
    x->cancelled = docker_cancel(x->d, x->victim);
    x->done = true;
}

/* One call at a time: a call in flight (a wait on a sleeping container) and a queued one are
 * cancelled by their userdata, with no callback; the call queued behind them then runs. A
 * callback cancels the call queued behind it. */
static void test_cancel(void **state)
{
    struct docker_config cfg;
    char name[96], id[80];
    struct ct_error err = {0};
    struct res in_flight = {0}, queued = {0}, after = {0}, victim = {0}, last = {0};

    (void)state;
    snprintf(name, sizeof(name), "ct-test-%s-cancel", T.label_val);
    create(name, "ct-sleeper:latest", id, sizeof(id));
    {
        struct res r = {0};
        assert_int_equal(docker_container_start(T.d, id, on_res, &r), 0);
        WAIT(&r);
        assert_int_equal(r.status, 204);
        res_clear(&r);
    }
    docker_config_defaults(&cfg);
    cfg.host = T.host;
    cfg.max_calls = 1;
    docker *d;
    if (docker_new(&T.loop, &cfg, &d, &err) < 0)
        fail_msg("docker_new: %s", err.msg);

    assert_int_equal(docker_container_wait(d, id, "not-running", 0, on_cancelled, &in_flight), 0);
    assert_int_equal(docker_ping(d, on_cancelled, &queued), 0);
    assert_int_equal(docker_ping(d, on_res, &after), 0);
    assert_int_equal(docker_cancel(d, &queued), 1);
    assert_int_equal(docker_cancel(d, &queued), 0);
    /* The wait's request reaches the engine (then nothing comes back while it sleeps). */
    for (int i = 0; i < 5; i++)
        uv_run(&T.loop, UV_RUN_NOWAIT);
    assert_false(after.done); /* behind the wait: one call at a time */
    assert_int_equal(docker_cancel(d, &in_flight), 1);
    WAIT(&after);
    assert_int_equal(after.err, 0);
    assert_int_equal(after.status, 200);
    assert_int_equal(after.calls, 1);
    res_clear(&after);

    struct cancel_in_cb x = {.d = d, .victim = &victim};
    assert_int_equal(docker_ping(d, on_cancel_other, &x), 0);
    assert_int_equal(docker_ping(d, on_cancelled, &victim), 0);
    assert_int_equal(docker_ping(d, on_res, &last), 0);
    WAIT(&last);
    assert_true(x.done);
    assert_int_equal(x.cancelled, 1);
    assert_int_equal(last.status, 200);
    res_clear(&last);

    /* The sleeper's end would have answered the wait: it is cancelled, nothing comes. */
    {
        struct res r = {0};
        assert_int_equal(docker_container_kill(T.d, id, "SIGKILL", on_res, &r), 0);
        WAIT(&r);
        res_clear(&r);
        assert_int_equal(docker_container_wait(T.d, id, "not-running", 0, on_res, &r), 0);
        WAIT(&r);
        assert_int_equal(r.status, 200);
        res_clear(&r);
        assert_int_equal(docker_ping(d, on_res, &r), 0);
        WAIT(&r);
        res_clear(&r);
        assert_int_equal(docker_container_remove(T.d, id, true, on_res, &r), 0);
        WAIT(&r);
        assert_int_equal(r.status, 204);
        res_clear(&r);
    }
    docker_free(d);
}

/* ---- watch: the events stream kept up ---- */

/* Runs the loop until *n >= min, or WAIT_MS. */
static bool run_until_count(const int *n, int min)
{
    uv_update_time(&T.loop);
    uint64_t deadline = uv_now(&T.loop) + WAIT_MS;
    while (*n < min && uv_now(&T.loop) < deadline) {
        uv_run(&T.loop, UV_RUN_ONCE);
        uv_update_time(&T.loop);
    }
    return *n >= min;
}

struct watch_state {
    watch *w;
    const char *want; /* the container whose events count */
    int lists, ends;
    bool started, died, inspected, close_on_die;
    int events_after_close;
    bool closed;
    char end_why[256];
    struct res inspect; /* started from inside on_event */
};

static void on_watch_event(const char *action, const char *id, void *ud)
{
    struct watch_state *s = ud;
    if (s->closed) {
        s->events_after_close++;
        return;
    }
    if (!s->want || strcmp(id, s->want) != 0)
        return;
    if (strcmp(action, "start") == 0) {
        s->started = true;
        /* a loop turn of its own: a Docker call may start here (not from inside libcurl) */
        assert_int_equal(docker_container_inspect(T.d, id, on_res, &s->inspect), 0);
    } else if (strcmp(action, "die") == 0) {
        s->died = true;
        if (s->close_on_die) {
            watch_close(s->w);
            s->closed = true;
        }
    }
}

static void on_watch_list(void *ud)
{
    struct watch_state *s = ud;
    if (s->closed)
        s->events_after_close++;
    s->lists++;
}

static void on_watch_end(const char *why, void *ud)
{
    struct watch_state *s = ud;
    s->ends++;
    snprintf(s->end_why, sizeof(s->end_why), "%s", why);
}

static void test_watch_events_and_close_inside(void **state)
{
    struct watch_state ws = {.close_on_die = true};
    static const char *const actions[] = {"start", "die", NULL};
    struct watch_config cfg = {.actions = actions,
                               .label = T.label,
                               .on_event = on_watch_event,
                               .on_list = on_watch_list,
                               .on_end = on_watch_end,
                               .userdata = &ws};
    char name[96], id[80];
    struct res r = {0};

    (void)state;
    assert_int_equal(watch_start(&T.loop, T.d, &cfg, &ws.w), 0);
    /* The first list is called for once the stream is open. */
    assert_true(run_until_count(&ws.lists, 1));

    snprintf(name, sizeof(name), "ct-test-%s-watched", T.label_val);
    create(name, "ct-ok:latest", id, sizeof(id));
    ws.want = id;
    assert_int_equal(docker_container_start(T.d, id, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 204);
    res_clear(&r);

    assert_true(run_until(&T.loop, &ws.died, WAIT_MS));
    assert_true(ws.started);
    WAIT(&ws.inspect); /* the call made from the event handler was answered */
    assert_int_equal(ws.inspect.status, 200);
    res_clear(&ws.inspect);
    /* Closed from inside the die handler: nothing more comes, and the memory goes once the loop
     * has closed its timers (a round trip on the client lets a stray callback show up). */
    assert_int_equal(docker_ping(T.d, on_res, &r), 0);
    WAIT(&r);
    res_clear(&r);
    assert_int_equal(ws.events_after_close, 0);
    assert_int_equal(ws.ends, 0);
}

static void test_watch_periodic_list(void **state)
{
    struct watch_state ws = {0};
    struct watch_config cfg = {.list_interval_ms = 100,
                               .on_event = on_watch_event,
                               .on_list = on_watch_list,
                               .on_end = on_watch_end,
                               .userdata = &ws};

    (void)state;
    /* The list on opening, then one every list_interval_ms while the stream stays open. */
    assert_int_equal(watch_start(&T.loop, T.d, &cfg, &ws.w), 0);
    assert_true(run_until_count(&ws.lists, 4));
    assert_int_equal(ws.ends, 0);
    watch_close(ws.w);
}

static void test_watch_reopens(void **state)
{
    char host[128];
    struct watch_state ws = {0};
    struct watch_config cfg = {.on_event = on_watch_event,
                               .on_list = on_watch_list,
                               .on_end = on_watch_end,
                               .userdata = &ws};
    docker *d;

    (void)state;
    /* No engine there: every opening ends, and the watch opens it again by itself (250 ms,
     * then 500 ms... apart), each opening followed by a list. */
    snprintf(host, sizeof(host), "unix:///tmp/ct-no-such-dir-%ld/docker.sock", (long)getpid());
    d = client(&T.loop, host, 0);
    assert_int_equal(watch_start(&T.loop, d, &cfg, &ws.w), 0);
    assert_true(run_until_count(&ws.ends, 2));
    assert_true(run_until_count(&ws.lists, 2));
    assert_non_null(strstr(ws.end_why, "cannot connect to Docker"));
    watch_close(ws.w);
    docker_free(d);
}

/* The payloads of a log answer's frames of one stream, joined; every frame of that stream. */
static char *payloads(const struct res *r, int stream)
{
    char *out = calloc(1, r->body_len + 1);
    size_t o = 0, i = 0;
    assert_non_null(out);
    while (i + 8 <= r->body_len) {
        const unsigned char *h = (const unsigned char *)r->body + i;
        size_t n = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
        assert_true(i + 8 + n <= r->body_len);
        assert_int_equal(h[0], stream);
        memcpy(out + o, r->body + i + 8, n);
        o += n;
        i += 8 + n;
    }
    assert_int_equal(i, r->body_len);
    return out;
}

/* What differs between engines, handled in the client (docker_compat.h): it knows its engine
 * as the tests' own GET /version does; a runtime it cannot use is refused with Docker's 400
 * (Docker says it; on Podman, which would ignore it, the client); a tail of a log whose last
 * lines are partial keeps them, each stream its own (Podman's own tail did not). */
static void test_engine_differences(void **state)
{
    (void)state;
    struct res r = {0};
    assert_int_equal(docker_ping(T.d, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    res_clear(&r);
    assert_int_equal(docker_engine(T.d),
                     ct_engine_is_podman() ? DOCKER_ENGINE_PODMAN : DOCKER_ENGINE_DOCKER);

    json_t *cfg = create_config("ct-ok:latest");
    json_object_set_new(json_object_get(cfg, "HostConfig"), "Runtime",
                        json_string("ct-no-such-runtime"));
    char name[96];
    snprintf(name, sizeof(name), "%s-runtime", T.name);
    assert_int_equal(docker_container_create(T.d, name, cfg, on_res, &r), 0);
    json_decref(cfg);
    WAIT(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.message, "nknown runtime specified ct-no-such-runtime"));
    res_clear(&r);

    /* "a" then a partial "b" on stdout, a partial "c" on stderr */
    cfg = create_config("ct-shell:latest");
    json_object_set_new(cfg, "Cmd",
                        json_pack("[s,s,s]", "sh", "-c", "echo a; printf b; printf c >&2"));
    snprintf(name, sizeof(name), "%s-partial", T.name);
    assert_int_equal(docker_container_create(T.d, name, cfg, on_res, &r), 0);
    json_decref(cfg);
    WAIT(&r);
    assert_int_equal(r.status, 201);
    char id[80];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r.json, "Id")));
    res_clear(&r);
    ct_docker_start(id);
    assert_true(ct_docker_wait(id, WAIT_MS) >= 0);
    struct docker_logs err_tail = {.err = true, .tail = 20};
    assert_int_equal(docker_container_logs(T.d, id, &err_tail, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    char *text = payloads(&r, 2);
    assert_string_equal(text, "c");
    free(text);
    res_clear(&r);
    struct docker_logs out_tail = {.out = true, .tail = 3};
    assert_int_equal(docker_container_logs(T.d, id, &out_tail, on_res, &r), 0);
    WAIT(&r);
    assert_int_equal(r.status, 200);
    text = payloads(&r, 1);
    assert_string_equal(text, "a\nb");
    free(text);
    res_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_create_conflict_missing_image),
        cmocka_unit_test(test_inspect_created),
        cmocka_unit_test(test_upload_and_read_back),
        cmocka_unit_test(test_start_events_logs),
        cmocka_unit_test(test_stop_events_inside_callback),
        cmocka_unit_test(test_wait_kill_remove),
        cmocka_unit_test(test_list_label_filter),
        cmocka_unit_test(test_image_inspect),
        cmocka_unit_test(test_transport_error),
        cmocka_unit_test(test_response_too_big),
        cmocka_unit_test(test_concurrent_calls),
        cmocka_unit_test(test_free_with_pending),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_watch_events_and_close_inside),
        cmocka_unit_test(test_watch_periodic_list),
        cmocka_unit_test(test_watch_reopens),
        cmocka_unit_test(test_engine_differences),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
