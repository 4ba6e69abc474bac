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

struct pending_job {
    json_t *work_id; /* string or number, NULL when absent */
    char *image;
    char *file;
    char *callback;
    char **params; /* "NAME=VALUE" */
    size_t n_params;
};

/* Parses and validates a pending_corrections body of at most max_len bytes. On -EINVAL,
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
/* The error form: correction_data is "<reason> - <detail>". */
char *msg_finished_error_serialize(json_t *work_id, const char *job_id, const char *callback,
                                   const char *text);
int msg_finished_parse(const void *body, size_t len, size_t max_len, struct finished_msg *ret,
                       struct msg_error *err);
void msg_finished_free(struct finished_msg *m);
