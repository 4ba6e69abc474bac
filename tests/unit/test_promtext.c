/* common/promtext: the Prometheus text format, read without trusting it. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promtext.h"

/* What the callbacks saw, one line each: "name{l="v",...} value" for a sample (the value as
 * %.17g, label values raw), "HELP name |text|" or "TYPE name |text|" for a comment. */
struct seen {
    char text[8192];
    size_t len;
    size_t samples;
    int stop_after; /* the sample callback returns -ECANCELED at this sample (from 1); 0: never */
};

static void append(struct seen *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->text + w->len, sizeof(w->text) - w->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(w->text) - w->len);
    w->len += (size_t)n;
}

static int on_sample(const struct promtext_sample *s, void *ud)
{
    struct seen *w = ud;
    append(w, "%s", s->name);
    for (size_t i = 0; i < s->n_labels; i++)
        append(w, "%s%s=\"%s\"%s", i ? "," : "{", s->labels[i].name, s->labels[i].value,
               i + 1 == s->n_labels ? "}" : "");
    append(w, " %.17g\n", s->value);
    w->samples++;
    return w->stop_after && w->samples == (size_t)w->stop_after ? -ECANCELED : 0;
}

static int on_comment(enum promtext_comment kind, const char *name, const char *text, size_t len,
                      void *ud)
{
    append(ud, "%s %s |%.*s|\n", kind == PROMTEXT_HELP ? "HELP" : "TYPE", name, (int)len, text);
    return 0;
}

/* Parses body[0..len): the return, and what was seen in w. */
static int parse_n(const char *body, size_t len, struct seen *w, struct promtext_error *err)
{
    memset(w, 0, sizeof(*w));
    /* in a buffer of exactly len bytes, so that ASan sees a read past its end */
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, body, len);
    int r = promtext_parse(copy, len, on_sample, on_comment, w, err);
    free(copy);
    return r;
}

static int parse(const char *body, struct seen *w, struct promtext_error *err)
{
    return parse_n(body, strlen(body), w, err);
}

/* body parses, and the callbacks saw exactly want. */
static void ok(const char *body, const char *want)
{
    struct seen w;
    struct promtext_error err = {0, NULL};
    int r = parse(body, &w, &err);
    if (r != 0)
        fail_msg("%s: %d at line %zu (%s)", body, r, err.line, err.why ? err.why : "");
    assert_string_equal(w.text, want);
}

/* body[0..len) is refused at line, for why; the lines before it were seen as want. */
static void bad_n(const char *body, size_t len, size_t line, const char *why, const char *want)
{
    struct seen w;
    struct promtext_error err = {0, NULL};
    assert_int_equal(parse_n(body, len, &w, &err), -EINVAL);
    assert_int_equal(err.line, line);
    assert_non_null(err.why);
    assert_string_equal(err.why, why);
    assert_string_equal(w.text, want);
}

static void bad(const char *body, size_t line, const char *why)
{
    bad_n(body, strlen(body), line, why, "");
}

/* Bodies of one line, each refused at line 1 for its reason, nothing passed before. */
struct refusal {
    const char *body, *why;
};

static void refused(const struct refusal *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bad(r[i].body, 1, r[i].why);
}
#define REFUSED(table) refused(table, sizeof(table) / sizeof(table[0]))

static void test_samples(void **state)
{
    (void)state;
    ok("up 1\n", "up 1\n");
    ok("a:b_c9 -2.5e3\n", "a:b_c9 -2500\n");
    ok("_x 0.125\n", "_x 0.125\n");
    ok("m{a=\"1\"} 2\n", "m{a=\"1\"} 2\n");
    ok("m{a=\"1\",b=\"\",c_2=\"x y\"} 3\n", "m{a=\"1\",b=\"\",c_2=\"x y\"} 3\n");
    ok("m {} 4\n", "m 4\n");
    ok("m{a=\"1\",} 5\n", "m{a=\"1\"} 5\n");
    ok("  m \t{ a = \"1\" , b=\"2\" }\t6  \n", "m{a=\"1\",b=\"2\"} 6\n");
    ok("m{a=\"1\",a=\"2\"} 7\n", "m{a=\"1\",a=\"2\"} 7\n");
    ok("m{a=\"caf\xc3\xa9 \xff\"} 8\n", "m{a=\"caf\xc3\xa9 \xff\"} 8\n"); /* bytes kept as is */
    ok("m{a=\"{},=\"} 9\n", "m{a=\"{},=\"} 9\n");
    ok("m 1e400\nn -1e400\no 1e-400\n", "m inf\nn -inf\no 0\n"); /* out of range */
    ok("m 0x10\n", "m 16\n");
    ok("a 1\nb 2\r\nc{x=\"y\"} 3\n", "a 1\nb 2\nc{x=\"y\"} 3\n");
    ok("correctomatic_jobs_finished_total{daemon=\"completer\",outcome=\"graded\","
       "reason=\"\"} 12\n",
       "correctomatic_jobs_finished_total{daemon=\"completer\",outcome=\"graded\",reason=\"\"} "
       "12\n");
}

