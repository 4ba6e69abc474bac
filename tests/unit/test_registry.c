/* Unit tests for registry.c: image references, credentials and X-Registry-Auth, the image
 * allowlist, pull failure classification. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

/* ---- references ---- */

static void expect_ref(const char *ref, const char *name, const char *tag, const char *host,
                       bool digest)
{
    struct registry_ref r;
    assert_int_equal(registry_ref_parse(ref, &r), 0);
    assert_string_equal(r.name, name);
    assert_string_equal(r.tag, tag);
    assert_string_equal(r.host, host);
    assert_int_equal(r.has_digest, digest);
}

static void test_ref_hub(void **state)
{
    (void)state;
    expect_ref("ubuntu", "ubuntu", "latest", "docker.io", false);
    expect_ref("ubuntu:22.04", "ubuntu", "22.04", "docker.io", false);
    expect_ref("correction-test-1:latest", "correction-test-1", "latest", "docker.io", false);
    /* A first component without '.' or ':' is a Hub namespace, not a host. */
    expect_ref("team/java:3", "team/java", "3", "docker.io", false);
    expect_ref("docker.io/library/busybox", "docker.io/library/busybox", "latest", "docker.io",
               false);
    /* The Hub's other names are the Hub (as its credentials are): found by tests/fuzz/registry. */
    expect_ref("index.docker.io/library/busybox:1", "index.docker.io/library/busybox", "1",
               "docker.io", false);
    expect_ref("Registry-1.Docker.IO/team/java", "Registry-1.Docker.IO/team/java", "latest",
               "docker.io", false);
}

static void test_ref_private(void **state)
{
    (void)state;
    expect_ref("registry.example/java", "registry.example/java", "latest", "registry.example",
               false);
    expect_ref("127.0.0.1:5055/ct/ok:1", "127.0.0.1:5055/ct/ok", "1", "127.0.0.1:5055", false);
    expect_ref("localhost/x:2", "localhost/x", "2", "localhost", false);
    expect_ref("localhost:5000/a/b/c", "localhost:5000/a/b/c", "latest", "localhost:5000", false);
    /* A port alone is not a tag. */
    expect_ref("reg.example:5000/x", "reg.example:5000/x", "latest", "reg.example:5000", false);
}

static void test_ref_digest(void **state)
{
    (void)state;
    expect_ref("reg.example/x@sha256:abcd", "reg.example/x", "sha256:abcd", "reg.example", true);
    /* tag and digest: the digest decides */
    expect_ref("reg.example:5000/x:1@sha256:abcd", "reg.example:5000/x", "sha256:abcd",
               "reg.example:5000", true);
}

static void test_ref_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {"",      "a b",         "x:",  "x@",   "/x",
                                      "x/",    "a//b",        "x\n", ":tag", "@sha256:1",
                                      "a@b@c", "reg.x/a@s/1", NULL};
    struct registry_ref r = {.name = "untouched"};
    for (size_t i = 0; bad[i]; i++) {
        if (registry_ref_parse(bad[i], &r) != -EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
    }
    assert_int_equal(registry_ref_parse(NULL, &r), -EINVAL);
    char big[REGISTRY_MAX_REF + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(registry_ref_parse(big, &r), -EINVAL);
    assert_string_equal(r.name, "untouched");
}

/* ---- credentials ---- */

static char *base64url_decode(const char *s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = strlen(s);
    char *out = calloc(1, len + 1);
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    assert_non_null(out);
    assert_int_equal(len % 4, 0); /* padded */
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *p = strchr(tab, s[i]);
        assert_non_null(p);
        v = (v << 6) | (unsigned)(p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    return out;
}

static void test_base64url(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {{"", ""},
                 {"f", "Zg=="},
                 {"fo", "Zm8="},
                 {"foo", "Zm9v"},
                 {"foob", "Zm9vYg=="},
                 {"\xfb\xff", "-_8="},
                 {"\xff\xfe", "__4="}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *b = registry_base64url(cases[i].in, strlen(cases[i].in));
        assert_string_equal(b, cases[i].out);
        free(b);
    }
}

static void expect_auth(const registry_creds *c, const char *host, const char *user,
                        const char *pass, const char *server)
{
    char *auth = NULL;
    assert_int_equal(registry_auth_header(c, host, &auth), 0);
    assert_non_null(auth);
    char *text = base64url_decode(auth);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(j, "username")), user);
    assert_string_equal(json_string_value(json_object_get(j, "password")), pass);
    assert_string_equal(json_string_value(json_object_get(j, "serveraddress")), server);
    json_decref(j);
    free(text);
    registry_auth_free(auth);
}

