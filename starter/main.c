/* correctomatic-starter: pending_corrections -> started correction containers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "registry.h"
#include "starter.h"

static const struct config_doc docs[] = {
    {"MAX_RUNNING", "8", "correction containers running at once on the Docker host"},
    {"MAX_STARTING", "8",
     "containers being set up (created, filled, started) at once, once the first of a burst "
     "is through (it goes alone); the other jobs wait their turn, in order"},
    {"HOLD_JOBS", "1",
     "pending jobs taken ahead while every slot is taken, so that a slot freed starts the next "
     "job at once (no round trip to RabbitMQ); 0: none, every job waits in the queue (several "
     "starters on one queue: a job held here waits for this host's slot)"},
    {"CORRECTION_NETWORK", "none",
     "network of correction containers; \"isolated\": the engine's default network where that "
     "is a namespace with loopback only (an engine with no default bridge, --bridge=none), else "
     "none"},
    {"CORRECTION_MEMORY", "512m", "memory limit of a correction container (no extra swap)"},
    {"CORRECTION_CPUS", "1", "CPUs of a correction container"},
    {"CORRECTION_PIDS", "256", "process limit of a correction container"},
    {"CORRECTION_CAP_ADD", "", "capabilities to give back (comma-separated); all are dropped"},
    {"CORRECTION_LOG_SIZE", "4m",
     "cap of each of the two json-file log files of a correction container"},
    {"CORRECTION_TIMEOUT", "180s", "time limit of a correction (written in the deadline label)"},
    {"CORRECTION_MAX_FILE_SIZE", "64m",
     "largest file a correction may write (RLIMIT_FSIZE: a write past it fails, SIGXFSZ)"},
    {"CORRECTION_MAX_OPEN_FILES", "1024", "files a correction process may hold open (nofile)"},
    {"CORRECTION_READ_ONLY", "false",
     "true: read-only root file system; /tmp (with the submission) is then an anonymous volume, "
     "removed with the container"},
    {"CORRECTION_USER", "",
     "user[:group] the correction runs as (65534:65534, say); unset: the image's own"},
    {"CORRECTION_RUNTIME", "",
     "OCI runtime of correction containers (runsc for gVisor, as configured in the engine); "
     "unset: the engine's default"},
    {"MAX_EXERCISE_BYTES", "10m", "largest submission file"},
    {"EXERCISE_DIR", "",
     "the folder submissions are uploaded to (required): a job's file must be a path in it, "
     "resolved beneath it (no .., no link leading out)"},
    {"ALLOW_ANY_EXERCISE_PATH", "false",
     "true: run without EXERCISE_DIR, a job may name any file the starter can read (local "
     "testing only)"},
    {"EXERCISE_MODE", "upload",
     "upload: the submission is copied into each container (any engine, local or remote); "
     "bind: mounted read-only at /tmp/exercise from EXERCISE_HOST_DIR (an engine that sees the "
     "folder; about a fifth less engine CPU per container). A file that cannot be mounted "
     "safely (a link on its path, not readable by any user) is uploaded all the same"},
    {"EXERCISE_HOST_DIR", "EXERCISE_DIR",
     "EXERCISE_MODE=bind: the absolute path of EXERCISE_DIR as the Docker engine sees it (the "
     "host folder mounted at EXERCISE_DIR in compose: UPLOADS_DIR)"},
    {"DELETE_EXERCISE_FILE", "false",
     "delete the submission once it is in the container (EXERCISE_MODE=upload only)"},
    {"DONT_START_CONTAINER", "false", "create containers without starting them (testing)"},
    {"RETRY_MIN", "500ms", "first retry delay after a Docker or broker fault"},
    {"RETRY_MAX", "30s", "longest retry delay"},
    {"JOB_RETRY_BUDGET", "2m",
     "how long one job retries Docker or a pull failing for it alone, then it is its error"},
    {"RECONCILE_INTERVAL", "5s", "how often the running count is re-read from Docker"},
    {"SHUTDOWN_TIMEOUT", "10s", "on SIGTERM, how long in-flight jobs may take to finish"},
    {"DOCKER_PULL", "false", "pull a missing image (once for all the jobs that need it)"},
    {"DOCKER_PULL_TIMEOUT", "120s", "time limit of one image pull"},
    {"DOCKER_REGISTRY_CREDENTIALS", "",
     "JSON {\"host:port\": {\"username\": \"...\", \"password\": \"...\"}} for pulls"},
    {"DOCKER_REGISTRY_CREDENTIALS_FILE", "", "the same JSON in a file (a Docker secret, say)"},
    {"ALLOWED_IMAGES", "",
     "comma-separated image patterns (registry.example/*, correction-*); unset: any image"},
};

/* Largest DOCKER_REGISTRY_CREDENTIALS_FILE read at start. */
#define CREDENTIALS_FILE_MAX (1024 * 1024)

