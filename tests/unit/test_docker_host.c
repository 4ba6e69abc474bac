/* Unit tests for docker.c's pure logic: DOCKER_HOST parsing, URL building and encoding,
 * configuration from the environment. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "docker.h"

static void expect_endpoint(const char *host, bool tls, const char *base, const char *sock)
{
    struct docker_endpoint ep = {0};
    struct ct_error err = {0};

    assert_int_equal(docker_endpoint_parse(host, tls, &ep, &err), 0);
    assert_string_equal(ep.base_url, base);
    if (sock)
        assert_string_equal(ep.unix_socket, sock);
    else
        assert_null(ep.unix_socket);
    docker_endpoint_clear(&ep);
}

static void expect_bad_host(const char *host)
{
    struct docker_endpoint ep = {(char *)"untouched", NULL};
    struct ct_error err = {0};

    assert_int_equal(docker_endpoint_parse(host, false, &ep, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "DOCKER_HOST"));
    assert_string_equal(ep.base_url, "untouched");
}

static void test_default_host(void **state)
{
    (void)state;
    expect_endpoint(NULL, false, "http://localhost", "/var/run/docker.sock");
    expect_endpoint("", true, "http://localhost", "/var/run/docker.sock");
}

static void test_unix_host(void **state)
{
    (void)state;
    expect_endpoint("unix:///tmp/x/docker.sock", false, "http://localhost", "/tmp/x/docker.sock");
    /* TLS does not apply to a Unix socket. */
    expect_endpoint("unix:///run/d.sock", true, "http://localhost", "/run/d.sock");
}

static void test_tcp_host(void **state)
{
    (void)state;
    expect_endpoint("tcp://127.0.0.1:2375", false, "http://127.0.0.1:2375", NULL);
    expect_endpoint("tcp://docker.example.org:12376", true, "https://docker.example.org:12376",
                    NULL);
    expect_endpoint("tcp://dockerhost", false, "http://dockerhost:2375", NULL);
    expect_endpoint("tcp://dockerhost", true, "https://dockerhost:2376", NULL);
    expect_endpoint("tcp://dockerhost:2375/", false, "http://dockerhost:2375", NULL);
    expect_endpoint("tcp://[::1]:2376", true, "https://[::1]:2376", NULL);
    expect_endpoint("tcp://[::1]", false, "http://[::1]:2375", NULL);
}

static void test_bad_hosts(void **state)
{
    (void)state;
    expect_bad_host("unix://");
    expect_bad_host("unix://relative/docker.sock");
    expect_bad_host("http://localhost:2375");
    expect_bad_host("ssh://user@host");
    expect_bad_host("/var/run/docker.sock");
    expect_bad_host("tcp://");
    expect_bad_host("tcp://:2375");
    expect_bad_host("tcp://host:");
    expect_bad_host("tcp://host:0");
    expect_bad_host("tcp://host:65536");
    expect_bad_host("tcp://host:23x");
    expect_bad_host("tcp://host:2375/prefix");
    expect_bad_host("tcp://us@er:host:2375");
    expect_bad_host("tcp://ho st:2375");
    expect_bad_host("tcp://[::1:2375");
}

static void test_long_unix_path(void **state)
{
    char host[300] = "unix:///";

    (void)state;
    memset(host + 8, 'a', 200);
    host[208] = '\0';
    expect_bad_host(host);
}

