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

static void test_wanted(void **state)
{
    (void)state;
    json_t *ev = event("die", "{\"k\":\"v\",\"k2\":\"w\",\"exitCode\":\"0\"}");
    json_t *f = json_loads("{\"label\":[\"k\"]}", 0, NULL);
    assert_true(docker_compat_event_wanted(ev, f));
    json_decref(f);
    f = json_loads("{\"label\":[\"k=v\",\"k2=w\"]}", 0, NULL);
    assert_true(docker_compat_event_wanted(ev, f));
    json_decref(f);
    /* labels are AND'ed (Podman OR's them) */
    f = json_loads("{\"label\":[\"k=v\",\"k2=x\"]}", 0, NULL);
    assert_false(docker_compat_event_wanted(ev, f));
    json_decref(f);
    f = json_loads("{\"label\":[\"other\"]}", 0, NULL);
    assert_false(docker_compat_event_wanted(ev, f));
    json_decref(f);
    f = json_loads("{\"label\":[\"k=\"]}", 0, NULL);
    assert_false(docker_compat_event_wanted(ev, f));
    json_decref(f);
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

static void test_status(void **state)
{
    (void)state;
    json_t *j = json_loads("{\"cause\":\"that name is already in use\",\"message\":\"container "
                           "create: ...\",\"response\":500}",
                           0, NULL);
    assert_int_equal(docker_compat_status(500, j), 409);
    json_decref(j);
    j = json_loads("{\"cause\":\"container state improper\",\"message\":\"can only kill running "
                   "containers. x is in state exited: container state improper\"}",
                   0, NULL);
    assert_int_equal(docker_compat_status(500, j), 409);
    json_decref(j);
    j = json_loads("{\"cause\":\"something else\"}", 0, NULL);
    assert_int_equal(docker_compat_status(500, j), 500);
    json_decref(j);
    /* Docker's own 500 has no cause */
    j = json_loads("{\"message\":\"that name is already in use\"}", 0, NULL);
    assert_int_equal(docker_compat_status(500, j), 500);
    json_decref(j);
    assert_int_equal(docker_compat_status(404, NULL), 404);
    assert_int_equal(docker_compat_status(500, NULL), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_wanted),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
