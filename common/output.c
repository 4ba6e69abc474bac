#include "output.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void output_buf_free(struct output_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int buf_append(struct output_buf *b, const unsigned char *p, size_t n)
{
    if (!b->data) {
        b->data = malloc(b->max + 1);
        if (!b->data)
            return -ENOMEM;
        b->data[0] = '\0';
    }
    if (b->len + n <= b->max) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    } else {
        b->overflow = 1;
        if (b->keep_tail) {
            if (n >= b->max) {
                memcpy(b->data, p + (n - b->max), b->max);
            } else {
                size_t keep = b->max - n; /* old bytes still kept */
                memmove(b->data, b->data + (b->len - keep), keep);
                memcpy(b->data + keep, p, n);
            }
            b->len = b->max;
        } else {
            size_t room = b->max - b->len;
            memcpy(b->data + b->len, p, room);
            b->len = b->max;
        }
    }
    b->data[b->len] = '\0';
    return 0;
}

int output_demux(const void *raw, size_t len, struct output_buf *out, struct output_buf *err)
{
    const unsigned char *p = raw;
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 8) {
            if (pos == 0)
                return -EBADMSG;
            break; /* a header cut by the fetch limit */
        }
        unsigned type = p[pos];
        if (type > 2 || p[pos + 1] || p[pos + 2] || p[pos + 3])
            return -EBADMSG;
        size_t size = ((size_t)p[pos + 4] << 24) | ((size_t)p[pos + 5] << 16) |
                      ((size_t)p[pos + 6] << 8) | (size_t)p[pos + 7];
        pos += 8;
        size_t n = size <= len - pos ? size : len - pos;
        struct output_buf *b = type == 2 ? err : out;
        if (b && !(b->overflow && !b->keep_tail)) {
            int r = buf_append(b, p + pos, n);
            if (r < 0)
                return r;
        }
        pos += n;
    }
    /* An empty stream still yields empty, NUL-terminated buffers. */
    if (out && !out->data && buf_append(out, (const unsigned char *)"", 0) < 0)
        return -ENOMEM;
    if (err && !err->data && buf_append(err, (const unsigned char *)"", 0) < 0)
        return -ENOMEM;
    return 0;
}

int output_latest_time(const void *raw, size_t len, struct dtime *ret)
{
    const unsigned char *p = raw;
    size_t pos = 0;
    int found = 0;
    while (pos < len) {
        if (len - pos < 8) {
            if (pos == 0)
                return -EBADMSG;
            break;
        }
        if (p[pos] > 2 || p[pos + 1] || p[pos + 2] || p[pos + 3])
            return -EBADMSG;
        size_t size = ((size_t)p[pos + 4] << 24) | ((size_t)p[pos + 5] << 16) |
                      ((size_t)p[pos + 6] << 8) | (size_t)p[pos + 7];
        pos += 8;
        size_t n = size <= len - pos ? size : len - pos;
        const char *line = (const char *)p + pos;
        const char *sp = memchr(line, ' ', n < 40 ? n : 40);
        struct dtime t;
        if (sp && dtime_parse(line, (size_t)(sp - line), &t) == 0 &&
            (!found || dtime_cmp(t, *ret) > 0)) {
            *ret = t;
            found = 1;
        }
        pos += n;
    }
    return found;
}

