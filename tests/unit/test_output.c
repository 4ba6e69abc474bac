#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "output.h"

static int parse(const char *s, json_t **ret, struct msg_error *err)
{
    *ret = NULL;
    return output_parse(s, strlen(s), ret, err);
}

static void expect_ok(const char *s, double grade)
{
    json_t *r;
    struct msg_error err = {0};
    if (parse(s, &r, &err) != 0)
        fail_msg("expected a response from [%s], got %s - %s", s, err.reason, err.detail);
    assert_true(json_is_true(json_object_get(r, "success")));
    assert_true(json_number_value(json_object_get(r, "grade")) == grade);
    json_decref(r);
}

static void expect_fail(const char *s, const char *reason, const char *detail_part)
{
    json_t *r;
    struct msg_error err = {0};
    if (parse(s, &r, &err) != -EINVAL || strcmp(err.reason, reason) != 0 ||
        (detail_part && !strstr(err.detail, detail_part)))
        fail_msg("[%s]: got '%s - %s', expected '%s - ...%s...'", s, err.reason, err.detail, reason,
                 detail_part ? detail_part : "");
    assert_null(r);
}

static void test_whole_stdout(void **state)
{
    (void)state;
    expect_ok("{\"success\":true,\"grade\":10}", 10);
    expect_ok("\n  {\"success\":true,\"grade\":7.5,\"comments\":[\"a\"],\"extra\":{\"x\":1}}\n\n",
              7.5);
    json_t *r;
    struct msg_error err;
    assert_int_equal(parse("{\"success\":false,\"error\":\"does not compile\"}", &r, &err), 0);
    assert_string_equal(json_string_value(json_object_get(r, "error")), "does not compile");
    json_decref(r);
    assert_int_equal(parse("{\"success\":true,\"comments\":[\"only comments\"]}", &r, &err), 0);
    json_decref(r);
}

static void test_blocks(void **state)
{
    (void)state;
    expect_ok("compiling...\nwarning: x\n-----BEGIN CORRECTOMATIC RESPONSE-----\n"
              "{\"success\":true,\"grade\":3}\n-----END CORRECTOMATIC RESPONSE-----\nbye\n",
              3);
    /* any number of dashes, CRLF, no trailing newline */
    expect_ok("noise\r\n-BEGIN CORRECTOMATIC RESPONSE-\r\n{\"success\":true,\r\n\"grade\":4}\r\n"
              "----------END CORRECTOMATIC RESPONSE--\r\n",
              4);
    expect_ok("---BEGIN CORRECTOMATIC RESPONSE---\n{\"success\":true,\"grade\":5}\n"
              "---END CORRECTOMATIC RESPONSE---",
              5);
    /* noise that looks like JSON around the block does not matter */
    expect_ok(
        "{\"not\":\"this\"}\n--BEGIN CORRECTOMATIC RESPONSE--\n{\"success\":true,\"grade\":6}\n"
        "--END CORRECTOMATIC RESPONSE--\n{}\n",
        6);
}

