/* common/dtime: the engine's timestamps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dtime.h"

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

    /* the ends of the years the parser takes: 9 and 12 digits of seconds */
    struct dtime lo, hi;
    assert_int_equal(dtime_parse("2000-01-01T00:00:00Z", 20, &lo), 0);
    dtime_since(lo, buf, sizeof(buf));
    assert_string_equal(buf, "946684800.000000000");
    assert_int_equal(dtime_parse("9999-12-31T23:59:59.999999999Z", 30, &hi), 0);
    dtime_since(dtime_next(hi), buf, sizeof(buf));
    assert_string_equal(buf, "253402300800.000000000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_order_and_since),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
