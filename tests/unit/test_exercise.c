#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include <stdatomic.h>

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
    /* relative links: one staying inside, one leading out, a folder leading out */
    snprintf(p, sizeof(p), "%s/uploads/sub", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/uploads/sub/inside-link", root);
    if (symlink("../ok.txt", p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/uploads/rel-escape", root);
    if (symlink("sub/../../secret.txt", p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/uploads/up", root);
    if (symlink("..", p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/uploads/loop", root);
    if (symlink("loop", p) < 0)
        return -1;
    /* the folder reached through a link: its real path is accepted too */
    snprintf(p, sizeof(p), "%s/uploads-link", root);
    snprintf(target, sizeof(target), "%s/uploads", root);
    if (symlink(target, p) < 0)
        return -1;
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

static void expect_read(const char *path, const char *dir, int expect, const char *content)
{
    void *buf = NULL;
    size_t len = 0;
    struct msg_error err = {0};
    int r = exercise_read(path, dir, 100, &buf, &len, &err);
    if (r != expect)
        fail_msg("%s (dir %s): %d, expected %d (%s - %s)", path, dir ? dir : "-", r, expect,
                 err.reason, err.detail);
    if (content) {
        assert_int_equal(len, strlen(content));
        assert_memory_equal(buf, content, len);
    }
    if (expect == -EPERM)
        assert_string_equal(err.reason, EXERCISE_REASON_NOT_ALLOWED);
    free(buf);
}

static void beneath_cases(void)
{
    char dir[300], link[300], p[512];
    snprintf(dir, sizeof(dir), "%s/uploads", root);
    snprintf(link, sizeof(link), "%s/uploads-link", root);

    snprintf(p, sizeof(p), "%s/sub/inside-link", dir);
    expect_read(p, dir, 0, "hello\n"); /* a relative link that stays inside */
    snprintf(p, sizeof(p), "%s/rel-escape", dir);
    expect_read(p, dir, -EPERM, NULL); /* a relative link that leads out */
    snprintf(p, sizeof(p), "%s/up/secret.txt", dir);
    expect_read(p, dir, -EPERM, NULL); /* a folder link that leads out */
    snprintf(p, sizeof(p), "%s/sub/../ok.txt", dir);
    expect_read(p, dir, 0, "hello\n"); /* ".." that stays inside */
    snprintf(p, sizeof(p), "%s/sub/../../secret.txt", dir);
    expect_read(p, dir, -EPERM, NULL);
    snprintf(p, sizeof(p), "%s/loop", dir);
    expect_read(p, dir, -EPERM, NULL);
    expect_read("uploads/ok.txt", dir, -EPERM, NULL); /* not absolute */
    expect_read("/proc/self/environ", dir, -EPERM, NULL);
    snprintf(p, sizeof(p), "%s/ok.txt", link);
    expect_read(p, dir, -EPERM, NULL); /* another name of the folder is not its name */
    snprintf(p, sizeof(p), "%s/ok.txt", dir);
    expect_read(p, link, 0, "hello\n"); /* ... or configured through it */
    snprintf(p, sizeof(p), "%s//sub///inside-link", dir);
    expect_read(p, dir, 0, "hello\n");
    snprintf(p, sizeof(p), "%s/", dir);
    expect_read(p, dir, -EIO, NULL); /* the folder itself */
    snprintf(p, sizeof(p), "%s/nope/x", dir);
    expect_read(p, dir, -ENOENT, NULL);
    snprintf(p, sizeof(p), "%s/ok.txt/x", dir);
    expect_read(p, dir, -ENOENT, NULL);
}

static void test_beneath_openat2(void **state)
{
    (void)state;
    exercise_force_walk(0);
    beneath_cases();
}

static void test_beneath_walk(void **state)
{
    (void)state;
    exercise_force_walk(1);
    beneath_cases();
    exercise_force_walk(0);
}

static void test_read_walk(void **state)
{
    exercise_force_walk(1);
    test_read(state);
    exercise_force_walk(0);
}

static void delete_cases(void)
{
    char dir[300], p[512], secret[512];
    snprintf(dir, sizeof(dir), "%s/uploads", root);
    snprintf(secret, sizeof(secret), "%s/secret.txt", root);
    void *buf = NULL;
    size_t len;
    struct msg_error err;
    struct exercise_id id, other;

    /* the file read is deleted, by its name in its folder */
    snprintf(p, sizeof(p), "%s/sub/victim.txt", dir);
    FILE *f = fopen(p, "w");
    fputs("v", f);
    fclose(f);
    assert_int_equal(exercise_read_id(p, dir, 100, &buf, &len, &id, &err), 0);
    free(buf);
    buf = NULL;
    assert_int_equal(exercise_delete(p, dir, &id), 0);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(exercise_delete(p, dir, &id), -ENOENT);

    /* nothing outside the folder, however it is named */
    snprintf(p, sizeof(p), "%s/ok.txt", dir);
    assert_int_equal(exercise_read_id(p, dir, 100, &buf, &len, &other, &err), 0);
    free(buf);
    buf = NULL;
    struct stat st;
    assert_int_equal(stat(secret, &st), 0);
    struct exercise_id sid = {(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    snprintf(p, sizeof(p), "%s/../secret.txt", dir);
    assert_int_equal(exercise_delete(p, dir, &sid), -EPERM);
    snprintf(p, sizeof(p), "%s/up/secret.txt", dir);
    assert_int_equal(exercise_delete(p, dir, &sid), -EPERM);
    assert_int_equal(exercise_delete(secret, dir, &sid), -EPERM);
    snprintf(p, sizeof(p), "%s/up/uploads/../secret.txt", dir);
    assert_int_equal(exercise_delete(p, dir, &sid), -EPERM);
    assert_int_equal(access(secret, F_OK), 0);
    /* a name that is no longer the file read is left alone */
    snprintf(p, sizeof(p), "%s/empty.txt", dir);
    assert_int_equal(exercise_delete(p, dir, &other), -ESTALE);
    assert_int_equal(access(p, F_OK), 0);
    /* the folder itself, or "..", is never a name to delete */
    assert_int_equal(exercise_delete(dir, dir, NULL), -EPERM);
    snprintf(p, sizeof(p), "%s/sub/..", dir);
    assert_int_equal(exercise_delete(p, dir, NULL), -EPERM);
}

static void test_delete(void **state)
{
    (void)state;
    exercise_force_walk(0);
    delete_cases();
    exercise_force_walk(1);
    delete_cases();
    exercise_force_walk(0);
}

/* A path component swapped, as fast as can be, between a folder inside and a link to a folder
 * outside, while the file beneath it is read: the outside file never comes back. */
static atomic_int swapping;

static void *swapper(void *ud)
{
    const char *a = ud;
    char b[600];
    snprintf(b, sizeof(b), "%s-alt", a);
    while (atomic_load(&swapping))
        renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
    return NULL;
}

static void race(int walk, int rounds)
{
    char sw[400], p[512], out[512];
    snprintf(sw, sizeof(sw), "%s/uploads/sw%d", root, walk);
    mkdir(sw, 0755);
    snprintf(p, sizeof(p), "%s/f", sw);
    FILE *f = fopen(p, "w");
    fputs("INSIDE", f);
    fclose(f);
    snprintf(out, sizeof(out), "%s/outside", root);
    mkdir(out, 0755);
    snprintf(p, sizeof(p), "%s/outside/f", root);
    f = fopen(p, "w");
    fputs("SECRET", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s-alt", sw);
    assert_int_equal(symlink(out, p), 0);

    exercise_force_walk(walk);
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/uploads", root);
    snprintf(p, sizeof(p), "%s/f", sw);
    pthread_t t;
    atomic_store(&swapping, 1);
    assert_int_equal(pthread_create(&t, NULL, swapper, sw), 0);
    int inside = 0, refused = 0, secret = 0;
    for (int i = 0; i < rounds; i++) {
        void *buf = NULL;
        size_t len = 0;
        struct msg_error err;
        if (exercise_read(p, dir, 100, &buf, &len, &err) == 0) {
            if (len == 6 && memcmp(buf, "SECRET", 6) == 0)
                secret++;
            else
                inside++;
        } else {
            refused++;
        }
        free(buf);
    }
    atomic_store(&swapping, 0);
    pthread_join(t, NULL);
    exercise_force_walk(0);
    print_message("walk=%d: %d read inside, %d refused, %d outside\n", walk, inside, refused,
                  secret);
    assert_int_equal(secret, 0);
    assert_true(inside > 0);
    assert_true(refused > 0); /* the swap did race the reads */
}

static void test_swap_race(void **state)
{
    (void)state;
    race(0, 100000);
    race(1, 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beneath_openat2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beneath_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
