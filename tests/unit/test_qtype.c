/* common/qtype: the declare arguments of our queues, classic or quorum. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qtype.h"

static const struct amqp_link_header *find(const struct amqp_link_header *a, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].key, key) == 0)
            return &a[i];
    return NULL;
}

static void test_parse(void **state)
{
    (void)state;
    enum qtype t;
    assert_int_equal(qtype_parse("classic", &t), 0);
    assert_int_equal(t, QTYPE_CLASSIC);
    assert_int_equal(qtype_parse("quorum", &t), 0);
    assert_int_equal(t, QTYPE_QUORUM);
    assert_int_equal(qtype_parse("Quorum", &t), -EINVAL);
    assert_int_equal(qtype_parse("", &t), -EINVAL);
    assert_int_equal(qtype_parse("stream", &t), -EINVAL);
    assert_int_equal(qtype_parse(NULL, &t), -EINVAL);
}

static void test_classic_unchanged(void **state)
{
    (void)state;
    struct amqp_link_header out[QTYPE_MAX_ARGS];
    char companion[300];
    struct amqp_link_header own[] = {{.key = "x-message-ttl", .num = 5000}};
    assert_int_equal(qtype_args(QTYPE_CLASSIC, 20, "pending_corrections", NULL, 0, out, companion,
                                sizeof(companion)),
                     0);
    assert_int_equal(qtype_args(QTYPE_CLASSIC, 20, "q", own, 1, out, companion, sizeof(companion)),
                     1);
    assert_string_equal(out[0].key, "x-message-ttl");
    assert_false(qtype_companion(QTYPE_CLASSIC, "pending_corrections", NULL, 0));
}

static void test_quorum(void **state)
{
    (void)state;
    struct amqp_link_header out[QTYPE_MAX_ARGS];
    char companion[300];
    /* a work queue: limit, dead-lettering to its companion, at least once */
    int n = qtype_args(QTYPE_QUORUM, 7, "running_corrections.host-b", NULL, 0, out, companion,
                       sizeof(companion));
    assert_int_equal(n, 6);
    assert_string_equal(find(out, n, "x-queue-type")->str, "quorum");
    assert_null(find(out, n, "x-delivery-limit")->str);
    assert_int_equal(find(out, n, "x-delivery-limit")->num, 7);
    assert_string_equal(find(out, n, "x-dead-letter-exchange")->str, "");
    assert_string_equal(find(out, n, "x-dead-letter-routing-key")->str,
                        "running_corrections.host-b.invalid");
    assert_string_equal(find(out, n, "x-dead-letter-strategy")->str, "at-least-once");
    assert_string_equal(find(out, n, "x-overflow")->str, "reject-publish");
    assert_true(qtype_companion(QTYPE_QUORUM, "running_corrections.host-b", NULL, 0));

    /* a parking queue: quorum, nothing more, no companion of its own */
    n = qtype_args(QTYPE_QUORUM, 7, "pending_corrections.invalid", NULL, 0, out, companion,
                   sizeof(companion));
    assert_int_equal(n, 1);
    assert_string_equal(out[0].key, "x-queue-type");
    assert_false(qtype_companion(QTYPE_QUORUM, "pending_corrections.invalid", NULL, 0));
    n = qtype_args(QTYPE_QUORUM, 7, "failed_callbacks", NULL, 0, out, companion, sizeof(companion));
    assert_int_equal(n, 1);
    assert_false(qtype_companion(QTYPE_QUORUM, "failed_callbacks", NULL, 0));

    /* a retry queue: its own TTL and dead-lettering kept, made at least once; no limit */
    struct amqp_link_header own[] = {
        {.key = "x-message-ttl", .num = 5000},
        {.key = "x-dead-letter-exchange", .str = ""},
        {.key = "x-dead-letter-routing-key", .str = "finished_corrections"}};
    n = qtype_args(QTYPE_QUORUM, 7, "finished_corrections.retry.5000ms", own, 3, out, companion,
                   sizeof(companion));
    assert_int_equal(n, 6);
    assert_int_equal(find(out, n, "x-message-ttl")->num, 5000);
    assert_string_equal(find(out, n, "x-dead-letter-routing-key")->str, "finished_corrections");
    assert_null(find(out, n, "x-delivery-limit"));
    assert_string_equal(find(out, n, "x-dead-letter-strategy")->str, "at-least-once");
    assert_false(qtype_companion(QTYPE_QUORUM, "finished_corrections.retry.5000ms", own, 3));

    /* a running queue: its own dead-lettering (to running_corrections.lost) kept, with the
     * limit and at least once; no companion of its own */
    n = qtype_args(QTYPE_QUORUM, 7, "running_corrections.host-a", qtype_running_args, 2, out,
                   companion, sizeof(companion));
    assert_int_equal(n, 6);
    assert_int_equal(find(out, n, "x-delivery-limit")->num, 7);
    assert_string_equal(find(out, n, "x-dead-letter-routing-key")->str, "running_corrections.lost");
    assert_string_equal(find(out, n, "x-dead-letter-strategy")->str, "at-least-once");
    assert_false(
        qtype_companion(QTYPE_QUORUM, "running_corrections.host-a", qtype_running_args, 2));
    /* on classic queues, its arguments alone */
    assert_int_equal(qtype_args(QTYPE_CLASSIC, 7, "running_corrections", qtype_running_args, 2, out,
                                companion, sizeof(companion)),
                     2);

    /* the same name, the same arguments, whoever asks: the declares agree */
    struct amqp_link_header again[QTYPE_MAX_ARGS];
    char companion2[300];
    int n1 = qtype_args(QTYPE_QUORUM, 7, "finished_corrections", NULL, 0, out, companion,
                        sizeof(companion));
    int n2 = qtype_args(QTYPE_QUORUM, 7, "finished_corrections", NULL, 0, again, companion2,
                        sizeof(companion2));
    assert_int_equal(n1, n2);
    for (int i = 0; i < n1; i++) {
        assert_string_equal(out[i].key, again[i].key);
        if (out[i].str)
            assert_string_equal(out[i].str, again[i].str);
        else
            assert_int_equal(out[i].num, again[i].num);
    }
}

static void test_bounds(void **state)
{
    (void)state;
    struct amqp_link_header out[QTYPE_MAX_ARGS];
    char small[8];
    assert_int_equal(
        qtype_args(QTYPE_QUORUM, 7, "pending_corrections", NULL, 0, out, small, sizeof(small)),
        -E2BIG);
    struct amqp_link_header many[QTYPE_MAX_ARGS];
    for (int i = 0; i < QTYPE_MAX_ARGS; i++)
        many[i] = (struct amqp_link_header){.key = "x-max-length", .num = i};
    char companion[300];
    assert_int_equal(
        qtype_args(QTYPE_CLASSIC, 7, "q", many, QTYPE_MAX_ARGS, out, companion, sizeof(companion)),
        QTYPE_MAX_ARGS);
    assert_int_equal(
        qtype_args(QTYPE_QUORUM, 7, "q", many, QTYPE_MAX_ARGS, out, companion, sizeof(companion)),
        -E2BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_classic_unchanged),
        cmocka_unit_test(test_quorum),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
