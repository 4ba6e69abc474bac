/* refusal: see refusal.h. */
#include "refusal.h"

#include <stddef.h>
#include <string.h>

struct rule {
    const char *needle; /* found in the message ... */
    const char *also;   /* ... with this too (NULL: alone) */
    enum refusal whose;
    const char *setting; /* for REFUSAL_SETTINGS */
};

/* The first rule that matches decides: the specific rlimit types come before the general one. */
static const struct rule rules[] = {
    /* create, 400 */
    {"Range of CPUs is from", NULL, REFUSAL_SETTINGS, "CORRECTION_CPUS"},
    {"Unknown runtime specified", NULL, REFUSAL_SETTINGS, "CORRECTION_RUNTIME"},
    {"unknown capability", NULL, REFUSAL_SETTINGS, "CORRECTION_CAP_ADD"},
    {"invalid CapAdd", NULL, REFUSAL_SETTINGS, "CORRECTION_CAP_ADD"},
    /* start, 404 (a network of that name was there at create, or never was) */
    {"network ", " not found", REFUSAL_SETTINGS, "CORRECTION_NETWORK"},
    /* start, 500, from runc: above the engine's own hard limit */
    {"error setting rlimit type 7:", NULL, REFUSAL_SETTINGS, "CORRECTION_MAX_OPEN_FILES"},
    {"error setting rlimit type 1:", NULL, REFUSAL_SETTINGS, "CORRECTION_MAX_FILE_SIZE"},
    {"error setting rlimit", NULL, REFUSAL_SETTINGS, "the containers' ulimits"},
    /* create, 400 from the client (docker_compat.h): rootless Podman on cgroup v1 */
    {"resource limits are not supported by this engine", NULL, REFUSAL_SETTINGS,
     "CORRECTION_MEMORY, CORRECTION_CPUS, CORRECTION_PIDS (the engine)"},
    /* start, 500: the image has no such user (its USER, or CORRECTION_USER) */
    {"unable to find user", NULL, REFUSAL_IMAGE, NULL},
    {"no matching entries in passwd file", NULL, REFUSAL_IMAGE, NULL},
    {"no matching entries in group file", NULL, REFUSAL_IMAGE, NULL},
    /* start, 500, Podman: the image's command cannot be found or run. Docker leaves such a
     * container "created" with ExitCode 127 or 126, which the starter reads; Podman leaves
     * ExitCode 0 and says it here only (its "cause", at the end of the message) */
    {"OCI runtime attempted to invoke a command that was not found", NULL, REFUSAL_IMAGE, NULL},
    {"OCI runtime permission denied", NULL, REFUSAL_IMAGE, NULL},
};

enum refusal refusal_classify(const char *message, const char **setting)
{
    if (setting)
        *setting = NULL;
    if (!message)
        return REFUSAL_NONE;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const char *at = strstr(message, rules[i].needle);
        if (!at || (rules[i].also && !strstr(at + strlen(rules[i].needle), rules[i].also)))
            continue;
        if (setting)
            *setting = rules[i].setting;
        return rules[i].whose;
    }
    return REFUSAL_NONE;
}
