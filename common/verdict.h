/* verdict: what a finished correction's result says, decided from the facts the completer
 * gathered about its container (its inspect, its logs, the engine's outages). Pure: no I/O, no
 * clock; tests/unit/test_verdict.c holds the table.
 *
 * The first fact that applies decides, in this order:
 *
 *   container missing       it went away before its output could be read
 *   time limit exceeded     killed at its deadline, or never started within it
 *   memory limit exceeded   killed by the out-of-memory killer
 *   output too large        stdout over MAX_OUTPUT_BYTES
 *   (success)               a response was found in stdout
 *   output lost             no response, and it finished while the engine was unavailable
 *   output too large        no response, and its json-file log rotated (the response may have
 *                           been pushed out)
 *   container killed        no response, and it died of SIGKILL or SIGTERM (exit 137/143);
 *                           a SIGKILL under a memory limit says that it may have been one
 *   the parser's reason     no response: why not (no response found, invalid format...)
 *
 * An error detail ends with the exit code and the tail of stderr when they help, made valid
 * UTF-8 whatever the container wrote. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "msg.h"

#define VERDICT_TIMEOUT "time limit exceeded"
#define VERDICT_OOM "memory limit exceeded"
#define VERDICT_KILLED "container killed"
#define VERDICT_MISSING "container missing"
#define VERDICT_OUTPUT_LOST "output lost"

struct verdict_facts {
    const char *missing; /* why the container is missing, or NULL */
    bool timed_out;      /* killed at its deadline (or past it, the engine down) */
    bool unstarted;      /* ... because it was never started */
    long long limit_s;   /* the time limit */
    bool oom;            /* the engine's OOMKilled flag or its oom event */
    long long memory;    /* the memory limit, bytes */
    bool out_too_large;  /* stdout over max_output */
    size_t max_output;
    bool has_response;                 /* a response was found in stdout */
    const struct msg_error *parse_err; /* else why not (not NULL then) */
    bool output_lost;                  /* it finished while the engine was unavailable */
    bool log_rotated;                  /* its json-file log rotated */
    size_t log_bytes;                  /* what that log keeps: max-size x max-file */
    long long exit_code;
    const char *stderr_data; /* the end of its stderr (any bytes), or NULL */
    size_t stderr_len;
};

struct verdict {
    bool success;       /* the response is the result */
    const char *reason; /* else the error's reason */
    char detail[2048];  /* and its detail, valid UTF-8 */
};

/* The lines of stderr an error detail ends with, at most. */
#define VERDICT_STDERR_LINES 5
#define VERDICT_STDERR_BYTES 400

void verdict_decide(const struct verdict_facts *f, struct verdict *v);