static void test_url_encode(void **state)
{
    char *s;

    (void)state;
    s = docker_url_encode("abcXYZ019-._~");
    assert_string_equal(s, "abcXYZ019-._~");
    free(s);
    s = docker_url_encode("ct-ok:latest");
    assert_string_equal(s, "ct-ok%3Alatest");
    free(s);
    s = docker_url_encode("/tmp/a b&c=d?e#f/");
    assert_string_equal(s, "%2Ftmp%2Fa%20b%26c%3Dd%3Fe%23f%2F");
    free(s);
    s = docker_url_encode("{\"label\":[\"a=b\"]}");
    assert_string_equal(s, "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    free(s);
    s = docker_url_encode("\xc3\xa9%+");
    assert_string_equal(s, "%C3%A9%25%2B");
    free(s);
    s = docker_url_encode("");
    assert_string_equal(s, "");
    free(s);
}

static void test_url_join(void **state)
{
    char *s;

    (void)state;
    s = docker_url_join("http://localhost", "/containers/json?all=1");
    assert_string_equal(s, "http://localhost/v1.41/containers/json?all=1");
    free(s);
    s = docker_url_join("https://h:2376", "/_ping");
    assert_string_equal(s, "https://h:2376/v1.41/_ping");
    free(s);
}

static void test_path_for(void **state)
{
    char *s;

    (void)state;
    s = docker_path_for("/containers/", "ct-job 1/../x", "/json");
    assert_string_equal(s, "/containers/ct-job%201%2F..%2Fx/json");
    free(s);
    s = docker_path_for("/images/", "ct-ok:latest", "/json");
    assert_string_equal(s, "/images/ct-ok%3Alatest/json");
    free(s);
    s = docker_path_for("/containers/", "abc", NULL);
    assert_string_equal(s, "/containers/abc");
    free(s);
}

static void test_query_add(void **state)
{
    char *p = strdup("/containers/create");

    (void)state;
    assert_int_equal(docker_query_add(&p, "name", "job/1&x=y"), 0);
    assert_string_equal(p, "/containers/create?name=job%2F1%26x%3Dy");
    assert_int_equal(docker_query_add(&p, "filters", "{\"a\":1}"), 0);
    assert_string_equal(p, "/containers/create?name=job%2F1%26x%3Dy&filters=%7B%22a%22%3A1%7D");
    free(p);
}

static void test_config_defaults(void **state)
{
    struct docker_config cfg;

    (void)state;
    memset(&cfg, 0xff, sizeof(cfg));
    docker_config_defaults(&cfg);
    assert_null(cfg.host);
    assert_false(cfg.tls_verify);
    assert_null(cfg.cert_path);
    assert_int_equal(cfg.timeout_ms, 30000);
    assert_int_equal(cfg.max_response_bytes, 4 * 1024 * 1024);
}

static void test_config_from_env(void **state)
{
    struct docker_config cfg;
    struct ct_error err = {0};

    (void)state;
    docker_config_defaults(&cfg);
    unsetenv("DOCKER_HOST");
    unsetenv("DOCKER_TLS_VERIFY");
    unsetenv("DOCKER_CERT_PATH");
    assert_int_equal(docker_config_from_env(&cfg, &err), 0);
    assert_null(cfg.host);
    assert_false(cfg.tls_verify);
    assert_null(cfg.cert_path);

    setenv("DOCKER_HOST", "tcp://10.0.0.1:2376", 1);
    setenv("DOCKER_TLS_VERIFY", "1", 1);
    setenv("DOCKER_CERT_PATH", "/etc/docker-certs", 1);
    assert_int_equal(docker_config_from_env(&cfg, &err), 0);
    assert_string_equal(cfg.host, "tcp://10.0.0.1:2376");
    assert_true(cfg.tls_verify);
    assert_string_equal(cfg.cert_path, "/etc/docker-certs");
    assert_int_equal(cfg.timeout_ms, 30000);

    /* Empty DOCKER_TLS_VERIFY means off, as for the docker CLI. */
    setenv("DOCKER_TLS_VERIFY", "", 1);
    assert_int_equal(docker_config_from_env(&cfg, &err), 0);
    assert_false(cfg.tls_verify);

    setenv("DOCKER_HOST", "bogus://x", 1);
    docker_config_defaults(&cfg);
    assert_int_equal(docker_config_from_env(&cfg, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "DOCKER_HOST=bogus://x"));
    assert_null(cfg.host); /* untouched */
    unsetenv("DOCKER_HOST");
    unsetenv("DOCKER_TLS_VERIFY");
    unsetenv("DOCKER_CERT_PATH");
}

static void test_new_tls_missing_certs(void **state)
{
    struct docker_config cfg;
    uv_loop_t loop;
    struct ct_error err = {0};

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    docker_config_defaults(&cfg);
    cfg.host = "tcp://127.0.0.1:2376";
    cfg.tls_verify = true;
    cfg.cert_path = "/nonexistent-ct-certs";
    docker *d_unused = (docker *)&loop; /* set to NULL on failure */
    assert_int_equal(docker_new(&loop, &cfg, &d_unused, &err), -ENOENT);
    assert_null(d_unused);
    assert_int_equal(err.code, -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent-ct-certs/ca.pem"));

    cfg.host = "nope";
    assert_int_equal(docker_new(&loop, &cfg, &d_unused, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "DOCKER_HOST"));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_new_free_without_calls(void **state)
{
    struct docker_config cfg;
    uv_loop_t loop;
    struct ct_error err = {0};
    docker *d;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    docker_config_defaults(&cfg);
    cfg.host = "unix:///nonexistent/docker.sock";
    assert_int_equal(docker_new(&loop, &cfg, &d, &err), 0);
    assert_non_null(d);
    docker_free(d);
    docker_free(NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct scanned {
    char ids[8][70];
    char states[8][16];
    int n;
};

static void on_scanned(const char *id, size_t id_len, const char *state, size_t state_len, void *ud)
{
    struct scanned *sc = ud;
    snprintf(sc->ids[sc->n], sizeof(sc->ids[0]), "%.*s", id ? (int)id_len : 6, id ? id : "(none)");
    snprintf(sc->states[sc->n], sizeof(sc->states[0]), "%.*s", state ? (int)state_len : 6,
             state ? state : "(none)");
    sc->n++;
}

static void test_scan_list(void **state)
{
    (void)state;
    /* Docker's shape, with the traps a naive search would fall into: "Id" and "State" keys
     * inside nested objects and inside label values, escapes, numbers, null, empty ones. */
    const char *body =
        "[{\"Id\":\"aaaa\",\"Names\":[\"/x\"],\"Created\":1700000000,\"Labels\":"
        "{\"correctomatic.work_id\":\"\\\"Id\\\":\\\"fake\\\"\",\"State\":\"running\"},"
        "\"State\":\"exited\",\"Status\":\"Exited (0)\",\"HostConfig\":{\"NetworkMode\":"
        "\"none\"},\"NetworkSettings\":{\"Networks\":{\"none\":{\"Id\":\"net\",\"IPAMConfig\""
        ":null,\"Aliases\":[]}}},\"Mounts\":[],\"Ports\":[{\"PrivatePort\":80,\"Type\":"
        "\"tcp\"}],\"SizeRw\":-1.5e3,\"Flag\":true}, {} ,\n {\"State\":\"running\",\"Id\":"
        "\"bbbb\"},{\"Id\":\"c\\u0063\",\"State\":\"dead\"}]";
    struct scanned sc = {.n = 0};
    assert_int_equal(docker_scan_list(body, strlen(body), on_scanned, &sc), 0);
    assert_int_equal(sc.n, 4);
    assert_string_equal(sc.ids[0], "aaaa");
    assert_string_equal(sc.states[0], "exited");
    assert_string_equal(sc.ids[1], "(none)");
    assert_string_equal(sc.states[1], "(none)");
    assert_string_equal(sc.ids[2], "bbbb");
    assert_string_equal(sc.states[2], "running");
    assert_string_equal(sc.ids[3], "(none)"); /* escaped: not an id of ours */
    assert_string_equal(sc.states[3], "dead");

    sc.n = 0;
    assert_int_equal(docker_scan_list(" [ ] ", 5, on_scanned, &sc), 0);
    assert_int_equal(sc.n, 0);
    const char *bad[] = {"",
                         "{}",
                         "[",
                         "[{]",
                         "[{\"Id\":}]",
                         "[{\"Id\":\"x\"]",
                         "[{\"a\":[1,2}]",
                         "[{\"Id\":\"x\"},]x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sc.n = 0;
        if (docker_scan_list(bad[i], strlen(bad[i]), on_scanned, &sc) != -EBADMSG)
            fail_msg("accepted: %s", bad[i]);
    }
}

/* Both forms the engine writes an event in; anything without a container id is refused. */
static void test_event_container(void **state)
{
    (void)state;
    static const char *cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *action = NULL, *id = NULL;
    json_t *ev = json_pack("{s:s,s:{s:s}}", "Action", "die", "Actor", "ID", cid);
    assert_int_equal(docker_event_container(ev, &action, &id), 0);
    assert_string_equal(action, "die");
    assert_string_equal(id, cid);
    json_decref(ev);
    ev = json_pack("{s:s,s:s}", "status", "start", "id", cid); /* the older form */
    assert_int_equal(docker_event_container(ev, &action, &id), 0);
    assert_string_equal(action, "start");
    json_decref(ev);
    const char *bad[] = {
        "{\"Action\":\"die\"}", "{\"Action\":\"die\",\"Actor\":{\"ID\":\"abc\"}}",
        "{\"Action\":7,\"id\":"
        "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
        "{\"Actor\":{\"ID\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}}",
        "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ev = json_loads(bad[i], 0, NULL);
        assert_non_null(ev);
        assert_int_equal(docker_event_container(ev, &action, &id), -EINVAL);
        json_decref(ev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_host),
        cmocka_unit_test(test_unix_host),
        cmocka_unit_test(test_tcp_host),
        cmocka_unit_test(test_bad_hosts),
        cmocka_unit_test(test_long_unix_path),
        cmocka_unit_test(test_url_encode),
        cmocka_unit_test(test_url_join),
        cmocka_unit_test(test_path_for),
        cmocka_unit_test(test_query_add),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_from_env),
        cmocka_unit_test(test_new_tls_missing_certs),
        cmocka_unit_test(test_new_free_without_calls),
        cmocka_unit_test(test_scan_list),
        cmocka_unit_test(test_event_container),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
