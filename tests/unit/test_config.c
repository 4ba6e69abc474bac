#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static void test_bool(void **state)
{
    (void)state;
    const char *yes[] = {"true", "TRUE", "yes", "Yes", "1", "y", "Y", "s", "S", "on"};
    const char *no[] = {"false", "No", "0", "n", "OFF"};
    bool b;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        assert_int_equal(config_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = true;
        assert_int_equal(config_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(config_parse_bool("maybe", &b), -EINVAL);
    assert_int_equal(config_parse_bool("", &b), -EINVAL);

    struct ct_error err = {0};
    unsetenv("CT_TEST_BOOL");
    b = false;
    assert_int_equal(config_bool("CT_TEST_BOOL", true, &b, &err), 0);
    assert_true(b);
    setenv("CT_TEST_BOOL", "perhaps", 1);
    b = true;
    assert_int_equal(config_bool("CT_TEST_BOOL", false, &b, &err), -EINVAL);
    assert_true(b); /* untouched on failure */
    assert_non_null(strstr(err.msg, "CT_TEST_BOOL"));
    unsetenv("CT_TEST_BOOL");
}

static void test_bytes(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(config_parse_bytes("1048576", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(config_parse_bytes("512k", &v), 0);
    assert_int_equal(v, 512 * 1024);
    assert_int_equal(config_parse_bytes("512m", &v), 0);
    assert_int_equal(v, 512ULL * 1024 * 1024);
    assert_int_equal(config_parse_bytes("512MiB", &v), 0);
    assert_int_equal(v, 512ULL * 1024 * 1024);
    assert_int_equal(config_parse_bytes("2G", &v), 0);
    assert_int_equal(v, 2ULL * 1024 * 1024 * 1024);
    assert_int_equal(config_parse_bytes("10b", &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(config_parse_bytes("-1", &v), -EINVAL);
    assert_int_equal(config_parse_bytes("12x", &v), -EINVAL);
    assert_int_equal(config_parse_bytes("12mx", &v), -EINVAL);
    assert_int_equal(config_parse_bytes("", &v), -EINVAL);
    assert_int_equal(config_parse_bytes("99999999999999999999", &v), -ERANGE);
    assert_int_equal(config_parse_bytes("99999999999999g", &v), -ERANGE);

    struct ct_error err = {0};
    setenv("CT_TEST_BYTES", "1k", 1);
    assert_int_equal(config_bytes("CT_TEST_BYTES", 5, 4096, 8192, &v, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "CT_TEST_BYTES"));
    unsetenv("CT_TEST_BYTES");
    assert_int_equal(config_bytes("CT_TEST_BYTES", 5000, 4096, 8192, &v, &err), 0);
    assert_int_equal(v, 5000);
}

static void test_duration(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(config_parse_duration_ms("180", &v), 0);
    assert_int_equal(v, 180000);
    assert_int_equal(config_parse_duration_ms("500ms", &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(config_parse_duration_ms("30s", &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(config_parse_duration_ms("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(config_parse_duration_ms("1h", &v), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(config_parse_duration_ms("1.5s", &v), -EINVAL);
    assert_int_equal(config_parse_duration_ms("s", &v), -EINVAL);
    assert_int_equal(config_parse_duration_ms("5d", &v), -EINVAL);
}

static void test_uint_and_cpus(void **state)
{
    (void)state;
    struct ct_error err = {0};
    uint64_t v = 0;
    setenv("CT_TEST_UINT", "0", 1);
    assert_int_equal(config_uint("CT_TEST_UINT", 8, 1, 100, &v, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "CT_TEST_UINT"));
    setenv("CT_TEST_UINT", "12abc", 1);
    assert_int_equal(config_uint("CT_TEST_UINT", 8, 1, 100, &v, &err), -EINVAL);
    setenv("CT_TEST_UINT", "42", 1);
    assert_int_equal(config_uint("CT_TEST_UINT", 8, 1, 100, &v, &err), 0);
    assert_int_equal(v, 42);
    unsetenv("CT_TEST_UINT");

    assert_int_equal(config_parse_nanocpus("1", &v), 0);
    assert_int_equal(v, 1000000000ULL);
    assert_int_equal(config_parse_nanocpus("0.5", &v), 0);
    assert_int_equal(v, 500000000ULL);
    assert_int_equal(config_parse_nanocpus("2.25", &v), 0);
    assert_int_equal(v, 2250000000ULL);
    assert_int_equal(config_parse_nanocpus(".5", &v), -EINVAL);
    assert_int_equal(config_parse_nanocpus("1.", &v), -EINVAL);
    setenv("CT_TEST_CPUS", "0", 1);
    assert_int_equal(config_nanocpus("CT_TEST_CPUS", 1, &v, &err), -EINVAL);
    unsetenv("CT_TEST_CPUS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_uint_and_cpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