static void test_special_values(void **state)
{
    (void)state;
    ok("a NaN\nb +Inf\nc -Inf\nd nan\ne inf\n", "a nan\nb inf\nc -inf\nd nan\ne inf\n");
    struct seen w;
    assert_int_equal(parse("x{l=\"v\"} NaN\n", &w, NULL), 0);
    assert_int_equal(w.samples, 1);
    static const struct refusal cases[] = {
        {"a Infinite\n", "a value that is not a number"},
        {"a 1.5.2\n", "a value that is not a number"},
        {"a one\n", "a value that is not a number"},
        {"a 1,5\n", "a value that is not a number"},
    };
    REFUSED(cases);
}

static void test_escapes(void **state)
{
    (void)state;
    ok("m{a=\"back\\\\slash\",b=\"q\\\"uote\",c=\"new\\nline\"} 1\n",
       "m{a=\"back\\slash\",b=\"q\"uote\",c=\"new\nline\"} 1\n");
    ok("m{a=\"\\\\\\\\\\\"\\n\"} 1\n", "m{a=\"\\\\\"\n\"} 1\n");
    /* an escaped quote does not end the value; an escaped backslash before a quote does */
    ok("m{a=\"\\\"} 1\"} 2\n", "m{a=\"\"} 1\"} 2\n");
    ok("m{a=\"x\\\\\"} 3\n", "m{a=\"x\\\"} 3\n");
    static const struct refusal cases[] = {
        {"m{a=\"\\t\"} 1\n", "an escape other than \\\\ \\\" \\n in a label value"},
        {"m{a=\"\\u0041\"} 1\n", "an escape other than \\\\ \\\" \\n in a label value"},
        {"m{a=\"x\\", "a label value without its closing quote"},
    };
    REFUSED(cases);
}

static void test_label(void **state)
{
    (void)state;
    /* promtext_label: the first of a name, NULL when absent */
    struct promtext_sample s = {.name = "m", .n_labels = 3};
    snprintf(s.labels[0].name, sizeof(s.labels[0].name), "a");
    snprintf(s.labels[0].value, sizeof(s.labels[0].value), "1");
    snprintf(s.labels[1].name, sizeof(s.labels[1].name), "daemon");
    snprintf(s.labels[1].value, sizeof(s.labels[1].value), "x\ny");
    snprintf(s.labels[2].name, sizeof(s.labels[2].name), "a");
    snprintf(s.labels[2].value, sizeof(s.labels[2].value), "2");
    assert_string_equal(promtext_label(&s, "a"), "1");
    assert_string_equal(promtext_label(&s, "daemon"), "x\ny");
    assert_null(promtext_label(&s, "dae"));
    assert_null(promtext_label(&s, "m"));
    s.n_labels = 0;
    assert_null(promtext_label(&s, "a"));
}

static void test_timestamps(void **state)
{
    (void)state;
    ok("a 1 1700000000000\n", "a 1\n");
    ok("a{b=\"c\"} 2 -5\n", "a{b=\"c\"} 2\n");
    ok("a 3 123456789012345678901234567890\n", "a 3\n"); /* checked, not kept */
    ok("a 4\t17 \t\n", "a 4\n");
    static const struct refusal cases[] = {
        {"a 1 17.5\n", "a timestamp that is not an integer"},
        {"a 1 -\n", "a timestamp that is not an integer"},
        {"a 1 1-2\n", "a timestamp that is not an integer"},
        {"a 1 +5\n", "a timestamp that is not an integer"},
        {"a 1 17 x\n", "more after the timestamp"},
    };
    REFUSED(cases);
}

