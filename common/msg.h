/* msg: the three queue messages of ../shared/CONTRACT.md: parse, validate, serialize.
 *
 * Serialized messages are compact JSON with sorted keys, so the same content always gives
 * the same bytes. A bad message yields a msg_error naming the field and what was wrong. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Reasons, the left side of "<reason> - <detail>". */
#define MSG_REASON_INVALID_MESSAGE "invalid message"
#define MSG_REASON_INVALID_PARAM "invalid param"
#define MSG_REASON_INVALID_CALLBACK "invalid callback"

struct msg_error {
    char reason[64];
    char detail[448];
};
/* "<reason> - <detail>" into buf (always NUL-terminated). */
const char *msg_error_text(const struct msg_error *err, char *buf, size_t len);
void msg_error_set(struct msg_error *err, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MSG_MAX_PARAMS 256
#define MSG_MAX_PARAM_BYTES 65536
#define MSG_MAX_IMAGE_BYTES 512
#define MSG_MAX_URL_BYTES 4096
#define MSG_MAX_WORK_ID_BYTES 1024 /* a string work_id (it goes into a label too) */
#define MSG_MAX_JOB_ID_BYTES 128
#define MSG_MAX_ERROR_TEXT_BYTES 8192 /* "<reason> - <detail>" of an error result */
/* Every field but the error text is bounded: a running message, and a finished message in the
 * error form with its text cut to fit (msg_finished_serialize_fit), always fit a queue message
 * of this size. MAX_MESSAGE_BYTES is at least this. */
#define MSG_MIN_MESSAGE_BYTES 16384
#define MSG_REASON_OUTPUT_TOO_LARGE "output too large"

struct pending_job {
    json_t *work_id; /* string or number, NULL when absent */
    char *image;
    char *file;
    char *callback;
    char **params; /* "NAME=VALUE" */
    size_t n_params;
};

/* Parsers: 0, -EINVAL (err says why: the message's fault) or -ENOMEM (ours: retry later).
 * Strings in a parsed message are valid UTF-8 (JSON's own rule, checked by jansson), string
 * fields hold no control characters, and every field is bounded (MSG_MAX_*).
 *
 * Parses and validates a pending_corrections body of at most max_len bytes. On -EINVAL,
 * err says why, and ret still holds the work_id and callback when those were valid (so the
 * caller can be told): release it with msg_pending_free in every case. */
int msg_pending_parse(const void *body, size_t len, size_t max_len, struct pending_job *ret,
                      struct msg_error *err);
void msg_pending_free(struct pending_job *job);

/* The work_id as text for logs: the string itself, a number as JSON, "" when absent. */
void msg_work_id_text(const json_t *work_id, char *buf, size_t len);

/* 0 when url is an absolute http or https URL with a host, else -EINVAL with err set. */
int msg_validate_callback(const char *url, struct msg_error *err);
/* 0 when s is "NAME=VALUE" with NAME a valid environment variable name. */
int msg_validate_param(const char *s, struct msg_error *err);

struct running_msg {
    json_t *work_id;    /* NULL when absent */
    char *container_id; /* also read from the legacy key "id" */
    char *callback;
    char *job_id; /* extension; NULL when absent */
};
char *msg_running_serialize(const struct running_msg *m); /* malloc'd, NULL on ENOMEM */
int msg_running_parse(const void *body, size_t len, size_t max_len, struct running_msg *ret,
                      struct msg_error *err);
void msg_running_free(struct running_msg *m);

struct finished_msg {
    json_t *work_id; /* NULL when absent */
    bool error;
    json_t *correction_data; /* the response object when !error, else a string */
    char *callback;
    char *job_id; /* extension; NULL when absent */
};
char *msg_finished_serialize(const struct finished_msg *m);
/* The error form: correction_data is "<reason> - <detail>", made valid UTF-8 and cut at
 * MSG_MAX_ERROR_TEXT_BYTES (so it serializes whatever the text; NULL only on ENOMEM). */
char *msg_finished_error_serialize(json_t *work_id, const char *job_id, const char *callback,
                                   const char *text);
/* The finished message for m when it is at most max_bytes long. Else, for the same job: an
 * error form with its text cut to fit, or for a response the error form "output too large -
 * ...". Every such error form fits max_bytes >= MSG_MIN_MESSAGE_BYTES. *ret_len (optional)
 * gets the length. NULL on ENOMEM, or (errno E2BIG) when max_bytes is below that minimum and
 * nothing fits. */
char *msg_finished_serialize_fit(const struct finished_msg *m, size_t max_bytes, size_t *ret_len);
int msg_finished_parse(const void *body, size_t len, size_t max_len, struct finished_msg *ret,
                       struct msg_error *err);
void msg_finished_free(struct finished_msg *m);
