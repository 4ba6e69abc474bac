/* lines: a bounded splitter of newline-delimited text that arrives in chunks (Docker's
 * streams of JSON lines: events, image pulls). Pure: no I/O.
 *
 *   struct lines l;
 *   lines_init(&l, 64 * 1024);
 *   r = lines_feed(&l, chunk, len, on_line, ud);   // for every chunk, in order
 *   ...                                             // lines_rest(&l) is a last line without
 *   lines_free(&l);                                 // its newline, once the stream ended
 *
 * A line is passed to on_line without its '\n' (a '\r' before it stays: JSON ignores it). */
#pragma once
#include <stddef.h>

struct lines {
    char *buf; /* the incomplete line (lines_rest), max bytes */
    size_t len, max;
};

/* 0, or -ENOMEM. */
int lines_init(struct lines *l, size_t max);
/* Safe on a zeroed or freed struct. */
void lines_free(struct lines *l);

/* Called with each complete line; a non-zero return stops lines_feed, which returns it at
 * once without touching l again (on_line may free it). */
typedef int (*lines_cb)(const char *line, size_t len, void *ud);

/* Splits data, calling on_line for every line it completes. 0; -EFBIG when a line grows over
 * max bytes (the rest of data is not read; the stream is unusable); or on_line's non-zero
 * return. */
int lines_feed(struct lines *l, const char *data, size_t len, lines_cb on_line, void *ud);

/* Keeps data as it is, newlines and all, up to max bytes in all (the rest is dropped): an
 * error body read whole for its message. */
void lines_keep(struct lines *l, const char *data, size_t len);

/* What is held: the incomplete last line, or what lines_keep kept. */
static inline const char *lines_rest(const struct lines *l, size_t *len)
{
    *len = l->len;
    return l->buf;
}