static void test_block_errors(void **state)
{
    (void)state;
    expect_fail("", OUTPUT_REASON_NO_RESPONSE, "nothing");
    expect_fail("  \n\n", OUTPUT_REASON_NO_RESPONSE, "nothing");
    expect_fail("hello world\n", OUTPUT_REASON_NO_RESPONSE, NULL);
    expect_fail("{\"success\":true,\"grade\":", OUTPUT_REASON_INVALID_JSON, NULL);
    expect_fail("{\"success\":true} trailing", OUTPUT_REASON_INVALID_JSON, NULL);
    expect_fail("-----BEGIN CORRECTOMATIC RESPONSE-----\n{\"success\":true,\"grade\":1}\n",
                OUTPUT_REASON_NO_RESPONSE, "without END");
    expect_fail("{\"success\":true,\"grade\":1}\n-----END CORRECTOMATIC RESPONSE-----\n",
                OUTPUT_REASON_NO_RESPONSE, "without BEGIN");
    expect_fail(
        "-----END CORRECTOMATIC RESPONSE-----\n{}\n-----BEGIN CORRECTOMATIC RESPONSE-----\n",
        OUTPUT_REASON_NO_RESPONSE, "before BEGIN");
    expect_fail("-----BEGIN CORRECTOMATIC RESPONSE-----\n-----END CORRECTOMATIC RESPONSE-----\n",
                OUTPUT_REASON_NO_RESPONSE, "empty");
    expect_fail("-BEGIN CORRECTOMATIC RESPONSE-\n{\"success\":true,\"grade\":1}\n"
                "-END CORRECTOMATIC RESPONSE-\n-BEGIN CORRECTOMATIC RESPONSE-\n"
                "{\"success\":true,\"grade\":2}\n-END CORRECTOMATIC RESPONSE-\n",
                OUTPUT_REASON_MANY_BLOCKS, "2 BEGIN");
    expect_fail("-BEGIN CORRECTOMATIC RESPONSE-\nnot json\n-END CORRECTOMATIC RESPONSE-\n",
                OUTPUT_REASON_INVALID_JSON, NULL);
    /* separators must be whole lines, with dashes on both sides */
    expect_fail("BEGIN CORRECTOMATIC RESPONSE\n{\"success\":true,\"grade\":1}\n"
                "END CORRECTOMATIC RESPONSE\n",
                OUTPUT_REASON_NO_RESPONSE, NULL);
    expect_fail("x -----BEGIN CORRECTOMATIC RESPONSE-----\n{\"success\":true,\"grade\":1}\n"
                "-----END CORRECTOMATIC RESPONSE-----\n",
                OUTPUT_REASON_NO_RESPONSE, "without BEGIN");
}

static void test_schema(void **state)
{
    (void)state;
    expect_fail("[1,2]", OUTPUT_REASON_INVALID_FORMAT, "object");
    expect_fail("{\"grade\":1}", OUTPUT_REASON_INVALID_FORMAT, "'success'");
    expect_fail("{\"success\":\"yes\",\"grade\":1}", OUTPUT_REASON_INVALID_FORMAT, "'success'");
    expect_fail("{\"success\":true}", OUTPUT_REASON_INVALID_FORMAT, "'grade' or 'comments'");
    expect_fail("{\"success\":true,\"grade\":\"10\"}", OUTPUT_REASON_INVALID_FORMAT, "number");
    expect_fail("{\"success\":true,\"comments\":\"x\"}", OUTPUT_REASON_INVALID_FORMAT, "array");
    expect_fail("{\"success\":true,\"comments\":[\"a\",3]}", OUTPUT_REASON_INVALID_FORMAT,
                "comments[1]");
    expect_fail("{\"success\":false}", OUTPUT_REASON_INVALID_FORMAT, "'error'");
    expect_fail("{\"success\":true,\"grade\":1,\"grade\":2}", OUTPUT_REASON_INVALID_JSON, NULL);
}

static size_t frame(unsigned char *p, int stream, const char *s)
{
    size_t n = strlen(s);
    p[0] = (unsigned char)stream;
    p[1] = p[2] = p[3] = 0;
    p[4] = (unsigned char)(n >> 24);
    p[5] = (unsigned char)(n >> 16);
    p[6] = (unsigned char)(n >> 8);
    p[7] = (unsigned char)n;
    memcpy(p + 8, s, n);
    return n + 8;
}

/* A response nested OUTPUT_MAX_DEPTH deep is accepted; one more level would make a finished
 * message the notifier cannot parse, so it is refused here, where the caller hears of it. */
static char *nested(size_t depth)
{
    /* {"success":true,"grade":1,"x": + (depth-1) x '[' + (depth-1) x ']' + } */
    const char *head = "{\"success\":true,\"grade\":1,\"x\":";
    size_t n = strlen(head) + 2 * (depth - 1) + 2;
    char *s = malloc(n);
    assert_non_null(s);
    size_t k = strlen(head);
    memcpy(s, head, k);
    memset(s + k, '[', depth - 1);
    memset(s + k + depth - 1, ']', depth - 1);
    s[n - 2] = '}';
    s[n - 1] = '\0';
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    char *s = nested(OUTPUT_MAX_DEPTH);
    expect_ok(s, 1);
    free(s);
    s = nested(OUTPUT_MAX_DEPTH + 1);
    expect_fail(s, OUTPUT_REASON_INVALID_JSON, "nested deeper than 2047 levels");
    free(s);
    s = nested(OUTPUT_MAX_DEPTH + 2); /* past the parser's own limit */
    expect_fail(s, OUTPUT_REASON_INVALID_JSON, "maximum parsing depth");
    free(s);
}

