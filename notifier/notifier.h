/* The notifier stage: finished_corrections -> the caller's callback URL. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "amqp_link.h"
#include "names.h"
#include "netpolicy.h"
#include "schedule.h"
#include "webhook.h"
#include "error.h"

#define HEADER_ATTEMPTS "x-correctomatic-attempts"
#define HEADER_LAST_ERROR "x-correctomatic-last-error"

struct notifier_config {
    struct amqp_link_config amqp;
    unsigned concurrency;
    uint64_t timeout_ms;
    struct schedule retries;
    struct netpolicy policy;
    const char *proxy; /* CALLBACK_PROXY, or NULL: never a proxy (whatever http_proxy says) */
    bool has_secret;
    unsigned char secret[WEBHOOK_MAX_SECRET];
    size_t secret_len;
    size_t max_response_bytes;
    uint64_t shutdown_timeout_ms;
};

typedef struct notifier notifier;

/* The name of the retry queue of a delay, e.g. "finished_corrections.retry.5000ms". */
void notifier_retry_queue(uint64_t delay_ms, char *buf, size_t len);

int notifier_new(uv_loop_t *loop, const struct notifier_config *cfg, notifier **ret,
                 struct ct_error *err);
int notifier_start(notifier *n);
void notifier_shutdown(notifier *n, void (*done)(void *), void *userdata);
void notifier_free(notifier *n);

/* One-shot: moves every message of failed_callbacks back to finished_corrections (attempts
 * reset), confirmed one by one. Blocking; for the command line. Returns how many, or -errno. */
long notifier_replay_failed(const struct amqp_link_config *cfg, struct ct_error *err);
