/* watch: the Docker events stream of a stage, kept up, and the container list that is its
 * safety net. The starter (its running count) and the completer (its containers' exits) both
 * follow the engine's container events, and both need the same things around the stream, which
 * live here once:
 *
 *   - each event is handed over on a later turn of the loop, never from inside libcurl's write
 *     callback, so the handler may make Docker calls of its own;
 *   - the events waiting for that turn are bounded (max_pending); past the bound they are
 *     dropped and on_list says so;
 *   - when the stream ends (an engine restart, a broken connection) or cannot start, it is
 *     opened again after schedule_events_retry_ms(failures in a row); with resume set it asks
 *     the engine to replay from the last event's second (Docker keeps a short history);
 *   - on_list is called each time the stream is (re)opened (its request started: the engine
 *     may still refuse it), when events were dropped, and every list_interval_ms: what the
 *     stream could not say (Docker drops events under load), a container list finds, and the
 *     stage asks for one there.
 *
 * Only container events are delivered (action and full id, see docker_event_container). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "docker.h"

typedef struct watch watch;

struct watch_config {
    const char *const *actions; /* the container events wanted ("start", "die"...),
                                   NULL-terminated; NULL: all */
    const char *label;          /* only containers with this label ("key" or "key=value");
                                   NULL: any */
    bool resume;        /* reopen from the last event's time (else from the time of reopening) */
    size_t max_pending; /* events held until the next loop turn; 0: 1024 */
    uint64_t list_interval_ms; /* the periodic on_list; 0: none */
    void (*on_event)(const char *action, const char *id, void *userdata);
    void (*on_list)(void *userdata);
    /* The stream ended (why: the engine's or the transport's message); it reopens by itself.
     * May be NULL. */
    void (*on_end)(const char *why, void *userdata);
    void *userdata;
};

/* Opens the stream (or schedules its opening). 0 and *ret, -EINVAL, or -ENOMEM. The first
 * on_list comes once the stream is open. */
int watch_start(uv_loop_t *loop, docker *d, const struct watch_config *cfg, watch **ret);

/* Stops the stream and every callback; the memory is freed once libuv has closed the timers
 * (the loop must run). Call it before docker_free of the client it uses. NULL does nothing. */
void watch_close(watch *w);
