/* Fuzz target: output_demux, the completer's split of Docker's multiplexed log stream (framed
 * by the engine, but every byte of the frames' contents is the container's).
 *
 * The first input byte picks the buffers' bounds (so that overflow is reached with small
 * inputs); the rest is the stream. Invariants, against a reference split done here:
 * - the result is 0, or -EBADMSG exactly when a header is not a header (or the stream is a cut
 *   header alone);
 * - each buffer holds the first (stdout, stop) or the last (stderr, keep_tail) bytes of its
 *   stream, at most max, NUL-terminated, overflow set exactly when more was offered;
 * - output_latest_time (the same framing, read with timestamps=1) fails exactly when the split
 *   does, and a time it finds is one (2000 or later, a fraction below a second) that makes a
 *   `since` docker_container_logs takes;
 * - nothing leaks (ASan). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "output.h"

struct ref {
    uint8_t *data;
    size_t len;
};

static void ref_add(struct ref *r, const uint8_t *p, size_t n)
{
    uint8_t *d = realloc(r->data, r->len + n + 1);
    if (!d)
        abort();
    memcpy(d + r->len, p, n);
    r->data = d;
    r->len += n;
}

/* The expected result, and each stream's bytes up to where the split stops. */
static int ref_demux(const uint8_t *p, size_t len, struct ref *out, struct ref *err)
{
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 8)
            return pos == 0 ? -EBADMSG : 0;
        if (p[pos] > 2 || p[pos + 1] || p[pos + 2] || p[pos + 3])
            return -EBADMSG;
        size_t size = (size_t)p[pos + 4] << 24 | (size_t)p[pos + 5] << 16 |
                      (size_t)p[pos + 6] << 8 | p[pos + 7];
        pos += 8;
        size_t n = size < len - pos ? size : len - pos;
        ref_add(p[pos - 8] == 2 ? err : out, p + pos, n);
        pos += n;
    }
    return 0;
}

static void check_buf(const struct output_buf *b, const struct ref *r, int rc)
{
    if (rc == 0)
        FUZZ_CHECK(b->data); /* even for an empty stream */
    if (!b->data) {
        FUZZ_CHECK(r->len == 0);
        return;
    }
    FUZZ_CHECK(b->len <= b->max);
    FUZZ_CHECK(b->data[b->len] == '\0');
    FUZZ_CHECK(b->overflow == (r->len > b->max));
    size_t want = r->len < b->max ? r->len : b->max;
    FUZZ_CHECK(b->len == want);
    if (want > 0)
        FUZZ_CHECK(memcmp(b->data, b->keep_tail ? r->data + (r->len - want) : r->data, want) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t maxima[] = {0, 1, 7, 64, 400, 4096, 65536, 1 << 20};
    struct output_buf out = {.max = maxima[data[0] & 7]};
    struct output_buf err = {.max = maxima[(data[0] >> 3) & 7], .keep_tail = 1};
    data++, size--;

    struct ref rout = {0}, rerr = {0};
    int want = ref_demux(data, size, &rout, &rerr);
    int rc = output_demux(data, size, &out, &err);
    FUZZ_CHECK(rc == want);
    check_buf(&out, &rout, rc);
    check_buf(&err, &rerr, rc);
    output_buf_free(&out);
    output_buf_free(&err);

    /* One side only, as the completer reads them (stdout, then stderr). */
    struct output_buf only = {.max = 4096};
    FUZZ_CHECK(output_demux(data, size, &only, NULL) == want);
    output_buf_free(&only);
    only = (struct output_buf){.max = 4096, .keep_tail = 1};
    FUZZ_CHECK(output_demux(data, size, NULL, &only) == want);
    output_buf_free(&only);

    struct dtime t;
    int found = output_latest_time(data, size, &t);
    FUZZ_CHECK(want < 0 ? found == -EBADMSG : found == 0 || found == 1);
    if (found == 1) {
        char since[32];
        dtime_since(t, since, sizeof(since));
        FUZZ_CHECK(t.sec >= 946684800 && t.nsec >= 0 && t.nsec < 1000000000);
        /* years 2000 to 9999: 9 to 12 digits of seconds, a dot, 9 of nanoseconds; no longer
         * than docker_container_logs takes (24) */
        FUZZ_CHECK(strlen(since) >= 19 && strlen(since) <= 22);
    }

    free(rout.data);
    free(rerr.data);
    return 0;
}
