/* common/lines: the bounded splitter of Docker's JSON-line streams (events, pulls), fed the
 * way a socket delivers: lines cut anywhere, several per chunk, blank lines, a last line with
 * no newline, lines at and over the bound, and a callback that stops (and frees) the stream. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lines.h"

struct seen {
    char lines[16][64];
    int n;
    int stop_at; /* return 7 from this line (1-based), 0: never */
    struct lines *free_at_stop;
};

static int on_line(const char *line, size_t len, void *ud)
{
    struct seen *s = ud;
    assert_true(s->n < 16 && len < 64);
    memcpy(s->lines[s->n], line, len);
    s->lines[s->n][len] = '\0';
    s->n++;
    if (s->stop_at && s->n == s->stop_at) {
        if (s->free_at_stop)
            lines_free(s->free_at_stop);
        return 7;
    }
    return 0;
}

static void feed_all(struct lines *l, const char *text, size_t chunk, struct seen *s)
{
    size_t len = strlen(text);
    for (size_t i = 0; i < len; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        assert_int_equal(lines_feed(l, text + i, n, on_line, s), 0);
    }
}

static void test_any_cut(void **state)
{
    (void)state;
    const char *text = "{\"a\":1}\n\n{\"b\":22}\r\n{\"c\":333}\n{\"tail\"";
    for (size_t chunk = 1; chunk <= strlen(text); chunk++) {
        struct lines l;
        struct seen s = {0};
        assert_int_equal(lines_init(&l, 64), 0);
        feed_all(&l, text, chunk, &s);
        assert_int_equal(s.n, 4);
        assert_string_equal(s.lines[0], "{\"a\":1}");
        assert_string_equal(s.lines[1], ""); /* a blank line is a line */
        assert_string_equal(s.lines[2], "{\"b\":22}\r");
        assert_string_equal(s.lines[3], "{\"c\":333}");
        size_t len;
        const char *rest = lines_rest(&l, &len);
        assert_int_equal(len, 7);
        assert_memory_equal(rest, "{\"tail\"", 7);
        lines_free(&l);
    }
}

static void test_bound(void **state)
{
    (void)state;
    struct lines l;
    struct seen s = {0};
    char line[20];
    assert_int_equal(lines_init(&l, 8), 0);
    /* exactly max bytes (without the newline) fits, in one piece or several */
    assert_int_equal(lines_feed(&l, "12345678\n", 9, on_line, &s), 0);
    assert_int_equal(lines_feed(&l, "1234", 4, on_line, &s), 0);
    assert_int_equal(lines_feed(&l, "5678\n", 5, on_line, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.lines[1], "12345678");
    /* one more byte does not, whether it comes at once or a byte at a time */
    assert_int_equal(lines_feed(&l, "123456789\n", 10, on_line, &s), -EFBIG);
    lines_free(&l);
    assert_int_equal(lines_init(&l, 8), 0);
    memset(line, 'x', sizeof(line));
    int r = 0;
    for (size_t i = 0; i < sizeof(line) && r == 0; i++)
        r = lines_feed(&l, line + i, 1, on_line, &s);
    assert_int_equal(r, -EFBIG);
    assert_int_equal(s.n, 2); /* nothing more was delivered */
    lines_free(&l);
}

static void test_stop_and_free_inside(void **state)
{
    (void)state;
    struct lines *l = malloc(sizeof(*l));
    assert_non_null(l);
    assert_int_equal(lines_init(l, 64), 0);
    struct seen s = {.stop_at = 2, .free_at_stop = l};
    /* the callback frees the splitter at the second line: nothing after it is read */
    assert_int_equal(lines_feed(l, "a\nb\nc\nd\n", 8, on_line, &s), 7);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.lines[1], "b");
    free(l);
}

static void test_keep(void **state)
{
    (void)state;
    struct lines l;
    assert_int_equal(lines_init(&l, 10), 0);
    lines_keep(&l, "{\"message\"", 10 - 0);
    lines_keep(&l, ":\"no\"}\n", 7); /* over max: cut */
    size_t len;
    const char *rest = lines_rest(&l, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(rest, "{\"message\"", 10);
    lines_free(&l);
    lines_free(&l); /* twice: harmless */
}

static void test_empty_feed(void **state)
{
    (void)state;
    struct lines l;
    struct seen s = {0};
    assert_int_equal(lines_init(&l, 4), 0);
    assert_int_equal(lines_feed(&l, "", 0, on_line, &s), 0);
    assert_int_equal(lines_feed(&l, "\n\n", 2, on_line, &s), 0);
    assert_int_equal(s.n, 2);
    lines_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_cut),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_stop_and_free_inside),
        cmocka_unit_test(test_keep),
        cmocka_unit_test(test_empty_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
