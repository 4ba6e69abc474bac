/* text: the one rule for outside text (valid UTF-8, cut at character boundaries), and the
 * places that apply it: msg_error_set, the error form of a finished message, the fit to the
 * next hop's message size, and log lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "msg.h"
#include "text.h"

static void test_char_len(void **state)
{
    (void)state;
    assert_int_equal(text_utf8_char_len("a", 1), 1);
    assert_int_equal(text_utf8_char_len("\xc3\xa9", 2), 2);         /* é */
    assert_int_equal(text_utf8_char_len("\xe2\x82\xac", 3), 3);     /* € */
    assert_int_equal(text_utf8_char_len("\xf0\x9f\x98\x80", 4), 4); /* 😀 */
    assert_int_equal(text_utf8_char_len("\xc3", 1), 0);             /* cut */
    assert_int_equal(text_utf8_char_len("\xe2\x82", 2), 0);         /* cut */
    assert_int_equal(text_utf8_char_len("\xa9", 1), 0);             /* continuation */
    assert_int_equal(text_utf8_char_len("\xc0\xaf", 2), 0);         /* overlong */
    assert_int_equal(text_utf8_char_len("\xe0\x80\xaf", 3), 0);     /* overlong */
    assert_int_equal(text_utf8_char_len("\xed\xa0\x80", 3), 0);     /* surrogate */
    assert_int_equal(text_utf8_char_len("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    assert_int_equal(text_utf8_char_len("\xff", 1), 0);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(text_utf8_valid("", 0));
    assert_true(text_utf8_valid("caf\xc3\xa9", 5));
    assert_false(text_utf8_valid("caf\xc3", 4));
    assert_false(text_utf8_valid("a\0b", 3));
    assert_false(text_utf8_valid("\xfe\xff", 2));
}

static void test_copy_replaces_and_cuts_at_boundaries(void **state)
{
    (void)state;
    char out[64];
    /* invalid bytes and NUL become U+FFFD */
    size_t n = text_utf8_copy(out, sizeof(out),
                              "a\xff"
                              "b\0c",
                              5);
    assert_int_equal(n, 1 + 3 + 1 + 3 + 1);
    assert_memory_equal(out,
                        "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd"
                        "c",
                        n + 1);
    /* a character that does not fit whole is left out: "é" needs 2 bytes, 1 is left */
    n = text_utf8_copy(out, 4, "ab\xc3\xa9", 4);
    assert_int_equal(n, 2);
    assert_string_equal(out, "ab");
    /* 60 × é cut at every size: always valid */
    char src[121];
    for (int i = 0; i < 60; i++)
        memcpy(src + 2 * i, "\xc3\xa9", 2);
    for (size_t size = 1; size <= sizeof(out); size++) {
        n = text_utf8_copy(out, size, src, 120);
        assert_true(n < size);
        assert_int_equal(out[n], '\0');
        assert_int_equal(n % 2, 0);
        assert_true(text_utf8_valid(out, n));
    }
    assert_int_equal(text_utf8_copy(out, 0, "abc", 3), 0);
}

static void test_dup_and_truncate(void **state)
{
    (void)state;
    char *s = text_utf8_dup("\xff\xff\xff", 3, 100);
    assert_non_null(s);
    assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    free(s);
    s = text_utf8_dup("\xff\xff\xff", 3, 4); /* only one replacement fits in 4 bytes */
    assert_non_null(s);
    assert_string_equal(s, "\xef\xbf\xbd");
    free(s);
    char t[] = "ab\xe2\x82\xac";
    assert_int_equal(text_utf8_truncate(t, 4), 2);
    assert_string_equal(t, "ab");
    char u[] = "abc";
    assert_int_equal(text_utf8_truncate(u, 10), 3);
}

/* The issue's case: a param name with 60 accented letters, quoted in a detail cut at 100
 * bytes (mid-character), must still give an error result that serializes. */
static void test_msg_error_cut_param_serializes(void **state)
{
    (void)state;
    char body[512] = "{\"image\":\"i\",\"file\":\"/f\",\"callback\":\"http://r.example/\","
                     "\"params\":[\"a";
    for (int i = 0; i < 60; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "=1\"]}");
    struct pending_job job;
    struct msg_error err;
    assert_int_equal(msg_pending_parse(body, strlen(body), 1 << 20, &job, &err), -EINVAL);
    assert_string_equal(err.reason, MSG_REASON_INVALID_PARAM);
    assert_true(text_utf8_valid(err.detail, strlen(err.detail)));
    char text[600];
    msg_error_text(&err, text, sizeof(text));
    char *fin = msg_finished_error_serialize(job.work_id, "job", job.callback, text);
    assert_non_null(fin);
    json_t *o = json_loads(fin, 0, NULL);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "error")));
    json_decref(o);
    free(fin);
    msg_pending_free(&job);
}

