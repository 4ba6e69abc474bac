/* amqp_link_backoff_ms: capped exponential backoff with full jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "amqp_link.h"

static void test_ceiling_doubles_then_caps(void **state)
{
    (void)state;
    /* the draw rnd == ceiling gives exactly the ceiling */
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 0, 500), 500);
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 1, 1000), 1000);
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 2, 2000), 2000);
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 5, 16000), 16000);
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 6, 30000), 30000);
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 60, 30000), 30000);
    /* the draw ceiling + 1 wraps to 0: the range is [0, ceiling] */
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 0, 501), 0);
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 1, 1001), 0);
    assert_int_equal(amqp_link_backoff_ms(500, 30000, 7, 30001), 0);
}

static void test_full_jitter_stays_in_range(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        uint64_t cap = 500;
        for (unsigned i = 0; i < attempt && cap < 30000; i++)
            cap = cap * 2 > 30000 ? 30000 : cap * 2;
        for (int i = 0; i < 1000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t d = amqp_link_backoff_ms(500, 30000, attempt, x);
            assert_true(d <= cap);
        }
    }
}

static void test_huge_attempts_do_not_overflow(void **state)
{
    (void)state;
    assert_int_equal(amqp_link_backoff_ms(1, UINT64_MAX, 200, 12345), 12345);
    assert_int_equal(amqp_link_backoff_ms(UINT64_MAX / 2 + 1, UINT64_MAX, 3, 77), 77);
    assert_int_equal(amqp_link_backoff_ms(1000, 1000, 50, 1000), 1000);
}

static void test_min_above_max_uses_max(void **state)
{
    (void)state;
    assert_int_equal(amqp_link_backoff_ms(5000, 1000, 0, 1000), 1000);
    assert_int_equal(amqp_link_backoff_ms(5000, 1000, 0, 1001), 0);
}

static void test_zero_min_is_immediate(void **state)
{
    (void)state;
    assert_int_equal(amqp_link_backoff_ms(0, 30000, 10, 999), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_doubles_then_caps),
        cmocka_unit_test(test_full_jitter_stays_in_range),
        cmocka_unit_test(test_huge_attempts_do_not_overflow),
        cmocka_unit_test(test_min_above_max_uses_max),
        cmocka_unit_test(test_zero_min_is_immediate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
