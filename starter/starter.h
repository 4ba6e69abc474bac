/* The starter stage: pending_corrections -> a started correction container ->
 * running_corrections. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "amqp_link.h"
#include "docker.h"
#include "names.h"
#include "registry.h"
#include "error.h"

struct starter_config {
    struct amqp_link_config amqp;
    const char *running_queue; /* RUNNING_QUEUE: one per Docker host when there are several */
    uint64_t host_lost_grace_ms; /* HOST_LOST_GRACE (daemon.h) */
    struct docker_config docker;
    uint64_t max_running;
    uint64_t max_starting; /* MAX_STARTING: jobs in the engine's setup calls at once */
    uint64_t hold_jobs;    /* HOLD_JOBS: jobs taken ahead while at capacity, ready for a slot */
    const char *network;
    bool net_isolated; /* CORRECTION_NETWORK=isolated: "default" where that is loopback only */
    uint64_t memory_bytes;
    uint64_t nanocpus;
    uint64_t pids;
    const char *cap_add; /* comma-separated, NULL: none */
    const char *log_max_size;
    uint64_t max_file_size;  /* CORRECTION_MAX_FILE_SIZE: RLIMIT_FSIZE of the correction */
    uint64_t max_open_files; /* CORRECTION_MAX_OPEN_FILES: RLIMIT_NOFILE */
    bool read_only;          /* CORRECTION_READ_ONLY: read-only root, /tmp an anonymous volume */
    const char *user;        /* CORRECTION_USER: Config.User; NULL: the image's */
    const char *runtime;     /* CORRECTION_RUNTIME: HostConfig.Runtime; NULL: the engine's */
    uint64_t max_exercise_bytes;
    const char *exercise_dir;
    bool exercise_bind;            /* EXERCISE_MODE=bind: mounted, not uploaded (when it can) */
    const char *exercise_host_dir; /* EXERCISE_HOST_DIR: exercise_dir as the engine sees it */
    bool dont_start;
    bool delete_file;
    uint64_t correction_timeout_ms;
    uint64_t retry_min_ms, retry_max_ms;
    uint64_t job_retry_budget_ms; /* JOB_RETRY_BUDGET: how long one job's faults are retried
                                     while the engine answers, before they are its error */
    uint64_t shutdown_timeout_ms;
    uint64_t reconcile_ms;
    bool pull;                       /* DOCKER_PULL: pull a missing image, then create again */
    uint64_t pull_timeout_ms;        /* DOCKER_PULL_TIMEOUT */
    const registry_creds *creds;     /* per registry host; NULL: none. Not owned */
    const registry_allowlist *allow; /* ALLOWED_IMAGES; NULL: any image. Not owned */
};

typedef struct starter starter;

int starter_new(uv_loop_t *loop, const struct starter_config *cfg, starter **ret,
                struct ct_error *err);
int starter_start(starter *s);
/* Stops consuming, lets in-flight jobs finish (or returns them to the queue at the
 * deadline), closes everything; done() runs once all is released. */
void starter_shutdown(starter *s, void (*done)(void *userdata), void *userdata);
void starter_free(starter *s);