static void test_demux(void **state)
{
    (void)state;
    unsigned char raw[512];
    size_t len = 0;
    len += frame(raw + len, 1, "{\"success\":");
    len += frame(raw + len, 2, "warning: noise\n");
    len += frame(raw + len, 1, "true,\"grade\":1}\n");
    len += frame(raw + len, 2, "more noise\n");
    struct output_buf out = {.max = 100}, err = {.max = 100, .keep_tail = 1};
    assert_int_equal(output_demux(raw, len, &out, &err), 0);
    assert_string_equal(out.data, "{\"success\":true,\"grade\":1}\n");
    assert_string_equal(err.data, "warning: noise\nmore noise\n");
    assert_false(out.overflow);
    output_buf_free(&out);
    output_buf_free(&err);

    /* stdout over its limit: marked, kept up to the limit; stderr keeps its tail */
    struct output_buf o2 = {.max = 5}, e2 = {.max = 6, .keep_tail = 1};
    assert_int_equal(output_demux(raw, len, &o2, &e2), 0);
    assert_true(o2.overflow);
    assert_int_equal(o2.len, 5);
    assert_string_equal(o2.data, "{\"suc");
    assert_true(e2.overflow);
    assert_string_equal(e2.data, "noise\n");
    output_buf_free(&o2);
    output_buf_free(&e2);

    /* a frame cut short by the fetch limit */
    struct output_buf o3 = {.max = 100}, e3 = {.max = 100};
    assert_int_equal(output_demux(raw, 8 + 5, &o3, &e3), 0);
    assert_string_equal(o3.data, "{\"suc");
    assert_string_equal(e3.data, "");
    output_buf_free(&o3);
    output_buf_free(&e3);

    /* empty stream, and not a multiplexed stream at all */
    struct output_buf o4 = {.max = 10}, e4 = {.max = 10};
    assert_int_equal(output_demux("", 0, &o4, &e4), 0);
    assert_string_equal(o4.data, "");
    output_buf_free(&o4);
    output_buf_free(&e4);
    assert_int_equal(output_demux("hello world, plain text", 23, &o4, &e4), -EBADMSG);
    output_buf_free(&o4);
    output_buf_free(&e4);
}

static void test_tail(void **state)
{
    (void)state;
    const char *s = "one\ntwo\nthree\nfour\n\n";
    size_t n;
    const char *t = output_tail(s, strlen(s), 2, 100, &n);
    assert_int_equal(n, strlen("three\nfour"));
    assert_memory_equal(t, "three\nfour", n);
    t = output_tail(s, strlen(s), 10, 6, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "e\nfour", n);
    t = output_tail("", 0, 3, 10, &n);
    assert_int_equal(n, 0);
}

/* The latest time of a log read with timestamps=1 (where a rerun's output begins). */
static void test_latest_time(void **state)
{
    (void)state;
    unsigned char raw[512];
    size_t len = 0;
    len += frame(raw + len, 1, "2026-12-03T05:54:27.5Z {\"success\":true,\n");
    len += frame(raw + len, 2, "2026-12-03T05:54:28.25Z warning\n");
    len += frame(raw + len, 1, "2026-12-03T05:54:27.75Z \"grade\":1}\n");
    len += frame(raw + len, 1, "no time here\n");
    struct dtime t;
    assert_int_equal(output_latest_time(raw, len, &t), 1);
    assert_int_equal(t.sec, 1796277268);
    assert_int_equal(t.nsec, 250000000);
    /* cut by the fetch limit inside the last frame: what is there counts */
    assert_int_equal(output_latest_time(raw, len - 3, &t), 1);
    /* no frame with a time; nothing at all */
    size_t n = frame(raw, 1, "plain output\n");
    assert_int_equal(output_latest_time(raw, n, &t), 0);
    assert_int_equal(output_latest_time(raw, 0, &t), 0);
    /* not a multiplexed stream */
    assert_int_equal(output_latest_time("{\"success\":true}", 16, &t), -EBADMSG);
    assert_int_equal(output_latest_time("abc", 3, &t), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stdout), cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_block_errors), cmocka_unit_test(test_schema),
        cmocka_unit_test(test_demux),        cmocka_unit_test(test_tail),
        cmocka_unit_test(test_depth),        cmocka_unit_test(test_latest_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
