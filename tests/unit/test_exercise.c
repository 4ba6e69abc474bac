#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "exercise.h"

static char root[200];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/ct-exercise-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    char p[512];
    snprintf(p, sizeof(p), "%s/uploads", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/uploads/ok.txt", root);
    FILE *f = fopen(p, "w");
    fputs("hello\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/secret.txt", root);
    f = fopen(p, "w");
    fputs("secret\n", f);
    fclose(f);
    char target[512];
    snprintf(target, sizeof(target), "%s/secret.txt", root);
    snprintf(p, sizeof(p), "%s/uploads/escape.txt", root);
    if (symlink(target, p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/uploads/empty.txt", root);
    f = fopen(p, "w");
    fclose(f);
    snprintf(p, sizeof(p), "%s/uploads/fifo", root);
    mkfifo(p, 0644);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_read(void **state)
{
    (void)state;
    char dir[300], p[512];
    snprintf(dir, sizeof(dir), "%s/uploads", root);
    void *buf = NULL;
    size_t len = 0;
    struct msg_error err = {0};

    snprintf(p, sizeof(p), "%s/ok.txt", dir);
    assert_int_equal(exercise_read(p, dir, 100, &buf, &len, &err), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, "hello\n", 6);
    free(buf);
    buf = NULL;

    /* too big */
    assert_int_equal(exercise_read(p, dir, 5, &buf, &len, &err), -EFBIG);
    assert_string_equal(err.reason, EXERCISE_REASON_TOO_LARGE);
    assert_null(buf);

    /* missing */
    snprintf(p, sizeof(p), "%s/nope.txt", dir);
    assert_int_equal(exercise_read(p, dir, 100, &buf, &len, &err), -ENOENT);
    assert_string_equal(err.reason, EXERCISE_REASON_NOT_FOUND);

    /* a symlink out of the folder is refused; without EXERCISE_DIR it is followed */
    snprintf(p, sizeof(p), "%s/escape.txt", dir);
    assert_int_equal(exercise_read(p, dir, 100, &buf, &len, &err), -EPERM);
    assert_string_equal(err.reason, EXERCISE_REASON_NOT_ALLOWED);
    assert_int_equal(exercise_read(p, NULL, 100, &buf, &len, &err), 0);
    assert_int_equal(len, 7);
    free(buf);
    buf = NULL;

    /* ../ tricks */
    snprintf(p, sizeof(p), "%s/../secret.txt", dir);
    assert_int_equal(exercise_read(p, dir, 100, &buf, &len, &err), -EPERM);
    /* a sibling folder sharing the prefix is not inside */
    snprintf(p, sizeof(p), "%s/secret.txt", root);
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "%s/secre", root);
    assert_int_equal(exercise_read(p, prefix, 100, &buf, &len, &err), -EPERM);

    /* empty file, not a regular file */
    snprintf(p, sizeof(p), "%s/empty.txt", dir);
    assert_int_equal(exercise_read(p, dir, 100, &buf, &len, &err), 0);
    assert_int_equal(len, 0);
    assert_null(buf);
    snprintf(p, sizeof(p), "%s/fifo", dir);
    assert_int_equal(exercise_read(p, dir, 100, &buf, &len, &err), -EIO);
    assert_non_null(strstr(err.detail, "not a regular file"));
    assert_int_equal(exercise_read(dir, NULL, 100, &buf, &len, &err), -EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
