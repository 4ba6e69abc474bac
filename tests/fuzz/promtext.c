/* Fuzz target: common/promtext.c, the Prometheus text format as a daemon's /metrics answers it
 * (read by correctomatic-status, not trusted).
 *
 * Input: the body, whole. Invariants:
 * - promtext_parse returns 0 or -EINVAL; on -EINVAL the line told is one of the body's (from
 *   1), with a reason; a body with a NUL byte is refused, at the NUL's line or before;
 * - every sample it passes has a metric name, label names and values within the bounds and
 *   charsets of promtext.h; every HELP/TYPE comment a metric name and a text inside its line;
 * - the body cut just before the bad line parses, passing the same samples and comments; cut
 *   just after it (its '\n' left out), it fails at the same line for the same reason;
 * - the samples written back in the text format (labels escaped, the value as %a, NaN, +Inf,
 *   -Inf) parse to the same samples: nothing is lost or changed in reading;
 * - a callback's non-zero return stops the walk at once and is returned;
 * - nothing leaks (ASan). */
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "promtext.h"

/* What the callbacks saw, written in the text format into a memory stream (text, len once
 * closed by parse). */
struct seen {
    FILE *out;
    char *text;
    size_t len;
    size_t samples, comments;
    const uint8_t *data; /* the body, for the comments' text pointers */
    size_t size;
    size_t stop_at; /* on_sample returns 1 at this sample (from 1); 0: never */
};

static bool name_ok(const char *s, bool colon)
{
    size_t n = strlen(s);
    if (n == 0 || n > PROMTEXT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static int on_sample(const struct promtext_sample *s, void *ud)
{
    struct seen *w = ud;
    FUZZ_CHECK(name_ok(s->name, true));
    FUZZ_CHECK(s->n_labels <= PROMTEXT_LABELS_MAX);
    fputs(s->name, w->out);
    for (size_t i = 0; i < s->n_labels; i++) {
        const struct promtext_label *l = &s->labels[i];
        FUZZ_CHECK(name_ok(l->name, false));
        FUZZ_CHECK(memchr(l->value, '\0', sizeof(l->value)) != NULL);
        FUZZ_CHECK(strlen(l->value) <= PROMTEXT_LABEL_VALUE_MAX);
        FUZZ_CHECK(promtext_label(s, l->name) != NULL);
        fprintf(w->out, "%s%s=\"", i ? "," : "{", l->name);
        for (const char *v = l->value; *v; v++) {
            if (*v == '\\' || *v == '"')
                fputc('\\', w->out);
            if (*v == '\n')
                fputs("\\n", w->out);
            else
                fputc(*v, w->out);
        }
        fputc('"', w->out);
    }
    if (s->n_labels)
        fputc('}', w->out);
    if (isnan(s->value))
        fputs(" NaN\n", w->out);
    else if (isinf(s->value))
        fprintf(w->out, " %sInf\n", s->value > 0 ? "+" : "-");
    else
        fprintf(w->out, " %a\n", s->value);
    w->samples++;
    return w->stop_at && w->samples == w->stop_at ? 1 : 0;
}

static int on_comment(enum promtext_comment kind, const char *name, const char *text, size_t len,
                      void *ud)
{
    struct seen *w = ud;
    FUZZ_CHECK(kind == PROMTEXT_HELP || kind == PROMTEXT_TYPE);
    FUZZ_CHECK(name_ok(name, true));
    const char *start = (const char *)w->data, *end = start + w->size;
    FUZZ_CHECK(text >= start && text <= end && len <= (size_t)(end - text));
    FUZZ_CHECK(!memchr(text, '\n', len) && !memchr(text, '\0', len));
    fprintf(w->out, "# %s %s\n", kind == PROMTEXT_HELP ? "HELP" : "TYPE", name);
    w->comments++;
    return 0;
}

/* Parses data[0..size) (in a buffer of its own of exactly size bytes, so that ASan sees any
 * read past it) into w, which the caller frees. */
static int parse(const uint8_t *data, size_t size, struct seen *w, struct promtext_error *err,
                 size_t stop_at)
{
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy);
    if (size)
        memcpy(copy, data, size);
    *w = (struct seen){.data = copy, .size = size, .stop_at = stop_at};
    w->out = open_memstream(&w->text, &w->len);
    FUZZ_CHECK(w->out);
    int r = promtext_parse((const char *)copy, size, on_sample, on_comment, w, err);
    FUZZ_CHECK(fclose(w->out) == 0);
    free(copy);
    w->data = NULL;
    return r;
}

/* Where line (from 1) starts in data, and where it ends (its '\n' or the end). */
static void line_span(const uint8_t *data, size_t size, size_t line, size_t *start, size_t *stop)
{
    size_t at = 0;
    for (size_t l = 1; l < line; l++) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        FUZZ_CHECK(nl);
        at = (size_t)(nl - data) + 1;
    }
    const uint8_t *nl = memchr(data + at, '\n', size - at);
    *start = at;
    *stop = nl ? (size_t)(nl - data) : size;
}

