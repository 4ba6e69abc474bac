/* Fuzz target: msg_running_parse, the completer's parser of running_corrections bodies.
 *
 * Invariants:
 * - an accepted message has a 64-hex container id, a callback and an optional job_id, without
 *   control characters and within bounds;
 * - serialized again it parses to the same message, and serializing that gives the same bytes;
 *   it fits MSG_MIN_MESSAGE_BYTES (every field is bounded);
 * - a refused one has a reason and a valid UTF-8 detail;
 * - a body over max_len is refused;
 * - nothing leaks (ASan). */
#include <string.h>

#include "fuzz.h"
#include "ids.h"
#include "msg.h"

#define MAX_LEN (1024 * 1024)

static void check_string_field(const char *s, size_t max)
{
    FUZZ_CHECK(s && *s);
    FUZZ_CHECK(strlen(s) <= max);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
    FUZZ_CHECK(fuzz_str_utf8_valid(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    struct running_msg m;
    struct msg_error err;
    memset(&err, 0, sizeof(err));
    if (msg_running_parse(data, size, MAX_LEN, &m, &err) < 0) {
        FUZZ_CHECK(err.reason[0]);
        FUZZ_CHECK(fuzz_str_utf8_valid(err.detail));
    } else {
        FUZZ_CHECK(!m.work_id || json_is_string(m.work_id) || json_is_number(m.work_id));
        FUZZ_CHECK(m.container_id && ids_is_container_id(m.container_id));
        check_string_field(m.callback, MSG_MAX_URL_BYTES);
        if (m.job_id)
            check_string_field(m.job_id, MSG_MAX_JOB_ID_BYTES);
        FUZZ_CHECK(!json_is_string(m.work_id) ||
                   json_string_length(m.work_id) <= MSG_MAX_WORK_ID_BYTES);

        char *s1 = msg_running_serialize(&m);
        FUZZ_CHECK(s1 && strlen(s1) <= MSG_MIN_MESSAGE_BYTES);
        struct running_msg m2;
        FUZZ_CHECK(msg_running_parse(s1, strlen(s1), SIZE_MAX, &m2, &err) == 0);
        FUZZ_CHECK((m.work_id == NULL) == (m2.work_id == NULL));
        FUZZ_CHECK(!m.work_id || json_equal(m.work_id, m2.work_id));
        FUZZ_CHECK(strcmp(m.container_id, m2.container_id) == 0);
        FUZZ_CHECK(strcmp(m.callback, m2.callback) == 0);
        FUZZ_CHECK((m.job_id == NULL) == (m2.job_id == NULL));
        FUZZ_CHECK(!m.job_id || strcmp(m.job_id, m2.job_id) == 0);
        char *s2 = msg_running_serialize(&m2);
        FUZZ_CHECK(s2 && strcmp(s1, s2) == 0);
        free(s1);
        free(s2);
        msg_running_free(&m2);
        msg_running_free(&m);
    }
    if (size > 0)
        FUZZ_CHECK(msg_running_parse(data, size, size - 1, &m, &err) < 0);
    return 0;
}
