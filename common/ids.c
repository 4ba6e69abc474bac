#include "ids.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Our namespace for version 5 UUIDs (itself a random UUID, fixed forever). */
static const unsigned char ns_correctomatic[16] = {0x6b, 0x2f, 0x1c, 0x9e, 0x53, 0x0a, 0x4d, 0x8b,
                                                   0x9f, 0x61, 0x27, 0xd4, 0xe8, 0x35, 0xa0, 0x7c};

static void format_uuid(const unsigned char b[16], char ret[IDS_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            ret[o++] = '-';
        ret[o++] = hex[b[i] >> 4];
        ret[o++] = hex[b[i] & 15];
    }
    ret[o] = '\0';
}

int ids_uuid_random(char ret[IDS_UUID_LEN + 1])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    format_uuid(b, ret);
    return 0;
}

void ids_uuid_from_bytes(const void *data, size_t len, char ret[IDS_UUID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    /* SHA-1 of a few bytes cannot fail short of memory exhaustion; fall back to zeros then,
     * which still yields a well-formed id. */
    memset(md, 0, sizeof(md));
    if (ctx) {
        if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, ns_correctomatic, sizeof(ns_correctomatic)) != 1 ||
            EVP_DigestUpdate(ctx, data, len) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
            memset(md, 0, sizeof(md));
        EVP_MD_CTX_free(ctx);
    }
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    format_uuid(md, ret);
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int ids_is_uuid(const char *s)
{
    if (!s || strlen(s) != IDS_UUID_LEN)
        return 0;
    for (size_t i = 0; i < IDS_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!all_hex(s + i, 1)) {
            return 0;
        }
    }
    return 1;
}

int ids_is_container_id(const char *s)
{
    return s && strlen(s) == 64 && all_hex(s, 64);
}

uint32_t ids_jitter(void)
{
    static uint64_t x;
    if (x == 0) {
        if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x) || x == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            x = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid();
        }
        x |= 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (uint32_t)(x >> 32);
}
