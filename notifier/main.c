/* correctomatic-notifier: finished_corrections -> callbacks, signed and retried. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "notifier.h"
#include "text.h"

static const struct config_doc docs[] = {
    {"CONCURRENT_NOTIFIERS", "50", "callbacks in flight at once"},
    {"CALLBACK_TIMEOUT", "10s", "connect and total time of one attempt"},
    {"CALLBACK_RETRY_DELAYS", "5s,30s,2m,10m,30m,1h,3h", "delays between attempts (jittered)"},
    {"CALLBACK_SECRET", "", "whsec_<base64> key: sign callbacks (Standard Webhooks)"},
    {"CALLBACK_DENY_PRIVATE", "false", "also refuse loopback and private addresses"},
    {"CALLBACK_ALLOW_HOSTS", "", "only these hosts (comma-separated, *.suffix allowed)"},
    {"CALLBACK_PROXY", "",
     "http(s)://host:port of an egress proxy for every callback; unset: none (http_proxy and "
     "the like are ignored). The proxy must refuse metadata and private addresses itself"},
    {"CALLBACK_MAX_RESPONSE_BYTES", "1m", "largest receiver response read"},
    {"SHUTDOWN_TIMEOUT", "15s", "on SIGTERM, how long callbacks in flight may take"},
};

/* An http or https URL with a host: what curl takes as a proxy that does not resolve the
 * callback's name locally (a socks5:// proxy would, and then only the proxy's address is
 * ever seen). */
static bool proxy_valid(const char *url)
{
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return false;
    CURLU *u = curl_url();
    char *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host;
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static int load_config(struct notifier_config *c, struct ct_error *e)
{
    struct daemon_common common;
    if (daemon_load_common(&common, "correctomatic-notifier", false, e) < 0)
        return -EINVAL;
    c->amqp = common.amqp;
    uint64_t conc, max_resp;
    const char *delays, *secret, *allow, *proxy;
    bool deny_private;
    if (config_uint("CONCURRENT_NOTIFIERS", 50, 1, 10000, &conc, e) < 0 ||
        config_duration_ms("CALLBACK_TIMEOUT", 10000, 100, 3600000, &c->timeout_ms, e) < 0 ||
        config_str("CALLBACK_RETRY_DELAYS", "5s,30s,2m,10m,30m,1h,3h", &delays, e) < 0 ||
        config_str("CALLBACK_SECRET", NULL, &secret, e) < 0 ||
        config_bool("CALLBACK_DENY_PRIVATE", false, &deny_private, e) < 0 ||
        config_str("CALLBACK_ALLOW_HOSTS", NULL, &allow, e) < 0 ||
        config_str("CALLBACK_PROXY", NULL, &proxy, e) < 0 ||
        config_bytes("CALLBACK_MAX_RESPONSE_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024, &max_resp,
                     e) < 0 ||
        config_duration_ms("SHUTDOWN_TIMEOUT", 15000, 0, 3600000, &c->shutdown_timeout_ms, e) < 0)
        return -EINVAL;
    c->concurrency = (unsigned)conc;
    c->max_response_bytes = (size_t)max_resp;
    if (schedule_parse(delays, &c->retries) < 0) {
        ct_error_set(
            e, -EINVAL,
            "invalid CALLBACK_RETRY_DELAYS: expected durations separated by commas, such as "
            "5s,30s,2m (at most %d)",
            SCHEDULE_MAX);
        return -EINVAL;
    }
    if (secret) {
        if (webhook_parse_secret(secret, c->secret, &c->secret_len) < 0) {
            /* never print the secret itself */
            ct_error_set(e, -EINVAL, "invalid CALLBACK_SECRET: expected whsec_ followed by base64");
            return -EINVAL;
        }
        c->has_secret = true;
    }
    if (proxy && !proxy_valid(proxy)) {
        /* the value may hold the proxy's credentials: not repeated */
        ct_error_set(e, -EINVAL,
                     "invalid CALLBACK_PROXY: expected http://host:port or https://host:port");
        return -EINVAL;
    }
    c->proxy = proxy;
    c->policy.deny_private = deny_private;
    if (allow && netpolicy_parse_allow(allow, &c->policy) < 0) {
        ct_error_set(e, -EINVAL, "invalid CALLBACK_ALLOW_HOSTS: expected host names");
        return -EINVAL;
    }
    return 0;
}

static int stage_new(uv_loop_t *loop, void *cfg, void **ret, struct ct_error *err)
{
    struct notifier_config *c = cfg;
    notifier *n;
    int r = notifier_new(loop, c, &n, err);
    if (r < 0)
        netpolicy_free(&c->policy); /* the notifier owns it once made */
    *ret = n;
    return r;
}

DAEMON_STAGE_ADAPTERS(notifier)

static void announce(const void *config)
{
    const struct notifier_config *cfg = config;
    char proxy_log[512] = "";
    if (cfg->proxy)
        text_redact_url(proxy_log, sizeof(proxy_log), cfg->proxy);
    log_kv(LOG_INFO, "notifier running", "version", CT_VERSION, "signed",
           cfg->has_secret ? "true" : "false", "proxy", cfg->proxy ? proxy_log : "none", NULL);
}

int main(int argc, char **argv)
{
    log_set_app("notifier");
    bool replay = argc == 2 && strcmp(argv[1], "--replay-failed") == 0;
    if (!replay) {
        int code = daemon_args(argc, argv, "correctomatic-notifier",
                               "Delivers each result of finished_corrections to its callback URL, "
                               "signed and retried.\n"
                               "  --replay-failed  move every message of failed_callbacks back to "
                               "finished_corrections, then exit",
                               false, docs, sizeof(docs) / sizeof(docs[0]));
        if (code >= 0)
            return code;
    }
    struct notifier_config cfg = {0};
    struct ct_error e = {0};
    if (load_config(&cfg, &e) < 0)
        return daemon_bad_config("correctomatic-notifier", e.msg);
    if (replay) {
        struct ct_error err = {0};
        long n = notifier_replay_failed(&cfg.amqp, &err);
        netpolicy_free(&cfg.policy);
        if (n < 0) {
            fprintf(stderr, "correctomatic-notifier: %s\n", err.msg);
            return 1;
        }
        printf("%ld message(s) moved from failed_callbacks to finished_corrections\n", n);
        return 0;
    }
    static const struct daemon_stage stage = {.prog = "correctomatic-notifier",
                                              .create = stage_new,
                                              .start = notifier_stage_start,
                                              .shutdown = notifier_stage_shutdown,
                                              .destroy = notifier_stage_free,
                                              .announce = announce};
    return daemon_serve(&stage, &cfg);
}
