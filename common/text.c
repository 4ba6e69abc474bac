#include "text.h"

#include <ctype.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define REPLACEMENT_LEN 3

size_t text_utf8_char_len(const void *s, size_t len)
{
    const unsigned char *p = s;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    if (len < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

bool text_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < len;) {
        size_t n = text_utf8_char_len(p + i, len - i);
        if (n == 0 || p[i] == '\0')
            return false;
        i += n;
    }
    return true;
}

size_t text_utf8_copy(char *dst, size_t dstlen, const void *src, size_t len)
{
    const unsigned char *p = src;
    size_t out = 0;
    if (dstlen == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        size_t n = p[i] ? text_utf8_char_len(p + i, len - i) : 0;
        const void *piece = p + i;
        size_t piece_len = n;
        if (n == 0) {
            piece = REPLACEMENT;
            piece_len = REPLACEMENT_LEN;
            n = 1;
        }
        if (piece_len > dstlen - 1 - out)
            break;
        memcpy(dst + out, piece, piece_len);
        out += piece_len;
        i += n;
    }
    dst[out] = '\0';
    return out;
}

char *text_utf8_dup(const void *src, size_t len, size_t max_bytes)
{
    /* Each input byte gives at most 3 output bytes (a replacement). */
    size_t need = len <= (max_bytes / REPLACEMENT_LEN) ? len * REPLACEMENT_LEN : max_bytes;
    char *dst = malloc(need + 1);
    if (!dst)
        return NULL;
    text_utf8_copy(dst, need + 1, src, len);
    return dst;
}

size_t text_utf8_truncate(char *s, size_t max_bytes)
{
    size_t len = strlen(s);
    if (len <= max_bytes)
        return len;
    size_t cut = max_bytes;
    /* Back over continuation bytes to the start of the character that would be cut. */
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    s[cut] = '\0';
    return cut;
}

/* Appends n bytes of s to the redaction being built (bounded; the result is cut, never
 * overflowed). */
struct rbuf {
    char *s;
    size_t len, cap;
};

static void rb_put(struct rbuf *b, const char *s, size_t n)
{
    if (b->len >= b->cap)
        return;
    if (n > b->cap - b->len)
        n = b->cap - b->len;
    memcpy(b->s + b->len, s, n);
    b->len += n;
}

size_t text_redact_url(char *dst, size_t dstlen, const char *url)
{
    if (dstlen == 0)
        return 0;
    if (!url) {
        dst[0] = '\0';
        return 0;
    }
    size_t n = strlen(url);
    /* At most dstlen - 1 bytes are kept: building more is useless (and the redaction never
     * needs more than 3 bytes per input byte plus a few). */
    size_t cap = dstlen - 1 < 3 * n + 8 ? dstlen - 1 : 3 * n + 8;
    char small[512];
    char *tmp = cap <= sizeof(small) ? small : malloc(cap);
    if (!tmp) {
        dst[0] = '\0';
        return 0;
    }
    struct rbuf b = {tmp, 0, cap};
    size_t i = 0;
    /* scheme:// (when there is one, the authority follows) */
    const char *sep = strstr(url, "://");
    size_t auth = 0;
    if (sep && (size_t)(sep - url) < n && !memchr(url, '/', (size_t)(sep - url)) &&
        !memchr(url, '?', (size_t)(sep - url))) {
        auth = (size_t)(sep - url) + 3;
        rb_put(&b, url, auth);
        i = auth;
        /* the authority ends at the first '/', '?' or '#'; its userinfo at its last '@' */
        size_t end = i;
        while (end < n && url[end] != '/' && url[end] != '?' && url[end] != '#')
            end++;
        size_t at = end;
        for (size_t k = i; k < end; k++)
            if (url[k] == '@')
                at = k;
        if (at < end) {
            rb_put(&b, "***@", 4);
            i = at + 1;
        }
        rb_put(&b, url + i, end - i);
        i = end;
    }
    /* the path, as is, up to the query or the fragment */
    size_t p = i;
    while (p < n && url[p] != '?' && url[p] != '#')
        p++;
    rb_put(&b, url + i, p - i);
    i = p;
    if (i < n && url[i] == '?') {
        rb_put(&b, "?", 1);
        i++;
        while (i < n && url[i] != '#') {
            size_t e = i;
            while (e < n && url[e] != '&' && url[e] != '#')
                e++;
            const char *eq = memchr(url + i, '=', e - i);
            if (eq) {
                rb_put(&b, url + i, (size_t)(eq - (url + i)) + 1);
                rb_put(&b, "***", 3);
            } else if (e > i) {
                rb_put(&b, "***", 3); /* a bare token is a value too */
            }
            i = e;
            if (i < n && url[i] == '&') {
                rb_put(&b, "&", 1);
                i++;
            }
        }
    }
    if (i < n && url[i] == '#')
        rb_put(&b, "#***", 4);
    size_t r = text_utf8_copy(dst, dstlen, b.s, b.len);
    if (tmp != small)
        free(tmp);
    return r;
}

char *text_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

const char *text_list_item(const char *p, const char **item, size_t *len)
{
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    while (p < end && isspace((unsigned char)*p))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    *item = p;
    *len = (size_t)(end - p);
    return comma ? comma + 1 : NULL;
}
