/* common/hostlist: RABBITMQ_HOST as a list of broker nodes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostlist.h"

static void test_lists(void **state)
{
    (void)state;
    struct hostlist l;
    char why[200];
    assert_int_equal(hostlist_parse("rabbitmq", 5672, &l, why, sizeof(why)), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.node[0].host, "rabbitmq");
    assert_int_equal(l.node[0].port, 5672);

    assert_int_equal(
        hostlist_parse(" rmq-1:5673 , 10.0.0.2,[::1]:5674,[fe80::1]", 5672, &l, why, sizeof(why)),
        0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.node[0].host, "rmq-1");
    assert_int_equal(l.node[0].port, 5673);
    assert_string_equal(l.node[1].host, "10.0.0.2");
    assert_int_equal(l.node[1].port, 5672);
    assert_string_equal(l.node[2].host, "::1");
    assert_int_equal(l.node[2].port, 5674);
    assert_string_equal(l.node[3].host, "fe80::1");
    assert_int_equal(l.node[3].port, 5672);
    char text[300];
    hostlist_node_text(&l.node[2], text, sizeof(text));
    assert_string_equal(text, "[::1]:5674");
    hostlist_node_text(&l.node[0], text, sizeof(text));
    assert_string_equal(text, "rmq-1:5673");
}

static void refused(const char *text, const char *reason)
{
    struct hostlist l;
    char why[200] = "";
    assert_int_equal(hostlist_parse(text, 5672, &l, why, sizeof(why)), -EINVAL);
    if (!strstr(why, reason))
        fail_msg("%s: %s, expected %s", text, why, reason);
}

static void test_refused(void **state)
{
    (void)state;
    refused("", "entry 1: an empty host");
    refused("a,,b", "entry 2: an empty host");
    refused("a,", "entry 2: an empty host");
    refused("a:0", "a port must be 1 to 65535");
    refused("a:65536", "a port must be 1 to 65535");
    refused("a:123456", "a port must be 1 to 65535");
    refused("a:", "a port must be 1 to 65535");
    refused("a:5x", "a port must be 1 to 65535");
    refused("a:1:2", "a port must be 1 to 65535");
    refused("::1", "entry 1: an empty host");
    refused("[::1", "without its closing");
    refused("[::1]5672", "only \":port\"");
    refused("[zz::1]", "not a host name");
    refused("a b", "not a host name");
    refused("h\xc3\xa9te", "not a host name");
    refused("amqp://guest@h", "a port must be 1 to 65535"); /* a URL is not a host */
    char many[200] = "";
    for (int i = 0; i < HOSTLIST_MAX + 1; i++)
        strcat(many, i ? ",h" : "h");
    refused(many, "more than 16 hosts");
    char longname[HOSTLIST_HOST_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    refused(longname, "longer than 253 bytes");
    longname[HOSTLIST_HOST_MAX] = '\0';
    struct hostlist l;
    char why[200];
    assert_int_equal(hostlist_parse(longname, 1, &l, why, sizeof(why)), 0);
    struct hostlist none;
    assert_int_equal(hostlist_parse(NULL, 5672, &none, why, sizeof(why)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
