/* promtext: see promtext.h. */
#include "promtext.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_name_char(char ch, bool first, bool colon)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (colon && ch == ':') || (!first && ch >= '0' && ch <= '9');
}

/* A metric name (colon: ':' allowed) or a label name at *p, into out (PROMTEXT_NAME_MAX + 1
 * bytes): 0 and *p past it, or -EINVAL with *why set. */
static int parse_name(const char **p, const char *end, bool colon, char *out, const char **why)
{
    size_t n = 0;
    const char *s = *p;
    while (s < end && is_name_char(*s, n == 0, colon)) {
        if (n == PROMTEXT_NAME_MAX) {
            *why = colon ? "a metric name too long" : "a label name too long";
            return -EINVAL;
        }
        out[n++] = *s++;
    }
    if (n == 0) {
        *why = colon ? "no metric name" : "no label name";
        return -EINVAL;
    }
    out[n] = '\0';
    *p = s;
    return 0;
}

/* A quoted label value at *p (escapes \\ \" \n), into out (PROMTEXT_LABEL_VALUE_MAX + 1
 * bytes): 0 and *p past it, or -EINVAL with *why set. */
static int parse_label_value(const char **p, const char *end, char *out, const char **why)
{
    const char *s = *p;
    size_t n = 0;
    if (s >= end || *s != '"') {
        *why = "a label value not in quotes";
        return -EINVAL;
    }
    s++;
    while (s < end && *s != '"') {
        char ch = *s++;
        if (ch == '\\') {
            if (s >= end)
                break; /* unterminated */
            ch = *s++;
            if (ch == 'n')
                ch = '\n';
            else if (ch != '\\' && ch != '"') {
                *why = "an escape other than \\\\ \\\" \\n in a label value";
                return -EINVAL;
            }
        }
        if (n == PROMTEXT_LABEL_VALUE_MAX) {
            *why = "a label value too long";
            return -EINVAL;
        }
        out[n++] = ch;
    }
    if (s >= end) {
        *why = "a label value without its closing quote";
        return -EINVAL;
    }
    out[n] = '\0';
    *p = s + 1;
    return 0;
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* The length of the blank-delimited token at p (0 when none). */
static size_t token_len(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && p[n] != ' ' && p[n] != '\t')
        n++;
    return n;
}

/* The labels at p, just past '{': 0 and *p past the '}', or -EINVAL with *why set. */
static int parse_labels(const char **pp, const char *end, struct promtext_sample *s,
                        const char **why)
{
    const char *p = skip_blanks(*pp, end);
    while (p < end && *p != '}') {
        if (s->n_labels == PROMTEXT_LABELS_MAX) {
            *why = "too many labels";
            return -EINVAL;
        }
        struct promtext_label *l = &s->labels[s->n_labels];
        if (parse_name(&p, end, false, l->name, why) < 0)
            return -EINVAL;
        p = skip_blanks(p, end);
        if (p >= end || *p != '=') {
            *why = "no '=' after a label name";
            return -EINVAL;
        }
        p = skip_blanks(p + 1, end);
        if (parse_label_value(&p, end, l->value, why) < 0)
            return -EINVAL;
        s->n_labels++;
        p = skip_blanks(p, end);
        if (p < end && *p == ',')
            p = skip_blanks(p + 1, end);
        else if (p >= end || *p != '}') {
            *why = "no ',' or '}' after a label";
            return -EINVAL;
        }
    }
    if (p >= end) {
        *why = "no '}' after the labels";
        return -EINVAL;
    }
    *pp = p + 1;
    return 0;
}

/* One sample line, [p, end) without its newline, starting with its name. 0, or -EINVAL with
 * *why set. */
static int parse_sample(const char *p, const char *end, struct promtext_sample *s, const char **why)
{
    s->n_labels = 0;
    if (parse_name(&p, end, true, s->name, why) < 0)
        return -EINVAL;
    p = skip_blanks(p, end);
    if (p < end && *p == '{') {
        p++;
        if (parse_labels(&p, end, s, why) < 0)
            return -EINVAL;
        p = skip_blanks(p, end);
    }
    char text[PROMTEXT_VALUE_MAX + 1];
    size_t n = token_len(p, end);
    if (n == 0) {
        *why = "no value";
        return -EINVAL;
    }
    if (n > PROMTEXT_VALUE_MAX) {
        *why = "a value too long";
        return -EINVAL;
    }
    memcpy(text, p, n);
    text[n] = '\0';
    char *stop;
    s->value = strtod(text, &stop); /* also NaN, +Inf, -Inf; out of range: +-HUGE_VAL or 0 */
    if (stop == text || *stop) {
        *why = "a value that is not a number";
        return -EINVAL;
    }
    p = skip_blanks(p + n, end);
    n = token_len(p, end); /* an optional timestamp: milliseconds, an integer */
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (i == 0 && p[i] == '-' && n > 1))) {
            *why = "a timestamp that is not an integer";
            return -EINVAL;
        }
    }
    if (skip_blanks(p + n, end) != end) {
        *why = "more after the timestamp";
        return -EINVAL;
    }
    return 0;
}

/* A comment line [p, end), p at its '#': "# HELP name text" and "# TYPE name type" go to
 * on_comment; anything else is skipped. */
static int comment(const char *p, const char *end, promtext_comment_cb on_comment, void *ud)
{
    static const char *const prefixes[] = {
        [PROMTEXT_HELP] = "# HELP ", [PROMTEXT_TYPE] = "# TYPE "};
    const size_t prefix_len = sizeof("# HELP ") - 1; /* both */
    char name[PROMTEXT_NAME_MAX + 1];
    const char *why;
    if (!on_comment || (size_t)(end - p) < prefix_len)
        return 0;
    for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
        const char *q = p + prefix_len;
        if (memcmp(p, prefixes[k], prefix_len) != 0 || parse_name(&q, end, true, name, &why) < 0)
            continue;
        q = skip_blanks(q, end);
        return on_comment((enum promtext_comment)k, name, q, (size_t)(end - q), ud);
    }
    return 0;
}

int promtext_parse(const char *body, size_t len, promtext_sample_cb on_sample,
                   promtext_comment_cb on_comment, void *ud, struct promtext_error *err)
{
    struct promtext_sample s;
    const char *p = body, *end = body + len;
    size_t line = 0;
    if (len == 0)
        return 0; /* body may be NULL */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *why = NULL;
        int r = 0;
        line++;
        if (stop > p && stop[-1] == '\r')
            stop--;
        const char *q = skip_blanks(p, stop);
        if (memchr(q, '\0', (size_t)(stop - q)))
            why = "a NUL byte";
        else if (q < stop && *q == '#')
            r = comment(q, stop, on_comment, ud);
        else if (q < stop && parse_sample(q, stop, &s, &why) == 0 && on_sample)
            r = on_sample(&s, ud);
        if (why) {
            if (err)
                *err = (struct promtext_error){.line = line, .why = why};
            return -EINVAL;
        }
        if (r != 0)
            return r;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

const char *promtext_label(const struct promtext_sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++) {
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    }
    return NULL;
}
