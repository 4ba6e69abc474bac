/* test_harness: the test servers and the support helpers work (run by tests/run.sh). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

static char *label; /* "ct.test=<unique>" on every container of this file */

static int group_setup(void **state)
{
    (void)state;
    label = ct_unique("ct.test=harness");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ct_docker_remove_labelled(label);
    free(label);
    return 0;
}

static json_t *labels(void)
{
    char *eq = strchr(label, '=');
    char *key = strndup(label, (size_t)(eq - label));
    json_t *l = json_pack("{s:s}", key, eq + 1);
    free(key);
    return l;
}

static char *run_container(const char *image, const char *const env[], json_t *host_config)
{
    json_t *l = labels();
    char *id = ct_docker_create(image, env, l, host_config);
    json_decref(l);
    return id;
}

static void test_env(void **state)
{
    (void)state;
    const char *names[] = {"CT_SERVERS",
                           "CT_SERVERS_DIR",
                           "CT_DOCKER_HOST",
                           "DOCKER_HOST",
                           "CT_RABBITMQ_HOST",
                           "CT_RABBITMQ_PORT",
                           "CT_RABBITMQ_MGMT_PORT",
                           "CT_RABBITMQ_NODE",
                           "CT_TMP"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_non_null(ct_env(names[i]));
    assert_string_equal(ct_env("CT_DOCKER_HOST"), ct_env("DOCKER_HOST"));
    assert_int_equal(access(ct_env("CT_SERVERS"), X_OK), 0);
    assert_int_equal(ct_servers("status"), 0);
}

static void test_files_and_processes(void **state)
{
    (void)state;
    char *name = ct_unique("harness-file");
    char *path = ct_tmpfile(name, "a\0b", 3);
    size_t len = 0;
    char *data = ct_read_file(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "a\0b", 3);
    free(data);
    assert_null(ct_read_file("/nonexistent/file", NULL));
    unlink(path);
    free(path);

    char *log = ct_unique("harness-log");
    char *log_path = ct_tmpfile(log, "", 0);
    char *argv[] = {"/bin/sh", "-c", "echo \"out $CT_X\"; echo err >&2; exit 3", NULL};
    char *env[] = {"CT_X=42", NULL};
    pid_t pid = ct_spawn("/bin/sh", argv, env, log_path);
    int status = 0;
    assert_int_equal(ct_wait_exit(pid, 10000, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    data = ct_read_file(log_path, NULL);
    assert_non_null(strstr(data, "out 42\n"));
    assert_non_null(strstr(data, "err\n"));
    free(data);

    char *sleep_argv[] = {"/bin/sleep", "60", NULL};
    pid = ct_spawn("/bin/sleep", sleep_argv, NULL, log_path);
    assert_int_equal(ct_wait_exit(pid, 100, &status), -ETIMEDOUT);
    ct_kill(pid, SIGTERM);
    assert_int_equal(ct_wait_exit(pid, 10000, &status), 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(ct_terminate(pid, 100), -1);
    pid = ct_spawn("/bin/sleep", sleep_argv, NULL, log_path);
    status = ct_terminate(pid, 5000);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

    unlink(log_path);
    free(log_path);
    free(log);
    free(name);
}

static bool queue_listed(void *ud)
{
    json_t *q = ct_mgmt_queue(ud);
    bool ok = q && json_integer_value(json_object_get(q, "messages_ready")) == 2;
    json_decref(q);
    return ok;
}

static void test_broker(void **state)
{
    (void)state;
    char *q = ct_unique("harness");
    assert_int_equal(ct_amqp_count(q), -1);
    ct_amqp_declare(q);
    assert_int_equal(ct_amqp_count(q), 0);
    assert_null(ct_amqp_get(q, 0));

    ct_amqp_publish(q, "{\"work_id\":\"w1\"}", "m-1");
    json_t *h = json_pack("{s:s,s:i}", "x-text", "hello", "x-count", 7);
    struct ct_publish_opts o = {.content_type = "text/plain", .transient = true, .headers = h};
    ct_amqp_publish_ex(q, "raw", 3, &o);
    json_decref(h);
    assert_int_equal(ct_amqp_count(q), 2);
    assert_true(ct_wait_until(queue_listed, q, 10000));

    struct ct_msg *m = ct_amqp_get(q, 5000);
    assert_non_null(m);
    assert_string_equal(m->body, "{\"work_id\":\"w1\"}");
    assert_int_equal(m->len, strlen(m->body));
    assert_string_equal(m->message_id, "m-1");
    assert_string_equal(m->content_type, "application/json");
    assert_int_equal(m->delivery_mode, 2);
    assert_false(m->redelivered);
    assert_int_equal(json_object_size(m->headers), 0);
    ct_msg_free(m);

    m = ct_amqp_get(q, 5000);
    assert_non_null(m);
    assert_string_equal(m->body, "raw");
    assert_null(m->message_id);
    assert_string_equal(m->content_type, "text/plain");
    assert_int_equal(m->delivery_mode, 1);
    assert_string_equal(json_string_value(json_object_get(m->headers, "x-text")), "hello");
    assert_int_equal(json_integer_value(json_object_get(m->headers, "x-count")), 7);
    ct_msg_free(m);

    int64_t t0 = ct_now_ms();
    assert_null(ct_amqp_get(q, 300));
    assert_true(ct_now_ms() - t0 >= 300);

    ct_amqp_publish(q, "{}", NULL);
    ct_amqp_purge(q);
    assert_int_equal(ct_amqp_count(q), 0);
    assert_int_equal(ct_mgmt_queue_int(q, "consumers"), 0);
    ct_amqp_delete(q);
    assert_int_equal(ct_amqp_count(q), -1);
    assert_null(ct_mgmt_queue(q));
    free(q);
}

static void test_engine(void **state)
{
    (void)state;
    long st;
    json_t *v = ct_docker("GET", "/version", NULL, &st);
    assert_int_equal(st, 200);
    assert_non_null(json_string_value(json_object_get(v, "ApiVersion")));
    json_decref(v);
    assert_null(ct_docker_inspect("ct-no-such-container"));
    assert_false(ct_docker_image_exists("ct-no-such-image:latest"));
}

static void test_images_exist(void **state)
{
    (void)state;
    const char *images[] = {"ct-ok",      "ct-separator", "ct-stderr", "ct-fail",  "ct-invalid",
                            "ct-sleeper", "ct-memhog",    "ct-echo",   "ct-notmp", "ct-badcmd"};
    for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
        char ref[64];
        snprintf(ref, sizeof(ref), "%s:latest", images[i]);
        if (!ct_docker_image_exists(ref))
            fail_msg("image %s is missing", ref);
    }
}

static void test_ok_output(void **state)
{
    (void)state;
    char *id = run_container("ct-ok:latest", NULL, NULL);
    json_t *list = ct_docker_list(label);
    assert_true(json_array_size(list) >= 1);
    json_decref(list);
    ct_docker_start(id);
    assert_int_equal(ct_docker_wait(id, 30000), 0);
    char *out = ct_docker_logs(id, true, false, NULL);
    assert_non_null(strstr(out, "{\"success\":true,\"grade\":10,\"comments\":[\"well done\"]}"));
    free(out);
    json_t *insp = ct_docker_inspect(id);
    assert_non_null(insp);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(insp, "State"), "Status")), "exited");
    json_decref(insp);
    free(id);
}

