/* qtype: the declare arguments of our queues, classic or quorum (QUEUE_TYPE).
 *
 * Every daemon declaring a queue must ask for the same arguments, or the broker refuses the
 * second declare (PRECONDITION_FAILED): so they follow from the queue's name, the queue type
 * and the caller's own arguments alone, whoever declares it and in whatever order.
 *
 * classic: the caller's arguments, unchanged (what deployments have always had).
 * quorum:  every queue gets x-queue-type=quorum, and
 *   - a work queue (not a parking queue, "<q>.invalid" or failed_callbacks, and no
 *     x-message-ttl of its own: pending, the running queues, running_corrections.lost,
 *     finished) gets x-delivery-limit=<limit>, so a message that keeps coming back (a
 *     consumer crashing on it, a channel closed on it again and again) is dead-lettered,
 *     never redelivered forever: to "<q>.invalid" (the default exchange) when it has no
 *     dead-letter exchange of its own, its companion "<q>.invalid" declared with it
 *     (qtype_companion); a running queue's own (qtype_running_args) goes to
 *     running_corrections.lost, whose consumer parks such a message;
 *   - a queue with a dead-letter exchange (the work queues above, the notifier's retry
 *     queues: x-message-ttl then back to finished_corrections) dead-letters at-least-once
 *     (x-dead-letter-strategy=at-least-once, which RabbitMQ honours only with
 *     x-overflow=reject-publish): a message is removed from its queue only once the target
 *     queue has confirmed it, so a node lost mid-way loses nothing.
 * RabbitMQ 3.10 to 3.13 count every return in the delivery count (a nack with requeue, a
 * channel or connection closed with the message unacked): a consumer must not return healthy
 * messages as a matter of course (the starter asks for no more than it may take, see its
 * capacity). The dead-lettered copy carries RabbitMQ's x-death header (reason
 * "delivery_limit") and x-first-death-reason, not x-correctomatic-reason. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "amqp_link.h"

enum qtype { QTYPE_CLASSIC, QTYPE_QUORUM };

#define QTYPE_DELIVERY_LIMIT_DEFAULT 20
#define QTYPE_MAX_ARGS 16 /* the caller's arguments and ours together, at most */

/* "classic" or "quorum": 0, else -EINVAL. */
int qtype_parse(const char *s, enum qtype *ret);

/* The arguments to declare queue `name` with (into out, at most QTYPE_MAX_ARGS; the strings
 * point into name, own, and companion: a buffer of at least strlen(name) + 9 bytes). How many,
 * or -E2BIG when they do not fit. */
int qtype_args(enum qtype t, unsigned delivery_limit, const char *name,
               const struct amqp_link_header *own, size_t n_own, struct amqp_link_header *out,
               char *companion, size_t companion_len);

/* The arguments of every running queue, whatever QUEUE_TYPE (the starter and the completer
 * declare it with them): its dead letters (a running message expired there, its host gone)
 * go to running_corrections.lost. */
extern const struct amqp_link_header qtype_running_args[2];

/* Whether declaring `name` (with own arguments) also needs "<name>.invalid" declared: the
 * target of its dead-lettering. */
bool qtype_companion(enum qtype t, const char *name, const struct amqp_link_header *own,
                     size_t n_own);
