/* The one backoff (schedule_backoff_ms: capped doubling, then between half and all of it) and
 * the one source of jitter (ids_jitter) that the link's reconnections, the events streams and
 * the jobs' retries share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ids.h"
#include "schedule.h"

static void test_doubles_then_caps(void **state)
{
    (void)state;
    /* rnd at the top of the range gives the whole delay, 0 gives half */
    assert_int_equal(schedule_backoff_ms(500, 30000, 0, 250), 500);
    assert_int_equal(schedule_backoff_ms(500, 30000, 0, 0), 250);
    assert_int_equal(schedule_backoff_ms(500, 30000, 1, 500), 1000);
    assert_int_equal(schedule_backoff_ms(500, 30000, 5, 8000), 16000);
    assert_int_equal(schedule_backoff_ms(500, 30000, 6, 15000), 30000);
    assert_int_equal(schedule_backoff_ms(500, 30000, 60, 15000), 30000);
    /* the events streams' schedule */
    assert_int_equal(schedule_events_retry_ms(0, 0), 125);
    assert_int_equal(schedule_events_retry_ms(40, 16000), 32000);
}

static void test_huge_attempts_do_not_overflow(void **state)
{
    (void)state;
    assert_int_equal(schedule_backoff_ms(1, UINT64_MAX, 200, 0), UINT64_MAX / 2);
    assert_int_equal(schedule_backoff_ms(UINT64_MAX / 2 + 1, UINT64_MAX, 3, 0), UINT64_MAX / 2);
    assert_int_equal(schedule_backoff_ms(1000, 1000, 50, 500), 1000);
}

static void test_min_above_max_uses_max(void **state)
{
    (void)state;
    assert_int_equal(schedule_backoff_ms(5000, 1000, 0, 500), 1000);
    assert_int_equal(schedule_backoff_ms(5000, 1000, 0, 0), 500);
}

static void test_zero_min_is_immediate(void **state)
{
    (void)state;
    assert_int_equal(schedule_backoff_ms(0, 30000, 10, 999), 0);
}

static void test_jitter_spreads(void **state)
{
    (void)state;
    /* 4096 draws: every one of 16 buckets is hit, none by more than a quarter */
    unsigned buckets[16] = {0};
    for (int i = 0; i < 4096; i++)
        buckets[ids_jitter() >> 28]++;
    for (int b = 0; b < 16; b++) {
        assert_true(buckets[b] > 0);
        assert_true(buckets[b] < 1024);
    }
    /* so do the delays it picks */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t d = schedule_backoff_ms(500, 30000, 2, ids_jitter());
        assert_true(d >= 1000 && d <= 2000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(hi - lo > 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_then_caps),
        cmocka_unit_test(test_huge_attempts_do_not_overflow),
        cmocka_unit_test(test_min_above_max_uses_max),
        cmocka_unit_test(test_zero_min_is_immediate),
        cmocka_unit_test(test_jitter_spreads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