static void test_creds(void **state)
{
    (void)state;
    struct ct_error err = {0};
    registry_creds *c = registry_creds_new();
    const char *json =
        "{\"registry.example:5000\": {\"username\": \"u1\", \"password\": \"p\\\"1\"},"
        " \"https://index.docker.io/v1/\": {\"username\": \"hub\", \"password\": "
        "\"h\"}}";
    assert_int_equal(registry_creds_add_json(c, json, strlen(json), "X", &err), 0);
    assert_int_equal(registry_creds_count(c), 2);
    const char *more = "{\"http://127.0.0.1:5055/\": {\"username\": \"user\", \"password\": "
                       "\"secret\"}}";
    assert_int_equal(registry_creds_add_json(c, more, strlen(more), "Y", &err), 0);
    assert_int_equal(registry_creds_count(c), 3);

    expect_auth(c, "registry.example:5000", "u1", "p\"1", "registry.example:5000");
    expect_auth(c, "REGISTRY.example:5000", "u1", "p\"1", "registry.example:5000");
    expect_auth(c, "docker.io", "hub", "h", "https://index.docker.io/v1/");
    expect_auth(c, "127.0.0.1:5055", "user", "secret", "127.0.0.1:5055");

    char *auth = (char *)"untouched";
    assert_int_equal(registry_auth_header(c, "registry.example", &auth), 1); /* port differs */
    assert_null(auth);
    assert_int_equal(registry_auth_header(NULL, "docker.io", &auth), 1);

    /* A host given again, by another source: refused, nothing added. */
    const char *again = "{\"new.example\": {\"username\": \"a\", \"password\": \"b\"}, "
                        "\"registry.example:5000\": {\"username\": \"a\", \"password\": \"b\"}}";
    assert_int_equal(registry_creds_add_json(c, again, strlen(again), "Z", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "given twice"));
    assert_int_equal(registry_creds_count(c), 3);
    assert_int_equal(registry_auth_header(c, "new.example", &auth), 1);
    registry_creds_free(c);
    registry_creds_free(NULL);
}

static void expect_bad_creds(const char *json, const char *in_err)
{
    struct ct_error err = {0};
    registry_creds *c = registry_creds_new();
    assert_int_equal(
        registry_creds_add_json(c, json, strlen(json), "DOCKER_REGISTRY_CREDENTIALS", &err),
        -EINVAL);
    assert_int_equal(registry_creds_count(c), 0);
    if (!strstr(err.msg, "DOCKER_REGISTRY_CREDENTIALS") || !strstr(err.msg, in_err))
        fail_msg("for %s: message \"%s\" lacks \"%s\"", json, err.msg, in_err);
    /* Never the password in a message. */
    assert_null(strstr(err.msg, "hunter2"));
    registry_creds_free(c);
}

static void test_creds_invalid(void **state)
{
    (void)state;
    expect_bad_creds("{\"r.example\": {\"username\": \"u\", \"password\": hunter2}}",
                     "not valid JSON");
    expect_bad_creds("[1]", "expected an object");
    expect_bad_creds("{\"r.example\": \"u:hunter2\"}", "needs {\"username\"");
    expect_bad_creds("{\"r.example\": {\"username\": \"u\"}}", "needs {\"username\"");
    expect_bad_creds("{\"r.example\": {\"username\": \"\", \"password\": \"hunter2\"}}",
                     "needs {\"username\"");
    expect_bad_creds("{\"r.example\": {\"username\": \"u\", \"password\": \"hunter2\", "
                     "\"pasword\": \"x\"}}",
                     "unknown field \"pasword\"");
    expect_bad_creds("{\"\": {\"username\": \"u\", \"password\": \"hunter2\"}}",
                     "not a registry host");
    expect_bad_creds("{\"a b\": {\"username\": \"u\", \"password\": \"hunter2\"}}",
                     "not a registry host");
    expect_bad_creds("{\"docker.io\": {\"username\": \"u\", \"password\": \"hunter2\"}, "
                     "\"index.docker.io\": {\"username\": \"u\", \"password\": \"hunter2\"}}",
                     "given twice");
}

/* ---- allowlist ---- */

static registry_allowlist *allow(const char *list)
{
    registry_allowlist *a = NULL;
    struct ct_error err = {0};
    if (registry_allowlist_parse(list, "ALLOWED_IMAGES", &a, &err) < 0)
        fail_msg("%s: %s", list, err.msg);
    return a;
}

