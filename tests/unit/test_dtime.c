/* common/dtime: the engine's timestamps, and the latest one of a log read with timestamps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dtime.h"
#include "output.h"

static int parse(const char *s, struct dtime *t)
{
    return dtime_parse(s, strlen(s), t);
}

static void test_parse(void **state)
{
    (void)state;
    struct dtime t;
    assert_int_equal(parse("2026-12-03T05:54:27.123456789Z", &t), 0);
    assert_int_equal(t.sec, 1796277267);
    assert_int_equal(t.nsec, 123456789);
    assert_int_equal(dtime_ms(t), 1796277267123);
    /* Go cuts trailing zeros; no fraction at all; no zone letter */
    assert_int_equal(parse("2026-12-03T05:54:27.5Z", &t), 0);
    assert_int_equal(t.nsec, 500000000);
    assert_int_equal(parse("2026-12-03T05:54:27Z", &t), 0);
    assert_int_equal(t.nsec, 0);
    assert_int_equal(parse("2026-12-03T05:54:27", &t), 0);
    assert_int_equal(t.sec, 1796277267);
    /* a length, not a NUL: a log line's head */
    const char *line = "2026-12-03T05:54:27.000000001Z {\"success\":true}";
    assert_int_equal(dtime_parse(line, 30, &t), 0);
    assert_int_equal(t.nsec, 1);

    const char *bad[] = {"",
                         "0001-01-01T00:00:00Z", /* Docker's zero time: never */
                         "1999-12-31T23:59:59Z",
                         "2026-13-03T05:54:27Z",
                         "2026-12-03 05:54:27Z",
                         "2026-12-03T05:54:27.Z",
                         "2026-12-03T05:54:27.1234567890Z",
                         "2026-12-03T05:54:27+01:00",
                         "2026-12-03T05:54:27Zx",
                         "2026-12-0xT05:54:27Z",
                         "2026-12-03T05:54"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &t) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
    }
    assert_int_equal(dtime_parse(NULL, 0, &t), -EINVAL);
}

static void test_order_and_since(void **state)
{
    (void)state;
    struct dtime a = {.sec = 10, .nsec = 999999999}, b = dtime_next(a);
    assert_int_equal(b.sec, 11);
    assert_int_equal(b.nsec, 0);
    assert_int_equal(dtime_cmp(a, b), -1);
    assert_int_equal(dtime_cmp(b, a), 1);
    assert_int_equal(dtime_cmp(a, a), 0);
    assert_int_equal(dtime_cmp((struct dtime){10, 5}, (struct dtime){10, 6}), -1);
    char buf[32];
    dtime_since((struct dtime){1796277267, 42}, buf, sizeof(buf));
    assert_string_equal(buf, "1796277267.000000042");
    dtime_since(dtime_next((struct dtime){1796277267, 123456789}), buf, sizeof(buf));
    assert_string_equal(buf, "1796277267.123456790");
}

/* a frame of Docker's multiplexed stream */
static size_t frame(unsigned char *p, int stream, const char *payload)
{
    size_t n = strlen(payload);
    p[0] = (unsigned char)stream;
    p[1] = p[2] = p[3] = 0;
    p[4] = (unsigned char)(n >> 24);
    p[5] = (unsigned char)(n >> 16);
    p[6] = (unsigned char)(n >> 8);
    p[7] = (unsigned char)n;
    memcpy(p + 8, payload, n);
    return 8 + n;
}

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
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_order_and_since),
        cmocka_unit_test(test_latest_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
