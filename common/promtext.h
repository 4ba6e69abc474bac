/* promtext: a reader of the Prometheus text exposition format (version 0.0.4), for a body that
 * comes from outside (a daemon's answer to GET /metrics) and is not trusted. Pure: no I/O, no
 * allocation, no recursion; tests/unit/test_promtext.c, fuzzed by tests/fuzz/promtext.c.
 *
 *   struct promtext_error err;
 *   r = promtext_parse(body, len, on_sample, on_comment, ud, &err);
 *   // r < 0: err.line is the first line that does not parse, err.why says why
 *
 * What it accepts, one line at a time (lines end with '\n', a '\r' before it is dropped; the
 * last line may lack its '\n'; blanks are spaces and tabs):
 *   - a blank line, or blanks only: skipped;
 *   - a comment, '#' after optional blanks: "# HELP name text" and "# TYPE name type" (one
 *     space after '#' and after the keyword, then a metric name) go to on_comment; any other
 *     comment, and a HELP or TYPE line whose name does not read, is skipped;
 *   - a sample: name [{label="value",...}] value [timestamp], blanks allowed between the
 *     pieces and around the labels; a trailing ',' before '}' and an empty "{}" are allowed.
 *     A metric name is [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]*; a label
 *     value is quoted, with the escapes \\ \" and \n (any other byte, newline excepted, is taken
 *     as it is: the caller decides what it trusts of it). The value is what strtod reads in the
 *     C locale, whole: 1, -2.5e3, NaN, +Inf, -Inf (also 0x1p3, "infinity"; out of range gives
 *     +-HUGE_VAL or 0). The timestamp is an integer, '-' allowed, checked and not kept.
 * Anything else on a line is an error: -EINVAL, the line (counted from 1) in err. A NUL byte
 * anywhere on a line is an error too.
 *
 * Bounds (a longer piece is an error, not cut): PROMTEXT_NAME_MAX bytes for a metric or label
 * name, PROMTEXT_LABEL_VALUE_MAX for a label value (unescaped), PROMTEXT_LABELS_MAX labels on a
 * sample, PROMTEXT_VALUE_MAX for the text of a value. A line and a body have no bound of their
 * own (the caller bounds the body); the time taken is linear in len. */
#pragma once
#include <stddef.h>

#define PROMTEXT_NAME_MAX 127
#define PROMTEXT_LABEL_VALUE_MAX 255
#define PROMTEXT_LABELS_MAX 8
#define PROMTEXT_VALUE_MAX 63

struct promtext_label {
    char name[PROMTEXT_NAME_MAX + 1];
    char value[PROMTEXT_LABEL_VALUE_MAX + 1]; /* unescaped; may hold '\n' and any byte but NUL */
};

/* One sample line, read. Labels in the order of the line; a name given twice is kept twice. */
struct promtext_sample {
    char name[PROMTEXT_NAME_MAX + 1];
    size_t n_labels;
    struct promtext_label labels[PROMTEXT_LABELS_MAX];
    double value;
};

enum promtext_comment { PROMTEXT_HELP, PROMTEXT_TYPE };

/* The first line that does not parse: its number (from 1) and why, a static string. */
struct promtext_error {
    size_t line;
    const char *why;
};

/* Called with each sample, in the order of the body; s is valid during the call only. A
 * non-zero return stops promtext_parse, which returns it. */
typedef int (*promtext_sample_cb)(const struct promtext_sample *s, void *ud);

/* Called with each "# HELP name text" or "# TYPE name type" line: name is the longest run of
 * metric-name bytes after the keyword and its space (NUL-terminated, valid during the call);
 * text is the rest of the line after blanks, len bytes, not NUL-terminated and not unescaped
 * (it may be empty). A non-zero return stops promtext_parse, which returns it. */
typedef int (*promtext_comment_cb)(enum promtext_comment kind, const char *name, const char *text,
                                   size_t len, void *ud);

/* Reads body[0..len) (body may be NULL when len is 0), calling on_sample (when not NULL) for
 * each sample and on_comment (when not NULL) for each HELP and TYPE line. 0 when every line
 * parses; -EINVAL at the first line that does not, with err (when not NULL) set, the lines
 * before it having been passed to the callbacks; or a callback's non-zero return (err
 * untouched). */
int promtext_parse(const char *body, size_t len, promtext_sample_cb on_sample,
                   promtext_comment_cb on_comment, void *ud, struct promtext_error *err);

/* The value of the first label of s named name, or NULL. */
const char *promtext_label(const struct promtext_sample *s, const char *name);