int output_validate(json_t *r, struct msg_error *err)
{
    if (!json_is_object(r)) {
        msg_error_set(err, OUTPUT_REASON_INVALID_FORMAT, "the response must be a JSON object");
        return -EINVAL;
    }
    json_t *success = json_object_get(r, "success");
    if (!json_is_boolean(success)) {
        msg_error_set(err, OUTPUT_REASON_INVALID_FORMAT, "'success' must be true or false");
        return -EINVAL;
    }
    if (json_is_false(success)) {
        if (!json_is_string(json_object_get(r, "error"))) {
            msg_error_set(err, OUTPUT_REASON_INVALID_FORMAT,
                          "a response with success false needs an 'error' string");
            return -EINVAL;
        }
        return 0;
    }
    json_t *grade = json_object_get(r, "grade");
    json_t *comments = json_object_get(r, "comments");
    if (!grade && !comments) {
        msg_error_set(err, OUTPUT_REASON_INVALID_FORMAT,
                      "a response with success true needs 'grade' or 'comments'");
        return -EINVAL;
    }
    if (grade && !json_is_number(grade)) {
        msg_error_set(err, OUTPUT_REASON_INVALID_FORMAT, "'grade' must be a number");
        return -EINVAL;
    }
    if (comments) {
        if (!json_is_array(comments)) {
            msg_error_set(err, OUTPUT_REASON_INVALID_FORMAT,
                          "'comments' must be an array of strings");
            return -EINVAL;
        }
        size_t i;
        json_t *c;
        json_array_foreach(comments, i, c)
        {
            if (!json_is_string(c)) {
                msg_error_set(err, OUTPUT_REASON_INVALID_FORMAT, "comments[%zu] must be a string",
                              i);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* A separator line: one or more dashes, the word, one or more dashes (a trailing '\r'
 * allowed). */
static bool is_separator(const char *line, size_t n, const char *word)
{
    if (n && line[n - 1] == '\r')
        n--;
    size_t i = 0;
    while (i < n && line[i] == '-')
        i++;
    if (i == 0)
        return false;
    size_t w = strlen(word);
    if (n - i < w || memcmp(line + i, word, w) != 0)
        return false;
    i += w;
    size_t d = 0;
    while (i < n && line[i] == '-') {
        i++;
        d++;
    }
    return d > 0 && i == n;
}

/* Nesting depth of a JSON value (a scalar is 0), counted up to limit + 1. The parser has
 * already bounded the depth, so the recursion is bounded too. */
static size_t json_depth(const json_t *j, size_t limit)
{
    size_t max = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            size_t d = json_depth(v, limit);
            if (d > max)
                max = d;
            if (max > limit)
                break;
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            size_t d = json_depth(v, limit);
            if (d > max)
                max = d;
            if (max > limit)
                break;
        }
    } else {
        return 0;
    }
    return max + 1;
}

static int parse_json(const char *s, size_t n, json_t **ret, struct msg_error *err)
{
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        msg_error_set(err, OUTPUT_REASON_INVALID_JSON, "%s at line %d column %d", je.text, je.line,
                      je.column);
        return -EINVAL;
    }
    if (json_depth(j, OUTPUT_MAX_DEPTH) > OUTPUT_MAX_DEPTH) {
        /* The finished message nests the response one level deeper: the notifier could not
         * read it back. */
        msg_error_set(err, OUTPUT_REASON_INVALID_JSON,
                      "the response is nested deeper than %d levels", OUTPUT_MAX_DEPTH);
        json_decref(j);
        return -EINVAL;
    }
    if (output_validate(j, err) < 0) {
        json_decref(j);
        return -EINVAL;
    }
    *ret = j;
    return 0;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

int output_parse(const char *s, size_t len, json_t **ret, struct msg_error *err)
{
    const char *begin = NULL, *end = NULL; /* content between the separators */
    unsigned n_begin = 0, n_end = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = s + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        size_t next = pos + n + (nl ? 1 : 0);
        if (is_separator(line, n, "BEGIN CORRECTOMATIC RESPONSE")) {
            if (++n_begin == 1)
                begin = s + next;
        } else if (is_separator(line, n, "END CORRECTOMATIC RESPONSE")) {
            if (++n_end == 1)
                end = line;
        }
        pos = next;
    }
    if (n_begin == 0 && n_end == 0) {
        /* No block: the whole stdout must be the response. */
        size_t a = 0, b = len;
        while (a < b && isspace((unsigned char)s[a]))
            a++;
        while (b > a && isspace((unsigned char)s[b - 1]))
            b--;
        if (a == b) {
            msg_error_set(err, OUTPUT_REASON_NO_RESPONSE,
                          "the container printed nothing on stdout");
            return -EINVAL;
        }
        if (s[a] != '{' && s[a] != '[') {
            msg_error_set(err, OUTPUT_REASON_NO_RESPONSE,
                          "stdout is neither a JSON response nor holds a BEGIN/END CORRECTOMATIC "
                          "RESPONSE block");
            return -EINVAL;
        }
        return parse_json(s + a, b - a, ret, err);
    }
    if (n_begin > 1 || n_end > 1) {
        msg_error_set(err, OUTPUT_REASON_MANY_BLOCKS, "%u BEGIN and %u END separators", n_begin,
                      n_end);
        return -EINVAL;
    }
    if (n_begin != 1 || n_end != 1 || end < begin) {
        msg_error_set(err, OUTPUT_REASON_NO_RESPONSE,
                      n_begin == 1 && n_end == 1 ? "the END separator comes before BEGIN"
                      : n_begin                  ? "a BEGIN separator without END"
                                                 : "an END separator without BEGIN");
        return -EINVAL;
    }
    if (blank(begin, (size_t)(end - begin))) {
        msg_error_set(err, OUTPUT_REASON_NO_RESPONSE, "the response block is empty");
        return -EINVAL;
    }
    return parse_json(begin, (size_t)(end - begin), ret, err);
}

const char *output_tail(const char *s, size_t len, unsigned max_lines, size_t max_bytes,
                        size_t *ret_len)
{
    size_t b = len;
    while (b > 0 && (s[b - 1] == '\n' || s[b - 1] == '\r'))
        b--;
    size_t a = b;
    unsigned lines = 0;
    while (a > 0 && b - a < max_bytes) {
        if (s[a - 1] == '\n' && ++lines >= max_lines)
            break;
        a--;
    }
    *ret_len = b - a;
    return s + a;
}
