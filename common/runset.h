/* runset.h: the correction containers running on the host, kept from the engine's events,
 * with a container list as the safety net. Pure bookkeeping: no I/O, no loop.
 *
 * The starter admits a job only while (running + being started) < MAX_RUNNING. It used to ask
 * the engine for a label-filtered list at every start, die and destroy event; the events say
 * the same thing, sooner (no round trip between a correction's exit and the next admission)
 * and for nothing (a list costs the engine about 2 ms of CPU, three per job). Events can be
 * missed (a broken stream, an engine restart), so a list still comes periodically and when
 * the stream comes back; its answer replaces what the events built, except where an event is
 * newer than the list:
 *
 *   - a container counted after the list was asked for, and not in it, stays counted (the
 *     list may predate its start);
 *   - a container that went away after the list was asked for is not counted again because
 *     the list still shows it running (the list may predate its exit), unless it started
 *     again since;
 *   - the answer to our own start call may arrive after the container's exit event (two
 *     connections, no order between them): a container whose exit was seen is not counted.
 *
 * Every rule errs towards counting a container that is gone (an admission waits for the next
 * event or list), never towards missing one that runs. Exits are remembered in a ring of
 * RUNSET_GONE_MAX ids: past that many exits during one list, or between a start and its
 * answer, a gone container may be counted until the next list.
 *
 * Ids are Docker container ids (64 hex digits); a longer string is refused with -EINVAL. */
#ifndef CT_RUNSET_H
#define CT_RUNSET_H

#include <stddef.h>
#include <stdint.h>

#define RUNSET_ID_MAX 64
#define RUNSET_GONE_MAX 256

typedef struct runset runset;

/* 0 and *ret, or -ENOMEM. runset_free(NULL) does nothing. */
int runset_new(runset **ret);
void runset_free(runset *rs);

/* How many containers are counted as running. */
size_t runset_count(const runset *rs);

/* The engine answered our start call for `id`: counted, unless its exit was already seen.
 * 0, -EINVAL (not an id) or -ENOMEM (not counted: the next list will). */
int runset_started(runset *rs, const char *id);

/* The engine's start event for `id`: counted (a container started again after its exit
 * counts again). Same results as runset_started. */
int runset_start_event(runset *rs, const char *id);

/* The engine's die or destroy event for `id`: not counted any more. */
void runset_gone(runset *rs, const char *id);

/* A list of the running containers is being asked for: a ticket for its answer. */
uint64_t runset_list_asked(runset *rs);

/* The answer to the list of `ticket`: the `n` ids it shows running (not ids are skipped). On
 * -ENOMEM nothing changes. */
int runset_list_answer(runset *rs, uint64_t ticket, const char *const *ids, size_t n);

#endif