static void test_error_form_of_raw_bytes(void **state)
{
    (void)state;
    char text[10000];
    memset(text, '\xff', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    char *fin = msg_finished_error_serialize(NULL, NULL, "http://r.example/", text);
    assert_non_null(fin);
    struct finished_msg m;
    struct msg_error err;
    assert_int_equal(msg_finished_parse(fin, strlen(fin), 1 << 20, &m, &err), 0);
    assert_true(strlen(json_string_value(m.correction_data)) <= MSG_MAX_ERROR_TEXT_BYTES);
    msg_finished_free(&m);
    free(fin);
}

static void test_work_id_bounded(void **state)
{
    (void)state;
    size_t n = MSG_MAX_WORK_ID_BYTES + 1;
    char *body = malloc(n + 200);
    assert_non_null(body);
    int off = sprintf(body, "{\"work_id\":\"");
    memset(body + off, 'w', n);
    sprintf(body + off + n,
            "\",\"image\":\"i\",\"file\":\"/f\",\"callback\":\"http://r.example/\"}");
    struct pending_job job;
    struct msg_error err;
    assert_int_equal(msg_pending_parse(body, strlen(body), 1 << 20, &job, &err), -EINVAL);
    assert_non_null(strstr(err.detail, "work_id"));
    msg_pending_free(&job);
    /* at the limit it is accepted */
    memmove(body + off + n - 1, body + off + n, strlen(body + off + n) + 1);
    assert_int_equal(msg_pending_parse(body, strlen(body), 1 << 20, &job, &err), 0);
    msg_pending_free(&job);
    free(body);
}

/* A result whose numbers grow when re-serialized becomes "output too large" for the same
 * job, never a message the next hop refuses. */
static void test_finished_fit(void **state)
{
    (void)state;
    const size_t max = MSG_MIN_MESSAGE_BYTES;
    json_t *arr = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(arr, json_real(1e300));
    json_t *resp = json_pack("{s:b, s:i, s:o}", "success", 1, "grade", 1, "x", arr);
    json_t *wid = json_string("w1");
    struct finished_msg m = {.work_id = wid,
                             .error = false,
                             .correction_data = resp,
                             .callback = "http://r.example/",
                             .job_id = "j1"};
    size_t len = 0;
    char *s = msg_finished_serialize_fit(&m, max, &len);
    assert_non_null(s);
    assert_true(len <= max);
    assert_int_equal(len, strlen(s));
    struct finished_msg back;
    struct msg_error err;
    assert_int_equal(msg_finished_parse(s, len, max, &back, &err), 0);
    assert_true(back.error);
    assert_string_equal(back.job_id, "j1");
    assert_string_equal(json_string_value(back.work_id), "w1");
    assert_memory_equal(json_string_value(back.correction_data), "output too large - ", 19);
    msg_finished_free(&back);
    free(s);
    /* a small result passes unchanged */
    json_t *small = json_pack("{s:b, s:i}", "success", 1, "grade", 7);
    m.correction_data = small;
    s = msg_finished_serialize_fit(&m, max, &len);
    assert_non_null(s);
    assert_int_equal(msg_finished_parse(s, len, max, &back, &err), 0);
    assert_false(back.error);
    msg_finished_free(&back);
    free(s);
    /* the largest error form: every field at its bound and escaped to the worst (a control
     * character is six bytes in JSON): its text is cut, at a character boundary, to fit */
    char *cb = malloc(MSG_MAX_URL_BYTES + 1), *w = malloc(MSG_MAX_WORK_ID_BYTES + 1);
    char *text = malloc(MSG_MAX_ERROR_TEXT_BYTES + 1);
    char jid[MSG_MAX_JOB_ID_BYTES + 1];
    memset(cb, '"', MSG_MAX_URL_BYTES);
    cb[MSG_MAX_URL_BYTES] = '\0';
    memset(w, '\x01', MSG_MAX_WORK_ID_BYTES);
    w[MSG_MAX_WORK_ID_BYTES] = '\0';
    for (size_t i = 0; i + 2 <= MSG_MAX_ERROR_TEXT_BYTES; i += 2)
        memcpy(text + i, "\x01\xc3", 2);
    text[MSG_MAX_ERROR_TEXT_BYTES] = '\0';
    memset(jid, 'j', MSG_MAX_JOB_ID_BYTES);
    jid[MSG_MAX_JOB_ID_BYTES] = '\0';
    json_t *wj = json_string(w), *tj = json_string("x");
    char *e = msg_finished_error_serialize(wj, jid, cb, text);
    assert_non_null(e);
    json_decref(tj);
    tj = json_loads(e, 0, NULL); /* its correction_data: the sanitized text */
    assert_non_null(tj);
    struct finished_msg big = {.work_id = wj,
                               .error = true,
                               .correction_data = json_object_get(tj, "correction_data"),
                               .callback = cb,
                               .job_id = jid};
    assert_true(strlen(e) > MSG_MIN_MESSAGE_BYTES);
    free(e);
    e = msg_finished_serialize_fit(&big, MSG_MIN_MESSAGE_BYTES, &len);
    assert_non_null(e);
    assert_true(len <= MSG_MIN_MESSAGE_BYTES);
    assert_int_equal(msg_finished_parse(e, len, MSG_MIN_MESSAGE_BYTES, &back, &err), 0);
    assert_true(back.error);
    msg_finished_free(&back);
    free(e);
    /* and a response too large for that size becomes "output too large", cut to fit */
    m = (struct finished_msg){
        .work_id = wj, .error = false, .correction_data = resp, .callback = cb, .job_id = jid};
    e = msg_finished_serialize_fit(&m, MSG_MIN_MESSAGE_BYTES, &len);
    assert_non_null(e);
    assert_true(len <= MSG_MIN_MESSAGE_BYTES);
    free(e);
    json_decref(tj);
    json_decref(wj);
    free(cb);
    free(w);
    free(text);
    json_decref(small);
    json_decref(resp);
    json_decref(wid);
}

/* Log lines are valid UTF-8 whatever the value holds, and a long value is cut at a character
 * boundary. */
static void test_log_lines_valid(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fds[1], 2) >= 0);
    char big[20000];
    for (size_t i = 0; i + 2 <= sizeof(big) - 1; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof(big) - 1] = '\0';
    log_kv(LOG_ERROR, "test", "raw", "a\xff\xc3 b\xe2\x82\xac", NULL);
    log_kv(LOG_ERROR, "test", "big", big, NULL);
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    close(fds[1]);
    static char buf[32768];
    size_t got = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + got, sizeof(buf) - got)) > 0)
        got += (size_t)r;
    close(fds[0]);
    assert_true(got > 0);
    assert_true(text_utf8_valid(buf, got));
    assert_non_null(strstr(buf, "raw=\"a\\xff\\xc3 b\xe2\x82\xac\""));
    char *second = memchr(buf, '\n', got);
    assert_non_null(second);
    assert_true(got - (size_t)(second + 1 - buf) <= 8192);
}

