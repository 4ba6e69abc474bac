/* docker_compat: Podman 4.3's answers made to look like Docker's, and Docker's left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "docker_compat.h"

static char *engine_filters(const char *json)
{
    json_t *f = json_loads(json, 0, NULL), *out = NULL;
    assert_non_null(f);
    assert_int_equal(docker_compat_events_filters(f, &out), 0);
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(f);
    json_decref(out);
    return s;
}

static void test_filters(void **state)
{
    (void)state;
    json_t *out = (json_t *)1;
    assert_int_equal(docker_compat_events_filters(NULL, &out), 0);
    assert_null(out);

    /* the starter's and the completer's watch: the engine gets Podman's names too, and no
     * label it may not understand (key only) */
    char *s = engine_filters(
        "{\"type\":[\"container\"],\"event\":[\"start\",\"die\",\"destroy\"],\"label\":[\"k\"]}");
    assert_string_equal(
        s,
        "{\"event\":[\"start\",\"die\",\"destroy\",\"died\",\"remove\"],\"type\":[\"container\"]}");
    free(s);
    /* key=value labels are still the engine's to filter; a name given twice is not added */
    s = engine_filters("{\"event\":[\"die\",\"died\",\"oom\"],\"label\":[\"k=v\",\"k2\"]}");
    assert_string_equal(s, "{\"event\":[\"die\",\"died\",\"oom\"],\"label\":[\"k=v\"]}");
    free(s);
    s = engine_filters("{\"type\":[\"container\"]}");
    assert_string_equal(s, "{\"type\":[\"container\"]}");
    free(s);
}

static json_t *event(const char *action, const char *attrs)
{
    json_t *a = json_loads(attrs, 0, NULL);
    assert_non_null(a);
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:o}}", "Type", "container", "status", action,
                     "Action", action, "Actor", "ID", "0123", "Attributes", a);
}

/* docker_compat_event_wanted with these filters (JSON text). */
static bool wanted(json_t *ev, const char *filters)
{
    json_t *f = json_loads(filters, 0, NULL);
    assert_non_null(f);
    bool w = docker_compat_event_wanted(ev, f);
    json_decref(f);
    return w;
}

static void test_wanted(void **state)
{
    (void)state;
    json_t *ev = event("die", "{\"k\":\"v\",\"k2\":\"w\",\"exitCode\":\"0\"}");
    assert_true(wanted(ev, "{\"label\":[\"k\"]}"));
    assert_true(wanted(ev, "{\"label\":[\"k=v\",\"k2=w\"]}"));
    /* labels are AND'ed (Podman OR's them) */
    assert_false(wanted(ev, "{\"label\":[\"k=v\",\"k2=x\"]}"));
    assert_false(wanted(ev, "{\"label\":[\"other\"]}"));
    assert_false(wanted(ev, "{\"label\":[\"k=\"]}"));
    assert_true(docker_compat_event_wanted(ev, NULL));
    json_decref(ev);
}

static void test_normalize(void **state)
{
    (void)state;
    /* Podman's own names, from any API */
    json_t *ev = event("died", "{\"containerExitCode\":\"3\"}");
    docker_compat_event_normalize(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "Action")), "die");
    assert_string_equal(json_string_value(json_object_get(ev, "status")), "die");
    json_t *attrs = json_object_get(json_object_get(ev, "Actor"), "Attributes");
    assert_string_equal(json_string_value(json_object_get(attrs, "exitCode")), "3");
    json_decref(ev);

    ev = event("remove", "{}");
    docker_compat_event_normalize(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "Action")), "destroy");
    json_decref(ev);

    /* Docker's: untouched */
    ev = event("die", "{\"exitCode\":\"137\",\"containerExitCode\":\"0\"}");
    docker_compat_event_normalize(ev);
    attrs = json_object_get(json_object_get(ev, "Actor"), "Attributes");
    assert_string_equal(json_string_value(json_object_get(attrs, "exitCode")), "137");
    json_decref(ev);

    /* a network's or a volume's remove is not a container's destroy */
    ev = json_pack("{s:s, s:s}", "Type", "network", "Action", "remove");
    docker_compat_event_normalize(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "Action")), "remove");
    json_decref(ev);
}

