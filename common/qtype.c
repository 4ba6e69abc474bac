/* qtype: the declare arguments of our queues (see qtype.h). */
#include "qtype.h"

#include "names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SUFFIX ".invalid"

int qtype_parse(const char *s, enum qtype *ret)
{
    if (s && strcmp(s, "classic") == 0)
        *ret = QTYPE_CLASSIC;
    else if (s && strcmp(s, "quorum") == 0)
        *ret = QTYPE_QUORUM;
    else
        return -EINVAL;
    return 0;
}

static bool has_arg(const struct amqp_link_header *own, size_t n_own, const char *key)
{
    for (size_t i = 0; i < n_own; i++)
        if (own[i].key && strcmp(own[i].key, key) == 0)
            return true;
    return false;
}

/* Where messages are parked for people to read: "<q>.invalid", failed_callbacks. */
static bool is_parking(const char *name)
{
    size_t n = strlen(name), k = strlen(SUFFIX);
    return (n >= k && strcmp(name + n - k, SUFFIX) == 0) ||
           strcmp(name, QUEUE_FAILED_CALLBACKS) == 0;
}

/* A queue consumed for work: not a parking queue, not a delay queue (its own x-message-ttl:
 * the notifier's retry queues, never consumed). */
static bool is_work(const char *name, const struct amqp_link_header *own, size_t n_own)
{
    return name && !is_parking(name) && !has_arg(own, n_own, "x-message-ttl");
}

bool qtype_companion(enum qtype t, const char *name, const struct amqp_link_header *own,
                     size_t n_own)
{
    return t == QTYPE_QUORUM && is_work(name, own, n_own) &&
           !has_arg(own, n_own, "x-dead-letter-exchange");
}

int qtype_args(enum qtype t, unsigned delivery_limit, const char *name,
               const struct amqp_link_header *own, size_t n_own, struct amqp_link_header *out,
               char *companion, size_t companion_len)
{
    if (n_own > QTYPE_MAX_ARGS)
        return -E2BIG;
    size_t n = 0;
    for (size_t i = 0; i < n_own; i++)
        out[n++] = own[i];
    if (t == QTYPE_CLASSIC)
        return (int)n;
    bool work = is_work(name, own, n_own);
    bool to_invalid = qtype_companion(t, name, own, n_own);
    bool dead_letters = to_invalid || has_arg(own, n_own, "x-dead-letter-exchange");
    size_t more = 1 + (work ? 1 : 0) + (to_invalid ? 2 : 0) + (dead_letters ? 2 : 0);
    if (n + more > QTYPE_MAX_ARGS)
        return -E2BIG;
    if (to_invalid &&
        (size_t)snprintf(companion, companion_len, "%s" SUFFIX, name) >= companion_len)
        return -E2BIG;
    out[n++] = (struct amqp_link_header){.key = "x-queue-type", .str = "quorum"};
    if (work)
        out[n++] = (struct amqp_link_header){.key = "x-delivery-limit", .num = delivery_limit};
    if (to_invalid) {
        out[n++] = (struct amqp_link_header){.key = "x-dead-letter-exchange", .str = ""};
        out[n++] = (struct amqp_link_header){.key = "x-dead-letter-routing-key", .str = companion};
    }
    if (dead_letters) {
        out[n++] =
            (struct amqp_link_header){.key = "x-dead-letter-strategy", .str = "at-least-once"};
        out[n++] = (struct amqp_link_header){.key = "x-overflow", .str = "reject-publish"};
    }
    return (int)n;
}

const struct amqp_link_header qtype_running_args[2] = {
    {.key = "x-dead-letter-exchange", .str = ""},
    {.key = "x-dead-letter-routing-key", .str = QUEUE_RUNNING_LOST},
};