static void test_file_roundtrip_and_echo(void **state)
{
    (void)state;
    const char *env[] = {"EXERCISE=6", "LANGUAGE=js", "WITH_EQ=a=b", NULL};
    char *id = run_container("ct-echo:latest", env, NULL);
    const char content[] = "line 1\nline\0 2 with a NUL\n";
    assert_int_equal(ct_docker_put_file(id, "/tmp", "exercise", content, sizeof(content) - 1), 200);
    size_t len = 0;
    char *back = ct_docker_read_file(id, "/tmp/exercise", &len);
    assert_non_null(back);
    assert_int_equal(len, sizeof(content) - 1);
    assert_memory_equal(back, content, len);
    free(back);
    assert_null(ct_docker_read_file(id, "/tmp/absent", NULL));
    assert_null(ct_docker_read_file(id, "/tmp", NULL)); /* a folder */

    ct_docker_start(id);
    assert_int_equal(ct_docker_wait(id, 30000), 0);
    size_t out_len = 0;
    char *out = ct_docker_logs(id, true, false, &out_len);
    assert_int_equal(out_len, sizeof(content) - 1);
    assert_memory_equal(out, content, out_len);
    free(out);
    char *err = ct_docker_logs(id, false, true, NULL);
    assert_non_null(strstr(err, "EXERCISE=6\n"));
    assert_non_null(strstr(err, "WITH_EQ=a=b\n"));
    free(err);
    free(id);
}