/* docker_compat_status for an error body (JSON text). */
static long status_of(long status, const char *body, bool create)
{
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    long r = docker_compat_status(status, j, create);
    json_decref(j);
    return r;
}

static void test_status(void **state)
{
    (void)state;
    assert_int_equal(status_of(500,
                               "{\"cause\":\"that name is already in use\",\"message\":\"container "
                               "create: ...\",\"response\":500}",
                               false),
                     409);
    assert_int_equal(status_of(500,
                               "{\"cause\":\"container state improper\",\"message\":\"can only "
                               "kill running containers. x is in state exited: container state "
                               "improper\"}",
                               false),
                     409);
    assert_int_equal(status_of(500, "{\"cause\":\"something else\"}", false), 500);
    /* Docker's own 500 has no cause */
    assert_int_equal(status_of(500, "{\"message\":\"that name is already in use\"}", false), 500);
    assert_int_equal(docker_compat_status(404, NULL, false), 404);
    assert_int_equal(docker_compat_status(500, NULL, false), 500);
    /* an image name that is not one */
    assert_int_equal(status_of(500,
                               "{\"cause\":\"normalizing name for compat API: invalid reference "
                               "format\",\"message\":\"normalizing image: normalizing name for "
                               "compat API: invalid reference format\",\"response\":500}",
                               true),
                     400);
    /* a create naming a network that does not exist: a setting refused, not a missing image */
    const char *no_network = "{\"cause\":\"network not found\",\"message\":\"container create: "
                             "unable to find network with name or ID n: network not "
                             "found\",\"response\":500}";
    assert_int_equal(status_of(500, no_network, true), 400);
    assert_int_equal(status_of(500, no_network, false), 500);
}

/* GET /version as Podman 4.3.1's service answers it (podman system service, this machine). */
static const char podman_4_3_version[] =
    "{\"Platform\":{\"Name\":\"linux/amd64/debian-12\"},\"Components\":[{\"Name\":\"Podman "
    "Engine\",\"Version\":\"4.3.1\",\"Details\":{\"APIVersion\":\"4.3.1\",\"Arch\":\"amd64\","
    "\"BuildTime\":\"1970-01-01T00:00:00Z\",\"Experimental\":\"false\",\"GitCommit\":\"\","
    "\"GoVersion\":\"go1.19.8\",\"KernelVersion\":\"6.18.44\",\"MinAPIVersion\":\"4.0.0\","
    "\"Os\":\"linux\"}},{\"Name\":\"Conmon\",\"Version\":\"conmon version 2.1.6, commit: "
    "unknown\",\"Details\":{\"Package\":\"conmon_2.1.6+ds1-1_amd64\"}},{\"Name\":\"OCI Runtime "
    "(runc)\",\"Version\":\"runc version 1.1.5+ds1\",\"Details\":{\"Package\":\"runc\"}}],"
    "\"Version\":\"4.3.1\",\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.24\",\"GitCommit\":\"\","
    "\"GoVersion\":\"go1.19.8\",\"Os\":\"linux\",\"Arch\":\"amd64\"}";
/* Podman 3.0's (no Components; its platform says so). */
static const char podman_3_0_version[] =
    "{\"Platform\":{\"Name\":\"Podman Engine\"},\"Version\":\"3.0.1\",\"ApiVersion\":\"1.40\","
    "\"MinAPIVersion\":\"1.24\",\"Os\":\"linux\",\"Arch\":\"amd64\"}";
