/* status_daemons: the daemons correctomatic-status is told about (STATUS_DAEMONS, --daemon: the
 * METRICS_LISTEN address of each), asked GET /readyz and GET /metrics: which daemon and version,
 * alive (it answered both, as it should), ready (/readyz, or why not), uptime, memory and its
 * stage's figures. Internal to correctomatic-status (status.c holds the command and the queues).
 *
 *   sd = status_daemons_new();
 *   status_daemons_add(sd, "starter:9100,completer:9100", "STATUS_DAEMONS", &e);  // and more
 *   status_daemons_prepare(sd);
 *   status_daemons_read(sd);                    // every round: blocks, bounded by timeouts
 *   status_daemons_healthy(sd), status_daemons_json(sd), status_daemons_print(sd);
 *   status_daemons_free(sd);
 *
 * At most STATUS_DAEMONS_MAX daemons; each request takes at most 5 s (2 s to connect), all
 * daemons at once; an answer over 4 MiB is abandoned. Not thread-safe; no event loop. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define STATUS_DAEMONS_MAX 32

struct status_daemons;

/* An empty list, or NULL when out of memory. */
struct status_daemons *status_daemons_new(void);
/* Accepts NULL; cleans libcurl up when status_daemons_prepare set it up. */
void status_daemons_free(struct status_daemons *sd);

/* Adds the comma-separated host:port addresses of list (host a name, an IPv4 address or
 * [IPv6]; blanks around each are ignored), after those already listed. source (the variable or
 * option) is named in the message. 0, or -EINVAL with a message in e (some entries before the
 * bad one may have been added). */
int status_daemons_add(struct status_daemons *sd, const char *list, const char *source,
                       struct ct_error *e);

size_t status_daemons_count(const struct status_daemons *sd);

/* Once, after the last status_daemons_add: sets libcurl up when a daemon is listed. 0, or -EIO
 * when libcurl cannot be initialised. */
int status_daemons_prepare(struct status_daemons *sd);

/* One round: asks every daemon, and reads the answers (those of the round before are
 * forgotten). */
void status_daemons_read(struct status_daemons *sd);

/* True when every daemon listed answered as it should and is ready (true when none is). */
bool status_daemons_healthy(const struct status_daemons *sd);

/* The last round as a JSON array of one object a daemon (a new reference), or NULL when out of
 * memory. */
json_t *status_daemons_json(const struct status_daemons *sd);

/* The last round as a table on stdout, after a blank line; nothing when no daemon is listed. */
void status_daemons_print(const struct status_daemons *sd);