static size_t count_lines(const uint8_t *data, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n + (size > 0 && data[size - 1] != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen w, again;
    struct promtext_error err = {0, NULL};
    size_t lines = count_lines(data, size);
    int r = parse(data, size, &w, &err, 0);
    FUZZ_CHECK(r == 0 || r == -EINVAL);
    FUZZ_CHECK(w.samples + w.comments <= lines);

    const uint8_t *nul = size ? memchr(data, '\0', size) : NULL;
    if (nul) {
        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(err.line <= count_lines(data, (size_t)(nul - data) + 1));
    }

    if (r == -EINVAL) {
        FUZZ_CHECK(err.line >= 1 && err.line <= lines);
        FUZZ_CHECK(err.why && err.why[0]);
        size_t start, stop;
        line_span(data, size, err.line, &start, &stop);
        /* before the bad line: the same, and no error */
        struct promtext_error e2 = {0, NULL};
        FUZZ_CHECK(parse(data, start, &again, &e2, 0) == 0);
        FUZZ_CHECK(again.len == w.len && memcmp(again.text, w.text, w.len) == 0);
        free(again.text);
        /* up to the end of the bad line: the same error */
        FUZZ_CHECK(parse(data, stop, &again, &e2, 0) == -EINVAL);
        FUZZ_CHECK(e2.line == err.line && strcmp(e2.why, err.why) == 0);
        free(again.text);
    }

    /* the samples written back read the same (the comments are left out: their text is not
     * kept) */
    if (w.samples > 0) {
        /* the samples alone, from w.text: drop the comment lines */
        struct seen samples = {0};
        samples.out = open_memstream(&samples.text, &samples.len);
        FUZZ_CHECK(samples.out);
        for (char *p = w.text; *p;) {
            char *nl = strchr(p, '\n');
            FUZZ_CHECK(nl);
            if (*p != '#')
                fwrite(p, 1, (size_t)(nl - p) + 1, samples.out);
            p = nl + 1;
        }
        FUZZ_CHECK(fclose(samples.out) == 0);
        struct promtext_error e3 = {0, NULL};
        int r3 = parse((const uint8_t *)samples.text, samples.len, &again, &e3, 0);
        if (r3 != 0)
            fprintf(stderr, "written back: %s\nrefused at line %zu: %s\n", samples.text, e3.line,
                    e3.why);
        FUZZ_CHECK(r3 == 0);
        FUZZ_CHECK(again.samples == w.samples && again.comments == 0);
        FUZZ_CHECK(again.len == samples.len && memcmp(again.text, samples.text, samples.len) == 0);
        free(again.text);
        free(samples.text);

        /* a callback that stops: its return, at once */
        size_t at = 1 + size % w.samples;
        FUZZ_CHECK(parse(data, size, &again, NULL, at) == 1);
        FUZZ_CHECK(again.samples == at);
        free(again.text);
    }
    free(w.text);
    return 0;
}
