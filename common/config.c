#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(struct ct_error *err, const char *name, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct ct_error *err, const char *name, const char *value, const char *fmt, ...)
{
    if (err) {
        char why[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        ct_error_set(err, -EINVAL, "invalid %s=\"%.64s\": %s", name, value ? value : "", why);
    }
    return -EINVAL;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

void config_print_help(const char *prog, const char *summary, const struct config_doc *docs,
                       size_t n)
{
    if (prog)
        printf("Usage: %s [--help | --version]\n\n%s\n\nConfiguration (environment variables):\n",
               prog, summary ? summary : "");
    for (size_t i = 0; i < n; i++)
        printf("  %-26s %s (default: %s)\n", docs[i].name, docs[i].help,
               docs[i].def && *docs[i].def ? docs[i].def : "unset");
}

int config_str(const char *name, const char *def, const char **ret, struct ct_error *err)
{
    (void)err;
    const char *v = env(name);
    *ret = v ? v : def;
    return 0;
}

int config_parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = {"true", "yes", "1", "y", "s", "si", "on"};
    static const char *const no[] = {"false", "no", "0", "n", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    return -EINVAL;
}

int config_bool(const char *name, bool def, bool *ret, struct ct_error *err)
{
    const char *v = env(name);
    if (!v) {
        *ret = def;
        return 0;
    }
    if (config_parse_bool(v, ret) < 0)
        return fail(err, name, v, "expected true/false (also yes/no, 1/0, y/n, s)");
    return 0;
}

/* A plain unsigned decimal, no sign, no spaces, no overflow. Sets *end past the digits. */
static int parse_u64(const char *s, uint64_t *ret, const char **end)
{
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    uint64_t v = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
        s++;
    }
    *ret = v;
    *end = s;
    return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *ret)
{
    if (b && a > UINT64_MAX / b)
        return -ERANGE;
    *ret = a * b;
    return 0;
}

int config_uint(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                struct ct_error *err)
{
    const char *v = env(name);
    if (!v) {
        *ret = def;
        return 0;
    }
    uint64_t x;
    const char *end;
    if (parse_u64(v, &x, &end) < 0 || *end)
        return fail(err, name, v, "expected a whole number");
    if (x < min || x > max)
        return fail(err, name, v, "must be between %llu and %llu", (unsigned long long)min,
                    (unsigned long long)max);
    *ret = x;
    return 0;
}

int config_parse_bytes(const char *s, uint64_t *ret)
{
    uint64_t v, mult = 1;
    const char *end;
    int r = parse_u64(s, &v, &end);
    if (r < 0)
        return r;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'b':
            mult = 1;
            break;
        case 'k':
            mult = 1024ULL;
            break;
        case 'm':
            mult = 1024ULL * 1024;
            break;
        case 'g':
            mult = 1024ULL * 1024 * 1024;
            break;
        default:
            return -EINVAL;
        }
        end++;
        /* "k", "kb", "kib" (and "b" alone) */
        if (mult > 1 && *end && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
            return -EINVAL;
        if (mult == 1 && *end)
            return -EINVAL;
    }
    return mul_checked(v, mult, ret);
}

int config_bytes(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                 struct ct_error *err)
{
    const char *v = env(name);
    if (!v) {
        *ret = def;
        return 0;
    }
    uint64_t x;
    if (config_parse_bytes(v, &x) < 0)
        return fail(err, name, v, "expected a size such as 1048576, 512k, 64m or 1g");
    if (x < min || x > max)
        return fail(err, name, v, "must be between %llu and %llu bytes", (unsigned long long)min,
                    (unsigned long long)max);
    *ret = x;
    return 0;
}

int config_parse_duration_ms(const char *s, uint64_t *ret)
{
    uint64_t v, mult;
    const char *end;
    int r = parse_u64(s, &v, &end);
    if (r < 0)
        return r;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else
        return -EINVAL;
    return mul_checked(v, mult, ret);
}

int config_duration_ms(const char *name, uint64_t def_ms, uint64_t min_ms, uint64_t max_ms,
                       uint64_t *ret, struct ct_error *err)
{
    const char *v = env(name);
    if (!v) {
        *ret = def_ms;
        return 0;
    }
    uint64_t x;
    if (config_parse_duration_ms(v, &x) < 0)
        return fail(err, name, v, "expected a duration such as 180 (seconds), 500ms, 30s, 2m, 1h");
    if (x < min_ms || x > max_ms)
        return fail(err, name, v, "must be between %llums and %llums", (unsigned long long)min_ms,
                    (unsigned long long)max_ms);
    *ret = x;
    return 0;
}

int config_parse_nanocpus(const char *s, uint64_t *ret)
{
    uint64_t whole, frac = 0, scale = 1000000000ULL;
    const char *end;
    int r = parse_u64(s, &whole, &end);
    if (r < 0)
        return r;
    if (*end == '.') {
        end++;
        if (!isdigit((unsigned char)*end))
            return -EINVAL;
        unsigned digits = 0;
        while (isdigit((unsigned char)*end)) {
            if (digits < 9) {
                scale /= 10;
                frac += (uint64_t)(*end - '0') * scale;
            }
            digits++;
            end++;
        }
    }
    if (*end)
        return -EINVAL;
    uint64_t n;
    if (mul_checked(whole, 1000000000ULL, &n) < 0 || n > UINT64_MAX - frac)
        return -ERANGE;
    *ret = n + frac;
    return 0;
}

int config_nanocpus(const char *name, uint64_t def, uint64_t *ret, struct ct_error *err)
{
    const char *v = env(name);
    if (!v) {
        *ret = def;
        return 0;
    }
    uint64_t x;
    if (config_parse_nanocpus(v, &x) < 0 || x == 0)
        return fail(err, name, v, "expected a positive number of CPUs such as 1 or 0.5");
    if (x > 1024ULL * 1000000000ULL)
        return fail(err, name, v, "too many CPUs");
    *ret = x;
    return 0;
}
