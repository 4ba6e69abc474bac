/* What a callback attempt means and what the notifier records of it (common/callback). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "callback.h"
#include "text.h"

static void test_outcomes(void **state)
{
    (void)state;
    struct callback_attempt a = {.status = 200, .opened = 1, .connected = true};
    assert_int_equal(callback_outcome(&a), CALLBACK_DELIVERED);
    a.status = 204;
    assert_int_equal(callback_outcome(&a), CALLBACK_DELIVERED);
    a.status = 299;
    assert_int_equal(callback_outcome(&a), CALLBACK_DELIVERED);
    /* a 2xx whose transfer failed after the status line is delivered all the same */
    a.status = 200;
    a.err = -ETIMEDOUT;
    assert_int_equal(callback_outcome(&a), CALLBACK_DELIVERED);
    a.err = 0;
    a.status = 410;
    assert_int_equal(callback_outcome(&a), CALLBACK_GONE);
    long retried[] = {0, 100, 199, 300, 301, 400, 404, 409, 429, 500, 503};
    for (size_t i = 0; i < sizeof(retried) / sizeof(retried[0]); i++) {
        a.status = retried[i];
        assert_int_equal(callback_outcome(&a), CALLBACK_RETRY);
    }
}

static void test_refused(void **state)
{
    (void)state;
    /* every address refused by the policy, nothing answered: final */
    struct callback_attempt a = {.err = -ECONNREFUSED, .refused = "private address 10.0.0.1"};
    assert_int_equal(callback_outcome(&a), CALLBACK_REFUSED);
    /* one address refused, another opened (and failed): a transport error, retried */
    a.opened = 1;
    assert_int_equal(callback_outcome(&a), CALLBACK_RETRY);
    char buf[300];
    a.err_detail = "Failed to connect to r.example port 443";
    callback_error_text(&a, 5000, NULL, buf, sizeof(buf));
    assert_string_equal(
        buf, "Failed to connect to r.example port 443 (refused: private address 10.0.0.1)");
    /* a connection carried it: the refusal is not the story */
    a.connected = true;
    callback_error_text(&a, 5000, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "Failed to connect to r.example port 443");
    /* an answer (a reused connection, say) is never "refused" */
    a.opened = 0;
    a.connected = false;
    a.status = 503;
    assert_int_equal(callback_outcome(&a), CALLBACK_RETRY);
}

static void test_error_texts(void **state)
{
    (void)state;
    char buf[300];
    struct callback_attempt a = {.status = 503};
    callback_error_text(&a, 5000, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "HTTP 503");
    a = (struct callback_attempt){.err = -ETIMEDOUT, .err_detail = "Operation timed out"};
    callback_error_text(&a, 5000, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "no answer within 5000 ms");
    a = (struct callback_attempt){.err = -ECONNRESET};
    callback_error_text(&a, 5000, NULL, buf, sizeof(buf));
    assert_string_equal(buf, strerror(ECONNRESET));
    /* the transport's words are outside text: made valid UTF-8 */
    a.err_detail = "bad \xff byte \xc3";
    callback_error_text(&a, 5000, NULL, buf, sizeof(buf));
    assert_true(text_utf8_valid(buf, strlen(buf)));
    assert_non_null(strstr(buf, "bad "));
    /* cut to the buffer at a character boundary, the refusal included */
    char small[24];
    a = (struct callback_attempt){.err = -EIO,
                                  .err_detail = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                                  .refused = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac loopback"};
    callback_error_text(&a, 5000, NULL, small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
    assert_true(text_utf8_valid(small, strlen(small)));
}

static void test_url_redacted(void **state)
{
    (void)state;
    const char *url = "https://user:secret@r.example/hook?token=abc";
    char buf[300];
    struct callback_attempt a = {
        .err = -EIO,
        .err_detail = "Could not resolve host for https://user:secret@r.example/hook?token=abc"};
    callback_error_text(&a, 5000, url, buf, sizeof(buf));
    assert_null(strstr(buf, "secret"));
    assert_null(strstr(buf, "abc"));
    assert_non_null(strstr(buf, "Could not resolve host for "));
    assert_non_null(strstr(buf, "r.example/hook"));
    /* a quote of its first bytes only (msg.c quotes 200 bytes of an invalid URL) */
    char text[300] = "invalid callback - 'https://user:secret@r.exa'";
    callback_scrub(text, sizeof(text), url);
    assert_null(strstr(text, "secret"));
    assert_non_null(strstr(text, "invalid callback - '"));
    /* a short URL prefix (under 8 bytes) is left alone: "https://" alone says nothing */
    char plain[64] = "see https:// docs";
    callback_scrub(plain, sizeof(plain), url);
    assert_string_equal(plain, "see https:// docs");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_error_texts),
        cmocka_unit_test(test_url_redacted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
