/* text: the one rule for text from outside (a container's output, a Docker or receiver message,
 * a file name, a param): before it enters JSON or a log it is made valid UTF-8, and it is cut
 * only at a character boundary. Pure functions. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* The length (1 to 4) of the well-formed UTF-8 character at s (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 when s does not start one. len > 0. */
size_t text_utf8_char_len(const void *s, size_t len);

/* True when s[0..len) is well-formed UTF-8 without NUL. */
bool text_utf8_valid(const void *s, size_t len);

/* Copies at most len bytes of src into dst (dstlen bytes, always NUL-terminated when dstlen >
 * 0) as valid UTF-8: each byte that does not start a well-formed character, and each NUL,
 * becomes U+FFFD; the copy is cut only at a character boundary. Returns the bytes written,
 * without the NUL. */
size_t text_utf8_copy(char *dst, size_t dstlen, const void *src, size_t len);

/* The same into a malloc'd string of at most max_bytes bytes (plus the NUL); NULL on ENOMEM. */
char *text_utf8_dup(const void *src, size_t len, size_t max_bytes);

/* Shortens the NUL-terminated s in place to at most max_bytes bytes, at a character boundary
 * (s is assumed valid UTF-8 up to there). Returns the new length. */
size_t text_utf8_truncate(char *s, size_t max_bytes);

/* A URL fit for a log line or a label: the userinfo becomes "***" (u:p@h gives ***@h), and
 * every query value, bare query token and the fragment become "***" (query keys are kept):
 * "/x?token=abc&v#f" gives "/x?token=***&***#***". Credentials in a callback URL never leave
 * the message that carries them. Written into dst like text_utf8_copy (valid UTF-8, cut at a
 * character boundary, always NUL-terminated when dstlen > 0; empty when memory runs out);
 * returns the bytes written. */
size_t text_redact_url(char *dst, size_t dstlen, const char *url);

/* A formatted string in memory of its own (free it), or NULL when out of memory. */
char *text_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One item of a comma-separated list starting at p: the item without the white space
 * (isspace: spaces, tabs, line ends) around it in *item and *len (possibly empty); returns where
 * the next item starts, or NULL when this one was the last. */
const char *text_list_item(const char *p, const char **item, size_t *len);
