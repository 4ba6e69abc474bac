/* RFC 8785 (JCS) serialization of callback bodies. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "canon.h"

static void expect_number(double x, const char *want)
{
    char buf[40];
    assert_int_equal(canon_number(x, buf, sizeof(buf)), 0);
    if (strcmp(buf, want) != 0)
        fail_msg("%.17g: got %s, want %s", x, buf, want);
}

static void test_numbers(void **state)
{
    (void)state;
    expect_number(0, "0");
    expect_number(-0.0, "0");
    expect_number(1, "1");
    expect_number(2.0, "2");
    expect_number(-1.5, "-1.5");
    expect_number(0.1, "0.1");
    expect_number(7.5, "7.5");
    expect_number(4.50, "4.5");
    expect_number(2e-3, "0.002");
    expect_number(0.000001, "0.000001");
    expect_number(1e-7, "1e-7");
    expect_number(1e-27, "1e-27");
    expect_number(1e20, "100000000000000000000");
    expect_number(1e21, "1e+21");
    expect_number(1e30, "1e+30");
    expect_number(123456789012345680000.0, "123456789012345680000");
    expect_number(333333333.3333333, "333333333.3333333");
    expect_number(5e-324, "5e-324");
    expect_number(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_number(9007199254740992.0, "9007199254740992");
    expect_number(295147905179352830000.0, "295147905179352830000");
    char buf[40];
    assert_int_equal(canon_number(NAN, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(canon_number(INFINITY, buf, sizeof(buf)), -EINVAL);
}

static void test_objects(void **state)
{
    (void)state;
    json_t *v =
        json_loads("{\"b\":[1,2.0,0.1,true,null,\"x\"],\"a\":{\"d\":1e21,\"c\":-0.0}}", 0, NULL);
    assert_non_null(v);
    char *s = canon_dump(v);
    assert_string_equal(s, "{\"a\":{\"c\":0,\"d\":1e+21},\"b\":[1,2,0.1,true,null,\"x\"]}");
    free(s);
    json_decref(v);

    /* RFC 8785 section 3.2.3: keys sorted by UTF-16 code units */
    v = json_loads("{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew\","
                   "\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji\",\"\\u0080\":\"Control\","
                   "\"\\u00f6\":\"Latin\"}",
                   0, NULL);
    assert_non_null(v);
    s = canon_dump(v);
    const char *want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
                       "\"\xc3\xb6\":\"Latin\",\"\xe2\x82\xac\":\"Euro Sign\","
                       "\"\xf0\x9f\x98\x80\":\"Emoji\",\"\xef\xac\xb3\":\"Hebrew\"}";
    assert_string_equal(s, want);
    free(s);
    json_decref(v);

    /* Characters above U+FFFF that share a high surrogate order by the low one; and every one
     * of them before U+E000..U+FFFF (found by tests/fuzz/canon). */
    v = json_loads("{\"\\ud83d\\ude04\":1,\"\\uffff\":2,\"\\ud83d\\ude00f\":3,\"\\ud7ff\":4}", 0,
                   NULL);
    assert_non_null(v);
    s = canon_dump(v);
    assert_string_equal(s, "{\"\xed\x9f\xbf\":4,\"\xf0\x9f\x98\x80\x66\":3,\"\xf0\x9f\x98\x84\":1,"
                           "\"\xef\xbf\xbf\":2}");
    free(s);
    json_decref(v);

    /* escaping as JSON.stringify: controls, quote, backslash; not '/' nor U+2028 */
    v = json_pack("{s:s}", "k", "a\"b\\c/d\x01\x1f\n\t\xe2\x80\xa8");
    s = canon_dump(v);
    assert_string_equal(s, "{\"k\":\"a\\\"b\\\\c/d\\u0001\\u001f\\n\\t\xe2\x80\xa8\"}");
    free(s);
    json_decref(v);

    /* big integers print as the double they are in ECMAScript */
    v = json_integer(9007199254740993LL);
    s = canon_dump(v);
    assert_string_equal(s, "9007199254740992");
    free(s);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
