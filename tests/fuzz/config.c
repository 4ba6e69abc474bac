/* Fuzz target: the configuration parsers (common/config.c: sizes, durations, booleans, whole
 * numbers, CPUs; DOCKER_HOST; the webhook secret). Their input is the operator's environment.
 *
 * Input: byte 0 picks the parser, the rest (up to a NUL, as in the environment) is the value.
 * Invariants:
 * - each parse_* result agrees with a reference written here another way (128-bit arithmetic,
 *   no shared code): the same accept/refuse and the same value;
 * - the config_* getters, through a real environment variable, store that value when it is in
 *   bounds, and otherwise refuse with a message naming the variable, leaving the output alone;
 * - docker_endpoint_parse gives a URL of the right scheme and a socket path or port;
 * - a webhook secret decodes to at most WEBHOOK_MAX_SECRET bytes that sign a body;
 * - nothing leaks (ASan). */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "docker.h"
#include "fuzz.h"
#include "webhook.h"

#define VAR "CT_FUZZ_VALUE"
typedef unsigned __int128 u128;

/* Leading decimal digits as a 128-bit number (saturating); *n how many. */
static u128 ref_digits(const char *s, size_t *n)
{
    u128 v = 0;
    *n = 0;
    while (isdigit((unsigned char)s[*n])) {
        v = v > ((u128)1 << 100) ? v : v * 10 + (unsigned)(s[*n] - '0');
        (*n)++;
    }
    return v;
}

/* 0 and *ret, or -1. */
static int ref_bytes(const char *s, uint64_t *ret)
{
    size_t n;
    u128 v = ref_digits(s, &n);
    if (n == 0)
        return -1;
    const char *u = s + n;
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},          {"b", 1},        {"k", 1 << 10},  {"kb", 1 << 10},
                 {"kib", 1 << 10}, {"m", 1 << 20},  {"mb", 1 << 20}, {"mib", 1 << 20},
                 {"g", 1 << 30},   {"gb", 1 << 30}, {"gib", 1 << 30}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(u, units[i].unit) == 0) {
            v *= units[i].mult;
            if (v > UINT64_MAX)
                return -1;
            *ret = (uint64_t)v;
            return 0;
        }
    }
    return -1;
}

static int ref_duration(const char *s, uint64_t *ret)
{
    size_t n;
    u128 v = ref_digits(s, &n);
    if (n == 0)
        return -1;
    const char *u = s + n;
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1000}, {"s", 1000}, {"ms", 1}, {"m", 60000}, {"min", 60000}, {"h", 3600000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(u, units[i].unit) == 0) {
            v *= units[i].mult;
            if (v > UINT64_MAX)
                return -1;
            *ret = (uint64_t)v;
            return 0;
        }
    }
    return -1;
}

static int ref_nanocpus(const char *s, uint64_t *ret)
{
    size_t n;
    u128 v = ref_digits(s, &n);
    if (n == 0)
        return -1;
    s += n;
    v *= 1000000000u;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        uint64_t frac = 0, scale = 100000000;
        for (; isdigit((unsigned char)*s); s++, scale /= 10)
            frac += scale ? (uint64_t)(*s - '0') * scale : 0;
        v += frac;
    }
    if (*s || v > UINT64_MAX)
        return -1;
    *ret = (uint64_t)v;
    return 0;
}

static int ref_uint(const char *s, uint64_t *ret)
{
    size_t n;
    u128 v = ref_digits(s, &n);
    if (n == 0 || s[n] || v > UINT64_MAX)
        return -1;
    *ret = (uint64_t)v;
    return 0;
}

static int ref_bool(const char *s, bool *ret)
{
    static const char *const yes[] = {"true", "yes", "1", "y", "s", "si", "on"};
    static const char *const no[] = {"false", "no", "0", "n", "off"};
    for (size_t i = 0; i < 7; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return *ret = true, 0;
    for (size_t i = 0; i < 5; i++)
        if (strcasecmp(s, no[i]) == 0)
            return *ret = false, 0;
    return -1;
}

/* A getter's outcome: stored when valid and in [min, max], else refused naming VAR. */
static void check_getter(int r, uint64_t got, int ref, uint64_t want, uint64_t min, uint64_t max,
                         const struct ct_error *err, const char *value)
{
    if (!*value) { /* empty: the default */
        FUZZ_CHECK(r == 0 && got == 7);
        return;
    }
    if (ref == 0 && want >= min && want <= max) {
        FUZZ_CHECK(r == 0 && got == want);
    } else {
        FUZZ_CHECK(r == -EINVAL && got == 12345);
        FUZZ_CHECK(strstr(err->msg, VAR));
        FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)));
    }
}

