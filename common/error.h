/* error: what went wrong, said for a person. The one error type of common/ and the stages for
 * everything that fails before or beside the work itself: configuration (config.h), the
 * constructors (docker_new, starter_new...), the Docker endpoint and its TLS files, registries,
 * the metrics server, the failed-callback replay. A code (a negative errno: -EINVAL for bad
 * input, -ENOMEM, -EIO...) for the program, a message for the log.
 *
 * The errors a caller receives about a job are another thing: msg.h's msg_error, a reason of
 * the wire contract ("image not found"...) and a detail, made valid UTF-8. */
#pragma once

struct ct_error {
    int code;      /* 0, or a negative errno */
    char msg[512]; /* "" when code is 0 */
};

/* Sets *e (when e is not NULL) to code and the printf-style message; returns code, so that
 * `return ct_error_set(e, -EINVAL, "bad %s", what);` reports and fails in one line. */
int ct_error_set(struct ct_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