static void expect_redacted(const char *url, const char *want)
{
    char out[256];
    text_redact_url(out, sizeof(out), url);
    if (strcmp(out, want) != 0)
        fail_msg("redact(%s) = %s, want %s", url, out, want);
}

static void test_redact_url(void **state)
{
    (void)state;
    expect_redacted("http://receiver.example/grade", "http://receiver.example/grade");
    expect_redacted("https://u:p@h.example:8443/x?token=abc&v#f",
                    "https://***@h.example:8443/x?token=***&***#***");
    expect_redacted("http://user@h/", "http://***@h/");
    expect_redacted("http://a@b@h/p", "http://***@h/p"); /* the last @ ends the userinfo */
    expect_redacted("http://h/p@q?a=1&b=&c=x=y", "http://h/p@q?a=***&b=***&c=***");
    expect_redacted("http://h?k=v", "http://h?k=***");
    expect_redacted("http://h#secret", "http://h#***");
    expect_redacted("not a url ?x=1", "not a url ?x=***");
    expect_redacted("", "");
    char small[12];
    assert_int_equal(text_redact_url(small, sizeof(small), "http://u:p@host/"), 11);
    assert_string_equal(small, "http://***@");
    char cut[10];
    text_redact_url(cut, sizeof(cut), "http://h/\xc3\xa9\xc3\xa9?x=1"); /* cut inside é: dropped */
    assert_true(text_utf8_valid(cut, strlen(cut)));
    char bad[64];
    text_redact_url(bad, sizeof(bad), "http://h/\xff");
    assert_string_equal(bad, "http://h/\xef\xbf\xbd");
    assert_int_equal(text_redact_url(bad, 0, "x"), 0);
    /* a long clean URL comes back whole (no internal cut) */
    static char longurl[6000], longout[6100];
    memcpy(longurl, "http://h/", 9);
    memset(longurl + 9, 'p', sizeof(longurl) - 10);
    assert_int_equal(text_redact_url(longout, sizeof(longout), longurl), sizeof(longurl) - 1);
    assert_string_equal(longout, longurl);
    text_redact_url(bad, sizeof(bad), NULL);
    assert_string_equal(bad, "");
}

