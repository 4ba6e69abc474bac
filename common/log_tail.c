/* log_tail: see log_tail.h. */
#include "log_tail.h"
#include "text.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_HEADER 8

struct frame {
    unsigned char type;
    char *p;    /* the payload's last bytes, max - FRAME_HEADER at most */
    size_t len; /* held in p */
};

struct log_tail {
    unsigned n, streams;
    size_t max;
    struct frame *ring; /* the last complete frames: count of them from first, circular */
    unsigned first, count;
    unsigned char hdr[FRAME_HEADER];
    size_t hdr_len;
    bool in_frame; /* after a header: cur is being filled */
    struct frame cur;
    size_t cap;  /* of cur.p */
    size_t need; /* payload bytes of cur still to come */
};

struct log_tail *log_tail_new(unsigned frames, size_t max_bytes, unsigned streams)
{
    if (frames == 0 || max_bytes <= FRAME_HEADER)
        return NULL;
    struct log_tail *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ring = calloc(frames, sizeof(*t->ring));
    if (!t->ring) {
        free(t);
        return NULL;
    }
    t->n = frames;
    t->max = max_bytes;
    t->streams = streams;
    return t;
}

void log_tail_free(struct log_tail *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->count; i++)
        free(t->ring[(t->first + i) % t->n].p);
    free(t->ring);
    free(t->cur.p);
    free(t);
}

static void push(struct log_tail *t)
{
    if (t->count == t->n) {
        free(t->ring[t->first].p);
        t->ring[t->first] = t->cur;
        t->first = (t->first + 1) % t->n;
    } else {
        t->ring[(t->first + t->count) % t->n] = t->cur;
        t->count++;
    }
    t->cur = (struct frame){0};
    t->in_frame = false;
}

/* Appends to cur, keeping its last cap bytes. */
static void append(struct log_tail *t, const char *data, size_t k)
{
    if (k >= t->cap) {
        memcpy(t->cur.p, data + (k - t->cap), t->cap);
        t->cur.len = t->cap;
        return;
    }
    if (t->cur.len + k > t->cap) {
        size_t drop = t->cur.len + k - t->cap;
        memmove(t->cur.p, t->cur.p + drop, t->cur.len - drop);
        t->cur.len -= drop;
    }
    memcpy(t->cur.p + t->cur.len, data, k);
    t->cur.len += k;
}

int log_tail_feed(struct log_tail *t, const char *data, size_t len)
{
    while (len > 0) {
        if (!t->in_frame) {
            size_t k = FRAME_HEADER - t->hdr_len;
            if (k > len)
                k = len;
            memcpy(t->hdr + t->hdr_len, data, k);
            t->hdr_len += k;
            data += k;
            len -= k;
            if (t->hdr_len < FRAME_HEADER)
                return 0;
            t->hdr_len = 0;
            t->need = (size_t)t->hdr[4] << 24 | (size_t)t->hdr[5] << 16 | (size_t)t->hdr[6] << 8 |
                      t->hdr[7];
            t->cap = t->need < t->max - FRAME_HEADER ? t->need : t->max - FRAME_HEADER;
            t->cur = (struct frame){.type = t->hdr[0], .p = malloc(t->cap ? t->cap : 1)};
            if (!t->cur.p)
                return -ENOMEM;
            t->in_frame = true;
            if (t->need == 0)
                push(t);
            continue;
        }
        size_t k = t->need < len ? t->need : len;
        append(t, data, k);
        data += k;
        len -= k;
        t->need -= k;
        if (t->need == 0)
            push(t);
    }
    return 0;
}

int log_tail_result(const struct log_tail *t, char **ret, size_t *ret_len)
{
    const struct frame **f = malloc((t->count + 1) * sizeof(*f));
    unsigned nf = 0;
    if (!f)
        return -ENOMEM;
    for (unsigned i = 0; i < t->count; i++)
        f[nf++] = &t->ring[(t->first + i) % t->n];
    if (t->in_frame)
        f[nf++] = &t->cur;
    unsigned kept = 0;
    for (unsigned i = 0; i < nf; i++)
        if (!t->streams || (f[i]->type < 32 && (t->streams & (1u << f[i]->type))))
            f[kept++] = f[i];
    nf = kept;
    size_t total = 0;
    for (unsigned i = 0; i < nf; i++)
        total += FRAME_HEADER + f[i]->len;
    unsigned from = 0;
    while (from + 1 < nf && total > t->max)
        total -= FRAME_HEADER + f[from++]->len;
    char *out = malloc(total + 1), *o = out;
    if (!out) {
        free(f);
        return -ENOMEM;
    }
    for (unsigned i = from; i < nf; i++) {
        size_t len = f[i]->len, skip = 0;
        if (FRAME_HEADER + len > t->max) { /* the one frame left: its last bytes */
            skip = len - (t->max - FRAME_HEADER);
            len -= skip;
        }
        unsigned char h[FRAME_HEADER] = {f[i]->type,
                                         0,
                                         0,
                                         0,
                                         (unsigned char)(len >> 24),
                                         (unsigned char)(len >> 16),
                                         (unsigned char)(len >> 8),
                                         (unsigned char)len};
        memcpy(o, h, FRAME_HEADER);
        memcpy(o + FRAME_HEADER, f[i]->p + skip, len);
        o += FRAME_HEADER + len;
    }
    *o = '\0';
    free(f);
    *ret = out;
    *ret_len = (size_t)(o - out);
    return 0;
}

int log_tail_utf8(const char *in, size_t len, char **ret, size_t *ret_len)
{
    char *out = malloc(3 * len + 1);
    size_t i = 0, o = 0;

    if (!out)
        return -ENOMEM;
    while (i + FRAME_HEADER <= len) {
        const unsigned char *h = (const unsigned char *)in + i;
        size_t n = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
        size_t at = i + FRAME_HEADER, end = n < len - at ? at + n : len;
        size_t hdr = o;
        memcpy(out + o, h, FRAME_HEADER);
        o += FRAME_HEADER;
        for (size_t k = at; k < end;) {
            size_t c = text_utf8_char_len(in + k, end - k);
            if (c == 0) {
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
                k++;
            } else {
                memcpy(out + o, in + k, c);
                o += c;
                k += c;
            }
        }
        size_t m = o - hdr - FRAME_HEADER;
        out[hdr + 4] = (char)(m >> 24);
        out[hdr + 5] = (char)(m >> 16);
        out[hdr + 6] = (char)(m >> 8);
        out[hdr + 7] = (char)m;
        i = end;
    }
    memcpy(out + o, in + i, len - i);
    o += len - i;
    out[o] = '\0';
    *ret = out;
    *ret_len = o;
    return 0;
}
