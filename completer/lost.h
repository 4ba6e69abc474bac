/* lost: the running messages of a Docker host that is gone (running_corrections.lost), taken
 * by every completer.
 *
 * Every host's running queue dead-letters to running_corrections.lost (common/qtype.h,
 * qtype_running_args). A running message gets there when it expires: the starter publishes it
 * with the job's time limit plus HOST_LOST_GRACE as its expiration, and the completer renews it
 * with what is left of that; a delivered message never expires, so while its host's completer
 * holds it, it stays. It expires only when no completer of its host took it back in time: the
 * host is gone (or its completer was down for that long). On quorum queues a running message
 * returned more than QUEUE_DELIVERY_LIMIT times gets there too.
 *
 *   reason      the container on this engine         what is done
 *   expired     yes, with the job's label            ours after all (our completer was down
 *                                                    that long): back to our running queue
 *               no                                   "host lost - ...", the caller's error
 *                                                    result, to finished_corrections
 *               the engine does not answer           asked again after a backoff
 *   otherwise   -                                    parked in running_corrections.lost.invalid
 *
 * The original is acked only once the broker has confirmed what replaces it; a connection
 * lost first gives it back to the queue (at least once: the caller may hear "host lost"
 * twice, the same text and webhook-id).
 *
 * What it cannot tell: a host whose completer was down for longer than its jobs' time limit
 * plus HOST_LOST_GRACE, but whose engine lives, is reported lost by another host's completer;
 * its own completer, back, finds containers no running message claims and reports them from
 * their labels (a second callback for the same job_id, with the correction's own result). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "amqp_link.h"
#include "docker.h"

struct lost_config {
    const char *running_queue; /* ours: where a message of our own goes back */
    size_t max_message_bytes;
    uint64_t grace_ms;                   /* HOST_LOST_GRACE, said in the result */
    uint64_t retry_min_ms, retry_max_ms; /* the engine not answering */
};

typedef struct lost lost;

/* Registers the consumer of running_corrections.lost on link (before amqp_link_start). */
int lost_new(uv_loop_t *loop, amqp_link *link, docker *d, const struct lost_config *cfg,
             lost **ret);
/* Stops taking messages (a shutdown): those in hand finish or go back to the queue. */
void lost_pause(lost *l);
/* The messages in hand. */
unsigned lost_in_hand(const lost *l);
/* After the link and the client are freed (their callbacks have run): frees what is left. */
void lost_free(lost *l);