/* Docker 20.10's (Debian's docker.io, this machine). */
static const char docker_20_10_version[] =
    "{\"Platform\":{\"Name\":\"\"},\"Components\":[{\"Name\":\"Engine\",\"Version\":"
    "\"20.10.24+dfsg1\",\"Details\":{\"ApiVersion\":\"1.41\",\"Arch\":\"amd64\",\"BuildTime\":"
    "\"2023-05-18T08:38:34.000000000+00:00\",\"Experimental\":\"false\",\"GitCommit\":"
    "\"5d6db84\",\"GoVersion\":\"go1.19.8\",\"KernelVersion\":\"6.1.0\",\"MinAPIVersion\":"
    "\"1.12\",\"Os\":\"linux\"}},{\"Name\":\"containerd\",\"Version\":\"1.6.20~ds1\",\"Details\":"
    "{\"GitCommit\":\"1.6.20~ds1-1+b1\"}},{\"Name\":\"runc\",\"Version\":\"1.1.5+ds1\","
    "\"Details\":{\"GitCommit\":\"1.1.5+ds1-1+deb12u1\"}},{\"Name\":\"docker-init\",\"Version\":"
    "\"0.19.0\",\"Details\":{\"GitCommit\":\"\"}}],\"Version\":\"20.10.24+dfsg1\",\"ApiVersion\":"
    "\"1.41\",\"MinAPIVersion\":\"1.12\",\"GitCommit\":\"5d6db84\",\"Os\":\"linux\"}";
/* Docker 25's: a newer API than ours. */
static const char docker_25_version[] =
    "{\"Platform\":{\"Name\":\"Docker Engine - Community\"},\"Components\":[{\"Name\":\"Engine\","
    "\"Version\":\"25.0.3\",\"Details\":{\"ApiVersion\":\"1.44\",\"MinAPIVersion\":\"1.24\"}}],"
    "\"Version\":\"25.0.3\",\"ApiVersion\":\"1.44\",\"MinAPIVersion\":\"1.24\"}";

static enum docker_engine engine_of(const char *body, char *version, size_t len)
{
    json_t *v = json_loads(body, 0, NULL);
    assert_non_null(v);
    enum docker_engine e = docker_compat_engine(v);
    docker_compat_api_version(v, "v1.41", version, len);
    json_decref(v);
    return e;
}

static void test_engine(void **state)
{
    (void)state;
    char v[16];
    assert_int_equal(engine_of(podman_4_3_version, v, sizeof(v)), DOCKER_ENGINE_PODMAN);
    assert_string_equal(v, "v1.41");
    assert_int_equal(engine_of(podman_3_0_version, v, sizeof(v)), DOCKER_ENGINE_PODMAN);
    assert_string_equal(v, "v1.40"); /* never a version the engine does not serve */
    assert_int_equal(engine_of(docker_20_10_version, v, sizeof(v)), DOCKER_ENGINE_DOCKER);
    assert_string_equal(v, "v1.41");
    assert_int_equal(engine_of(docker_25_version, v, sizeof(v)), DOCKER_ENGINE_DOCKER);
    assert_string_equal(v, "v1.41"); /* ours, which it serves */
    assert_string_equal(docker_compat_engine_name(DOCKER_ENGINE_PODMAN), "Podman");
    assert_string_equal(docker_compat_engine_name(DOCKER_ENGINE_DOCKER), "Docker");

    /* no answer, or not one: Docker, our version */
    assert_int_equal(docker_compat_engine(NULL), DOCKER_ENGINE_DOCKER);
    docker_compat_api_version(NULL, "v1.41", v, sizeof(v));
    assert_string_equal(v, "v1.41");
    assert_int_equal(
        engine_of("{\"Components\":\"x\",\"Platform\":3,\"ApiVersion\":\"1\"}", v, sizeof(v)),
        DOCKER_ENGINE_DOCKER);
    assert_string_equal(v, "v1.41");
    const char *odd[] = {"{\"ApiVersion\":\"1.x\"}",    "{\"ApiVersion\":\"v\"}",
                         "{\"ApiVersion\":\"1.40.1\"}", "{\"ApiVersion\":\"-1.2\"}",
                         "{\"ApiVersion\":1.2}",        "{\"ApiVersion\":\"99999999999.1\"}"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        engine_of(odd[i], v, sizeof(v));
        assert_string_equal(v, "v1.41");
    }
    assert_int_equal(engine_of("{\"ApiVersion\":\"0.9\"}", v, sizeof(v)), DOCKER_ENGINE_DOCKER);
    assert_string_equal(v, "v0.9");
}

