/* correctomatic-completer: running_corrections + container exits -> finished_corrections. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "completer.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

static const struct config_doc docs[] = {
    {"CORRECTION_TIMEOUT", "180s",
     "time limit of a correction without a deadline label (the starter writes one); the "
     "container is killed then"},
    {"MAX_OUTPUT_BYTES", "1m", "largest stdout accepted from a correction"},
    {"CONTAINER_RETENTION", "1h",
     "correction containers no running message claims (exited, or never started) are kept "
     "this long; then an exited one is reported from its labels, and removed"},
    {"PREFETCH", "1000", "running messages held at once (one per correction in flight)"},
    {"MAX_TRACKED_JOBS", "100000", "jobs tracked at once"},
    {"RECONCILE_INTERVAL", "10s", "how often correction containers are listed (lost events)"},
    {"MESSAGE_RENEW_AFTER", "10m",
     "a running message held this long is re-published (below "
     "RabbitMQ's consumer timeout)"},
    {"FINISHED_MEMORY", "10m", "how long finished jobs are remembered to spot duplicates"},
    {"RETRY_MIN", "500ms", "first retry delay after a Docker or broker fault"},
    {"RETRY_MAX", "30s", "longest retry delay"},
    {"SHUTDOWN_TIMEOUT", "10s", "on SIGTERM, how long results in progress may take"},
};

static int load_config(struct completer_config *c, struct ct_error *e)
{
    struct daemon_common common;
    if (daemon_load_common(&common, "correctomatic-completer", true, e) < 0)
        return -EINVAL;
    c->amqp = common.amqp;
    c->docker = common.docker;
    c->running_queue = common.running_queue;
    c->host_lost_grace_ms = common.host_lost_grace_ms;
    uint64_t prefetch, max_out;
    if (config_duration_ms("CORRECTION_TIMEOUT", 180000, 1000, 7 * 24 * 3600 * 1000ULL,
                           &c->correction_timeout_ms, e) < 0 ||
        config_bytes("MAX_OUTPUT_BYTES", 1024 * 1024, 1024, 256 * 1024 * 1024, &max_out, e) < 0 ||
        config_duration_ms("CONTAINER_RETENTION", 3600000, 1000, 30 * 24 * 3600000ULL,
                           &c->retention_ms, e) < 0 ||
        config_uint("PREFETCH", 1000, 1, 65535, &prefetch, e) < 0 ||
        config_uint("MAX_TRACKED_JOBS", 100000, 100, 10000000, &c->max_tracked, e) < 0 ||
        config_duration_ms("RECONCILE_INTERVAL", 10000, 100, 3600000, &c->reconcile_ms, e) < 0 ||
        config_duration_ms("MESSAGE_RENEW_AFTER", 600000, 1000, 24 * 3600000ULL, &c->renew_ms, e) <
            0 ||
        config_duration_ms("FINISHED_MEMORY", 600000, 1000, 24 * 3600000ULL, &c->done_ttl_ms, e) <
            0 ||
        config_duration_ms("RETRY_MIN", 500, 10, 3600000, &c->retry_min_ms, e) < 0 ||
        config_duration_ms("RETRY_MAX", 30000, 10, 24 * 3600000ULL, &c->retry_max_ms, e) < 0 ||
        config_duration_ms("SHUTDOWN_TIMEOUT", 10000, 0, 3600000, &c->shutdown_timeout_ms, e) < 0)
        return -EINVAL;
    c->prefetch = (unsigned)prefetch;
    c->max_output_bytes = (size_t)max_out;
    if (c->retry_max_ms < c->retry_min_ms) {
        ct_error_set(e, -EINVAL, "invalid RETRY_MAX: shorter than RETRY_MIN");
        return -EINVAL;
    }
    return 0;
}

static int stage_new(uv_loop_t *loop, void *cfg, void **ret, struct ct_error *err)
{
    completer *c;
    int r = completer_new(loop, cfg, &c, err);
    *ret = c;
    return r;
}

DAEMON_STAGE_ADAPTERS(completer)

static void announce(const void *cfg)
{
    const struct completer_config *c = cfg;
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%llu",
             (unsigned long long)(c->correction_timeout_ms / 1000));
    log_kv(LOG_INFO, "completer running", "version", CT_VERSION, "correction_timeout_s", timeout,
           NULL);
}

int main(int argc, char **argv)
{
    log_set_app("completer");
    int code = daemon_args(argc, argv, "correctomatic-completer",
                           "Waits for each correction container's exit and its running message, "
                           "reads the output\nand publishes the result to finished_corrections.",
                           true, docs, sizeof(docs) / sizeof(docs[0]));
    if (code >= 0)
        return code;
    struct completer_config cfg = {0};
    struct ct_error e = {0};
    if (load_config(&cfg, &e) < 0)
        return daemon_bad_config("correctomatic-completer", e.msg);
    static const struct daemon_stage stage = {.prog = "correctomatic-completer",
                                              .create = stage_new,
                                              .start = completer_stage_start,
                                              .shutdown = completer_stage_shutdown,
                                              .destroy = completer_stage_free,
                                              .announce = announce};
    return daemon_serve(&stage, &cfg);
}
