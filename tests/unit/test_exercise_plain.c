/* exercise_stat_plain: the path of a submission to bind-mount (EXERCISE_MODE=bind) reaches
 * the file beneath the folder with no link at all, with openat2 and with the walk. */
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

static char root[200], dir[256];

static void put(const char *rel, const char *content)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void link_at(const char *target, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
    (void)state;
    char p[512];
    snprintf(root, sizeof(root), "/tmp/ct-plain-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(dir, sizeof(dir), "%s/uploads", root);
    mkdir(dir, 0755);
    snprintf(p, sizeof(p), "%s/uploads/sub", root);
    mkdir(p, 0755);
    put("uploads/ok.txt", "hello\n");
    put("uploads/sub/deep.txt", "deep\n");
    put("secret.txt", "secret\n");
    link_at("ok.txt", "uploads/inner-link");      /* inside, but a link */
    link_at("sub", "uploads/sub-link");           /* a folder link inside */
    link_at("../secret.txt", "uploads/out-link"); /* leading out */
    link_at("..", "uploads/up");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void check(int walk)
{
    char p[512];
    const char *rel;
    struct stat st;
    exercise_force_walk(walk);

    snprintf(p, sizeof(p), "%s/ok.txt", dir);
    assert_int_equal(exercise_stat_plain(p, dir, &rel, &st), 0);
    assert_string_equal(rel, "ok.txt");
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 6);

    snprintf(p, sizeof(p), "%s/sub/deep.txt", dir);
    assert_int_equal(exercise_stat_plain(p, dir, &rel, &st), 0);
    assert_string_equal(rel, "sub/deep.txt");

    snprintf(p, sizeof(p), "%s/sub", dir); /* a folder: reached (the caller refuses it) */
    assert_int_equal(exercise_stat_plain(p, dir, &rel, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* a link anywhere on the path, even one staying inside: -ELOOP */
    const char *links[] = {"inner-link", "sub-link/deep.txt", "out-link", "up/secret.txt",
                           "up/uploads/ok.txt"};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, links[i]);
        if (exercise_stat_plain(p, dir, &rel, &st) != -ELOOP)
            fail_msg("%s (walk %d): not -ELOOP", links[i], walk);
    }
    /* not plain: ".", "..", an empty component; or nothing below the folder */
    const char *unplain[] = {"./ok.txt", "sub/../ok.txt", "sub//deep.txt", "sub/."};
    for (size_t i = 0; i < sizeof(unplain) / sizeof(unplain[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, unplain[i]);
        if (exercise_stat_plain(p, dir, &rel, &st) != -ELOOP)
            fail_msg("%s (walk %d): not -ELOOP", unplain[i], walk);
    }
    assert_int_equal(exercise_stat_plain(dir, dir, &rel, &st), -ELOOP);
    /* outside the folder, relative, missing */
    snprintf(p, sizeof(p), "%s/secret.txt", root);
    assert_int_equal(exercise_stat_plain(p, dir, &rel, &st), -EPERM);
    assert_int_equal(exercise_stat_plain("ok.txt", dir, &rel, &st), -EPERM);
    snprintf(p, sizeof(p), "%s/missing.txt", dir);
    assert_int_equal(exercise_stat_plain(p, dir, &rel, &st), -ENOENT);
    snprintf(p, sizeof(p), "%s/ok.txt/x", dir); /* a file as a folder */
    assert_true(exercise_stat_plain(p, dir, &rel, &st) < 0);
    exercise_force_walk(0);
}

static void test_plain_openat2(void **state)
{
    (void)state;
    check(0);
}

static void test_plain_walk(void **state)
{
    (void)state;
    check(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_openat2),
        cmocka_unit_test(test_plain_walk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
