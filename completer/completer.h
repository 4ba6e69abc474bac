/* The completer stage: running_corrections + the container's exit -> finished_corrections. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "amqp_link.h"
#include "docker.h"
#include "error.h"

struct completer_config {
    struct amqp_link_config amqp;
    const char *running_queue;   /* RUNNING_QUEUE: the one its starter(s) publish to */
    uint64_t host_lost_grace_ms; /* HOST_LOST_GRACE (daemon.h, lost.h) */
    struct docker_config docker;
    unsigned prefetch;
    uint64_t correction_timeout_ms; /* for containers without the deadline label */
    size_t max_output_bytes;
    uint64_t retention_ms; /* unclaimed containers: kept this long, then reported or removed */
    uint64_t reconcile_ms; /* how often our labelled containers are listed */
    uint64_t renew_ms;     /* a running message held this long is re-published and acked */
    uint64_t done_ttl_ms;  /* finished jobs are remembered this long (duplicates) */
    uint64_t max_tracked;  /* jobs tracked at most */
    uint64_t retry_min_ms, retry_max_ms;
    uint64_t shutdown_timeout_ms;
};

typedef struct completer completer;

int completer_new(uv_loop_t *loop, const struct completer_config *cfg, completer **ret,
                  struct ct_error *err);
int completer_start(completer *c);
void completer_shutdown(completer *c, void (*done)(void *), void *userdata);
void completer_free(completer *c);