static void test_printf(void **state)
{
    (void)state;
    char *s = text_printf("%s/%d", "a", 42);
    assert_non_null(s);
    assert_string_equal(s, "a/42");
    free(s);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s = text_printf("[%s]", big); /* longer than any fixed buffer */
    assert_non_null(s);
    assert_int_equal(strlen(s), sizeof(big) + 1);
    free(s);
}

/* A comma-separated list, item by item, blanks around each item dropped. */
static void test_list_item(void **state)
{
    (void)state;
    const char *item;
    size_t len;
    const char *next = text_list_item(" a:1 ,\tb ,, c d ", &item, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(item, "a:1", 3);
    next = text_list_item(next, &item, &len);
    assert_int_equal(len, 1);
    assert_memory_equal(item, "b", 1);
    next = text_list_item(next, &item, &len);
    assert_int_equal(len, 0); /* an empty item is the caller's to judge */
    next = text_list_item(next, &item, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(item, "c d", 3);
    assert_null(next);
    assert_null(text_list_item("", &item, &len));
    assert_int_equal(len, 0);
    /* line ends around an item are white space too (a list written on several lines) */
    next = text_list_item("\r\n  x\n,\vy", &item, &len);
    assert_int_equal(len, 1);
    assert_memory_equal(item, "x", 1);
    assert_null(text_list_item(next, &item, &len));
    assert_memory_equal(item, "y", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_char_len),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_copy_replaces_and_cuts_at_boundaries),
        cmocka_unit_test(test_dup_and_truncate),
        cmocka_unit_test(test_msg_error_cut_param_serializes),
        cmocka_unit_test(test_error_form_of_raw_bytes),
        cmocka_unit_test(test_work_id_bounded),
        cmocka_unit_test(test_finished_fit),
        cmocka_unit_test(test_log_lines_valid),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_list_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
