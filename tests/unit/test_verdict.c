/* The completer's decision of a result from the facts about its container (common/verdict):
 * which fact wins over which, and what each error says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "output.h"
#include "text.h"
#include "verdict.h"

static struct msg_error no_response = {.reason = OUTPUT_REASON_NO_RESPONSE,
                                       .detail = "no response block in stdout"};

/* A container that exited 1 without a response, its stderr "boom". */
static struct verdict_facts plain(void)
{
    return (struct verdict_facts){.limit_s = 60,
                                  .memory = 536870912,
                                  .max_output = 65536,
                                  .parse_err = &no_response,
                                  .log_bytes = 3 * 1048576,
                                  .exit_code = 1,
                                  .stderr_data = "boom\n",
                                  .stderr_len = 5};
}

static void assert_error(const struct verdict_facts *f, const char *reason, const char *detail)
{
    struct verdict v;
    verdict_decide(f, &v);
    assert_false(v.success);
    assert_string_equal(v.reason, reason);
    assert_string_equal(v.detail, detail);
    assert_true(text_utf8_valid(v.detail, strlen(v.detail)));
}

static void test_success(void **state)
{
    (void)state;
    struct verdict_facts f = plain();
    f.has_response = true;
    f.exit_code = 3; /* the exit code does not matter once there is a response */
    struct verdict v;
    verdict_decide(&f, &v);
    assert_true(v.success);
    /* ... nor does a SIGKILL after the response, or an engine outage */
    f.exit_code = 137;
    f.output_lost = f.log_rotated = true;
    verdict_decide(&f, &v);
    assert_true(v.success);
}

static void test_order_of_facts(void **state)
{
    (void)state;
    /* every fact at once: the first in verdict.h's order decides, then the next... */
    struct verdict_facts f = plain();
    f.missing = "the container was removed before its output could be read";
    f.timed_out = f.oom = f.out_too_large = f.has_response = f.output_lost = f.log_rotated = true;
    f.exit_code = 137;
    assert_error(&f, VERDICT_MISSING, "the container was removed before its output could be read");
    f.missing = NULL;
    assert_error(&f, VERDICT_TIMEOUT, "the correction ran longer than 60 s and was killed");
    f.timed_out = false;
    assert_error(&f, VERDICT_OOM,
                 "the container ran out of memory (limit 536870912 bytes) (exit code 137; "
                 "stderr: boom)");
    f.oom = false;
    assert_error(&f, OUTPUT_REASON_TOO_LARGE, "stdout is larger than 65536 bytes");
    f.out_too_large = false;
    struct verdict v;
    verdict_decide(&f, &v);
    assert_true(v.success); /* a response beats what follows */
    f.has_response = false;
    assert_error(&f, VERDICT_OUTPUT_LOST,
                 "the correction finished while the Docker engine was unavailable, and what it "
                 "printed then was lost; in what was kept, no response found - no response block "
                 "in stdout (exit code 137; stderr: boom)");
    f.output_lost = false;
    assert_error(&f, OUTPUT_REASON_TOO_LARGE,
                 "more output than the container's log keeps (3145728 bytes of stdout and stderr "
                 "together, CORRECTION_LOG_SIZE): the response may have been pushed out; in what "
                 "was kept, no response found - no response block in stdout (exit code 137; "
                 "stderr: boom)");
    f.log_rotated = false;
    /* a SIGKILL under a memory limit, the engine saying nothing of memory: it may have been */
    assert_error(&f, VERDICT_KILLED,
                 "killed by SIGKILL before printing a response; the engine reported no "
                 "out-of-memory kill, but a process that reaches its memory limit (536870912 "
                 "bytes) is ended this way too (exit code 137; stderr: boom)");
    f.memory = 0;
    assert_error(&f, VERDICT_KILLED,
                 "killed by a signal before printing a response (exit code 137; stderr: boom)");
    f.exit_code = 143;
    assert_error(&f, VERDICT_KILLED,
                 "killed by a signal before printing a response (exit code 143; stderr: boom)");
    f.exit_code = 2;
    assert_error(&f, OUTPUT_REASON_NO_RESPONSE,
                 "no response block in stdout (exit code 2; stderr: boom)");
}

static void test_never_started(void **state)
{
    (void)state;
    struct verdict_facts f = plain();
    f.timed_out = f.unstarted = true;
    assert_error(&f, VERDICT_TIMEOUT, "the container was not started within its 60 s");
}

static void test_parser_reason_and_context(void **state)
{
    (void)state;
    struct msg_error bad = {.reason = OUTPUT_REASON_INVALID_JSON, .detail = "line 1: oops"};
    struct verdict_facts f = plain();
    f.parse_err = &bad;
    f.exit_code = 0;
    f.stderr_data = NULL;
    f.stderr_len = 0;
    assert_error(&f, OUTPUT_REASON_INVALID_JSON, "line 1: oops (exit code 0)"); /* no stderr */
    /* the last lines of stderr only */
    f.stderr_data = "1\n2\n3\n4\n5\n6\n7\n";
    f.stderr_len = strlen(f.stderr_data);
    assert_error(&f, OUTPUT_REASON_INVALID_JSON,
                 "line 1: oops (exit code 0; stderr: 3\n4\n5\n6\n7)");
}

static void test_stderr_made_valid(void **state)
{
    (void)state;
    /* stderr cut in the middle of a character, with a NUL and a stray byte */
    static const char raw[] = "caf\xc3\xa9 \xff x\0y \xc3";
    struct verdict_facts f = plain();
    f.exit_code = 137;
    f.stderr_data = raw;
    f.stderr_len = sizeof(raw) - 1;
    struct verdict v;
    verdict_decide(&f, &v);
    assert_false(v.success);
    assert_string_equal(v.reason, VERDICT_KILLED);
    assert_true(text_utf8_valid(v.detail, strlen(v.detail)));
    assert_non_null(strstr(v.detail, "caf\xc3\xa9 "));
    /* a long stderr is kept to its tail and the detail to its buffer, at a boundary */
    char big[8192];
    for (size_t i = 0; i + 2 <= sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    f.stderr_data = big;
    f.stderr_len = sizeof(big);
    verdict_decide(&f, &v);
    assert_true(strlen(v.detail) < sizeof(v.detail));
    assert_true(text_utf8_valid(v.detail, strlen(v.detail)));
}

static void test_long_detail_cut_at_boundary(void **state)
{
    (void)state;
    struct verdict_facts f = plain();
    char missing[4000];
    for (size_t i = 0; i + 3 <= sizeof(missing) - 1; i += 3)
        memcpy(missing + i, "\xe2\x82\xac", 3); /* the euro sign, three bytes */
    missing[sizeof(missing) - 1 - (sizeof(missing) - 1) % 3] = '\0';
    f.missing = missing;
    struct verdict v;
    verdict_decide(&f, &v);
    assert_string_equal(v.reason, VERDICT_MISSING);
    assert_true(strlen(v.detail) > 2000 && strlen(v.detail) < sizeof(v.detail));
    assert_int_equal(strlen(v.detail) % 3, 0);
    assert_true(text_utf8_valid(v.detail, strlen(v.detail)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_order_of_facts),
        cmocka_unit_test(test_never_started),
        cmocka_unit_test(test_parser_reason_and_context),
        cmocka_unit_test(test_stderr_made_valid),
        cmocka_unit_test(test_long_detail_cut_at_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
