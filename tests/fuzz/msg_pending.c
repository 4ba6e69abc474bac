/* Fuzz target: msg_pending_parse, the starter's parser of pending_corrections bodies (written by
 * whoever can publish to the queue).
 *
 * Invariants:
 * - an accepted job has every required field, non-empty, without control characters, a valid
 *   callback URL and valid NAME=VALUE params, within the MSG_MAX_* bounds;
 * - the same fields written back as JSON parse again to the same job;
 * - what the starter then does with it cannot fail for the job's text: the image reference
 *   split and matched against an allowlist, the running message (which parses back, and fits
 *   MSG_MIN_MESSAGE_BYTES: every field is bounded);
 * - a refused job has a reason, and a detail that is valid UTF-8 (it goes into JSON); when its
 *   callback was valid, the error result for the caller serializes, fits MSG_MIN_MESSAGE_BYTES
 *   and parses back;
 * - a body over max_len is refused;
 * - nothing leaks (ASan). */
#include <assert.h>
#include <string.h>

#include "fuzz.h"
#include "msg.h"
#include "registry.h"
#include "webhook.h"

#define MAX_LEN (1024 * 1024)
#define CONTAINER_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define JOB_ID "123e4567-e89b-42d3-a456-426614174000"

static void check_string_field(const char *s, size_t max)
{
    FUZZ_CHECK(s && *s);
    FUZZ_CHECK(strlen(s) <= max);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
    FUZZ_CHECK(fuzz_str_utf8_valid(s));
}

/* The job's fields as a pending body again. */
static char *pending_dump(const struct pending_job *j)
{
    json_t *o = json_object(), *params = json_array();
    FUZZ_CHECK(o && params);
    if (j->work_id)
        json_object_set(o, "work_id", j->work_id);
    json_object_set_new(o, "image", json_string(j->image));
    json_object_set_new(o, "file", json_string(j->file));
    json_object_set_new(o, "callback", json_string(j->callback));
    for (size_t i = 0; i < j->n_params; i++)
        FUZZ_CHECK(json_array_append_new(params, json_string(j->params[i])) == 0);
    json_object_set_new(o, "params", params);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    FUZZ_CHECK(s);
    return s;
}

static void check_same(const struct pending_job *a, const struct pending_job *b)
{
    FUZZ_CHECK((a->work_id == NULL) == (b->work_id == NULL));
    if (a->work_id)
        FUZZ_CHECK(json_equal(a->work_id, b->work_id));
    FUZZ_CHECK(strcmp(a->image, b->image) == 0);
    FUZZ_CHECK(strcmp(a->file, b->file) == 0);
    FUZZ_CHECK(strcmp(a->callback, b->callback) == 0);
    FUZZ_CHECK(a->n_params == b->n_params);
    for (size_t i = 0; i < a->n_params; i++)
        FUZZ_CHECK(strcmp(a->params[i], b->params[i]) == 0);
}

static void check_accepted(const struct pending_job *job)
{
    FUZZ_CHECK(!job->work_id || json_is_string(job->work_id) || json_is_number(job->work_id));
    FUZZ_CHECK(!json_is_string(job->work_id) ||
               json_string_length(job->work_id) <= MSG_MAX_WORK_ID_BYTES);
    check_string_field(job->image, MSG_MAX_IMAGE_BYTES);
    check_string_field(job->file, 4096);
    check_string_field(job->callback, MSG_MAX_URL_BYTES);
    FUZZ_CHECK(msg_validate_callback(job->callback, NULL) == 0);
    FUZZ_CHECK(job->n_params <= MSG_MAX_PARAMS);
    size_t total = 0;
    for (size_t i = 0; i < job->n_params; i++) {
        FUZZ_CHECK(job->params[i]);
        FUZZ_CHECK(msg_validate_param(job->params[i], NULL) == 0);
        FUZZ_CHECK(fuzz_str_utf8_valid(job->params[i]));
        total += strlen(job->params[i]);
    }
    FUZZ_CHECK(total <= MSG_MAX_PARAM_BYTES);

    /* Written back, it parses to the same job. */
    char *again = pending_dump(job);
    struct pending_job job2;
    struct msg_error err2;
    FUZZ_CHECK(msg_pending_parse(again, strlen(again), SIZE_MAX, &job2, &err2) == 0);
    check_same(job, &job2);
    msg_pending_free(&job2);
    free(again);

    /* What the starter does next. */
    struct registry_ref ref;
    (void)registry_ref_parse(job->image, &ref);
    static registry_allowlist *allow;
    if (!allow)
        FUZZ_CHECK(registry_allowlist_parse("registry.example/*,correction-*,ct/java", "fuzz",
                                            &allow, NULL) == 0);
    (void)registry_allowlist_match(allow, job->image);

    struct running_msg rm = {
        .work_id = job->work_id,
        .container_id = CONTAINER_ID,
        .callback = job->callback,
        .job_id = JOB_ID,
    };
    char *running = msg_running_serialize(&rm);
    FUZZ_CHECK(running && strlen(running) <= MSG_MIN_MESSAGE_BYTES);
    struct running_msg rm2;
    struct msg_error err3;
    FUZZ_CHECK(msg_running_parse(running, strlen(running), SIZE_MAX, &rm2, &err3) == 0);
    msg_running_free(&rm2);
    free(running);
}

/* A refused job: reported to its callback when it has one. */
static void check_refused(const struct pending_job *job, const struct msg_error *err)
{
    FUZZ_CHECK(err->reason[0]);
    FUZZ_CHECK(fuzz_str_utf8_valid(err->reason));
    FUZZ_CHECK(fuzz_str_utf8_valid(err->detail));
    if (!job->callback)
        return;
    check_string_field(job->callback, MSG_MAX_URL_BYTES);
    char text[sizeof(err->reason) + sizeof(err->detail) + 8];
    msg_error_text(err, text, sizeof(text));
    char *fin = msg_finished_error_serialize(job->work_id, JOB_ID, job->callback, text);
    FUZZ_CHECK(fin && strlen(fin) <= MSG_MIN_MESSAGE_BYTES);
    struct finished_msg fm;
    struct msg_error err2;
    FUZZ_CHECK(msg_finished_parse(fin, strlen(fin), SIZE_MAX, &fm, &err2) == 0);
    char *body = webhook_body(&fm);
    FUZZ_CHECK(body);
    free(body);
    msg_finished_free(&fm);
    free(fin);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    struct pending_job job;
    struct msg_error err;
    memset(&err, 0, sizeof(err));
    if (msg_pending_parse(data, size, MAX_LEN, &job, &err) == 0)
        check_accepted(&job);
    else
        check_refused(&job, &err);
    msg_pending_free(&job);

    if (size > 0) { /* one byte over the limit */
        FUZZ_CHECK(msg_pending_parse(data, size, size - 1, &job, &err) < 0);
        msg_pending_free(&job);
    }
    return 0;
}
