/* output: what a correction container printed, turned into a response (CONTRACT.md,
 * "The correction image"). Pure functions; the completer fetches the logs. */
#pragma once
#include <jansson.h>
#include <stddef.h>

#include "dtime.h"

#include "msg.h"

#define OUTPUT_REASON_NO_RESPONSE "no response found"
#define OUTPUT_REASON_INVALID_JSON "invalid JSON"
#define OUTPUT_REASON_INVALID_FORMAT "invalid response format"
#define OUTPUT_REASON_MANY_BLOCKS "more than one response block"
#define OUTPUT_REASON_TOO_LARGE MSG_REASON_OUTPUT_TOO_LARGE

/* Deepest response accepted: jansson parses at most 2048 levels, and the finished message puts
 * the response one level down. */
#define OUTPUT_MAX_DEPTH 2047

/* A bounded byte buffer. */
struct output_buf {
    char *data; /* NUL-terminated when not NULL */
    size_t len;
    size_t max;    /* bytes kept at most */
    int keep_tail; /* past max: 0 = stop (and mark overflow), 1 = keep the last max bytes */
    int overflow;  /* more than max bytes were offered */
};
void output_buf_free(struct output_buf *b);

/* Splits Docker's multiplexed log stream (8-byte frame headers: stream 1 stdout, 2 stderr)
 * into out and err, each bounded by its max. A frame cut short at the end of raw (a fetch that
 * hit its byte limit) is kept as far as it goes. 0, -EBADMSG (not a multiplexed stream), or
 * -ENOMEM. */
int output_demux(const void *raw, size_t len, struct output_buf *out, struct output_buf *err);

/* The latest time heading a frame of a stream read with timestamps=1 ("<RFC 3339> <line>",
 * dtime.h), in *ret: 1, or 0 when no frame has one, or -EBADMSG (not a multiplexed stream). */
int output_latest_time(const void *raw, size_t len, struct dtime *ret);

/* Finds and validates the response in stdout: the whole of it as JSON, else exactly one
 * BEGIN/END block (one or more dashes on each side, "\n" or "\r\n" line ends). On success
 * *ret is a new reference to the response object; else -EINVAL with err set (reason is one
 * of the OUTPUT_REASON_* above, detail says what). */
int output_parse(const char *stdout_data, size_t len, json_t **ret, struct msg_error *err);

/* The response schema alone: {"success": true, "grade": number and/or "comments": [strings]}
 * or {"success": false, "error": string}; extra properties allowed. */
int output_validate(json_t *response, struct msg_error *err);

/* The last max_lines lines of s (at most max_bytes), for error details; a view into s. */
const char *output_tail(const char *s, size_t len, unsigned max_lines, size_t max_bytes,
                        size_t *ret_len);
