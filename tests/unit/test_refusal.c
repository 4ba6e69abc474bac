/* common/refusal: the engine's refusals, as Docker 20.10 words them (each message below was
 * read from a private dockerd), sorted into the starter's settings and the image's fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "refusal.h"

static void settings(const char *message, const char *want)
{
    const char *setting = "unset";
    assert_int_equal(refusal_classify(message, &setting), REFUSAL_SETTINGS);
    assert_string_equal(setting, want);
}

static void test_settings(void **state)
{
    (void)state;
    settings("Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
             "CORRECTION_CPUS");
    settings("Unknown runtime specified nosuch", "CORRECTION_RUNTIME");
    settings("resource limits are not supported by this engine: rootless Podman on cgroup v1 "
             "ignores the containers' memory, CPU and pids limits",
             "CORRECTION_MEMORY, CORRECTION_CPUS, CORRECTION_PIDS (the engine)");
    settings("invalid CapAdd: unknown capability: \"CAP_NOSUCH\"", "CORRECTION_CAP_ADD");
    settings("network nosuchnet not found", "CORRECTION_NETWORK");
    settings("failed to create shim task: OCI runtime create failed: runc create failed: unable "
             "to start container process: error during container init: error setting rlimits "
             "for ready process: error setting rlimit type 7: operation not permitted: unknown",
             "CORRECTION_MAX_OPEN_FILES");
    settings("error during container init: error setting rlimit type 1: operation not permitted",
             "CORRECTION_MAX_FILE_SIZE");
    settings("error during container init: error setting rlimit type 6: operation not permitted",
             "the containers' ulimits");
}

static void test_image(void **state)
{
    (void)state;
    const char *setting = "unset";
    assert_int_equal(
        refusal_classify("unable to find user nosuchuser: no matching entries in passwd file",
                         &setting),
        REFUSAL_IMAGE);
    assert_null(setting);
    assert_int_equal(refusal_classify("unable to find group nogroup: no matching entries in "
                                      "group file",
                                      NULL),
                     REFUSAL_IMAGE);
    /* Podman 4.3: a command not found, not executable */
    assert_int_equal(
        refusal_classify("runc: runc create failed: unable to start container process: exec: "
                         "\"/run.sh\": stat /run.sh: no such file or directory: OCI runtime "
                         "attempted to invoke a command that was not found",
                         &setting),
        REFUSAL_IMAGE);
    assert_int_equal(refusal_classify("runc: runc create failed: unable to start container "
                                      "process: exec: \"/run.sh\": permission denied: OCI "
                                      "runtime permission denied",
                                      NULL),
                     REFUSAL_IMAGE);
}

static void test_none(void **state)
{
    (void)state;
    const char *setting = "unset";
    /* a missing container is not a missing network; the job's own mistakes are not settings */
    assert_int_equal(refusal_classify("No such container: 0123abcd", &setting), REFUSAL_NONE);
    assert_null(setting);
    assert_int_equal(refusal_classify("invalid reference format", NULL), REFUSAL_NONE);
    assert_int_equal(refusal_classify("No such image: ct-nothing:latest", NULL), REFUSAL_NONE);
    assert_int_equal(refusal_classify("network", NULL), REFUSAL_NONE);
    assert_int_equal(refusal_classify("", NULL), REFUSAL_NONE);
    assert_int_equal(refusal_classify(NULL, &setting), REFUSAL_NONE);
    assert_null(setting);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_image),
        cmocka_unit_test(test_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
