/* common/startfault: the starter's rule for the engine's answers (the table at the top of
 * starter/starter.c), with Docker 20.10's own messages where the rule reads them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "startfault.h"

static struct sf_answer http(long status, const char *message)
{
    return (struct sf_answer){.status = status, .message = message};
}

static const struct sf_answer no_answer = {.err = -ECONNREFUSED, .message = "connection refused"};

static void test_create(void **state)
{
    (void)state;
    const char *setting = NULL;
    assert_int_equal(sf_create(http(201, ""), false, false, false, &setting), SF_NEXT);
    assert_int_equal(sf_create(http(409, "Conflict. The container name is already in use"), false,
                               false, false, &setting),
                     SF_NAME_TAKEN);
    /* no such image: pull when allowed and not done; again when a pull ended meanwhile */
    struct sf_answer missing = http(404, "No such image: ct-x:latest");
    assert_int_equal(sf_create(missing, true, false, false, &setting), SF_PULL);
    assert_int_equal(sf_create(missing, true, false, true, &setting), SF_CREATE_AGAIN);
    assert_int_equal(sf_create(missing, true, true, false, &setting), SF_IMAGE_NOT_FOUND);
    assert_int_equal(sf_create(missing, false, false, false, &setting), SF_IMAGE_NOT_FOUND);
    /* our settings: nobody's fault */
    assert_int_equal(sf_create(http(400, "Range of CPUs is from 0.01 to 2.00, as there are only 2 "
                                         "CPUs available"),
                               false, false, false, &setting),
                     SF_SETTINGS);
    assert_non_null(setting);
    assert_int_equal(
        sf_create(http(400, "invalid reference format"), false, false, false, &setting),
        SF_JOB_FAULT);
    /* the engine's trouble is never the job's */
    assert_int_equal(sf_create(no_answer, true, false, false, &setting), SF_ENGINE);
    assert_int_equal(sf_create(http(500, "Internal Server Error"), false, false, false, &setting),
                     SF_ENGINE);
}

static void test_file_and_upload(void **state)
{
    (void)state;
    assert_int_equal(sf_file_check(http(200, "")), SF_NEXT);
    assert_int_equal(sf_file_check(http(404, "Could not find the file")), SF_FILE_MISSING);
    assert_int_equal(sf_file_check(http(400, "bad")), SF_ENGINE);
    assert_int_equal(sf_file_check(no_answer), SF_ENGINE);
    assert_int_equal(sf_upload(http(200, "")), SF_NEXT);
    assert_int_equal(sf_upload(http(404, "No such container: 12ab")), SF_VANISHED);
    assert_int_equal(sf_upload(http(400, "not a directory")), SF_JOB_FAULT);
    assert_int_equal(sf_upload(http(503, "busy")), SF_ENGINE);
}

static void test_start(void **state)
{
    (void)state;
    const char *setting = NULL;
    assert_int_equal(sf_start(http(204, ""), &setting), SF_STARTED);
    assert_int_equal(sf_start(http(304, ""), &setting), SF_STARTED); /* already running */
    assert_int_equal(sf_start(http(404, "No such container: 12ab"), &setting), SF_VANISHED);
    assert_int_equal(sf_start(http(404, "network ct-nope not found"), &setting), SF_SETTINGS);
    assert_non_null(setting);
    /* no answer or an error: it may have run all the same */
    assert_int_equal(sf_start(no_answer, &setting), SF_START_UNKNOWN);
    assert_int_equal(sf_start(http(500, "OCI runtime create failed"), &setting), SF_START_UNKNOWN);
    assert_int_equal(sf_start(http(400, "bad"), &setting), SF_START_UNKNOWN);
}

static void test_start_checked(void **state)
{
    (void)state;
    const char *setting = NULL;
    struct sf_answer ok = http(200, "");
    const char *oci = "OCI runtime create failed: container_linux.go:380: starting container "
                      "process caused: exec: \"/nope\": stat /nope: no such file or directory: "
                      "unknown";
    assert_int_equal(sf_start_checked(http(404, "No such container"), NULL, 0, oci, &setting),
                     SF_VANISHED);
    /* it ran despite the error */
    assert_int_equal(sf_start_checked(ok, "running", 0, oci, &setting), SF_STARTED);
    assert_int_equal(sf_start_checked(ok, "exited", 1, oci, &setting), SF_STARTED);
    /* never ran: whose fault */
    assert_int_equal(sf_start_checked(ok, "created", 127, "", &setting), SF_IMAGE_FAULT);
    assert_int_equal(sf_start_checked(ok, "created", 126, "", &setting), SF_IMAGE_FAULT);
    assert_int_equal(
        sf_start_checked(ok, "created", 0,
                         "unable to find user nobody2: no matching entries in passwd file",
                         &setting),
        SF_IMAGE_FAULT);
    assert_int_equal(
        sf_start_checked(ok, "created", 0,
                         "OCI runtime create failed: runc create failed: unable to start "
                         "container process: error during container init: error setting rlimit "
                         "type 7: operation not permitted: unknown",
                         &setting),
        SF_SETTINGS);
    assert_non_null(setting);
    /* nobody's fault known: a fresh container (counted) */
    assert_int_equal(sf_start_checked(ok, "created", 0, "something else", &setting), SF_DISCARD);
    assert_int_equal(sf_start_checked(no_answer, NULL, 0, oci, &setting), SF_DISCARD);
    assert_int_equal(sf_start_checked(ok, NULL, 0, oci, &setting), SF_DISCARD);
}

static void test_removed(void **state)
{
    (void)state;
    assert_int_equal(sf_removed(http(204, "")), SF_NEXT);
    assert_int_equal(sf_removed(http(404, "No such container")), SF_NEXT);
    assert_int_equal(sf_removed(http(409, "removal of container is already in progress")), SF_NEXT);
    assert_int_equal(sf_removed(http(400, "bad")), SF_ENGINE);
    assert_int_equal(sf_removed(no_answer), SF_ENGINE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),  cmocka_unit_test(test_file_and_upload),
        cmocka_unit_test(test_start),   cmocka_unit_test(test_start_checked),
        cmocka_unit_test(test_removed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
