/* Pure logic of the notifier: callback body, signature, retry schedule, address policy. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "netpolicy.h"
#include "schedule.h"
#include "webhook.h"

static void test_signature(void **state)
{
    (void)state;
    /* The Standard Webhooks specification's own example. */
    unsigned char key[WEBHOOK_MAX_SECRET];
    size_t key_len = 0;
    assert_int_equal(webhook_parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &key_len),
                     0);
    assert_int_equal(key_len, 24);
    char sig[128];
    const char *body = "{\"test\": 2432232314}";
    assert_int_equal(webhook_sign(key, key_len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                  strlen(body), sig, sizeof(sig)),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_int_equal(webhook_sign(key, key_len, "id", 1, body, strlen(body), sig, 10), -ENOSPC);

    /* without the prefix, with padding */
    assert_int_equal(webhook_parse_secret("c2VjcmV0", key, &key_len), 0);
    assert_int_equal(key_len, 6);
    assert_memory_equal(key, "secret", 6);
    assert_int_equal(webhook_parse_secret("whsec_c2VjcmV0MQ==", key, &key_len), 0);
    assert_int_equal(key_len, 7);
    assert_int_equal(webhook_parse_secret("whsec_", key, &key_len), -EINVAL);
    assert_int_equal(webhook_parse_secret("whsec_abc", key, &key_len), -EINVAL);
    assert_int_equal(webhook_parse_secret("whsec_!!!!", key, &key_len), -EINVAL);
}

static void test_body(void **state)
{
    (void)state;
    json_t *wid = json_string("w1");
    json_t *resp = json_pack("{s:b,s:i,s:[s],s:s,s:{s:i,s:i}}", "success", 1, "grade", 10,
                             "comments", "ok", "work_id", "forged", "extra", "b", 2, "a", 1);
    struct finished_msg m = {
        .work_id = wid, .error = false, .correction_data = resp, .callback = "http://h/"};
    char *s = webhook_body(&m);
    assert_string_equal(s, "{\"comments\":[\"ok\"],\"extra\":{\"a\":1,\"b\":2},\"grade\":10,"
                           "\"success\":true,\"work_id\":\"w1\"}");
    free(s);
    json_t *text = json_string("time limit exceeded - ran 180 s");
    struct finished_msg e = {
        .work_id = NULL, .error = true, .correction_data = text, .callback = "http://h/"};
    s = webhook_body(&e);
    assert_string_equal(s, "{\"error\":\"time limit exceeded - ran 180 s\",\"success\":false}");
    free(s);
    json_t *num = json_integer(42);
    e.work_id = num;
    s = webhook_body(&e);
    assert_string_equal(
        s, "{\"error\":\"time limit exceeded - ran 180 s\",\"success\":false,\"work_id\":42}");
    free(s);
    json_decref(num);
    json_decref(text);
    json_decref(resp);
    json_decref(wid);
}

static void test_schedule(void **state)
{
    (void)state;
    struct schedule s;
    assert_int_equal(schedule_parse("5s,30s,2m,10m,30m,1h,3h", &s), 0);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.delays_ms[0], 5000);
    assert_int_equal(s.delays_ms[6], 3 * 3600 * 1000);
    assert_int_equal(schedule_parse("", &s), -EINVAL);
    assert_int_equal(schedule_parse("5s,,x", &s), -EINVAL);
    assert_int_equal(schedule_parse("0s", &s), -EINVAL);
    assert_int_equal(schedule_parse(" 1s , 2s ", &s), 0);
    assert_int_equal(s.n, 2);

    assert_int_equal(schedule_parse("5s,30s,2m", &s), 0);
    assert_int_equal(schedule_next(&s, 1, -1), 0);
    assert_int_equal(schedule_next(&s, 2, -1), 1);
    assert_int_equal(schedule_next(&s, 3, -1), 2);
    assert_int_equal(schedule_next(&s, 4, -1), -1);
    assert_int_equal(schedule_next(&s, 0, -1), -1);
    /* Retry-After moves to the first level long enough, never past the last */
    assert_int_equal(schedule_next(&s, 1, 20), 1);
    assert_int_equal(schedule_next(&s, 1, 3), 0);
    assert_int_equal(schedule_next(&s, 1, 99999), 2);

    /* backoff after infrastructure faults: doubling, capped, jittered in [d/2, d] */
    for (uint32_t r = 0; r < 5000; r += 97) {
        uint64_t d0 = schedule_backoff_ms(500, 30000, 0, r);
        uint64_t d3 = schedule_backoff_ms(500, 30000, 3, r);
        uint64_t dmax = schedule_backoff_ms(500, 30000, 40, r);
        assert_true(d0 >= 250 && d0 <= 500);
        assert_true(d3 >= 2000 && d3 <= 4000);
        assert_true(dmax >= 15000 && dmax <= 30000);
    }
    assert_int_equal(schedule_backoff_ms(500, 30000, 6, 0), 15000); /* 32000 capped, halved */
    assert_int_equal(schedule_backoff_ms(500, 30000, 1, 500), 1000);

    for (uint32_t r = 0; r < 1000; r += 37) {
        uint64_t d = schedule_jitter(10000, r);
        assert_true(d <= 10000 && d >= 9000);
    }
    assert_int_equal(schedule_retry_after("120", 0), 120);
    assert_int_equal(schedule_retry_after("abc", 0), -1);
    assert_int_equal(schedule_retry_after("-5", 0), -1);
    assert_int_equal(schedule_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10);
    assert_int_equal(schedule_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);
}

static const char *check(const struct netpolicy *p, const char *addr)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
    }
    return netpolicy_check_addr(p, (struct sockaddr *)&ss);
}

