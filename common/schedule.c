#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int schedule_parse(const char *s, struct schedule *ret)
{
    struct schedule out = {.n = 0};
    if (!s || !*s)
        return -EINVAL;
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return -ENOMEM;
    int r = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t n = strlen(tok);
        while (n && isspace((unsigned char)tok[n - 1]))
            tok[--n] = '\0';
        uint64_t ms;
        if (out.n == SCHEDULE_MAX || config_parse_duration_ms(tok, &ms) < 0 || ms == 0 ||
            ms > 7 * 24 * 3600 * 1000ULL) {
            r = -EINVAL;
            break;
        }
        out.delays_ms[out.n++] = ms;
    }
    free(copy);
    if (r == 0 && out.n == 0)
        r = -EINVAL;
    if (r == 0)
        *ret = out;
    return r;
}

int schedule_next(const struct schedule *s, unsigned failures, int64_t retry_after_s)
{
    if (failures == 0 || failures > s->n)
        return -1;
    size_t level = failures - 1;
    if (retry_after_s > 0) {
        uint64_t want = (uint64_t)retry_after_s * 1000;
        while (level + 1 < s->n && s->delays_ms[level] < want)
            level++;
    }
    return (int)level;
}

uint64_t schedule_jitter(uint64_t delay_ms, uint32_t rnd)
{
    uint64_t span = delay_ms / 10;
    if (span == 0)
        return delay_ms;
    return delay_ms - (uint64_t)rnd % (span + 1);
}

uint64_t schedule_backoff_ms(uint64_t min_ms, uint64_t max_ms, unsigned attempt, uint32_t rnd)
{
    uint64_t delay = max_ms;
    if (attempt < 32 && min_ms <= (max_ms >> attempt))
        delay = min_ms << attempt;
    return delay / 2 + (uint64_t)rnd % (delay / 2 + 1);
}

int64_t schedule_retry_after(const char *v, time_t now)
{
    if (!v)
        return -1;
    while (isspace((unsigned char)*v))
        v++;
    if (isdigit((unsigned char)*v)) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (errno || *end || x < 0)
            return -1;
        return x;
    }
    struct tm tm = {0};
    const char *rest = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!rest)
        return -1;
    time_t t = timegm(&tm);
    return t > now ? (int64_t)(t - now) : 0;
}