static void check_numbers(const char *s, uint64_t lo, uint64_t hi)
{
    uint64_t got = 0, want = 0, v;
    struct ct_error err;
    int r, ref;

    r = config_parse_bytes(s, &got);
    ref = ref_bytes(s, &want);
    FUZZ_CHECK((r == 0) == (ref == 0));
    FUZZ_CHECK(r < 0 || got == want);
    setenv(VAR, s, 1);
    v = 12345;
    r = config_bytes(VAR, 7, lo, hi, &v, &err);
    check_getter(r, v, ref, want, lo, hi, &err, s);

    r = config_parse_duration_ms(s, &got);
    ref = ref_duration(s, &want);
    FUZZ_CHECK((r == 0) == (ref == 0));
    FUZZ_CHECK(r < 0 || got == want);
    v = 12345;
    r = config_duration_ms(VAR, 7, lo, hi, &v, &err);
    check_getter(r, v, ref, want, lo, hi, &err, s);

    r = config_parse_nanocpus(s, &got);
    ref = ref_nanocpus(s, &want);
    FUZZ_CHECK((r == 0) == (ref == 0));
    FUZZ_CHECK(r < 0 || got == want);
    v = 12345;
    r = config_nanocpus(VAR, 7, &v, &err);
    check_getter(r, v, ref, want, 1, 1024ULL * 1000000000ULL, &err, s);

    ref = ref_uint(s, &want);
    v = 12345;
    r = config_uint(VAR, 7, lo, hi, &v, &err);
    check_getter(r, v, ref, want, lo, hi, &err, s);

    bool b = false, bw = false, bv = true;
    r = config_parse_bool(s, &b);
    ref = ref_bool(s, &bw);
    FUZZ_CHECK((r == 0) == (ref == 0));
    FUZZ_CHECK(r < 0 || b == bw);
    r = config_bool(VAR, true, &bv, &err);
    if (!*s)
        FUZZ_CHECK(r == 0 && bv);
    else if (ref == 0)
        FUZZ_CHECK(r == 0 && bv == bw);
    else
        FUZZ_CHECK(r == -EINVAL && strstr(err.msg, VAR));
    unsetenv(VAR);
}

static void check_endpoint(const char *s, bool tls)
{
    struct docker_endpoint ep = {0};
    struct ct_error err = {0};
    int r = docker_endpoint_parse(s, tls, &ep, &err);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(strstr(err.msg, "DOCKER_HOST"));
        return;
    }
    FUZZ_CHECK(ep.base_url);
    if (ep.unix_socket) {
        FUZZ_CHECK(strcmp(ep.base_url, "http://localhost") == 0);
        FUZZ_CHECK(ep.unix_socket[0] == '/');
    } else {
        FUZZ_CHECK(strncmp(ep.base_url, tls ? "https://" : "http://", tls ? 8 : 7) == 0);
        const char *colon = strrchr(ep.base_url, ':');
        FUZZ_CHECK(colon && colon > ep.base_url + 6);
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        FUZZ_CHECK(*end == '\0' && port >= 1 && port <= 65535);
        /* What docker_new does next with it. */
        char *url = docker_url_join(ep.base_url, "/containers/json");
        FUZZ_CHECK(url && strncmp(url, ep.base_url, strlen(ep.base_url)) == 0);
        free(url);
    }
    docker_endpoint_clear(&ep);
}

static void check_secret(const char *s)
{
    unsigned char key[WEBHOOK_MAX_SECRET + 8];
    size_t key_len = 0;
    if (webhook_parse_secret(s, key, &key_len) < 0)
        return;
    FUZZ_CHECK(key_len >= 1 && key_len <= WEBHOOK_MAX_SECRET);
    char sig[128];
    FUZZ_CHECK(webhook_sign(key, key_len, "msg_1", 1700000000, "{}", 2, sig, sizeof(sig)) == 0);
    FUZZ_CHECK(strncmp(sig, "v1,", 3) == 0 && strlen(sig) == 3 + 44);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = fuzz_strndup(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        check_numbers(s, 0, UINT64_MAX);
        break;
    case 1:
        check_numbers(s, 1024, 64 * 1024 * 1024); /* MAX_MESSAGE_BYTES' bounds */
        break;
    case 2:
        check_endpoint(s, data[0] & 4);
        break;
    case 3:
        check_secret(s);
        break;
    }
    free(s);
    return 0;
}
