/* metrics: the registry and its text format (0.0.4); docker_api_label, the bounded names of
 * Docker calls; metrics_status_class. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "docker.h"
#include "metrics.h"

static char *render(void)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(&out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing:\n%s\nin:\n%s", line, text);
}

static int reset(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

static void test_counter_and_labels(void **state)
{
    (void)state;
    static struct metric c =
        METRIC_COUNTER("t_jobs_total", "Jobs.\nSecond line \\ here.", "outcome", "reason");
    METRIC_INC(&c, "error", "time limit exceeded");
    METRIC_INC(&c, "error", "time limit exceeded");
    METRIC_ADD(&c, 3, "graded", "");
    METRIC_ADD(&c, -1, "graded", ""); /* a counter never goes down */
    METRIC_INC(&c, "error", "quote \" back\\slash\nnewline");
    char *out = render();
    assert_has(out, "# HELP t_jobs_total Jobs.\\nSecond line \\\\ here.\n");
    assert_has(out, "# TYPE t_jobs_total counter\n");
    assert_has(out, "t_jobs_total{outcome=\"error\",reason=\"time limit exceeded\"} 2\n");
    assert_has(out, "t_jobs_total{outcome=\"graded\",reason=\"\"} 3\n");
    assert_has(out, "t_jobs_total{outcome=\"error\",reason=\"quote \\\" back\\\\slash\\nnewline\"} 1\n");
    assert_true(metric_value(&c, METRIC_VALUES("graded", "")) == 3);
    assert_true(metric_value(&c, METRIC_VALUES("none", "")) == 0);
    free(out);
}

static void test_gauge_and_unused(void **state)
{
    (void)state;
    static struct metric g = METRIC_GAUGE("t_running", "Running.");
    static struct metric unused = METRIC_COUNTER("t_unused_total", "Never counted.");
    static struct metric lab = METRIC_COUNTER("t_labelled_total", "Labelled, unused.", "x");
    metrics_register(&unused);
    metrics_register(&lab);
    metric_set(&g, 5, NULL);
    metric_set(&g, 2.5, NULL);
    metric_set(&g, NAN, NULL); /* ignored */
    char *out = render();
    assert_has(out, "t_running 2.5\n");
    assert_has(out, "# TYPE t_unused_total counter\nt_unused_total 0\n");
    /* a labelled family never used: its HELP and TYPE only */
    assert_has(out, "# TYPE t_labelled_total counter\n# HELP");
    free(out);
}

static double read_seven(void *ud)
{
    (void)ud;
    return 7;
}

static void test_read_callback(void **state)
{
    (void)state;
    static struct metric g = METRIC_GAUGE("t_tracked", "Tracked.");
    g.read = read_seven;
    metrics_register(&g);
    char *out = render();
    assert_has(out, "t_tracked 7\n");
    free(out);
    g.read = NULL;
}

static void test_histogram(void **state)
{
    (void)state;
    static const double bounds[] = {0.5, 1, 5};
    static struct metric h = METRIC_HISTOGRAM("t_seconds", "Durations.", bounds, "endpoint");
    METRIC_OBSERVE(&h, 0.2, "a");
    METRIC_OBSERVE(&h, 0.5, "a"); /* on a bound: in it (le) */
    METRIC_OBSERVE(&h, 3, "a");
    METRIC_OBSERVE(&h, 100, "a");
    char *out = render();
    assert_has(out, "# TYPE t_seconds histogram\n");
    assert_has(out, "t_seconds_bucket{endpoint=\"a\",le=\"0.5\"} 2\n");
    assert_has(out, "t_seconds_bucket{endpoint=\"a\",le=\"1\"} 2\n");
    assert_has(out, "t_seconds_bucket{endpoint=\"a\",le=\"5\"} 3\n");
    assert_has(out, "t_seconds_bucket{endpoint=\"a\",le=\"+Inf\"} 4\n");
    assert_has(out, "t_seconds_sum{endpoint=\"a\"} 103.7\n");
    assert_has(out, "t_seconds_count{endpoint=\"a\"} 4\n");
    free(out);

    metrics_reset();
    static struct metric empty = METRIC_HISTOGRAM("t_empty_seconds", "Empty.", bounds);
    metrics_register(&empty);
    out = render();
    assert_has(out, "t_empty_seconds_bucket{le=\"0.5\"} 0\nt_empty_seconds_bucket{le=\"1\"} 0\n"
                    "t_empty_seconds_bucket{le=\"5\"} 0\nt_empty_seconds_bucket{le=\"+Inf\"} 0\n"
                    "t_empty_seconds_sum 0\nt_empty_seconds_count 0\n");
    free(out);
}