static void test_blank_and_comments(void **state)
{
    (void)state;
    ok("\n\n   \n\t\n\r\n", "");
    ok("# just a comment\n#\n  # indented\n#HELP not one\n", "");
    ok("# HELP up Whether it is up.\n# TYPE up gauge\nup 1\n",
       "HELP up |Whether it is up.|\nTYPE up |gauge|\nup 1\n");
    ok("# TYPE m_total counter \r\n# TYPE  x gauge\n# TYPE\n# TYPE 9x gauge\n",
       "TYPE m_total |counter |\n");
    ok("# HELP m a \\\\ b\\n c\n", "HELP m |a \\\\ b\\n c|\n"); /* HELP text not unescaped */
    ok("# TYPE m\n# HELP m\n", "TYPE m ||\nHELP m ||\n");
    ok("# TYPE m$x gauge\n", "TYPE m |$x gauge|\n"); /* the name: the longest run */
    ok("# type m gauge\n# EOF\n", "");
    /* a comment line is never an error, whatever it holds */
    ok("# TYPE {bad} \"\n# HELP \\\n", "");
    /* blank lines and comments between samples count as lines */
    bad_n("a 1\n\n# c\nb\n", 11, 4, "no value", "a 1\n");
}

static void test_without_callbacks(void **state)
{
    (void)state;
    struct promtext_error err = {0, NULL};
    assert_int_equal(promtext_parse("a 1\n# TYPE a gauge\n", 19, NULL, NULL, NULL, &err), 0);
    assert_int_equal(promtext_parse("a 1\nb\n", 6, NULL, NULL, NULL, &err), -EINVAL);
    assert_int_equal(err.line, 2);
    assert_string_equal(err.why, "no value");
    assert_int_equal(promtext_parse("a\n", 2, NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_callback_stops(void **state)
{
    (void)state;
    struct seen w = {.stop_after = 2};
    struct promtext_error err = {77, "untouched"};
    assert_int_equal(promtext_parse("a 1\nb 2\nc 3\n", 12, on_sample, NULL, &w, &err), -ECANCELED);
    assert_string_equal(w.text, "a 1\nb 2\n");
    assert_int_equal(err.line, 77);
    assert_string_equal(err.why, "untouched");
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct refusal cases[] = {
        {"m{a=\"unterminated} 1\n", "a label value without its closing quote"},
        {"m{a=\"x\" 1\n", "no ',' or '}' after a label"},
        {"m{a=\"x\",", "no '}' after the labels"},
        {"m{a=\"x\"", "no ',' or '}' after a label"},
        {"m{a=x} 1\n", "a label value not in quotes"},
        {"m{a} 1\n", "no '=' after a label name"},
        {"m{=\"x\"} 1\n", "no label name"},
        {"m{a:b=\"x\"} 1\n", "no '=' after a label name"}, /* no ':' in a label name */
        {"m{9a=\"x\"} 1\n", "no label name"},
        {"m{a=\"x\"}}\n", "a value that is not a number"},
        {"m\n", "no value"},
        {"m \n", "no value"},
        {"m{a=\"x\"}\n", "no value"},
        {"m{a=\"x\"} \t\r\n", "no value"},
        {"9m 1\n", "no metric name"},
        {"-m 1\n", "no metric name"},
        {"{a=\"x\"} 1\n", "no metric name"},
        {"m-x 1\n", "a value that is not a number"},
        {"m.x 1\n", "a value that is not a number"},
        {"m\xc3\xa9 1\n", "a value that is not a number"},
        {"m 1 2 3\n", "more after the timestamp"},
        {"m 1\r\r\n", "a value that is not a number"},
    };
    REFUSED(cases);
    /* the first bad line is told, after the good ones before it */
    bad_n("a 1\nb 2\nc{\nd 4\n", 15, 3, "no '}' after the labels", "a 1\nb 2\n");
}

/* A name of n bytes of c. */
static char *name_of(size_t n, char c)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_bounds(void **state)
{
    (void)state;
    char body[2048], want[2048];
    char *name = name_of(PROMTEXT_NAME_MAX, 'n'), *longer = name_of(PROMTEXT_NAME_MAX + 1, 'n');
    char *value = name_of(PROMTEXT_LABEL_VALUE_MAX, 'v');
    char *value_long = name_of(PROMTEXT_LABEL_VALUE_MAX + 1, 'v');

    /* a metric name */
    snprintf(body, sizeof(body), "%s 1\n", name);
    snprintf(want, sizeof(want), "%s 1\n", name);
    ok(body, want);
    snprintf(body, sizeof(body), "%s 1\n", longer);
    bad(body, 1, "a metric name too long");
    /* a label name */
    snprintf(body, sizeof(body), "m{%s=\"x\"} 1\n", name);
    snprintf(want, sizeof(want), "m{%s=\"x\"} 1\n", name);
    ok(body, want);
    snprintf(body, sizeof(body), "m{%s=\"x\"} 1\n", longer);
    bad(body, 1, "a label name too long");
    /* a label value, counted unescaped */
    snprintf(body, sizeof(body), "m{a=\"%s\"} 1\n", value);
    snprintf(want, sizeof(want), "m{a=\"%s\"} 1\n", value);
    ok(body, want);
    snprintf(body, sizeof(body), "m{a=\"%s\"} 1\n", value_long);
    bad(body, 1, "a label value too long");
    snprintf(body, sizeof(body), "m{a=\"\\\\%s\"} 1\n", value + 1);
    snprintf(want, sizeof(want), "m{a=\"\\%s\"} 1\n", value + 1);
    ok(body, want);
    snprintf(body, sizeof(body), "m{a=\"\\n%s\"} 1\n", value);
    bad(body, 1, "a label value too long");
    /* the labels of a sample */
    ok("m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\"} 1\n",
       "m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\"} 1\n");
    bad("m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\",i=\"9\"} 1\n", 1,
        "too many labels");
    ok("m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\",} 1\n",
       "m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\"} 1\n");
    /* the text of a value */
    char *digits = name_of(PROMTEXT_VALUE_MAX, '0');
    digits[PROMTEXT_VALUE_MAX - 1] = '7';
    snprintf(body, sizeof(body), "m %s\n", digits);
    ok(body, "m 7\n");
    snprintf(body, sizeof(body), "m 0%s\n", digits);
    bad(body, 1, "a value too long");
    free(digits);
    free(name);
    free(longer);
    free(value);
    free(value_long);
}

#define BYTES(s) s, sizeof(s) - 1 /* a literal with its NULs, without the last */

static void test_nul(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t len, line;
        const char *seen;
    } cases[] = {
        {BYTES("a 1\nb 1\0x\nc 3\n"), 2, "a 1\n"}, /* in a value */
        {BYTES("m{a=\"x\0y\"} 1\n"), 1, ""},       /* in a label value */
        {BYTES("m\0 1\n"), 1, ""},                 /* after a name */
        {BYTES("# TYPE m gauge\0\nm 1\n"), 1, ""}, /* in a comment */
        {BYTES("a 1\n\0\n"), 2, "a 1\n"},          /* alone on its line */
        {BYTES("a 1\n\0"), 2, "a 1\n"},            /* the last byte */
        {BYTES("a 1\0\r\n"), 1, ""},               /* before the '\r' */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        bad_n(cases[i].body, cases[i].len, cases[i].line, "a NUL byte", cases[i].seen);
}

static void test_edges(void **state)
{
    (void)state;
    struct seen w;
    struct promtext_error err = {5, "untouched"};
    /* an empty body, and a NULL one of no bytes */
    assert_int_equal(parse("", &w, &err), 0);
    assert_string_equal(w.text, "");
    assert_int_equal(promtext_parse(NULL, 0, on_sample, on_comment, &w, &err), 0);
    assert_int_equal(err.line, 5);
    /* no final newline: the last line is read all the same */
    ok("a 1\nb{c=\"d\"} 2", "a 1\nb{c=\"d\"} 2\n");
    ok("a 1 17", "a 1\n");
    ok("a 1\n# TYPE b counter", "a 1\nTYPE b |counter|\n");
    bad_n("a 1\nb", 5, 2, "no value", "a 1\n");
    bad("a{b=\"c", 1, "a label value without its closing quote");
    /* len is the bound, not a NUL: the rest of the string is not read */
    bad_n("a 1\nb 2\n", 5, 2, "no value", "a 1\n");
    bad_n("a 12\n", 2, 1, "no value", "");
    assert_int_equal(parse_n("a 12\n", 3, &w, NULL), 0);
    assert_string_equal(w.text, "a 1\n");
    /* a lone '\r', and a '\n' only */
    ok("\r", "");
    ok("\n", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_label),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_blank_and_comments),
        cmocka_unit_test(test_without_callbacks),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
