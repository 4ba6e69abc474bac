/* refusal: whose fault it is when the engine refuses to create or start a correction's
 * container, read from its error message. Pure: no I/O; tests/unit/test_refusal.c holds the
 * messages of Docker 20.10 and Podman 4.3 it was written from.
 *
 *   REFUSAL_SETTINGS  the starter's own container settings, the same for every job: a CPU count
 *                     above the engine's, an unknown runtime or capability, a network that does
 *                     not exist, a ulimit above the engine's own hard limit. Nobody's job is at
 *                     fault: the job waits, and the daemon says it is not ready and why.
 *   REFUSAL_IMAGE     the correction image: its command cannot be found or run, or it has no
 *                     such user as the container runs as. The job fails, with the message.
 *   REFUSAL_NONE      neither is recognised: the caller's usual rule applies.
 */
#pragma once

enum refusal { REFUSAL_NONE, REFUSAL_SETTINGS, REFUSAL_IMAGE };

/* Classifies message (NULL is REFUSAL_NONE); for REFUSAL_SETTINGS, *setting (when not NULL) is
 * the name of the setting to look at, a static string. */
enum refusal refusal_classify(const char *message, const char **setting);
