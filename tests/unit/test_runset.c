/* The running-container bookkeeping of the starter (common/runset): events, our own start
 * answers and lists in every order two connections can deliver them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "runset.h"

static const char *A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
static const char *C = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

static int setup(void **state)
{
    runset *rs = NULL;
    assert_int_equal(runset_new(&rs), 0);
    *state = rs;
    return 0;
}

static int teardown(void **state)
{
    runset_free(*state);
    return 0;
}

static void test_events_count(void **state)
{
    runset *rs = *state;
    assert_int_equal(runset_count(rs), 0);
    assert_int_equal(runset_started(rs, A), 0);
    assert_int_equal(runset_start_event(rs, A), 0); /* the same container, counted once */
    assert_int_equal(runset_count(rs), 1);
    assert_int_equal(runset_start_event(rs, B), 0); /* not ours: counted as well */
    assert_int_equal(runset_count(rs), 2);
    runset_gone(rs, A);
    assert_int_equal(runset_count(rs), 1);
    runset_gone(rs, A); /* its destroy after its die */
    runset_gone(rs, C); /* never counted: a created container removed */
    assert_int_equal(runset_count(rs), 1);
    runset_gone(rs, B);
    assert_int_equal(runset_count(rs), 0);
}

static void test_exit_before_start_answer(void **state)
{
    runset *rs = *state;
    /* a correction that ran for a millisecond: its die event came before our start call's
     * answer; it must not be counted forever */
    runset_gone(rs, A);
    assert_int_equal(runset_started(rs, A), 0);
    assert_int_equal(runset_count(rs), 0);
}

static void test_restart_counts_again(void **state)
{
    runset *rs = *state;
    assert_int_equal(runset_started(rs, A), 0);
    runset_gone(rs, A);
    assert_int_equal(runset_start_event(rs, A), 0); /* started again (the completer's re-run) */
    assert_int_equal(runset_count(rs), 1);
}

static void test_list_replaces_missed_events(void **state)
{
    runset *rs = *state;
    assert_int_equal(runset_start_event(rs, A), 0);
    assert_int_equal(runset_start_event(rs, B), 0);
    /* the stream broke: A's exit was missed, C started unseen */
    uint64_t t = runset_list_asked(rs);
    const char *ids[] = {B, C};
    assert_int_equal(runset_list_answer(rs, t, ids, 2), 0);
    assert_int_equal(runset_count(rs), 2);
    runset_gone(rs, C);
    runset_gone(rs, B);
    assert_int_equal(runset_count(rs), 0);
}

static void test_list_older_than_a_start(void **state)
{
    runset *rs = *state;
    uint64_t t = runset_list_asked(rs);
    assert_int_equal(runset_started(rs, A), 0); /* after the list was asked for */
    assert_int_equal(runset_list_answer(rs, t, NULL, 0), 0);
    assert_int_equal(runset_count(rs), 1); /* the list predates it */
    /* a later list without it is believed */
    t = runset_list_asked(rs);
    assert_int_equal(runset_list_answer(rs, t, NULL, 0), 0);
    assert_int_equal(runset_count(rs), 0);
}

static void test_list_older_than_an_exit(void **state)
{
    runset *rs = *state;
    assert_int_equal(runset_started(rs, A), 0);
    assert_int_equal(runset_started(rs, B), 0);
    uint64_t t = runset_list_asked(rs);
    runset_gone(rs, A); /* after the list was asked for, before its answer */
    const char *ids[] = {A, B};
    assert_int_equal(runset_list_answer(rs, t, ids, 2), 0);
    assert_int_equal(runset_count(rs), 1); /* A is not counted again */

    /* but an exit before the list was asked for, listed anyway (a container that started
     * again, its start event still on the way), is counted: more, never fewer */
    runset_gone(rs, B);
    assert_int_equal(runset_count(rs), 0);
    t = runset_list_asked(rs);
    const char *again[] = {B};
    assert_int_equal(runset_list_answer(rs, t, again, 1), 0);
    assert_int_equal(runset_count(rs), 1);
}

static void test_restart_during_list(void **state)
{
    runset *rs = *state;
    assert_int_equal(runset_started(rs, A), 0);
    uint64_t t = runset_list_asked(rs);
    runset_gone(rs, A);
    assert_int_equal(runset_start_event(rs, A), 0); /* started again */
    const char *ids[] = {A};
    assert_int_equal(runset_list_answer(rs, t, ids, 1), 0);
    assert_int_equal(runset_count(rs), 1);
}

static void test_bad_ids(void **state)
{
    runset *rs = *state;
    char longer[RUNSET_ID_MAX + 2];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(runset_started(rs, longer), -EINVAL);
    assert_int_equal(runset_start_event(rs, ""), -EINVAL);
    assert_int_equal(runset_start_event(rs, NULL), -EINVAL);
    runset_gone(rs, longer);
    runset_gone(rs, NULL);
    uint64_t t = runset_list_asked(rs);
    const char *ids[] = {longer, NULL, "", A, A}; /* bad ones skipped, a duplicate counted once */
    assert_int_equal(runset_list_answer(rs, t, ids, 5), 0);
    assert_int_equal(runset_count(rs), 1);
}

static void test_many(void **state)
{
    runset *rs = *state;
    char id[RUNSET_ID_MAX + 1];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "%064d", i);
        assert_int_equal(runset_started(rs, id), 0);
    }
    assert_int_equal(runset_count(rs), 1000);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(id, sizeof(id), "%064d", i);
        runset_gone(rs, id);
    }
    assert_int_equal(runset_count(rs), 500);
    /* more exits than the ring remembers: the oldest may come back through a start answer */
    snprintf(id, sizeof(id), "%064d", 0);
    assert_int_equal(runset_started(rs, id), 0);
    assert_int_equal(runset_count(rs), 501);
    snprintf(id, sizeof(id), "%064d", 998);
    assert_int_equal(runset_started(rs, id), 0); /* recent enough: remembered */
    assert_int_equal(runset_count(rs), 501);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_before_start_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_counts_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_replaces_missed_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_older_than_a_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_older_than_an_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_during_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
