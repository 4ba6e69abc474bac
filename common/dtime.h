/* dtime: the engine's timestamps. Docker writes RFC 3339 times in UTC with up to nine digits
 * of fraction ("2026-12-03T05:54:27.123456789Z", trailing zeros cut), in a container's State
 * and at the head of each log line read with timestamps=1; its logs' `since` takes unix
 * seconds with an optional fraction ("S.nnnnnnnnn"). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct dtime {
    int64_t sec;  /* unix seconds */
    int32_t nsec; /* 0..999999999 */
};

/* Parses the len bytes of s (no NUL needed), a time in UTC ending at len or at "Z". 0, or
 * -EINVAL for anything else, or a time before 2000 (Docker's zero time "0001-01-01T00:00:00Z"
 * means "never"). */
int dtime_parse(const char *s, size_t len, struct dtime *ret);

/* Milliseconds since the epoch (the fraction truncated). */
int64_t dtime_ms(struct dtime t);

/* -1, 0 or 1 as a is before, equal to or after b. */
int dtime_cmp(struct dtime a, struct dtime b);

/* One nanosecond later: the logs' `since` keeps lines at or after it, so the `since` that
 * leaves out every line up to t is dtime_next(t). */
struct dtime dtime_next(struct dtime t);

/* t as a logs' `since` value, "S.nnnnnnnnn" (n >= 21 bytes). */
void dtime_since(struct dtime t, char *buf, size_t n);
