/* log_tail: the last frames of a multiplexed log stream (GET /containers/{id}/logs without a
 * TTY: frames of an 8-byte header, stream and big-endian length, then the payload), kept as
 * the stream arrives in chunks, in bounded memory. Pure: no I/O.
 *
 * For engines whose own `tail` cannot be trusted (Podman 4.3 joins partial lines across
 * frames and streams, and answers nothing when the last line of the asked stream is partial;
 * docker_compat.h): the client reads the whole stream and keeps its end here, as Docker's
 * tail=N keeps the last N log entries (one frame each).
 *
 *   struct log_tail *t = log_tail_new(20, 1 << 20);
 *   log_tail_feed(t, chunk, len);                   // for every chunk, in order
 *   log_tail_result(t, &body, &body_len);           // the last 20 frames, as a stream
 *   log_tail_free(t);
 */
#pragma once
#include <stddef.h>

struct log_tail;

/* Keeps the last `frames` frames (at least 1) of any stream, max_bytes of stream at most (at
 * least 9), and gives those of the streams in the mask (1 << 1: stdout, 1 << 2: stderr; 0:
 * every stream): as Docker's tail counts the log's last entries, then keeps the asked streams'.
 * NULL on ENOMEM or a bad argument. */
struct log_tail *log_tail_new(unsigned frames, size_t max_bytes, unsigned streams);
void log_tail_free(struct log_tail *t); /* NULL is fine */

/* The next bytes of the stream. 0, or -ENOMEM (t is unusable then). */
int log_tail_feed(struct log_tail *t, const char *data, size_t len);

/* What is kept, oldest frame first, as a stream of at most max_bytes: the last frames whole
 * (older ones dropped to fit; one frame alone larger than that keeps its last bytes), and a
 * frame the stream ended inside as far as it came. malloc'd and NUL-terminated (the NUL not
 * counted) in *ret, its length in *ret_len. 0, or -ENOMEM. */
int log_tail_result(const struct log_tail *t, char **ret, size_t *ret_len);

/* A multiplexed stream (len bytes) with each frame's payload made valid UTF-8 as Docker's
 * json-file log stores it (Go's JSON): each byte that does not start a well-formed character
 * becomes U+FFFD (NUL is kept); a last frame cut short is kept as far as it came, and bytes
 * after it that are not a whole header as they are. For engines that store the output's bytes
 * as they are (Podman). malloc'd and NUL-terminated in *ret (3 x len bytes at most), its
 * length in *ret_len. 0, or -ENOMEM. */
int log_tail_utf8(const char *in, size_t len, char **ret, size_t *ret_len);
