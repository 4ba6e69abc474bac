/* ct-bench-baseline: the Docker work of a correction driven directly through the Engine API,
 * with our own client (common/docker.h) on one libuv loop, and nothing else: no broker, no
 * daemons. This is what the pipeline is compared with.
 *
 *   ct-bench-baseline --jobs N --concurrency C --image IMG --file PATH [--bind]
 *
 * Each job: create (the starter's locked-down HostConfig), upload the file to /tmp/exercise,
 * start, wait (not-running), logs, remove. With --bind, the file is bind-mounted read-only at
 * /tmp/exercise instead (the starter's EXERCISE_MODE=bind), no upload. C jobs are in flight at
 * once. DOCKER_HOST says where the engine is. Prints one JSON object on stdout:
 *   {"jobs":N,"concurrency":C,"seconds":S,"jobs_per_s":R,"errors":E,"latency_ms":[...]}
 * where latency_ms is each job's create-to-removed time, in completion order. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "docker.h"
#include "tar.h"

struct bench;

struct job {
    struct bench *b;
    char id[65];
    double t0;
};

struct bench {
    uv_loop_t *loop;
    docker *d;
    const char *image;
    const char *bind; /* --bind: the file's absolute path, mounted; NULL: uploaded */
    void *tar;
    size_t tar_len;
    int jobs, concurrency, started, done, errors;
    double *lat;
    double t0, t1;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void job_next(struct bench *b);

static void job_end(struct job *job, bool ok)
{
    struct bench *b = job->b;
    if (!ok)
        b->errors++;
    b->lat[b->done++] = (now_s() - job->t0) * 1000.0;
    free(job);
    if (b->done == b->jobs)
        b->t1 = now_s();
    job_next(b);
}

static bool check(struct job *job, const struct docker_result *res, const char *what)
{
    if (res->err == 0 && res->status < 300)
        return true;
    fprintf(stderr, "baseline: %s %.12s: err=%d status=%ld %s\n", what, job->id, res->err,
            res->status, res->message);
    return false;
}

static void on_removed(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    job_end(job, check(job, res, "remove"));
}

static void job_remove(struct job *job, bool ok)
{
    if (!job->id[0] || docker_container_remove(job->b->d, job->id, true, on_removed, job) < 0)
        job_end(job, false);
    else if (!ok)
        job->b->errors++;
}

static void on_logs(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    job_remove(job, check(job, res, "logs"));
}

static void on_waited(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!check(job, res, "wait") ||
        docker_container_logs(job->b->d, job->id, &(struct docker_logs){.max_bytes = 1 << 20},
                              on_logs, job) < 0)
        job_remove(job, false);
}

static void on_started(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!check(job, res, "start") ||
        docker_container_wait(job->b->d, job->id, "not-running", 0, on_waited, job) < 0)
        job_remove(job, false);
}

static void on_uploaded(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    if (!check(job, res, "upload") ||
        docker_container_start(job->b->d, job->id, on_started, job) < 0)
        job_remove(job, false);
}

static void on_created(const struct docker_result *res, void *ud)
{
    struct job *job = ud;
    const char *id = json_string_value(json_object_get(res->json, "Id"));
    if (!check(job, res, "create") || !id) {
        job_end(job, false);
        return;
    }
    snprintf(job->id, sizeof(job->id), "%s", id);
    if (job->b->bind) {
        if (docker_container_start(job->b->d, job->id, on_started, job) < 0)
            job_remove(job, false);
        return;
    }
    if (docker_container_upload(job->b->d, job->id, "/", job->b->tar, job->b->tar_len, on_uploaded,
                                job) < 0)
        job_remove(job, false);
}