static void test_netpolicy(void **state)
{
    (void)state;
    struct netpolicy open = {0}, strict = {.deny_private = true};
    const char *always[] = {
        "169.254.169.254", "0.0.0.0",        "::", "fe80::1", "::ffff:169.254.169.254",
        "224.0.0.1",       "255.255.255.255"};
    for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++) {
        assert_non_null(check(&open, always[i]));
        assert_non_null(check(&strict, always[i]));
    }
    const char *private_ones[] = {"127.0.0.1",      "10.1.2.3",   "172.16.0.1", "172.31.255.255",
                                  "192.168.1.1",    "100.64.0.1", "::1",        "fd00::1",
                                  "::ffff:10.0.0.1"};
    for (size_t i = 0; i < sizeof(private_ones) / sizeof(private_ones[0]); i++) {
        assert_null(check(&open, private_ones[i]));
        assert_non_null(check(&strict, private_ones[i]));
    }
    const char *public_ones[] = {"8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1"};
    for (size_t i = 0; i < sizeof(public_ones) / sizeof(public_ones[0]); i++)
        assert_null(check(&strict, public_ones[i]));
    assert_string_equal(check(&open, "169.254.1.1"), "link-local address");

    /* The cloud metadata services, whatever deny_private says, in every IPv6 form that
     * carries the IPv4 address. */
    const char *metadata[] = {
        "169.254.169.254",    "169.254.170.2",      "169.254.170.23",         "169.254.42.42",
        "169.254.0.23",       "100.100.100.200",    "168.63.129.16",          "192.0.0.192",
        "fd00:ec2::254",      "fd00:ec2::23",       "fd20:ce::254",           "fd00:c1::a9fe:a9fe",
        "fd00:42::42",        "::ffff:a9fe:a9fe",   "::ffff:100.100.100.200", "::a9fe:a9fe",
        "::ffff:0:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b::a83f:8110",     "64:ff9b:1::c000:c0",
        "2002:a9fe:a9fe::1",  "2002:6464:64c8::",   "::ffff:168.63.129.16",
    };
    for (size_t i = 0; i < sizeof(metadata) / sizeof(metadata[0]); i++) {
        const char *why = check(&open, metadata[i]);
        if (!why || strcmp(why, "cloud metadata address") != 0)
            fail_msg("%s: %s", metadata[i], why ? why : "allowed");
        assert_string_equal(check(&strict, metadata[i]), "cloud metadata address");
    }
    /* Neighbours of the metadata addresses are ordinary addresses. */
    const char *neighbours[] = {"100.100.100.201",  "168.63.129.17",   "192.0.0.193",
                                "64:ff9b::808:808", "2002:808:808::1", "2001:db8::254"};
    for (size_t i = 0; i < sizeof(neighbours) / sizeof(neighbours[0]); i++)
        assert_null(check(&open, neighbours[i]));
    assert_null(check(&open, "fd00:ec2::253")); /* AWS DNS: private, not metadata */
    assert_string_equal(check(&strict, "fd00:ec2::253"), "private address");
    /* Embedded private IPv4 follows deny_private; ::1 stays loopback, not "0.0.0.1". */
    assert_null(check(&open, "64:ff9b::7f00:1"));
    assert_string_equal(check(&strict, "64:ff9b::7f00:1"), "loopback address");
    assert_string_equal(check(&strict, "2002:a00:1::"), "private address");
    assert_null(check(&open, "::1"));
    assert_string_equal(check(&strict, "::1"), "loopback address");
    assert_string_equal(check(&strict, "fec0::1"), "private address");

    /* Hosts as written in a URL. */
    assert_string_equal(netpolicy_check_host(&open, "169.254.169.254"), "cloud metadata address");
    assert_string_equal(netpolicy_check_host(&open, "2852039166"), "cloud metadata address");
    assert_string_equal(netpolicy_check_host(&open, "0xa9.0xfe.0xa9.0xfe"),
                        "cloud metadata address");
    assert_string_equal(netpolicy_check_host(&open, "[fd00:ec2::254]"), "cloud metadata address");
    assert_string_equal(netpolicy_check_host(&open, "[::ffff:a9fe:a9fe]"),
                        "cloud metadata address");
    assert_string_equal(netpolicy_check_host(&open, "[fe80::1%25eth0]"), "link-local address");
    assert_string_equal(netpolicy_check_host(&open, "Metadata.Google.Internal."),
                        "cloud metadata host name");
    assert_string_equal(netpolicy_check_host(&open, "metadata"), "cloud metadata host name");
    assert_null(netpolicy_check_host(&open, "metadata.example.com"));
    assert_null(netpolicy_check_host(&open, "grades.example.com"));
    assert_null(netpolicy_check_host(&open, "127.0.0.1"));
    assert_string_equal(netpolicy_check_host(&strict, "127.0.0.1"), "loopback address");

    struct netpolicy allow = {0};
    assert_int_equal(netpolicy_parse_allow("grades.example.com, *.school.example", &allow), 0);
    assert_true(netpolicy_host_allowed(&allow, "grades.example.com"));
    assert_true(netpolicy_host_allowed(&allow, "GRADES.example.com"));
    assert_true(netpolicy_host_allowed(&allow, "a.school.example"));
    assert_false(netpolicy_host_allowed(&allow, "school.example"));
    assert_false(netpolicy_host_allowed(&allow, "evil-school.example"));
    assert_false(netpolicy_host_allowed(&allow, "other.example.com"));
    netpolicy_free(&allow);
    assert_true(netpolicy_host_allowed(&open, "anything"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_netpolicy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