/* What load_config allocates, freed by config_clear. */
struct owned {
    registry_creds *creds;
    registry_allowlist *allow;
};

static void config_clear(struct owned *o)
{
    registry_creds_free(o->creds);
    registry_allowlist_free(o->allow);
    o->creds = NULL;
    o->allow = NULL;
}

/* Reads the credentials file: a short blocking read at start, bounded by CREDENTIALS_FILE_MAX.
 * The text is wiped once parsed. */
static int load_credentials_file(registry_creds *creds, const char *path, struct ct_error *e)
{
    char source[320];
    char *buf = NULL;
    ssize_t n = 0;
    struct stat st;
    int r = -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ct_error_set(e, -EINVAL, "invalid DOCKER_REGISTRY_CREDENTIALS_FILE=\"%.200s\": %s", path,
                     fd < 0 ? strerror(errno) : "not a regular file");
        goto out;
    }
    if (st.st_size > CREDENTIALS_FILE_MAX) {
        ct_error_set(e, -EINVAL,
                     "invalid DOCKER_REGISTRY_CREDENTIALS_FILE=\"%.200s\": over %d bytes", path,
                     CREDENTIALS_FILE_MAX);
        goto out;
    }
    buf = calloc(1, CREDENTIALS_FILE_MAX + 1);
    if (!buf) {
        ct_error_set(e, -ENOMEM, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    for (ssize_t got; n < CREDENTIALS_FILE_MAX; n += got) {
        got = read(fd, buf + n, (size_t)(CREDENTIALS_FILE_MAX - n));
        if (got < 0 && errno == EINTR) {
            got = 0;
            continue;
        }
        if (got < 0) {
            ct_error_set(e, -EINVAL, "invalid DOCKER_REGISTRY_CREDENTIALS_FILE=\"%.200s\": %s",
                         path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
    }
    snprintf(source, sizeof(source), "DOCKER_REGISTRY_CREDENTIALS_FILE (%.200s)", path);
    r = registry_creds_add_json(creds, buf, (size_t)n, source, e);
out:
    if (buf) {
        explicit_bzero(buf, (size_t)n);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return r;
}

static int load_registry_config(struct starter_config *c, struct owned *o, struct ct_error *e)
{
    const char *creds_json, *creds_file, *allowed;
    if (config_bool("DOCKER_PULL", false, &c->pull, e) < 0 ||
        config_duration_ms("DOCKER_PULL_TIMEOUT", 120000, 1000, 24 * 3600000ULL,
                           &c->pull_timeout_ms, e) < 0 ||
        config_str("DOCKER_REGISTRY_CREDENTIALS", NULL, &creds_json, e) < 0 ||
        config_str("DOCKER_REGISTRY_CREDENTIALS_FILE", NULL, &creds_file, e) < 0 ||
        config_str("ALLOWED_IMAGES", NULL, &allowed, e) < 0)
        return -EINVAL;
    o->creds = registry_creds_new();
    if (!o->creds) {
        ct_error_set(e, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    if (creds_json && registry_creds_add_json(o->creds, creds_json, strlen(creds_json),
                                              "DOCKER_REGISTRY_CREDENTIALS", e) < 0)
        return -EINVAL;
    if (creds_file && load_credentials_file(o->creds, creds_file, e) < 0)
        return -EINVAL;
    if (allowed && registry_allowlist_parse(allowed, "ALLOWED_IMAGES", &o->allow, e) < 0)
        return -EINVAL;
    c->creds = o->creds;
    c->allow = o->allow;
    return 0;
}

#define GiB (1024ULL * 1024 * 1024)

/* A network, user or runtime name: nothing a JSON string or the engine would read otherwise. */
static bool plain_name(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || *p == ':' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

/* EXERCISE_DIR, or the explicit choice to do without. */
static int load_exercise_dir(struct starter_config *c, struct ct_error *e)
{
    bool any;
    char real[PATH_MAX];
    struct stat st;
    if (config_bool("ALLOW_ANY_EXERCISE_PATH", false, &any, e) < 0)
        return -EINVAL;
    if (!c->exercise_dir && !any) {
        ct_error_set(
            e, -EINVAL,
            "EXERCISE_DIR is not set: set it to the folder the submissions are uploaded to "
            "(EXERCISE_DIR=/srv/uploads, as in compose.yaml), or set "
            "ALLOW_ANY_EXERCISE_PATH=true to let a job name any file the starter can read "
            "(local testing only)");
        return -EINVAL;
    }
    if (c->exercise_dir && any) {
        ct_error_set(e, -EINVAL,
                     "EXERCISE_DIR and ALLOW_ANY_EXERCISE_PATH=true are both set: choose one");
        return -EINVAL;
    }
    if (!c->exercise_dir)
        return 0;
    const char *why = NULL;
    if (c->exercise_dir[0] != '/')
        why = "not absolute";
    else if (!realpath(c->exercise_dir, real) || stat(real, &st) < 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a folder";
    if (why) {
        ct_error_set(e, -EINVAL,
                     "invalid EXERCISE_DIR=\"%.200s\": expected the absolute path of a folder (%s)",
                     c->exercise_dir, why);
        return -EINVAL;
    }
    if (strcmp(real, "/") == 0) {
        ct_error_set(e, -EINVAL,
                     "invalid EXERCISE_DIR=\"%.200s\": the root folder would let a job name any "
                     "file (ALLOW_ANY_EXERCISE_PATH=true says so explicitly)",
                     c->exercise_dir);
        return -EINVAL;
    }
    return 0;
}

/* EXERCISE_MODE and EXERCISE_HOST_DIR, after EXERCISE_DIR and DELETE_EXERCISE_FILE. */
static int load_exercise_mode(struct starter_config *c, struct ct_error *e)
{
    const char *mode, *host;
    if (config_str("EXERCISE_MODE", "upload", &mode, e) < 0 ||
        config_str("EXERCISE_HOST_DIR", NULL, &host, e) < 0)
        return -EINVAL;
    if (strcmp(mode, "upload") == 0) {
        c->exercise_bind = false;
        return 0;
    }
    if (strcmp(mode, "bind") != 0) {
        ct_error_set(e, -EINVAL, "invalid EXERCISE_MODE=\"%.64s\": expected upload or bind", mode);
        return -EINVAL;
    }
    if (!c->exercise_dir) {
        ct_error_set(e, -EINVAL,
                     "EXERCISE_MODE=bind needs EXERCISE_DIR (the folder whose files are mounted)");
        return -EINVAL;
    }
    if (c->delete_file) {
        /* The container reads the file itself until it is removed: deleting it once the job
         * started would take it away from the correction. */
        ct_error_set(e, -EINVAL,
                     "EXERCISE_MODE=bind and DELETE_EXERCISE_FILE=true: a mounted file is read by "
                     "the correction until its container is gone, it cannot be deleted at start; "
                     "use EXERCISE_MODE=upload, or delete the files elsewhere once corrected");
        return -EINVAL;
    }
    if (!host)
        host = c->exercise_dir;
    /* The engine reads it as a path (HostConfig.Mounts: no option syntax to escape). */
    const char *why = NULL;
    if (host[0] != '/')
        why = "not absolute";
    else if (strcmp(host, "/") == 0)
        why = "the root folder";
    else if (strlen(host) > 1024)
        why = "too long";
    for (const char *p = host; !why && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            why = "a control character";
    if (why) {
        ct_error_set(e, -EINVAL,
                     "invalid EXERCISE_HOST_DIR=\"%.200s\": expected the absolute path of "
                     "EXERCISE_DIR as the Docker engine sees it (%s)",
                     host, why);
        return -EINVAL;
    }
    c->exercise_bind = true;
    c->exercise_host_dir = host;
    return 0;
}

static int load_config(struct starter_config *c, struct owned *o, struct ct_error *e)
{
    struct daemon_common common;
    if (daemon_load_common(&common, "correctomatic-starter", true, e) < 0)
        return -EINVAL;
    c->amqp = common.amqp;
    c->docker = common.docker;
    c->running_queue = common.running_queue;
    c->host_lost_grace_ms = common.host_lost_grace_ms;
    const char *exercise_dir;
    if (config_uint("MAX_RUNNING", 8, 1, 10000, &c->max_running, e) < 0 ||
        config_uint("MAX_STARTING", 8, 1, 10000, &c->max_starting, e) < 0 ||
        config_uint("HOLD_JOBS", 1, 0, 10000, &c->hold_jobs, e) < 0 ||
        config_str("CORRECTION_NETWORK", "none", &c->network, e) < 0 ||
        config_bytes("CORRECTION_MEMORY", 512ULL * 1024 * 1024, 6 * 1024 * 1024, 1024 * GiB,
                     &c->memory_bytes, e) < 0 ||
        config_nanocpus("CORRECTION_CPUS", 1000000000ULL, &c->nanocpus, e) < 0 ||
        config_uint("CORRECTION_PIDS", 256, 1, 4194304, &c->pids, e) < 0 ||
        config_str("CORRECTION_CAP_ADD", NULL, &c->cap_add, e) < 0 ||
        config_str("CORRECTION_LOG_SIZE", "4m", &c->log_max_size, e) < 0 ||
        config_duration_ms("CORRECTION_TIMEOUT", 180000, 1000, 7 * 24 * 3600 * 1000ULL,
                           &c->correction_timeout_ms, e) < 0 ||
        config_bytes("CORRECTION_MAX_FILE_SIZE", 64ULL * 1024 * 1024, 4096, 1024 * GiB,
                     &c->max_file_size, e) < 0 ||
        config_uint("CORRECTION_MAX_OPEN_FILES", 1024, 16, 1048576, &c->max_open_files, e) < 0 ||
        config_bool("CORRECTION_READ_ONLY", false, &c->read_only, e) < 0 ||
        config_str("CORRECTION_USER", NULL, &c->user, e) < 0 ||
        config_str("CORRECTION_RUNTIME", NULL, &c->runtime, e) < 0 ||
        config_bytes("MAX_EXERCISE_BYTES", 10 * 1024 * 1024, 0, 1 * GiB, &c->max_exercise_bytes,
                     e) < 0 ||
        config_str("EXERCISE_DIR", NULL, &exercise_dir, e) < 0 ||
        config_bool("DELETE_EXERCISE_FILE", false, &c->delete_file, e) < 0 ||
        config_bool("DONT_START_CONTAINER", false, &c->dont_start, e) < 0 ||
        config_duration_ms("RETRY_MIN", 500, 10, 3600000, &c->retry_min_ms, e) < 0 ||
        config_duration_ms("RETRY_MAX", 30000, 10, 24 * 3600000ULL, &c->retry_max_ms, e) < 0 ||
        config_duration_ms("JOB_RETRY_BUDGET", 120000, 0, 24 * 3600000ULL, &c->job_retry_budget_ms,
                           e) < 0 ||
        config_duration_ms("RECONCILE_INTERVAL", 5000, 100, 3600000, &c->reconcile_ms, e) < 0 ||
        config_duration_ms("SHUTDOWN_TIMEOUT", 10000, 0, 3600000, &c->shutdown_timeout_ms, e) < 0)
        return -EINVAL;
    c->exercise_dir = exercise_dir;
    if (load_exercise_dir(c, e) < 0 || load_exercise_mode(c, e) < 0)
        return -EINVAL;
    uint64_t logsize;
    if (config_parse_bytes(c->log_max_size, &logsize) < 0 || logsize < 4096) {
        ct_error_set(
            e, -EINVAL,
            "invalid CORRECTION_LOG_SIZE=\"%.32s\": expected a size of at least 4k, such as 4m",
            c->log_max_size);
        return -EINVAL;
    }
    const struct {
        const char *name, *value, *what;
    } names[] = {{"CORRECTION_NETWORK", c->network, "a network name"},
                 {"CORRECTION_USER", c->user, "a user[:group] name or id"},
                 {"CORRECTION_RUNTIME", c->runtime, "a runtime name"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].value && !plain_name(names[i].value)) {
            ct_error_set(e, -EINVAL, "invalid %s=\"%.64s\": not %s", names[i].name, names[i].value,
                         names[i].what);
            return -EINVAL;
        }
    }
    c->net_isolated = strcmp(c->network, "isolated") == 0;
    if (c->retry_max_ms < c->retry_min_ms) {
        ct_error_set(e, -EINVAL, "invalid RETRY_MAX: shorter than RETRY_MIN");
        return -EINVAL;
    }
    return load_registry_config(c, o, e);
}

static int stage_new(uv_loop_t *loop, void *cfg, void **ret, struct ct_error *err)
{
    starter *s;
    int r = starter_new(loop, cfg, &s, err);
    *ret = s;
    return r;
}

DAEMON_STAGE_ADAPTERS(starter)

static void announce(const void *config)
{
    const struct starter_config *cfg = config;
    char running[32], starting[32], hold[32], registries[32], patterns[32];
    snprintf(running, sizeof(running), "%llu", (unsigned long long)cfg->max_running);
    snprintf(starting, sizeof(starting), "%llu", (unsigned long long)cfg->max_starting);
    snprintf(hold, sizeof(hold), "%llu", (unsigned long long)cfg->hold_jobs);
    snprintf(registries, sizeof(registries), "%zu", registry_creds_count(cfg->creds));
    snprintf(patterns, sizeof(patterns), "%zu", registry_allowlist_count(cfg->allow));
    log_kv(LOG_INFO, "starter running", "version", CT_VERSION, "max_running", running,
           "max_starting", starting, "hold_jobs", hold, "network", cfg->network, "dont_start",
           cfg->dont_start ? "true" : "false", "pull", cfg->pull ? "true" : "false",
           "registries_with_credentials", registries, "allowed_image_patterns",
           cfg->allow ? patterns : NULL, "exercise_dir", cfg->exercise_dir, "read_only",
           cfg->read_only ? "true" : "false", "user", cfg->user, "runtime", cfg->runtime,
           "exercise_mode", cfg->exercise_bind ? "bind" : "upload", "exercise_host_dir",
           cfg->exercise_host_dir, NULL);
    if (!cfg->exercise_dir)
        log_kv(LOG_WARN,
               "ALLOW_ANY_EXERCISE_PATH=true: a job may name any file the starter can read", NULL);
    if (!cfg->allow)
        log_kv(LOG_WARN, "ALLOWED_IMAGES is not set: any image may run", NULL);
    if (!cfg->pull && registry_creds_count(cfg->creds) > 0)
        log_kv(LOG_WARN, "registry credentials are set but DOCKER_PULL is off: they are unused",
               NULL);
}

int main(int argc, char **argv)
{
    log_set_app("starter");
    int code = daemon_args(argc, argv, "correctomatic-starter",
                           "Takes jobs from pending_corrections, starts a locked-down correction "
                           "container for each\nand announces it on running_corrections.",
                           true, docs, sizeof(docs) / sizeof(docs[0]));
    if (code >= 0)
        return code;
    struct starter_config cfg = {0};
    struct owned owned = {0};
    struct ct_error e = {0};
    if (load_config(&cfg, &owned, &e) < 0) {
        config_clear(&owned);
        return daemon_bad_config("correctomatic-starter", e.msg);
    }
    static const struct daemon_stage stage = {.prog = "correctomatic-starter",
                                              .create = stage_new,
                                              .start = starter_stage_start,
                                              .shutdown = starter_stage_shutdown,
                                              .destroy = starter_stage_free,
                                              .announce = announce};
    code = daemon_serve(&stage, &cfg);
    config_clear(&owned);
    return code;
}