static void test_notmp(void **state)
{
    (void)state;
    char *id = run_container("ct-notmp:latest", NULL, NULL);
    assert_null(ct_docker_read_file(id, "/tmp", NULL));
    if (ct_engine_is_podman()) {
        /* Podman (4.3) makes the missing folder instead of answering 404 (the starter does
         * not count on either: it puts tmp/exercise from the root) */
        assert_int_equal(ct_docker_put_file(id, "/tmp", "exercise", "x", 1), 200);
        char *x = ct_docker_read_file(id, "/tmp/exercise", NULL);
        assert_string_equal(x, "x");
        free(x);
    } else {
        assert_int_equal(ct_docker_put_file(id, "/tmp", "exercise", "x", 1), 404);
    }
    char *script = ct_docker_read_file(id, "/run.sh", NULL);
    assert_non_null(strstr(script, "no tmp"));
    free(script);
    free(id);
}

static bool oom_killed(void *id)
{
    json_t *insp = ct_docker_inspect(id);
    bool yes = json_is_true(json_object_get(json_object_get(insp, "State"), "OOMKilled"));
    json_decref(insp);
    return yes;
}

static void test_memhog_is_oom_killed(void **state)
{
    (void)state;
    json_t *hc =
        json_pack("{s:I,s:I}", "Memory", (json_int_t)16 << 20, "MemorySwap", (json_int_t)16 << 20);
    /* The engine handles the exit and the OOM kill as two events, in the order the shim sends
     * them: under load the flag is set a moment after the exit. And under load it loses a few
     * (the kernel's event read after the cgroup is gone): one of three tries must be flagged. */
    bool flagged = false;
    for (int try = 0; try < 3 && !flagged; try++) {
        char *id = run_container("ct-memhog:latest", NULL, hc);
        ct_docker_start(id);
        int code = ct_docker_wait(id, 60000);
        assert_int_equal(code, 137);
        /* Podman 4.3 with Debian 12's conmon 2.1.6 never flags it: conmon writes its "oom"
         * marker into the service's working folder, not where Podman reads it, and Podman
         * sends no oom event. The exit (137, SIGKILL) is all there is: the completer reports
         * "container killed", saying that the memory limit may be why */
        if (ct_engine_is_podman()) {
            free(id);
            flagged = true;
            break;
        }
        flagged = ct_wait_until(oom_killed, id, 15000);
        free(id);
    }
    json_decref(hc);
    assert_true(flagged);
}

static void test_sleeper(void **state)
{
    (void)state;
    const char *env[] = {"SLEEP=0", NULL};
    char *id = run_container("ct-sleeper:latest", env, NULL);
    ct_docker_start(id);
    assert_int_equal(ct_docker_wait(id, 30000), 0);
    char *out = ct_docker_logs(id, true, true, NULL);
    assert_non_null(strstr(out, "\"success\":true"));
    free(out);
    free(id);

    id = run_container("ct-sleeper:latest", NULL, NULL);
    ct_docker_start(id);
    assert_int_equal(ct_docker_wait(id, 200), -ETIMEDOUT);
    free(id);
    ct_docker_remove_labelled(label);
    json_t *list = ct_docker_list(label);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_files_and_processes),
        cmocka_unit_test(test_broker),
        cmocka_unit_test(test_engine),
        cmocka_unit_test(test_images_exist),
        cmocka_unit_test(test_ok_output),
        cmocka_unit_test(test_file_roundtrip_and_echo),
        cmocka_unit_test(test_notmp),
        cmocka_unit_test(test_memhog_is_oom_killed),
        cmocka_unit_test(test_sleeper),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