static char *create_config(const char *json)
{
    json_t *c = json_loads(json, 0, NULL), *out = (json_t *)1;
    assert_non_null(c);
    char *before = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    assert_int_equal(docker_compat_create_config(c, &out), 0);
    char *after = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(before, after); /* not changed in place */
    free(before);
    free(after);
    char *s = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(c);
    json_decref(out);
    return s;
}

static void test_create_config(void **state)
{
    (void)state;
    /* the starter's: fsize and nofile, pids limited: nproc at the pids limit */
    char *s = create_config(
        "{\"Image\":\"i\",\"HostConfig\":{\"PidsLimit\":256,\"Ulimits\":[{\"Name\":\"fsize\","
        "\"Soft\":100,\"Hard\":100},{\"Name\":\"nofile\",\"Soft\":64,\"Hard\":64}]}}");
    assert_string_equal(
        s, "{\"HostConfig\":{\"PidsLimit\":256,\"Ulimits\":[{\"Hard\":100,\"Name\":\"fsize\","
           "\"Soft\":100},{\"Hard\":64,\"Name\":\"nofile\",\"Soft\":64},{\"Hard\":256,\"Name\":"
           "\"nproc\",\"Soft\":256}]},\"Image\":\"i\"}");
    free(s);
    /* its own nproc: as it is */
    assert_null(create_config("{\"HostConfig\":{\"PidsLimit\":256,\"Ulimits\":[{\"Name\":"
                              "\"nproc\",\"Soft\":9,\"Hard\":9}]}}"));
    /* no Ulimits (containers.conf's default_ulimits apply), or an empty list */
    assert_null(create_config("{\"HostConfig\":{\"PidsLimit\":256}}"));
    assert_null(create_config("{\"HostConfig\":{\"PidsLimit\":256,\"Ulimits\":[]}}"));
    assert_null(create_config("{\"HostConfig\":{\"PidsLimit\":256,\"Ulimits\":null}}"));
    /* no pids limit (0, -1: unlimited): nothing to bound it by, as it is */
    const char *unbounded[] = {
        "{\"HostConfig\":{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1,\"Hard\":1}]}}",
        "{\"HostConfig\":{\"PidsLimit\":0,\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1,\"Hard\":1}]"
        "}}",
        "{\"HostConfig\":{\"PidsLimit\":-1,\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1,\"Hard\":"
        "1}]}}",
        "{\"HostConfig\":{\"PidsLimit\":\"256\",\"Ulimits\":[{\"Name\":\"nofile\"}]}}",
        "{\"Image\":\"i\"}",
    };
    for (size_t i = 0; i < sizeof(unbounded) / sizeof(unbounded[0]); i++)
        assert_null(create_config(unbounded[i]));

    /* the log: one file of max-size x max-file */
    s = create_config("{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{"
                      "\"max-size\":\"40k\",\"max-file\":\"2\"}}}}");
    assert_string_equal(s, "{\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-file\":\"2\","
                           "\"max-size\":\"81920\"},\"Type\":\"json-file\"}}}");
    free(s);
    s = create_config("{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{"
                      "\"max-size\":\"1MB\",\"max-file\":\"3\"}}}}");
    assert_non_null(strstr(s, "\"max-size\":\"3145728\""));
    free(s);
    s = create_config("{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{"
                      "\"max-size\":\"100\",\"max-file\":\"2\"}}}}");
    assert_non_null(strstr(s, "\"max-size\":\"200\""));
    free(s);
    const char *logs_as_they_are[] = {
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":"
        "\"40k\"}}}}",
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":"
        "\"40k\",\"max-file\":\"1\"}}}}",
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"local\",\"Config\":{\"max-size\":"
        "\"40k\",\"max-file\":\"2\"}}}}",
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":"
        "\"40x\",\"max-file\":\"2\"}}}}",
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":"
        "\"k\",\"max-file\":\"2\"}}}}",
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":"
        "\"40k\",\"max-file\":\"2x\"}}}}",
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{\"max-size\":"
        "\"99999999999g\",\"max-file\":\"2\"}}}}",
    };
    for (size_t i = 0; i < sizeof(logs_as_they_are) / sizeof(logs_as_they_are[0]); i++)
        assert_null(create_config(logs_as_they_are[i]));
}

static void test_create_refused(void **state)
{
    (void)state;
    char msg[256];
    json_t *c = json_loads("{\"HostConfig\":{\"Runtime\":\"runsc\"}}", 0, NULL);
    assert_true(docker_compat_create_refused(c, false, msg, sizeof(msg)));
    /* as Docker says it, so that the starter names CORRECTION_RUNTIME */
    assert_int_equal(strncmp(msg, "Unknown runtime specified runsc: ", 33), 0);
    json_decref(c);
    const char *fine[] = {"{\"HostConfig\":{\"Runtime\":\"\"}}", "{\"HostConfig\":{}}", "{}",
                          "{\"HostConfig\":{\"Runtime\":null}}"};
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        c = json_loads(fine[i], 0, NULL);
        assert_false(docker_compat_create_refused(c, false, msg, sizeof(msg)));
        json_decref(c);
    }

    /* rootless on cgroup v1: limits asked are refused, none asked goes */
    json_t *info = json_loads("{\"Rootless\":true,\"CgroupVersion\":\"1\",\"CgroupDriver\":"
                              "\"cgroupfs\"}",
                              0, NULL);
    assert_true(docker_compat_limits_ignored(info));
    json_decref(info);
    const char *applied[] = {"{\"Rootless\":true,\"CgroupVersion\":\"2\"}",
                             "{\"Rootless\":false,\"CgroupVersion\":\"1\"}",
                             "{\"CgroupVersion\":\"1\"}", "{\"Rootless\":true}"};
    for (size_t i = 0; i < sizeof(applied) / sizeof(applied[0]); i++) {
        info = json_loads(applied[i], 0, NULL);
        assert_false(docker_compat_limits_ignored(info));
        json_decref(info);
    }
    assert_false(docker_compat_limits_ignored(NULL));
    const char *limited[] = {"{\"HostConfig\":{\"Memory\":1}}", "{\"HostConfig\":{\"NanoCpus\":1}}",
                             "{\"HostConfig\":{\"PidsLimit\":64}}"};
    for (size_t i = 0; i < sizeof(limited) / sizeof(limited[0]); i++) {
        c = json_loads(limited[i], 0, NULL);
        assert_true(docker_compat_create_refused(c, true, msg, sizeof(msg)));
        assert_non_null(strstr(msg, "resource limits are not supported by this engine"));
        assert_false(docker_compat_create_refused(c, false, msg, sizeof(msg)));
        json_decref(c);
    }
    c = json_loads("{\"HostConfig\":{\"Memory\":0,\"PidsLimit\":-1}}", 0, NULL);
    assert_false(docker_compat_create_refused(c, true, msg, sizeof(msg)));
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters),        cmocka_unit_test(test_wanted),
        cmocka_unit_test(test_normalize),      cmocka_unit_test(test_status),
        cmocka_unit_test(test_engine),         cmocka_unit_test(test_create_config),
        cmocka_unit_test(test_create_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
