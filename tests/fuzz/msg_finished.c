/* Fuzz target: msg_finished_parse, the notifier's parser of finished_corrections bodies, and
 * webhook_body, the callback body built from what it parsed.
 *
 * Invariants:
 * - an accepted message has a boolean error, a string (error) or object (success)
 *   correction_data, a callback and an optional job_id, within bounds;
 * - serialized again it parses to the same message, and serializing that gives the same bytes;
 * - its callback body exists, is valid UTF-8 JSON, an object, with the message's work_id (or
 *   none), and on error {"success": false, "error": <the correction_data>};
 * - msg_finished_serialize_fit: at a limit of at least MSG_MIN_MESSAGE_BYTES (and, when it
 *   succeeds, below it) the result fits; it is the message itself when that fits, else the
 *   error form for the same job: the error text cut at a character boundary, or "output too
 *   large - ..." for a response (whole at MSG_MIN_MESSAGE_BYTES, perhaps cut below);
 * - a refused message has a reason and a valid UTF-8 detail;
 * - a body over max_len is refused;
 * - nothing leaks (ASan). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "msg.h"
#include "webhook.h"

#define MAX_LEN (1024 * 1024)

static void check_string_field(const char *s, size_t max)
{
    FUZZ_CHECK(s && *s);
    FUZZ_CHECK(strlen(s) <= max);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
    FUZZ_CHECK(fuzz_str_utf8_valid(s));
}

static void check_body(const struct finished_msg *m)
{
    char *body = webhook_body(m);
    FUZZ_CHECK(body);
    size_t n = strlen(body);
    FUZZ_CHECK(fuzz_utf8_valid(body, n));
    json_error_t je;
    /* JCS numbers are doubles (1e20 is written 100000000000000000000): read back as such */
    json_t *b = json_loadb(body, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    FUZZ_CHECK(json_is_object(b));
    json_t *w = json_object_get(b, "work_id");
    if (json_is_number(m->work_id))
        FUZZ_CHECK(json_is_number(w) && json_number_value(w) == json_number_value(m->work_id));
    else if (m->work_id)
        FUZZ_CHECK(w && json_equal(w, m->work_id));
    else
        FUZZ_CHECK(!w);
    if (m->error) {
        FUZZ_CHECK(json_is_false(json_object_get(b, "success")));
        FUZZ_CHECK(json_equal(json_object_get(b, "error"), m->correction_data));
    }
    json_decref(b);
    free(body);
}

static void check_fit(const struct finished_msg *m, const char *full, size_t max)
{
    size_t len = (size_t)-1;
    errno = 0;
    char *s = msg_finished_serialize_fit(m, max, &len);
    if (!s) {
        FUZZ_CHECK(max < MSG_MIN_MESSAGE_BYTES && errno == E2BIG);
        return;
    }
    FUZZ_CHECK(len == strlen(s) && len <= max);
    if (strlen(full) <= max) {
        FUZZ_CHECK(strcmp(s, full) == 0);
        free(s);
        return;
    }
    struct finished_msg f;
    struct msg_error err;
    FUZZ_CHECK(msg_finished_parse(s, len, SIZE_MAX, &f, &err) == 0);
    FUZZ_CHECK(f.error && json_is_string(f.correction_data));
    FUZZ_CHECK((m->work_id == NULL) == (f.work_id == NULL));
    FUZZ_CHECK(!m->work_id || json_equal(m->work_id, f.work_id));
    FUZZ_CHECK(strcmp(m->callback, f.callback) == 0);
    FUZZ_CHECK((m->job_id == NULL) == (f.job_id == NULL));
    FUZZ_CHECK(!m->job_id || strcmp(m->job_id, f.job_id) == 0);
    const char *text = json_string_value(f.correction_data);
    size_t tl = strlen(text), rl = strlen(MSG_REASON_OUTPUT_TOO_LARGE);
    if (m->error) {
        const char *orig = json_string_value(m->correction_data);
        FUZZ_CHECK(tl < strlen(orig) && strncmp(text, orig, tl) == 0);
    } else if (max >= MSG_MIN_MESSAGE_BYTES) { /* the whole reason fits */
        FUZZ_CHECK(tl > rl && strncmp(text, MSG_REASON_OUTPUT_TOO_LARGE " - ", rl + 3) == 0);
    } else { /* cut to fit */
        FUZZ_CHECK(strncmp(text, MSG_REASON_OUTPUT_TOO_LARGE, tl < rl ? tl : rl) == 0);
    }
    msg_finished_free(&f);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    struct finished_msg m;
    struct msg_error err;
    memset(&err, 0, sizeof(err));
    if (msg_finished_parse(data, size, MAX_LEN, &m, &err) < 0) {
        FUZZ_CHECK(err.reason[0]);
        FUZZ_CHECK(fuzz_str_utf8_valid(err.detail));
    } else {
        FUZZ_CHECK(!m.work_id || json_is_string(m.work_id) || json_is_number(m.work_id));
        FUZZ_CHECK(m.error ? json_is_string(m.correction_data) : json_is_object(m.correction_data));
        check_string_field(m.callback, MSG_MAX_URL_BYTES);
        if (m.job_id)
            check_string_field(m.job_id, MSG_MAX_JOB_ID_BYTES);
        FUZZ_CHECK(!json_is_string(m.work_id) ||
                   json_string_length(m.work_id) <= MSG_MAX_WORK_ID_BYTES);
        check_body(&m);

        char *s1 = msg_finished_serialize(&m);
        FUZZ_CHECK(s1);
        size_t l1 = strlen(s1);
        check_fit(&m, s1, MSG_MIN_MESSAGE_BYTES);
        check_fit(&m, s1, l1);
        check_fit(&m, s1, l1 - 1);
        check_fit(&m, s1, l1 / 2);
        check_fit(&m, s1, 1024);
        struct finished_msg m2;
        FUZZ_CHECK(msg_finished_parse(s1, strlen(s1), SIZE_MAX, &m2, &err) == 0);
        FUZZ_CHECK((m.work_id == NULL) == (m2.work_id == NULL));
        FUZZ_CHECK(!m.work_id || json_equal(m.work_id, m2.work_id));
        FUZZ_CHECK(m.error == m2.error);
        FUZZ_CHECK(json_equal(m.correction_data, m2.correction_data));
        FUZZ_CHECK(strcmp(m.callback, m2.callback) == 0);
        FUZZ_CHECK((m.job_id == NULL) == (m2.job_id == NULL));
        FUZZ_CHECK(!m.job_id || strcmp(m.job_id, m2.job_id) == 0);
        char *s2 = msg_finished_serialize(&m2);
        FUZZ_CHECK(s2 && strcmp(s1, s2) == 0);
        free(s1);
        free(s2);
        msg_finished_free(&m2);
        msg_finished_free(&m);
    }
    if (size > 0)
        FUZZ_CHECK(msg_finished_parse(data, size, size - 1, &m, &err) < 0);
    return 0;
}
