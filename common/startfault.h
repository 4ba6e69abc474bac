/* startfault: the starter's rule for the engine's answers to its calls (the "Faults" table at
 * the top of starter/starter.c). Pure: an answer's facts in (transport error, HTTP status, the
 * engine's message, the container's state), what to do out; the starter does it. Unit-tested
 * in tests/unit/test_startfault.c, beside refusal.h, which it uses for the engine's wording. */
#pragma once
#include <stdbool.h>

enum sf_action {
    SF_NEXT,            /* done: the next step */
    SF_ENGINE,          /* no answer, a 5xx, or nothing usable: probe the engine (GET /_ping) */
    SF_JOB_FAULT,       /* the job's error, with the step's reason */
    SF_SETTINGS,        /* the engine refuses this starter's settings: the job waits */
    SF_VANISHED,        /* the container is gone: create it again */
    SF_NAME_TAKEN,      /* create: 409, look at who holds the name */
    SF_CREATE_AGAIN,    /* create: 404, but a pull ended while it was on its way */
    SF_PULL,            /* create: 404, pulls allowed and not done for it yet */
    SF_IMAGE_NOT_FOUND, /* create: 404, no pull to try */
    SF_FILE_MISSING,    /* the submission is not in the container */
    SF_STARTED,         /* start: it runs (a start answered with an error may have run it) */
    SF_START_UNKNOWN,   /* start: no clear outcome: probe, then look before starting again */
    SF_IMAGE_FAULT,     /* start: the image's fault (its command or its user): the job's error */
    SF_DISCARD,         /* start: failed, nobody's fault known: a fresh container, counted */
};

struct sf_answer {
    int err;             /* the transport: 0, or a negative errno */
    long status;         /* HTTP status when err is 0 */
    const char *message; /* the engine's message (may be NULL) */
};

/* POST /containers/create. pull: DOCKER_PULL; pulled: this job pulled already; pull_ended: a
 * pull ended since this create was sent. *setting: see refusal.h (SF_SETTINGS). */
enum sf_action sf_create(struct sf_answer a, bool pull, bool pulled, bool pull_ended,
                         const char **setting);
/* HEAD .../archive?path=... (is the submission there?) */
enum sf_action sf_file_check(struct sf_answer a);
/* PUT .../archive */
enum sf_action sf_upload(struct sf_answer a);
/* POST .../start */
enum sf_action sf_start(struct sf_answer a, const char **setting);
/* GET .../json after a failed start (the engine answering /_ping): a the inspect's answer,
 * state its State.Status and exit_code its State.ExitCode (when a is a 200), start_error the
 * failed start's message. */
enum sf_action sf_start_checked(struct sf_answer a, const char *state, long long exit_code,
                                const char *start_error, const char **setting);
/* DELETE .../containers/{id} (discard, remove): 204, 404 and 409 (removal under way) are
 * done. */
enum sf_action sf_removed(struct sf_answer a);