static void job_next(struct bench *b)
{
    while (b->started < b->jobs && b->started - b->done < b->concurrency) {
        struct job *job = calloc(1, sizeof(*job));
        if (!job)
            abort();
        job->b = b;
        job->t0 = now_s();
        b->started++;
        /* The same container configuration as the starter's (starter/starter.c). */
        json_t *cfg = json_pack(
            "{s:s, s:[], s:{s:s}, s:b, s:b, s:b, s:{s:s, s:I, s:I, s:I, s:I, s:[s], s:[], s:[s], "
            "s:{s:s, s:{s:s, s:s}}, s:b}}",
            "Image", b->image, "Env", "Labels", "ct-bench", "baseline", "AttachStdin", 0,
            "OpenStdin", 0, "Tty", 0, "HostConfig", "NetworkMode", "none", "Memory",
            (json_int_t)512 << 20, "MemorySwap", (json_int_t)512 << 20, "NanoCpus",
            (json_int_t)1000000000, "PidsLimit", (json_int_t)256, "CapDrop", "ALL", "CapAdd",
            "SecurityOpt", "no-new-privileges", "LogConfig", "Type", "json-file", "Config",
            "max-size", "4m", "max-file", "1", "AutoRemove", 0);
        if (cfg && b->bind) {
            json_t *m = json_pack("[{s:s, s:s, s:s, s:b}]", "Type", "bind", "Source", b->bind,
                                  "Target", "/tmp/exercise", "ReadOnly", 1);
            if (!m || json_object_set_new(json_object_get(cfg, "HostConfig"), "Mounts", m) < 0)
                abort();
        }
        if (!cfg || docker_container_create(b->d, NULL, cfg, on_created, job) < 0) {
            json_decref(cfg);
            job_end(job, false);
            return;
        }
        json_decref(cfg);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"jobs", required_argument, NULL, 'n'},  {"concurrency", required_argument, NULL, 'c'},
        {"image", required_argument, NULL, 'i'}, {"file", required_argument, NULL, 'f'},
        {"bind", no_argument, NULL, 'b'},        {NULL, 0, NULL, 0}};
    struct bench b = {.jobs = 100, .concurrency = 1, .image = "ct-ok"};
    const char *file = NULL;
    bool bind = false;
    char real[PATH_MAX];
    struct ct_error err = {0};
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            b.jobs = atoi(optarg);
            break;
        case 'c':
            b.concurrency = atoi(optarg);
            break;
        case 'i':
            b.image = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'b':
            bind = true;
            break;
        default:
            fprintf(stderr, "usage: ct-bench-baseline --jobs N --concurrency C --image IMG "
                            "--file PATH [--bind]\n");
            return 2;
        }
    }
    if (!file || b.jobs <= 0 || b.concurrency <= 0) {
        fprintf(stderr, "ct-bench-baseline: --file, a positive --jobs and --concurrency\n");
        return 2;
    }
    char data[65536];
    FILE *f = fopen(file, "rb");
    size_t len = f ? fread(data, 1, sizeof(data), f) : 0;
    if (!f) {
        perror(file);
        return 1;
    }
    fclose(f);
    if (bind) {
        if (!realpath(file, real)) {
            perror(file);
            return 1;
        }
        b.bind = real;
    }
    if (tar_single_file("tmp/exercise", data, len, 0644, &b.tar, &b.tar_len) < 0)
        return 1;

    struct docker_config dc;
    docker_config_defaults(&dc);
    if (docker_config_from_env(&dc, &err) < 0) {
        fprintf(stderr, "ct-bench-baseline: %s\n", err.msg);
        return 1;
    }
    b.loop = uv_default_loop();
    if (docker_new(b.loop, &dc, &b.d, &err) < 0) {
        fprintf(stderr, "ct-bench-baseline: %s\n", err.msg);
        return 1;
    }
    b.lat = calloc((size_t)b.jobs, sizeof(double));
    b.t0 = now_s();
    job_next(&b);
    uv_run(b.loop, UV_RUN_DEFAULT);

    double secs = b.t1 - b.t0;
    printf("{\"jobs\":%d,\"concurrency\":%d,\"seconds\":%.4f,\"jobs_per_s\":%.3f,\"errors\":%d,"
           "\"latency_ms\":[",
           b.jobs, b.concurrency, secs, secs > 0 ? b.jobs / secs : 0.0, b.errors);
    for (int i = 0; i < b.done; i++)
        printf("%s%.3f", i ? "," : "", b.lat[i]);
    printf("]}\n");
    docker_free(b.d);
    uv_run(b.loop, UV_RUN_DEFAULT);
    free(b.lat);
    free(b.tar);
    return b.errors ? 1 : 0;
}
