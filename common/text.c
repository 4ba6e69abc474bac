#include "text.h"

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
