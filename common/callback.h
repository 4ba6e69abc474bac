/* callback: what one attempt to deliver a result to its callback URL means, and the words the
 * notifier records for it (its log, and the headers of a message retried or parked). Pure: no
 * I/O, no clock; tests/unit/test_callback.c holds the table.
 *
 *   every address refused by the policy, no answer     CALLBACK_REFUSED  park (final)
 *   a 2xx, whatever follows its status line             CALLBACK_DELIVERED  ack
 *   410 Gone                                            CALLBACK_GONE     park (final)
 *   anything else: another status, a timeout, a
 *   transport error                                     CALLBACK_RETRY    retry later */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum callback_outcome { CALLBACK_DELIVERED, CALLBACK_REFUSED, CALLBACK_GONE, CALLBACK_RETRY };

struct callback_attempt {
    long status;            /* the answer's status line, 0 when none came */
    int err;                /* the transfer's error (negative errno), 0 when none */
    const char *err_detail; /* the transport's own words (may quote the URL), or NULL */
    const char *refused;    /* the last address refused and why ("" or NULL: none) */
    unsigned opened;        /* addresses the policy allowed a socket to */
    bool connected;         /* a connection was allowed to carry the callback */
};

enum callback_outcome callback_outcome(const struct callback_attempt *a);

/* The error of an attempt that was not delivered: "HTTP 503", "no answer within N ms", the
 * transport's words..., with " (refused: <address and why>)" when an address was refused
 * and no connection carried the callback; every quote of url redacted (see callback_scrub). */
void callback_error_text(const struct callback_attempt *a, uint64_t timeout_ms, const char *url,
                         char *buf, size_t len);

/* text with every stretch that repeats the start of url (at least 8 bytes of it: msg.c quotes
 * the first 200 bytes of an invalid URL, curl may quote it too) replaced by its redacted form
 * (text_redact_url), made valid UTF-8, in place: a reason or an error that goes to a log line
 * or a header shows no credential. */
void callback_scrub(char *text, size_t len, const char *url);
