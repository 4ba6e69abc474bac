/* Fuzz target: common/text.c, the one rule for outside text (valid UTF-8, cut only at a
 * character boundary) that every error detail, stderr tail and log value goes through.
 *
 * Byte 0 picks the destination size (dstlen 0..255, or large) and byte 1 max_bytes; the rest is
 * the text. Invariants, against a reference conversion written here (fuzz.h's decoder):
 * - text_utf8_char_len and text_utf8_valid agree with the reference (valid: no NUL either);
 * - text_utf8_copy writes valid UTF-8 without NUL, NUL-terminated, within dstlen (the buffer
 *   is exactly dstlen bytes, so ASan sees any byte past it), and exactly the reference: each
 *   well-formed character kept, each other byte and each NUL one U+FFFD, stopped before the
 *   first piece that does not fit; a valid text that fits is copied unchanged;
 * - text_utf8_dup gives the same as a copy into max_bytes + 1;
 * - text_utf8_truncate cuts a valid text to its longest prefix of whole characters within
 *   max_bytes;
 * - nothing leaks (ASan). */
#include "fuzz.h"
#include "text.h"

/* The length of the well-formed character at s, 0 when none starts there. */
static size_t ref_char_len(const uint8_t *s, size_t len)
{
    for (size_t n = 1; n <= 4 && n <= len; n++) {
        if (fuzz_utf8_valid(s, n))
            return n;
    }
    return 0;
}

/* The expected copy into a buffer of dstlen; returns its length (written into out). */
static size_t ref_copy(uint8_t *out, size_t dstlen, const uint8_t *src, size_t len)
{
    size_t o = 0;
    if (dstlen == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        size_t n = src[i] ? ref_char_len(src + i, len - i) : 0;
        const uint8_t *piece = src + i;
        size_t pl = n;
        if (n == 0) {
            piece = (const uint8_t *)"\xEF\xBF\xBD";
            pl = 3;
            n = 1;
        }
        if (o + pl > dstlen - 1)
            break;
        memcpy(out + o, piece, pl);
        o += pl;
        i += n;
    }
    out[o] = 0;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t dstlen = data[0] == 255 ? 3 * size + 8 : data[0];
    size_t max_bytes = data[1] == 255 ? 3 * size + 8 : data[1];
    const uint8_t *src = data + 2;
    size_t len = size - 2;

    /* char_len at every position, valid on the whole. */
    bool valid = true;
    for (size_t i = 0; i < len; i++) {
        size_t n = text_utf8_char_len(src + i, len - i);
        FUZZ_CHECK(n == ref_char_len(src + i, len - i));
        FUZZ_CHECK(n <= 4 && n <= len - i);
    }
    valid = fuzz_utf8_valid(src, len) && !memchr(src, 0, len);
    FUZZ_CHECK(text_utf8_valid(src, len) == valid);

    /* copy */
    char *dst = malloc(dstlen ? dstlen : 1);
    uint8_t *want = malloc(3 * len + 1);
    FUZZ_CHECK(dst && want);
    size_t n = text_utf8_copy(dst, dstlen, src, len);
    size_t wn = ref_copy(want, dstlen, src, len);
    if (dstlen == 0) {
        FUZZ_CHECK(n == 0);
    } else {
        FUZZ_CHECK(n < dstlen && dst[n] == '\0');
        FUZZ_CHECK(strlen(dst) == n);
        FUZZ_CHECK(fuzz_utf8_valid(dst, n));
        FUZZ_CHECK(n == wn && memcmp(dst, want, n) == 0);
        if (valid && len < dstlen)
            FUZZ_CHECK(n == len && memcmp(dst, src, len) == 0);
    }
    free(dst);

    /* dup */
    char *d = text_utf8_dup(src, len, max_bytes);
    FUZZ_CHECK(d);
    size_t dn = strlen(d);
    FUZZ_CHECK(dn <= max_bytes && fuzz_utf8_valid(d, dn));
    wn = ref_copy(want, max_bytes + 1, src, len);
    FUZZ_CHECK(dn == wn && memcmp(d, want, dn) == 0);

    /* truncate, on the valid text the dup made */
    size_t tn = text_utf8_truncate(d, data[0]);
    FUZZ_CHECK(tn == strlen(d) && tn <= data[0] && tn <= dn);
    FUZZ_CHECK(memcmp(d, want, tn) == 0 && fuzz_utf8_valid(d, tn));
    if (tn < dn) /* the next character would not fit */
        FUZZ_CHECK(tn + ref_char_len(want + tn, dn - tn) > data[0]);
    free(d);
    free(want);
    return 0;
}