static void test_allowlist(void **state)
{
    (void)state;
    registry_allowlist *a =
        allow(" registry.example/* ,correction-*,, ct-ok:latest, sha/x@*, ct/java");
    assert_int_equal(registry_allowlist_count(a), 5);
    static const char *const yes[] = {"registry.example/java",
                                      "registry.example/team/java:3",
                                      "registry.example/x@sha256:ab",
                                      "correction-java",
                                      "correction-java:3",
                                      "ct-ok",
                                      "ct-ok:latest",
                                      "sha/x@sha256:00",
                                      "ct/java",
                                      "ct/java:17",
                                      "ct/java@sha256:00",
                                      NULL};
    static const char *const no[] = {"registry.example",
                                     "registry.example/",
                                     "registry.example.evil/java",
                                     "evil/registry.example/java",
                                     "correction-x.evil/y",
                                     "team/correction-java",
                                     "ct-ok:2",
                                     "ct-okay",
                                     "sha/x",
                                     "other",
                                     "ct/java/x",
                                     "ct/javascript",
                                     "",
                                     "correction-a b",
                                     NULL};
    for (size_t i = 0; yes[i]; i++)
        if (!registry_allowlist_match(a, yes[i]))
            fail_msg("\"%s\" should be allowed", yes[i]);
    for (size_t i = 0; no[i]; i++)
        if (registry_allowlist_match(a, no[i]))
            fail_msg("\"%s\" should not be allowed", no[i]);
    assert_false(registry_allowlist_match(NULL, "ct-ok"));
    registry_allowlist_free(a);

    a = allow("*.example:5000/*,[a-c]?-img");
    assert_true(registry_allowlist_match(a, "reg.example:5000/x/y:1"));
    assert_false(registry_allowlist_match(a, "a/b.example:5000/x"));
    assert_true(registry_allowlist_match(a, "b1-img:latest"));
    assert_false(registry_allowlist_match(a, "d1-img"));
    registry_allowlist_free(a);
    registry_allowlist_free(NULL);
}

static void test_allowlist_invalid(void **state)
{
    (void)state;
    registry_allowlist *a = (registry_allowlist *)0x1;
    struct ct_error err = {0};
    assert_int_equal(registry_allowlist_parse(" , ,", "ALLOWED_IMAGES", &a, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "ALLOWED_IMAGES"));
    assert_int_equal(registry_allowlist_parse("a,b c", "ALLOWED_IMAGES", &a, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "b c"));
    assert_ptr_equal(a, (registry_allowlist *)0x1);
}

/* ---- pull failures (messages as Docker 20.10 writes them) ---- */

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(registry_pull_classify(-ETIMEDOUT, 0, "timed out"), REGISTRY_PULL_INFRA);
    assert_int_equal(registry_pull_classify(-ECONNREFUSED, 0, ""), REGISTRY_PULL_INFRA);
    assert_int_equal(registry_pull_classify(0, 404,
                                            "manifest for 127.0.0.1:5055/ct/ok:2 not found: "
                                            "manifest unknown: manifest unknown"),
                     REGISTRY_PULL_NOT_FOUND);
    assert_int_equal(registry_pull_classify(0, 400,
                                            "invalid reference format: repository name must be "
                                            "lowercase"),
                     REGISTRY_PULL_NOT_FOUND);
    assert_int_equal(registry_pull_classify(0, 500, "unauthorized: authentication required"),
                     REGISTRY_PULL_DENIED);
    assert_int_equal(registry_pull_classify(0, 500,
                                            "Head \"http://127.0.0.1:5055/v2/ct/ok/manifests/1\": "
                                            "no basic auth credentials"),
                     REGISTRY_PULL_DENIED);
    assert_int_equal(
        registry_pull_classify(0, 404,
                               "pull access denied for x, repository does not exist or "
                               "may require 'docker login': denied: requested access to "
                               "the resource is denied"),
        REGISTRY_PULL_DENIED);
    assert_int_equal(registry_pull_classify(0, 500,
                                            "Get \"http://127.0.0.1:9/v2/\": dial tcp "
                                            "127.0.0.1:9: connect: connection refused"),
                     REGISTRY_PULL_INFRA);
    assert_int_equal(registry_pull_classify(0, 500,
                                            "Get \"https://registry-1.docker.io/v2/\": dial tcp: "
                                            "lookup registry-1.docker.io: no such host"),
                     REGISTRY_PULL_INFRA);
    /* errors inside a 200 stream */
    assert_int_equal(registry_pull_classify(0, 200, "manifest unknown"), REGISTRY_PULL_NOT_FOUND);
    assert_int_equal(registry_pull_classify(0, 200, "unexpected EOF"), REGISTRY_PULL_INFRA);
    /* a blob the registry lost: Docker's words, and Podman 4.3's (with a 404 in them) */
    assert_int_equal(registry_pull_classify(0, 200, "unknown blob"), REGISTRY_PULL_INFRA);
    assert_int_equal(registry_pull_classify(0, 200,
                                            "reading blob sha256:59e2: Error fetching blob: "
                                            "invalid status code from registry 404 (Not Found)"),
                     REGISTRY_PULL_INFRA);
    assert_int_equal(registry_pull_classify(0, 200, "toomanyrequests: rate limit"),
                     REGISTRY_PULL_INFRA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_hub),           cmocka_unit_test(test_ref_private),
        cmocka_unit_test(test_ref_digest),        cmocka_unit_test(test_ref_invalid),
        cmocka_unit_test(test_base64url),         cmocka_unit_test(test_creds),
        cmocka_unit_test(test_creds_invalid),     cmocka_unit_test(test_allowlist),
        cmocka_unit_test(test_allowlist_invalid), cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
