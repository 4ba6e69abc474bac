#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "msg.h"

#define MAX (1024 * 1024)

static int parse(const char *s, struct pending_job *job, struct msg_error *err)
{
    return msg_pending_parse(s, strlen(s), MAX, job, err);
}

static void test_pending_ok(void **state)
{
    (void)state;
    struct pending_job job;
    struct msg_error err;
    const char *s =
        "{\"work_id\":\"abc123\",\"image\":\"correction-test-1:latest\","
        "\"file\":\"/srv/uploads/1-exercise.txt\",\"callback\":\"http://r.example/grade\","
        "\"params\":[\"EXERCISE=6\",\"LANGUAGE=js\",\"EXPR=a=b\"],\"extra\":1}";
    assert_int_equal(parse(s, &job, &err), 0);
    assert_string_equal(json_string_value(job.work_id), "abc123");
    assert_string_equal(job.image, "correction-test-1:latest");
    assert_string_equal(job.file, "/srv/uploads/1-exercise.txt");
    assert_string_equal(job.callback, "http://r.example/grade");
    assert_int_equal(job.n_params, 3);
    assert_string_equal(job.params[2], "EXPR=a=b");
    msg_pending_free(&job);

    /* numeric work_id, no params, https */
    s = "{\"work_id\":42,\"image\":\"i\",\"file\":\"f\",\"callback\":\"https://h:8443/x?y=1\"}";
    assert_int_equal(parse(s, &job, &err), 0);
    assert_true(json_is_integer(job.work_id));
    assert_int_equal(json_integer_value(job.work_id), 42);
    assert_int_equal(job.n_params, 0);
    msg_pending_free(&job);

    /* no work_id at all */
    s = "{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\"}";
    assert_int_equal(parse(s, &job, &err), 0);
    assert_null(job.work_id);
    msg_pending_free(&job);
}

struct bad_case {
    const char *json;
    const char *reason;
    const char *detail_part;
    bool has_callback;
};

static void test_pending_bad(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"not json", "invalid message", "not valid JSON", false},
        {"[1,2]", "invalid message", "JSON object", false},
        {"{\"file\":\"f\",\"callback\":\"http://h/\"}", "invalid message", "missing field 'image'",
         true},
        {"{\"image\":\"i\",\"callback\":\"http://h/\"}", "invalid message", "missing field 'file'",
         true},
        {"{\"image\":\"i\",\"file\":\"f\"}", "invalid message", "missing field 'callback'", false},
        {"{\"image\":7,\"file\":\"f\",\"callback\":\"http://h/\"}", "invalid message",
         "'image' must be a string", true},
        {"{\"image\":\"\",\"file\":\"f\",\"callback\":\"http://h/\"}", "invalid message",
         "'image' is empty", true},
        {"{\"image\":\"a b\",\"file\":\"f\",\"callback\":\"http://h/\"}", "invalid message",
         "not an image reference", true},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"ftp://h/x\"}", "invalid callback",
         "not an http or https URL", false},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://\"}", "invalid callback",
         "not a valid URL", false},
        /* quoted redacted: no credential in the reason */
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"ftp://u:pw@h/x?t=SECRET\"}",
         "invalid callback", "'ftp://***@h/x?t=***' is not an http", false},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://u:pw@/?t=SECRET\"}",
         "invalid callback", "'http://***@/?t=***' is not a valid URL", false},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\",\"params\":\"A=1\"}",
         "invalid param", "must be an array", true},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\",\"params\":[\"NOEQUALS\"]}",
         "invalid param", "not NAME=VALUE", true},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\",\"params\":[\"1A=x\"]}",
         "invalid param", "must start with a letter", true},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\",\"params\":[\"A-B=x\"]}",
         "invalid param", "only letters, digits", true},
        {"{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\",\"params\":[3]}",
         "invalid param", "params[0] must be a string", true},
        {"{\"work_id\":[1],\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\"}",
         "invalid message", "'work_id' must be a string or a number", true},
        {"{\"image\":\"i\",\"image\":\"j\",\"file\":\"f\",\"callback\":\"http://h/\"}",
         "invalid message", "duplicate", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pending_job job;
        struct msg_error err = {0};
        int r = parse(cases[i].json, &job, &err);
        if (r != -EINVAL || strcmp(err.reason, cases[i].reason) != 0 ||
            !strstr(err.detail, cases[i].detail_part) ||
            (job.callback != NULL) != cases[i].has_callback)
            fail_msg("case %zu (%s): r=%d reason='%s' detail='%s' callback=%s", i, cases[i].json, r,
                     err.reason, err.detail, job.callback ? job.callback : "(none)");
        msg_pending_free(&job);
    }

    /* size limit */
    struct pending_job job;
    struct msg_error err;
    const char *s = "{\"image\":\"i\",\"file\":\"f\",\"callback\":\"http://h/\"}";
    assert_int_equal(msg_pending_parse(s, strlen(s), 10, &job, &err), -EINVAL);
    assert_non_null(strstr(err.detail, "exceeds the limit"));
    msg_pending_free(&job);

    char buf[600];
    assert_string_equal(msg_error_text(&err, buf, sizeof(buf)),
                        "invalid message - message of 47 bytes exceeds the limit of 10");
}

