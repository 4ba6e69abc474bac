/* Fuzz target: canon_dump and canon_number, the RFC 8785 serializer of callback bodies (whose
 * content is a container's response).
 *
 * The input is parsed as JSON the way responses are (duplicates refused); each value that
 * parses must serialize, and:
 * - the output is valid UTF-8 JSON without whitespace between tokens, which parses back to an
 *   equivalent value (numbers equal as doubles: JCS numbers are doubles);
 * - serializing that again gives the same bytes (canonical form is a fixed point);
 * - object keys come out sorted by UTF-16 code units, checked here by a separate decoder;
 * - any 8 input bytes read as a finite double: canon_number reads back exactly (strtod) and is
 *   the shortest such form (one significant digit fewer does not read back);
 * - nothing leaks (ASan). */
#include <math.h>
#include <string.h>

#include "canon.h"
#include "fuzz.h"

/* UTF-8 (known valid: it came from jansson) to UTF-16 code units; returns the count. */
static size_t utf16(const char *s, uint16_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        unsigned cp;
        if (*p < 0x80) {
            cp = *p++;
        } else if (*p < 0xe0) {
            cp = (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu);
            p += 2;
        } else if (*p < 0xf0) {
            cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
            p += 3;
        } else {
            cp = (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 | (p[3] & 0x3fu);
            p += 4;
        }
        if (cp >= 0x10000) {
            out[n++] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
            out[n++] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
        } else {
            out[n++] = (uint16_t)cp;
        }
    }
    return n;
}

static int cmp_utf16(const char *a, const char *b)
{
    uint16_t *ua = malloc((strlen(a) + 1) * sizeof(*ua));
    uint16_t *ub = malloc((strlen(b) + 1) * sizeof(*ub));
    FUZZ_CHECK(ua && ub);
    size_t na = utf16(a, ua), nb = utf16(b, ub);
    int r = na < nb ? -1 : na > nb;
    for (size_t i = 0; i < na && i < nb; i++) {
        if (ua[i] != ub[i]) {
            r = ua[i] < ub[i] ? -1 : 1;
            break;
        }
    }
    free(ua);
    free(ub);
    return r;
}

/* a and b the same but for how numbers are written. Checks key order in b (reparsed from the
 * canonical text, so in its order: jansson keeps insertion order). */
static void check_equiv(const json_t *a, const json_t *b)
{
    if (json_is_number(a)) {
        FUZZ_CHECK(json_is_number(b));
        double x = json_number_value(a), y = json_number_value(b);
        FUZZ_CHECK(x == y);
        return;
    }
    FUZZ_CHECK(json_typeof(a) == json_typeof(b));
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        FUZZ_CHECK(json_object_size(a) == json_object_size(b));
        const char *key, *prev = NULL;
        json_t *v;
        json_object_foreach((json_t *)b, key, v)
        {
            if (prev)
                FUZZ_CHECK(cmp_utf16(prev, key) < 0);
            prev = key;
            json_t *va = json_object_get(a, key);
            FUZZ_CHECK(va);
            check_equiv(va, v);
        }
        break;
    }
    case JSON_ARRAY:
        FUZZ_CHECK(json_array_size(a) == json_array_size(b));
        for (size_t i = 0; i < json_array_size(a); i++)
            check_equiv(json_array_get(a, i), json_array_get(b, i));
        break;
    case JSON_STRING:
        FUZZ_CHECK(json_string_length(a) == json_string_length(b));
        FUZZ_CHECK(memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0);
        break;
    default:
        FUZZ_CHECK(json_equal(a, b));
    }
}

/* No whitespace outside strings. */
static void check_compact(const char *s)
{
    bool in_str = false;
    for (; *s; s++) {
        if (in_str) {
            if (*s == '\\')
                s++;
            else if (*s == '"')
                in_str = false;
            continue;
        }
        FUZZ_CHECK(*s != ' ' && *s != '\n' && *s != '\r' && *s != '\t');
        in_str = *s == '"';
    }
}

static unsigned significant_digits(const char *s)
{
    char d[64];
    size_t n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && n < sizeof(d))
            d[n++] = *s;
    size_t a = 0;
    while (a < n && d[a] == '0')
        a++;
    while (n > a && d[n - 1] == '0')
        n--;
    return (unsigned)(n - a);
}

static void check_number(double x)
{
    char buf[40];
    if (!isfinite(x)) {
        FUZZ_CHECK(canon_number(x, buf, sizeof(buf)) < 0);
        return;
    }
    FUZZ_CHECK(canon_number(x, buf, sizeof(buf)) == 0);
    FUZZ_CHECK(strlen(buf) < 32);
    char *end;
    FUZZ_CHECK(strtod(buf, &end) == x && *end == '\0');
    unsigned sig = significant_digits(buf);
    FUZZ_CHECK(sig >= 1 || x == 0);
    if (sig >= 2) {
        char e[40];
        snprintf(e, sizeof(e), "%.*e", (int)sig - 2, x);
        FUZZ_CHECK(strtod(e, NULL) != x);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size >= 8) {
        double x;
        int64_t i;
        memcpy(&x, data, 8);
        memcpy(&i, data, 8);
        check_number(x);
        json_t *ji = json_integer(i);
        char *s = canon_dump(ji);
        FUZZ_CHECK(s);
        FUZZ_CHECK(strtod(s, NULL) == (double)i);
        free(s);
        json_decref(ji);
    }

    json_t *v =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!v)
        return 0;
    char *c1 = canon_dump(v);
    FUZZ_CHECK(c1);
    size_t n = strlen(c1);
    FUZZ_CHECK(fuzz_utf8_valid(c1, n));
    check_compact(c1);
    json_error_t je;
    json_t *w =
        json_loadb(c1, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    FUZZ_CHECK(w);
    check_equiv(v, w);
    char *c2 = canon_dump(w);
    FUZZ_CHECK(c2 && strcmp(c1, c2) == 0);
    free(c1);
    free(c2);
    json_decref(w);
    json_decref(v);
    return 0;
}
