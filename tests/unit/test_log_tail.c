/* log_tail: the last frames of a multiplexed log stream, fed in any chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "log_tail.h"

/* Appends one frame (stream 1 or 2) to buf at *len. */
static void frame(char *buf, size_t *len, int stream, const char *payload)
{
    size_t n = strlen(payload);
    unsigned char h[8] = {(unsigned char)stream,
                          0,
                          0,
                          0,
                          (unsigned char)(n >> 24),
                          (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8),
                          (unsigned char)n};
    memcpy(buf + *len, h, 8);
    memcpy(buf + *len + 8, payload, n);
    *len += 8 + n;
}

/* The stream fed in chunks of `step` bytes to a log_tail of (frames, max, streams), the
 * result compared with the expected frames. */
static void check_streams(const char *stream, size_t len, size_t step, unsigned frames, size_t max,
                          unsigned streams, const char *want, size_t want_len)
{
    struct log_tail *t = log_tail_new(frames, max, streams);
    assert_non_null(t);
    for (size_t i = 0; i < len; i += step)
        assert_int_equal(log_tail_feed(t, stream + i, len - i < step ? len - i : step), 0);
    char *out;
    size_t out_len;
    assert_int_equal(log_tail_result(t, &out, &out_len), 0);
    assert_int_equal(out_len, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[out_len], '\0');
    free(out);
    log_tail_free(t);
}

/* The same, every stream kept (streams 0). */
static void check(const char *stream, size_t len, size_t step, unsigned frames, size_t max,
                  const char *want, size_t want_len)
{
    check_streams(stream, len, step, frames, max, 0, want, want_len);
}

static void test_last_frames(void **state)
{
    (void)state;
    char s[512], w[512];
    size_t len = 0, wl = 0;
    frame(s, &len, 1, "a\n");
    frame(s, &len, 2, "b\n");
    frame(s, &len, 2, "c"); /* a partial line: its own frame, as Podman writes it */
    frame(s, &len, 1, "d\n");
    frame(s, &len, 2, "");
    frame(s, &len, 2, "e\n");
    /* the last three, whatever the chunks */
    frame(w, &wl, 1, "d\n");
    frame(w, &wl, 2, "");
    frame(w, &wl, 2, "e\n");
    for (size_t step = 1; step <= len; step++)
        check(s, len, step, 3, 1024, w, wl);
    /* more frames asked than there are: all */
    check(s, len, 5, 20, 1024, s, len);
    /* nothing */
    check(s, 0, 1, 20, 1024, "", 0);
}

/* The last frames of both streams, then the asked stream's: as Docker's tail. */
static void test_streams(void **state)
{
    (void)state;
    char s[512], w[512];
    size_t len = 0, wl = 0;
    frame(s, &len, 1, "a\n");
    frame(s, &len, 1, "b");
    frame(s, &len, 2, "c");
    frame(w, &wl, 1, "b");
    check_streams(s, len, len, 2, 1024, 1u << 1, w, wl);
    check_streams(s, len, len, 1, 1024, 1u << 1, "", 0); /* the last entry is stderr's: nothing */
}

static void test_bounded(void **state)
{
    (void)state;
    char s[512], w[512];
    size_t len = 0, wl = 0;
    frame(s, &len, 2, "0123456789\n");
    frame(s, &len, 2, "abcdefghij\n");
    /* 30 bytes: the last frame only (19 bytes) */
    frame(w, &wl, 2, "abcdefghij\n");
    check(s, len, 7, 20, 30, w, wl);
    /* 12 bytes: the last 4 bytes of the last frame */
    wl = 0;
    frame(w, &wl, 2, "hij\n");
    check(s, len, 3, 20, 12, w, wl);
    /* a stream that ends inside a frame: what came of it */
    wl = 0;
    frame(w, &wl, 2, "0123456789\n");
    frame(w, &wl, 2, "abc");
    check(s, len - 8, 4, 20, 1024, w, wl);
    /* inside a header: not a frame yet */
    check(s, 19 + 5, 4, 20, 1024, s, 19);
}

static void test_new(void **state)
{
    (void)state;
    assert_null(log_tail_new(0, 1024, 0));
    assert_null(log_tail_new(1, 8, 0));
    log_tail_free(NULL);
}

static void test_utf8(void **state)
{
    (void)state;
    char s[512], w[512], *out;
    size_t len = 0, wl = 0, out_len;
    frame(s, &len, 1, "ok \xc3\xa9\n");
    frame(s, &len, 1, "{\"c\":[\"\xff\xc3\"]}\n");
    frame(s, &len, 2, "cut \xe2\x9c");
    frame(w, &wl, 1, "ok \xc3\xa9\n");
    frame(w, &wl, 1, "{\"c\":[\"\xef\xbf\xbd\xef\xbf\xbd\"]}\n");
    frame(w, &wl, 2, "cut \xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(log_tail_utf8(s, len, &out, &out_len), 0);
    assert_int_equal(out_len, wl);
    assert_memory_equal(out, w, wl);
    free(out);
    /* NUL kept; a frame cut short kept as far as it came; a cut header as it is */
    len = wl = 0;
    memcpy(s, "\2\0\0\0\0\0\0\3a\0b", 11);
    memcpy(s + 11, "\1\0\0\0\0\0\0\x09\xff", 9);
    assert_int_equal(log_tail_utf8(s, 20, &out, &out_len), 0);
    assert_int_equal(out_len, 11 + 8 + 3);
    assert_memory_equal(out, "\2\0\0\0\0\0\0\3a\0b\1\0\0\0\0\0\0\3\xef\xbf\xbd", 22);
    free(out);
    assert_int_equal(log_tail_utf8("\1\0\0", 3, &out, &out_len), 0);
    assert_int_equal(out_len, 3);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_frames), cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_new),         cmocka_unit_test(test_streams),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