static void test_running(void **state)
{
    (void)state;
    char cid[65];
    memset(cid, 'c', 64);
    cid[64] = 0;
    struct running_msg m = {.work_id = json_string("w1"),
                            .container_id = cid,
                            .callback = "http://h/cb",
                            .job_id = "6b2f1c9e-530a-4d8b-9f61-27d4e835a07c"};
    char *s = msg_running_serialize(&m);
    json_decref(m.work_id);
    assert_non_null(s);
    char expect[512];
    snprintf(expect, sizeof(expect),
             "{\"callback\":\"http://h/cb\",\"container_id\":\"%s\",\"job_id\":"
             "\"6b2f1c9e-530a-4d8b-9f61-27d4e835a07c\",\"work_id\":\"w1\"}",
             cid);
    assert_string_equal(s, expect);

    struct running_msg p;
    struct msg_error err;
    assert_int_equal(msg_running_parse(s, strlen(s), MAX, &p, &err), 0);
    assert_string_equal(p.container_id, cid);
    assert_string_equal(p.job_id, "6b2f1c9e-530a-4d8b-9f61-27d4e835a07c");
    msg_running_free(&p);
    free(s);

    /* legacy "id", no job_id, unknown properties ignored */
    char legacy[256];
    snprintf(legacy, sizeof(legacy),
             "{\"work_id\":7,\"id\":\"%s\",\"callback\":\"http://h/\",\"x\":1}", cid);
    assert_int_equal(msg_running_parse(legacy, strlen(legacy), MAX, &p, &err), 0);
    assert_string_equal(p.container_id, cid);
    assert_null(p.job_id);
    assert_int_equal(json_integer_value(p.work_id), 7);
    msg_running_free(&p);

    const char *bad = "{\"container_id\":\"short\",\"callback\":\"http://h/\"}";
    assert_int_equal(msg_running_parse(bad, strlen(bad), MAX, &p, &err), -EINVAL);
    assert_non_null(strstr(err.detail, "container_id"));
}

static void test_finished(void **state)
{
    (void)state;
    json_t *wid = json_integer(5);
    char *s =
        msg_finished_error_serialize(wid, NULL, "http://h/", "image not found - no such image: x");
    assert_string_equal(s, "{\"callback\":\"http://h/\",\"correction_data\":\"image not found - no "
                           "such image: x\",\"error\":true,\"work_id\":5}");
    struct finished_msg f;
    struct msg_error err;
    assert_int_equal(msg_finished_parse(s, strlen(s), MAX, &f, &err), 0);
    assert_true(f.error);
    assert_string_equal(json_string_value(f.correction_data), "image not found - no such image: x");
    msg_finished_free(&f);
    free(s);

    json_t *data = json_pack("{s:b,s:i,s:[s]}", "success", 1, "grade", 10, "comments", "ok");
    struct finished_msg m = {.work_id = wid,
                             .error = false,
                             .correction_data = data,
                             .callback = "http://h/",
                             .job_id = "j"};
    s = msg_finished_serialize(&m);
    assert_string_equal(s, "{\"callback\":\"http://h/\",\"correction_data\":{\"comments\":[\"ok\"],"
                           "\"grade\":10,\"success\":true},\"error\":false,\"job_id\":\"j\","
                           "\"work_id\":5}");
    free(s);
    json_decref(data);
    json_decref(wid);

    /* no work_id: the key is left out */
    s = msg_finished_error_serialize(NULL, NULL, "http://h/", "x - y");
    assert_null(strstr(s, "work_id"));
    free(s);

    const char *bad = "{\"error\":false,\"correction_data\":\"str\",\"callback\":\"http://h/\"}";
    assert_int_equal(msg_finished_parse(bad, strlen(bad), MAX, &f, &err), -EINVAL);
    assert_non_null(strstr(err.detail, "correction_data"));
}

static void test_work_id_text(void **state)
{
    (void)state;
    char buf[32];
    json_t *s = json_string("abc"), *n = json_integer(42);
    msg_work_id_text(s, buf, sizeof(buf));
    assert_string_equal(buf, "abc");
    msg_work_id_text(n, buf, sizeof(buf));
    assert_string_equal(buf, "42");
    msg_work_id_text(NULL, buf, sizeof(buf));
    assert_string_equal(buf, "");
    json_decref(s);
    json_decref(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_ok),   cmocka_unit_test(test_pending_bad),
        cmocka_unit_test(test_running),      cmocka_unit_test(test_finished),
        cmocka_unit_test(test_work_id_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
