/* startfault: the starter's rule for the engine's answers (see startfault.h). */
#include "startfault.h"

#include <string.h>

#include "refusal.h"

static bool no_answer(struct sf_answer a)
{
    return a.err != 0 || a.status >= 500;
}

enum sf_action sf_create(struct sf_answer a, bool pull, bool pulled, bool pull_ended,
                         const char **setting)
{
    if (no_answer(a))
        return SF_ENGINE;
    if (a.status == 201)
        return SF_NEXT;
    if (a.status == 409)
        return SF_NAME_TAKEN;
    if (a.status == 404 && pull && !pulled)
        /* jobs are set up a few at a time, so a burst's creates straddle its image's pull */
        return pull_ended ? SF_CREATE_AGAIN : SF_PULL;
    if (a.status == 404)
        return SF_IMAGE_NOT_FOUND;
    if (refusal_classify(a.message, setting) == REFUSAL_SETTINGS)
        return SF_SETTINGS;
    return SF_JOB_FAULT;
}

enum sf_action sf_file_check(struct sf_answer a)
{
    if (no_answer(a))
        return SF_ENGINE;
    if (a.status == 200)
        return SF_NEXT;
    return a.status == 404 ? SF_FILE_MISSING : SF_ENGINE;
}

enum sf_action sf_upload(struct sf_answer a)
{
    if (no_answer(a))
        return SF_ENGINE;
    if (a.status == 200)
        return SF_NEXT;
    return a.status == 404 ? SF_VANISHED : SF_JOB_FAULT;
}

enum sf_action sf_start(struct sf_answer a, const char **setting)
{
    if (a.err == 0 && (a.status == 204 || a.status == 304))
        return SF_STARTED;
    if (a.err == 0 && a.status == 404)
        /* Docker refuses a start on a missing network with 404 too */
        return refusal_classify(a.message, setting) == REFUSAL_SETTINGS ? SF_SETTINGS : SF_VANISHED;
    /* No answer, or an error: the engine may have run it all the same (a restart with
     * --live-restore does), so the next attempt looks before it starts. */
    return SF_START_UNKNOWN;
}

enum sf_action sf_start_checked(struct sf_answer a, const char *state, long long exit_code,
                                const char *start_error, const char **setting)
{
    if (a.err == 0 && a.status == 404)
        return SF_VANISHED;
    if (a.err == 0 && a.status == 200 && state) {
        if (strcmp(state, "created") != 0)
            return SF_STARTED;
        switch (refusal_classify(start_error, setting)) {
        case REFUSAL_SETTINGS:
            return SF_SETTINGS;
        case REFUSAL_IMAGE: /* no such user in the image (its USER, or CORRECTION_USER) */
            return SF_IMAGE_FAULT;
        case REFUSAL_NONE:
            break;
        }
        /* the runtime could not execute the image's command: not found 127, not executable 126 */
        if (exit_code == 126 || exit_code == 127)
            return SF_IMAGE_FAULT;
    }
    /* The engine answers and the image is not at fault: a fresh container, under a new name
     * (a start that failed half-way can leave a network endpoint of its name behind). */
    return SF_DISCARD;
}

enum sf_action sf_removed(struct sf_answer a)
{
    if (no_answer(a))
        return SF_ENGINE;
    return a.status == 204 || a.status == 404 || a.status == 409 ? SF_NEXT : SF_ENGINE;
}
