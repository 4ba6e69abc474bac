/* dtime: the engine's timestamps (see dtime.h). */
#include "dtime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* digits at s, exactly n of them, as a number */
static int fixed(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int dtime_parse(const char *s, size_t len, struct dtime *ret)
{
    /* "YYYY-MM-DDTHH:MM:SS" */
    if (!s || !ret || len < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return -EINVAL;
    int year = fixed(s, 4), mon = fixed(s + 5, 2), day = fixed(s + 8, 2), hour = fixed(s + 11, 2),
        min = fixed(s + 14, 2), sec = fixed(s + 17, 2);
    if (year < 2000 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
        min < 0 || min > 59 || sec < 0 || sec > 60)
        return -EINVAL;
    size_t i = 19;
    int32_t nsec = 0;
    if (i < len && s[i] == '.') {
        int digits = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
            if (digits < 9)
                nsec = nsec * 10 + (s[i] - '0');
            else
                return -EINVAL; /* more than nanoseconds: not Docker's */
        if (!digits)
            return -EINVAL;
        for (; digits < 9; digits++)
            nsec *= 10;
    }
    if (i < len && s[i] == 'Z')
        i++;
    if (i != len)
        return -EINVAL;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    ret->sec = (int64_t)t;
    ret->nsec = nsec;
    return 0;
}

int64_t dtime_ms(struct dtime t)
{
    return t.sec * 1000 + t.nsec / 1000000;
}

int dtime_cmp(struct dtime a, struct dtime b)
{
    if (a.sec != b.sec)
        return a.sec < b.sec ? -1 : 1;
    return a.nsec < b.nsec ? -1 : a.nsec > b.nsec;
}

struct dtime dtime_next(struct dtime t)
{
    if (++t.nsec == 1000000000) {
        t.nsec = 0;
        t.sec++;
    }
    return t;
}

void dtime_since(struct dtime t, char *buf, size_t n)
{
    snprintf(buf, n, "%" PRId64 ".%09" PRId32, t.sec, t.nsec);
}