/* Past METRICS_MAX_SERIES label sets, new values are counted under "other". */
static void test_bounded_series(void **state)
{
    (void)state;
    static struct metric c = METRIC_COUNTER("t_many_total", "Many.", "id");
    for (int i = 0; i < METRICS_MAX_SERIES + 50; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        METRIC_INC(&c, v);
    }
    char *out = render();
    assert_has(out, "t_many_total{id=\"v0\"} 1\n");
    /* the last place is "other": 127 values have their own series, 51 more are counted there */
    assert_has(out, "t_many_total{id=\"v126\"} 1\n");
    assert_has(out, "t_many_total{id=\"other\"} 51\n");
    assert_null(strstr(out, "id=\"v200\""));
    size_t lines = 0;
    for (const char *p = strstr(out, "t_many_total{"); p; p = strstr(p + 1, "t_many_total{"))
        lines++;
    assert_int_equal(lines, METRICS_MAX_SERIES);
    free(out);
}

static void test_process(void **state)
{
    (void)state;
    char *out = render();
    assert_has(out, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ");
    assert_has(out, "process_resident_memory_bytes ");
    assert_has(out, "process_open_fds ");
    assert_has(out, "process_max_fds ");
    assert_has(out, "process_start_time_seconds ");
    const char *rss = strstr(out, "\nprocess_resident_memory_bytes ");
    assert_non_null(rss);
    assert_true(strtod(rss + strlen("\nprocess_resident_memory_bytes "), NULL) > 1e5);
    free(out);
}

static void test_status_class(void **state)
{
    (void)state;
    assert_string_equal(metrics_status_class(200), "2xx");
    assert_string_equal(metrics_status_class(404), "4xx");
    assert_string_equal(metrics_status_class(599), "5xx");
    assert_string_equal(metrics_status_class(0), "error");
    assert_string_equal(metrics_status_class(999), "error");
    assert_string_equal(metrics_status_class(-1), "error");
}

static void test_api_label(void **state)
{
    (void)state;
    assert_string_equal(docker_api_label("POST", "/containers/create?name=x"), "containers/create");
    assert_string_equal(docker_api_label("POST", "/containers/abc/start"), "containers/start");
    assert_string_equal(docker_api_label("GET", "/containers/abc/json"), "containers/inspect");
    assert_string_equal(docker_api_label("GET", "/containers/abc/logs?stdout=1"),
                        "containers/logs");
    assert_string_equal(docker_api_label("PUT", "/containers/abc/archive?path=%2Ftmp"),
                        "containers/archive");
    assert_string_equal(docker_api_label("HEAD", "/containers/abc/archive?path=%2Ftmp"),
                        "containers/stat");
    assert_string_equal(docker_api_label("DELETE", "/containers/abc?force=1"),
                        "containers/delete");
    assert_string_equal(docker_api_label("GET", "/containers/json?all=1&filters=x"),
                        "containers/list");
    assert_string_equal(docker_api_label("POST", "/containers/abc/kill?signal=KILL"),
                        "containers/kill");
    assert_string_equal(docker_api_label("POST", "/containers/abc/wait?condition=x"),
                        "containers/wait");
    assert_string_equal(docker_api_label("POST", "/containers/abc/whatever"), "containers/other");
    assert_string_equal(docker_api_label("POST", "/images/create?fromImage=a"), "images/create");
    assert_string_equal(docker_api_label("GET", "/images/registry%3A5000%2Fa%3Atag/json"),
                        "images/inspect");
    assert_string_equal(docker_api_label("GET", "/_ping"), "ping");
    assert_string_equal(docker_api_label("GET", "/version"), "version");
    assert_string_equal(docker_api_label("GET", "/events?since=1"), "events");
    assert_string_equal(docker_api_label("GET", "/networks/none"), "networks/inspect");
    assert_string_equal(docker_api_label("GET", "/secrets/x"), "other");
    assert_string_equal(docker_api_label("GET", "/"), "other");
    assert_string_equal(docker_api_label("GET", ""), "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counter_and_labels, reset, reset),
        cmocka_unit_test_setup_teardown(test_gauge_and_unused, reset, reset),
        cmocka_unit_test_setup_teardown(test_read_callback, reset, reset),
        cmocka_unit_test_setup_teardown(test_histogram, reset, reset),
        cmocka_unit_test_setup_teardown(test_bounded_series, reset, reset),
        cmocka_unit_test_setup_teardown(test_process, reset, reset),
        cmocka_unit_test(test_status_class),
        cmocka_unit_test(test_api_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
