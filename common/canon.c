#include "canon.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
    char *data;
    size_t len, cap;
    int failed;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->data, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        o->data = p;
        o->cap = cap;
    }
    memcpy(o->data + o->len, s, n);
    o->len += n;
    o->data[o->len] = '\0';
}

int canon_number(double x, char *buf, size_t len)
{
    if (!isfinite(x) || len < 32)
        return -EINVAL;
    if (x == 0) {
        snprintf(buf, len, "0"); /* also -0 */
        return 0;
    }
    /* The shortest round-trip digits: %.{p}e for p = 0..16. */
    char e[40];
    int p;
    for (p = 0; p < 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p, x);
        if (strtod(e, NULL) == x)
            break;
    }
    if (p == 17)
        snprintf(e, sizeof(e), "%.16e", x);
    /* e is "[-]d.ddde[+-]xx": split into sign, digits and exponent. */
    const char *s = e;
    bool neg = *s == '-';
    if (neg)
        s++;
    char digits[24];
    size_t k = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && k < sizeof(digits) - 1)
            digits[k++] = *s;
    digits[k] = '\0';
    while (k > 1 && digits[k - 1] == '0')
        digits[--k] = '\0';
    int exp10 = atoi(s + 1); /* x = 0.d1d2.. * 10^(exp10 + 1) */
    int n = exp10 + 1;       /* ECMAScript's n: the decimal point sits after n digits */
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if ((int)k <= n && n <= 21) {
        memcpy(buf + o, digits, k);
        o += k;
        for (int i = (int)k; i < n; i++)
            buf[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(buf + o, digits, (size_t)n);
        o += (size_t)n;
        buf[o++] = '.';
        memcpy(buf + o, digits + n, k - (size_t)n);
        o += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -n; i++)
            buf[o++] = '0';
        memcpy(buf + o, digits, k);
        o += k;
    } else {
        buf[o++] = digits[0];
        if (k > 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + 1, k - 1);
            o += k - 1;
        }
        o += (size_t)snprintf(buf + o, len - o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    buf[o] = '\0';
    return 0;
}

static void put_string(struct out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof(u), "\\u%04x", c);
                esc = u;
            }
        }
        if (esc) {
            put(o, s + i - run, run);
            run = 0;
            put(o, esc, strlen(esc));
        } else {
            run++;
        }
    }
    put(o, s + n - run, run);
    put(o, "\"", 1);
}

/* Keys compare by UTF-16 code units: UTF-8 byte order is the same except that characters
 * above U+FFFF (4-byte UTF-8, surrogate pairs in UTF-16) sort before U+E000..U+FFFF. So each
 * character gets one sort key: its code point, but U+E000..U+FFFF moved above U+10FFFF (pairs
 * order among themselves as their code points do). */
static int utf16_key(const unsigned char *s, size_t i, size_t n, unsigned *unit, size_t *adv)
{
    unsigned c = s[i];
    if (c < 0x80 || i + 1 >= n) {
        *unit = c;
        *adv = 1;
    } else if (c < 0xe0) {
        *unit = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f);
        *adv = 2;
    } else if (c < 0xf0 && i + 2 < n) {
        *unit = ((c & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
        if (*unit >= 0xe000)
            *unit += 0x200000; /* after the surrogate pairs */
        *adv = 3;
    } else if (i + 3 < n) {
        unsigned cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) |
                      (s[i + 3] & 0x3f);
        *unit = cp; /* not the high surrogate alone: pairs that share it differ in the low one */
        *adv = 4;
    } else {
        *unit = c;
        *adv = 1;
    }
    return 0;
}

static int cmp_keys(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;
    size_t nx = strlen((const char *)x), ny = strlen((const char *)y), i = 0, j = 0;
    while (i < nx && j < ny) {
        unsigned ux, uy;
        size_t ax, ay;
        utf16_key(x, i, nx, &ux, &ax);
        utf16_key(y, j, ny, &uy, &ay);
        if (ux != uy)
            return ux < uy ? -1 : 1;
        i += ax;
        j += ay;
    }
    return (i < nx) - (j < ny);
}

static void dump(struct out *o, const json_t *v)
{
    char num[40];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        const char **keys = malloc((n ? n : 1) * sizeof(*keys));
        if (!keys) {
            o->failed = 1;
            return;
        }
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) keys[k++] = key;
        qsort(keys, n, sizeof(*keys), cmp_keys);
        put(o, "{", 1);
        for (size_t i = 0; i < n; i++) {
            if (i)
                put(o, ",", 1);
            put_string(o, keys[i], strlen(keys[i]));
            put(o, ":", 1);
            dump(o, json_object_get(v, keys[i]));
        }
        put(o, "}", 1);
        free(keys);
        break;
    }
    case JSON_ARRAY:
        put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                put(o, ",", 1);
            dump(o, json_array_get(v, i));
        }
        put(o, "]", 1);
        break;
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        /* ECMAScript numbers are doubles: beyond 2^53 print what the double would be. */
        if (i > 9007199254740992LL || i < -9007199254740992LL) {
            if (canon_number((double)i, num, sizeof(num)) < 0)
                o->failed = 1;
        } else {
            snprintf(num, sizeof(num), "%lld", (long long)i);
        }
        put(o, num, strlen(num));
        break;
    }
    case JSON_REAL:
        if (canon_number(json_real_value(v), num, sizeof(num)) < 0)
            o->failed = 1;
        else
            put(o, num, strlen(num));
        break;
    case JSON_TRUE:
        put(o, "true", 4);
        break;
    case JSON_FALSE:
        put(o, "false", 5);
        break;
    case JSON_NULL:
        put(o, "null", 4);
        break;
    }
}

char *canon_dump(const json_t *value)
{
    struct out o = {0};
    if (!value)
        return NULL;
    dump(&o, value);
    if (o.failed) {
        free(o.data);
        return NULL;
    }
    return o.data;
}
