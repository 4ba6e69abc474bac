/* docker_compat: what differs between engines that speak the Docker Engine API, made to look
 * like Docker behind the client (docker.c), so the stages never ask which engine they talk to.
 * Pure: no I/O; tests/unit/test_docker_compat.c holds the answers it was written from.
 *
 * Podman's compatible API (4.3, `podman system service`) differs from Docker 20.10 in:
 *   - /events filters: an "event" value is matched against Podman's own name of the action
 *     ("died" for die, "remove" for destroy) while the event reports Docker's "die" (and
 *     Podman's "remove"); a "label" value without "=" (the label is there, any value) matches
 *     nothing; several "label" values are OR'ed (Docker: AND'ed);
 *   - error statuses: a container name in use answers 500 (Docker: 409), a kill of a
 *     container that is not running answers 500 (Docker: 409); Podman says which in a "cause"
 *     field that Docker never sends.
 * Every rule is written so that it changes nothing in what Docker sends or answers. */
#pragma once
#include <jansson.h>
#include <stdbool.h>

/* The filters to send to the engine for the filters the caller asked for (not stolen): each
 * wanted "event" also under the other engine's name of it, and only "key=value" labels (a
 * label the engine may not understand is checked here instead: docker_compat_event_wanted).
 * NULL filters: NULL and 0. 0 and *ret (a new reference), or -ENOMEM. */
int docker_compat_events_filters(json_t *filters, json_t **ret);

/* Whether an event matches every "label" of the filters the caller asked for (AND, as Docker
 * does): "key" when Actor.Attributes has key, "key=value" when it has that value. NULL
 * filters, or none with a label: true. */
bool docker_compat_event_wanted(json_t *event, json_t *filters);

/* Rewrites an event's action names to Docker's ("died" to "die", a container's "remove" to
 * "destroy"), in "Action" and "status", and gives a die event Docker's "exitCode" attribute
 * when it has only Podman's "containerExitCode". */
void docker_compat_event_normalize(json_t *event);

/* The status Docker would have answered for this error answer (json: its parsed body, may be
 * NULL): 409 for Podman's "that name is already in use" and "container state improper"
 * 500s; any other status as it is. */
long docker_compat_status(long status, json_t *json);
