/* fuzz.h: what the libFuzzer targets of tests/fuzz share.
 *
 * Each target is one file defining LLVMFuzzerTestOneInput. Built with -DCT_FUZZ=ON (clang,
 * -fsanitize=fuzzer,address,undefined) it is a fuzzer; in the normal build it is linked with
 * replay.c, which runs it once over every file of its seed corpus (a regression test).
 *
 * FUZZ_CHECK states an invariant of the code under test. Unlike assert() it holds in every
 * build type (RelWithDebInfo defines NDEBUG), and a failure names the file and line. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated malloc'd copy of the input (which may itself hold NULs). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. Written
 * here independently of common/, so that the targets can check common/'s text against it. */
static inline bool fuzz_utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

static inline bool fuzz_str_utf8_valid(const char *s)
{
    return fuzz_utf8_valid(s, strlen(s));
}

/* Splits the input at the first "\n--\n" (or not at all) into a head and the rest. Lets one
 * input carry two strings (a list and a name, say) and keeps seed files readable. */
static inline void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *alen,
                              const uint8_t **b, size_t *blen)
{
    static const char sep[] = "\n--\n";
    for (size_t i = 0; i + 4 <= size; i++) {
        if (memcmp(data + i, sep, 4) == 0) {
            *a = data;
            *alen = i;
            *b = data + i + 4;
            *blen = size - i - 4;
            return;
        }
    }
    *a = data;
    *alen = size;
    *b = data + size;
    *blen = 0;
}

#include <jansson.h>

/* Once per process, before any JSON object exists: jansson's hash seed fixed, so that a
 * crash reproduces with the same object iteration order. */
static inline void fuzz_init(void)
{
    static bool done;
    if (!done) {
        json_object_seed(1);
        done = true;
    }
}
