/* names: the queues, container labels and message headers every daemon agrees on. */
#pragma once

#define QUEUE_PENDING "pending_corrections"
#define QUEUE_PENDING_INVALID "pending_corrections.invalid"
#define QUEUE_RUNNING "running_corrections"
#define QUEUE_RUNNING_INVALID "running_corrections.invalid"
/* Where every host's running queue dead-letters: a running message expired there (no completer
 * took it by its job's time limit plus HOST_LOST_GRACE: the host is gone), or, on quorum
 * queues, one returned too often. Consumed by every completer. */
#define QUEUE_RUNNING_LOST "running_corrections.lost"
#define QUEUE_FINISHED "finished_corrections"
#define QUEUE_FINISHED_INVALID "finished_corrections.invalid"
#define QUEUE_FAILED_CALLBACKS "failed_callbacks"
/* The notifier's retry queue of a delay (printf, unsigned long long milliseconds), e.g.
 * "finished_corrections.retry.5000ms": its TTL is the delay, it dead-letters back. */
#define QUEUE_RETRY_FMT QUEUE_FINISHED ".retry.%llums"

/* Labels on every correction container: the running message and these hold all the
 * completer needs. */
#define LABEL_JOB_ID "correctomatic.job_id"
#define LABEL_WORK_ID "correctomatic.work_id" /* the work_id as JSON (keeps its type) */
#define LABEL_CALLBACK "correctomatic.callback"
/* Instead of LABEL_CALLBACK when the callback holds credentials (userinfo, query values, a
 * fragment): the URL as text_redact_url shows it, for people; the full URL is only in the
 * running message, and a container without LABEL_CALLBACK is never finished from its labels. */
#define LABEL_CALLBACK_REDACTED "correctomatic.callback_redacted"
#define LABEL_DEADLINE "correctomatic.deadline" /* unix seconds */
#define LABEL_HOST "correctomatic.host"
/* The submission's digest (a UUID of the pending message's bytes): a redelivered message
 * without a message_id finds the container its first delivery made by it. */
#define LABEL_SUBMISSION "correctomatic.submission"

/* Why a message was parked in a *.invalid queue, and the job it belonged to. */
#define HEADER_REASON "x-correctomatic-reason"
#define HEADER_JOB_ID "x-correctomatic-job-id"
/* Integers, ms since the epoch, carried for the metrics' durations: when the job was
 * submitted (the pending message's timestamp property, else when the starter took it), and
 * when its result was published (kept across the notifier's retries). */
#define HEADER_SUBMITTED "x-correctomatic-submitted-ms"
#define HEADER_FINISHED "x-correctomatic-finished-ms"
