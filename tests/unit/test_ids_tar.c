#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ids.h"
#include "tar.h"

static void test_uuid(void **state)
{
    (void)state;
    char a[IDS_UUID_LEN + 1], b[IDS_UUID_LEN + 1];
    assert_int_equal(ids_uuid_random(a), 0);
    assert_int_equal(ids_uuid_random(b), 0);
    assert_true(ids_is_uuid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');

    ids_uuid_from_bytes("hello", 5, a);
    ids_uuid_from_bytes("hello", 5, b);
    assert_string_equal(a, b);
    assert_true(ids_is_uuid(a));
    assert_int_equal(a[14], '5');
    ids_uuid_from_bytes("hellp", 5, b);
    assert_string_not_equal(a, b);

    assert_false(ids_is_uuid("not-a-uuid"));
    assert_false(ids_is_uuid("6B2F1C9E-530A-4D8B-9F61-27D4E835A07C"));
    char cid[65];
    memset(cid, 'a', 64);
    cid[64] = 0;
    assert_true(ids_is_container_id(cid));
    cid[3] = 'g';
    assert_false(ids_is_container_id(cid));
    assert_false(ids_is_container_id("abc"));
}

static void test_tar(void **state)
{
    (void)state;
    const char data[] = "int main() { return 0; }\n\x01\x02";
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(tar_single_file("tmp/exercise", data, sizeof(data), 0644, &buf, &len), 0);
    assert_true(len > 0);

    struct archive *a = archive_read_new();
    assert_non_null(a);
    assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
    assert_int_equal(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
    struct archive_entry *e;
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "tmp/");
    assert_int_equal(archive_entry_filetype(e), AE_IFDIR);
    assert_int_equal(archive_entry_perm(e), 01777);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "tmp/exercise");
    assert_int_equal(archive_entry_filetype(e), AE_IFREG);
    assert_int_equal(archive_entry_perm(e), 0644);
    assert_int_equal(archive_entry_size(e), sizeof(data));
    char got[sizeof(data)];
    assert_int_equal(archive_read_data(a, got, sizeof(got)), sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
    free(buf);

    /* An empty file is still a file. */
    assert_int_equal(tar_single_file("tmp/exercise", NULL, 0, 0644, &buf, &len), 0);
    free(buf);
    buf = NULL;
    assert_int_equal(tar_single_file("/abs", data, 1, 0644, &buf, &len), -EINVAL);
    assert_int_equal(tar_single_file("tmp/../etc/passwd", data, 1, 0644, &buf, &len), -EINVAL);
    assert_null(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_tar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
