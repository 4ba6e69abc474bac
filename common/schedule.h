/* schedule: when a failed callback is tried again. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SCHEDULE_MAX 32

struct schedule {
    uint64_t delays_ms[SCHEDULE_MAX];
    size_t n;
};

/* "5s,30s,2m,10m" (durations as config_parse_duration_ms; at least one, increasing or equal
 * not required). 0 or -EINVAL. */
int schedule_parse(const char *s, struct schedule *ret);

/* After `failures` failed attempts (1 for the first), the level (index into delays) of the
 * next try, or -1 when the schedule is used up. A Retry-After of retry_after_s seconds (-1:
 * none) moves the try to the first level at least that long, at most the last one: honoured
 * within the schedule, never beyond it. */
int schedule_next(const struct schedule *s, unsigned failures, int64_t retry_after_s);

/* The delay of a level, shortened by up to 10% (rnd picks how much) so retries spread out;
 * the queue of the level holds the full delay, so the jitter never blocks the queue's head
 * for more than 10% of it. */
uint64_t schedule_jitter(uint64_t delay_ms, uint32_t rnd);

/* The delay before retry number attempt (0 for the first) after an infrastructure fault:
 * min_ms doubled per attempt, capped at max_ms, then between half and all of it (rnd picks
 * where) so that many jobs retrying at once spread out. */
uint64_t schedule_backoff_ms(uint64_t min_ms, uint64_t max_ms, unsigned attempt, uint32_t rnd);

/* The Docker events stream of the starter and the completer: how long before trying it again
 * after it ended, or could not start, `failures` times in a row: schedule_backoff_ms from
 * 250 ms to 32 s. */
static inline uint64_t schedule_events_retry_ms(unsigned failures, uint32_t rnd)
{
    return schedule_backoff_ms(250, 32000, failures, rnd);
}

/* A Retry-After value: delta seconds or an HTTP date (relative to now). -1 when invalid. */
int64_t schedule_retry_after(const char *value, time_t now);
