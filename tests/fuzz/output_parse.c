/* Fuzz target: output_parse and output_tail, the completer's reading of what a correction
 * container printed (the input is its stdout, and also serves as its stderr).
 *
 * Invariants:
 * - an accepted response passes output_validate, serializes canonically (valid UTF-8, and the
 *   same bytes again when that is parsed and serialized), and the finished message built from
 *   it serializes, parses back and yields a callback body; published at a limit it is itself
 *   when it fits, else the "output too large" error form, which fits;
 * - a refused output has one of the OUTPUT_REASON_* reasons and a valid UTF-8 detail, and the
 *   error result for the caller serializes;
 * - output_tail returns a view inside the input, at most max_bytes long, with fewer than
 *   max_lines line breaks, not ending in a line break;
 * - nothing leaks (ASan). */
#include <string.h>

#include "canon.h"
#include "fuzz.h"
#include "msg.h"
#include "output.h"
#include "webhook.h"

#define CALLBACK "http://receiver.example/grade"
#define JOB_ID "123e4567-e89b-42d3-a456-426614174000"

static void check_accepted(json_t *response)
{
    FUZZ_CHECK(output_validate(response, NULL) == 0);
    char *c1 = canon_dump(response);
    FUZZ_CHECK(c1);
    FUZZ_CHECK(fuzz_str_utf8_valid(c1));
    /* JCS numbers are doubles: 1e20 is written 100000000000000000000, too big for a jansson
     * integer. */
    json_t *again = json_loads(c1, JSON_DECODE_INT_AS_REAL, NULL);
    FUZZ_CHECK(again);
    char *c2 = canon_dump(again);
    FUZZ_CHECK(c2 && strcmp(c1, c2) == 0);
    json_decref(again);
    free(c1);
    free(c2);

    json_t *work_id = json_string("w-1");
    struct finished_msg m = {
        .work_id = work_id,
        .error = false,
        .correction_data = response,
        .callback = CALLBACK,
        .job_id = JOB_ID,
    };
    char *s = msg_finished_serialize(&m);
    FUZZ_CHECK(s);
    /* The completer's publish: the result itself when it fits, else "output too large". */
    size_t fl;
    char *fit = msg_finished_serialize_fit(&m, MSG_MIN_MESSAGE_BYTES, &fl);
    FUZZ_CHECK(fit && fl <= MSG_MIN_MESSAGE_BYTES);
    FUZZ_CHECK(strlen(s) > MSG_MIN_MESSAGE_BYTES ? strstr(fit, MSG_REASON_OUTPUT_TOO_LARGE) != NULL
                                                 : strcmp(fit, s) == 0);
    free(fit);
    struct finished_msg m2;
    struct msg_error err;
    FUZZ_CHECK(msg_finished_parse(s, strlen(s), SIZE_MAX, &m2, &err) == 0);
    FUZZ_CHECK(json_equal(m2.correction_data, response));
    char *body = webhook_body(&m2);
    FUZZ_CHECK(body);
    free(body);
    msg_finished_free(&m2);
    free(s);
    json_decref(work_id);
}

static void check_refused(const struct msg_error *err)
{
    static const char *const reasons[] = {OUTPUT_REASON_NO_RESPONSE, OUTPUT_REASON_INVALID_JSON,
                                          OUTPUT_REASON_INVALID_FORMAT, OUTPUT_REASON_MANY_BLOCKS};
    bool known = false;
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        known |= strcmp(err->reason, reasons[i]) == 0;
    FUZZ_CHECK(known);
    FUZZ_CHECK(fuzz_str_utf8_valid(err->detail));
    char text[sizeof(err->reason) + sizeof(err->detail) + 8];
    msg_error_text(err, text, sizeof(text));
    char *s = msg_finished_error_serialize(NULL, JOB_ID, CALLBACK, text);
    FUZZ_CHECK(s);
    free(s);
}

static void check_tail(const char *s, size_t len, unsigned max_lines, size_t max_bytes)
{
    size_t n = (size_t)-1;
    const char *t = output_tail(s, len, max_lines, max_bytes, &n);
    FUZZ_CHECK(t >= s && n <= len && t + n <= s + len);
    FUZZ_CHECK(n <= max_bytes);
    unsigned breaks = 0;
    for (size_t i = 0; i < n; i++)
        breaks += t[i] == '\n';
    FUZZ_CHECK(breaks < (max_lines ? max_lines : 1));
    FUZZ_CHECK(n == 0 || (t[n - 1] != '\n' && t[n - 1] != '\r'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    char *s = fuzz_strndup(data, size); /* the completer's buffers are NUL-terminated */
    json_t *response = NULL;
    struct msg_error err;
    memset(&err, 0, sizeof(err));
    if (output_parse(s, size, &response, &err) == 0) {
        check_accepted(response);
        json_decref(response);
    } else {
        FUZZ_CHECK(!response);
        check_refused(&err);
    }
    check_tail(s, size, 5, 400); /* the completer's */
    check_tail(s, size, 1, 16);
    check_tail(s, size, 0, size);
    check_tail(s, size, 3, 0);
    free(s);
    return 0;
}
