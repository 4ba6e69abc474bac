/* The notifier stage.
 *
 * Each finished message becomes one POST to its callback. A 2xx acks it. Anything else is
 * retried from RabbitMQ, not from memory: the message is re-published (confirmed, then the
 * original acked) to the retry queue of its next delay, a queue whose x-message-ttl is that
 * delay and which dead-letters back to finished_corrections. One queue per delay means every
 * message in a queue waits the same time: no head-of-line blocking (the jitter shortens a
 * message's own expiration by at most 10%). After the last delay, or on 410 Gone, a refused
 * address or an invalid callback URL, the message is parked in failed_callbacks with the
 * reason, the attempts and the last error in its headers. A message the notifier cannot read
 * at all (too large, not JSON, not a finished message) is parked by the link in
 * finished_corrections.invalid with its reason.
 *
 * A job belongs to the connection its delivery came on. When that connection is lost, the
 * broker requeues the delivery and its redelivery is a new job: the old one, when its POST
 * ends, publishes nothing (no retry copy, no parked copy), so each message lives once.
 *
 * A job's steps (each ends in one ack, one nack or nothing, then the job is released):
 *
 *   step      event                                     next
 *   DELIVERY  out of memory (ours)                      nack with requeue
 *             not a finished message (too large: the    parked in finished_corrections.invalid
 *               link parks it before)
 *             invalid callback URL, host not allowed,   PARK
 *               an address the policy refuses
 *             parsed                                    POST
 *   POST      2xx (callback_outcome: DELIVERED)         ack; released
 *             every address refused by the policy       PARK
 *             connection lost meanwhile (stale)         released: the redelivery carries on
 *             410 Gone                                  PARK
 *             anything else (3xx, 4xx, 5xx, no answer)  RETRY; past the last delay: PARK
 *   RETRY     published to the delay's queue, confirmed ack; released
 *   PARK      published to failed_callbacks, confirmed  ack; released
 *   RETRY or  not confirmed (nack, return)              nack with requeue; released
 *   PARK      connection lost, or shutting down         released: the broker requeues it */
#include "notifier.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "callback.h"
#include "dlist.h"
#include "http.h"
#include "ids.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "names.h"
#include "text.h"

struct job {
    notifier *n;
    struct job *prev, *next;
    uint64_t gen, tag;
    char *raw; /* the finished message as received */
    size_t raw_len;
    char *message_id;
    struct finished_msg m;
    bool parsed;
    char *body;
    char id[129]; /* the message's job_id (at most 128 bytes, see msg.c) or a derived UUID */
    char work_id_log[128];
    int64_t failures; /* failed attempts before this one (header) */
    /* This attempt's connections: an address refused by the policy is the attempt's outcome
     * only when curl found no other address to connect to (happy eyeballs tries several). */
    unsigned opened;   /* addresses allowed to curl (sockets opened) */
    bool connected;    /* a connection was allowed to carry the callback */
    char refused[160]; /* the last address refused, and why */
    char last_error[300];
    char callback_log[1024]; /* the callback as logs show it: text_redact_url */
    /* HEADER_SUBMITTED, HEADER_FINISHED (ms), 0 when absent: kept across retries */
    int64_t submitted_ms, finished_ms;
    bool parking; /* moved to failed_callbacks (else to a retry queue) */
};

struct notifier {
    struct notifier_config cfg;
    amqp_link *link;
    http *http;
    struct job *jobs;
    struct stage_stop stop; /* the way out (common/daemon.h) */
    char user_agent[64];
};

static void shutdown_check(notifier *n);

/* ---- metrics ------------------------------------------------------------------------------ */

static const double delivery_bounds[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5, 5,
                                         10,   30,  60,   300, 900, 3600};
static const double e2e_bounds[] = {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400};
static struct metric m_attempts = METRIC_COUNTER(
    "correctomatic_callbacks_total",
    "Callback attempts, by HTTP status class (error: no answer, or refused by the policy).",
    "status");
static struct metric m_delivered =
    METRIC_COUNTER("correctomatic_callbacks_delivered_total", "Callbacks delivered (2xx).");
static struct metric m_retries = METRIC_COUNTER("correctomatic_callback_retries_total",
                                                "Callback retries scheduled, by delay.", "delay");
static struct metric m_parked =
    METRIC_COUNTER("correctomatic_callbacks_parked_total",
                   "Results parked in failed_callbacks, by reason.", "reason");
static struct metric m_in_flight =
    METRIC_GAUGE("correctomatic_callbacks_in_flight", "Results in hand: being delivered or moved.");
static struct metric m_delivery = METRIC_HISTOGRAM(
    "correctomatic_callback_delivery_seconds",
    "Time from a result's publication to its callback delivered, retries included.",
    delivery_bounds);
static struct metric m_e2e = METRIC_HISTOGRAM(
    "correctomatic_end_to_end_seconds",
    "Time from a job's submission (its pending message's timestamp, else its start) to its "
    "callback delivered.",
    e2e_bounds);

static double read_in_flight(void *ud)
{
    double count = 0;
    for (const struct job *j = ((const notifier *)ud)->jobs; j; j = j->next)
        count++;
    return count;
}

static void metrics_setup(notifier *n)
{
    m_in_flight.read = read_in_flight;
    m_in_flight.userdata = n;
    metrics_register(&metrics_jobs_taken);
    metrics_register(&m_attempts);
    metrics_register(&m_delivered);
    metrics_register(&m_retries);
    metrics_register(&m_parked);
    metrics_register(&m_in_flight);
    metrics_register(&m_delivery);
    metrics_register(&m_e2e);
}

static void count_delivered(const struct job *job)
{
    metric_add(&m_delivered, 1, NULL);
    double now = metrics_now();
    if (job->finished_ms > 0)
        metric_observe(&m_delivery, now - (double)job->finished_ms / 1000.0, NULL);
    if (job->submitted_ms > 0)
        metric_observe(&m_e2e, now - (double)job->submitted_ms / 1000.0, NULL);
}

void notifier_retry_queue(uint64_t delay_ms, char *buf, size_t len)
{
    snprintf(buf, len, QUEUE_RETRY_FMT, (unsigned long long)delay_ms);
}

static void log_job(enum log_level level, const struct job *job, const char *msg, const char *k1,
                    const char *v1, const char *k2, const char *v2)
{
    log_kv(level, msg, "work_id", job->work_id_log[0] ? job->work_id_log : NULL, "job_id",
           job->id[0] ? job->id : NULL, "callback", job->callback_log[0] ? job->callback_log : NULL,
           k1, v1, k2, v2, NULL);
}

static void job_release(struct job *job)
{
    notifier *n = job->n;
    DLIST_UNLINK(n->jobs, job);
    if (job->parsed)
        msg_finished_free(&job->m);
    free(job->raw);
    free(job->message_id);
    free(job->body);
    free(job);
    shutdown_check(n);
}

/* ---- ack after a confirmed re-publish ---------------------------------------------------- */

/* The delivery came on an older connection: the broker has requeued it. */
static bool job_stale(const struct job *job)
{
    return job->gen != amqp_link_generation(job->n->link);
}

static void on_moved(amqp_link *link, int status, void *ud)
{
    struct job *job = ud;
    if (job->n->stop.finished)
        return; /* the link is going: the message comes back to whoever runs next */
    if (status == 0) {
        if (job->parking)
            METRIC_INC(&metrics_parked, QUEUE_FAILED_CALLBACKS);
        amqp_link_ack(link, job->gen, job->tag);
    } else if (status != -ECONNRESET && status != -ECANCELED) {
        /* Not confirmed: give the message back, it will be tried again. */
        amqp_link_nack(link, job->gen, job->tag, true);
    }
    job_release(job);
}

/* The body is the one received (at most MAX_MESSAGE_BYTES, or the link would have parked it)
 * and the headers added are bounded (reason and last error by their buffers, job id 128
 * bytes): the copy fits what the broker and the next notifier accept. */
static void move(struct job *job, const char *queue, const struct amqp_link_header *h, size_t nh,
                 uint64_t expiration_ms)
{
    if (job_stale(job)) {
        log_job(LOG_INFO, job,
                "RabbitMQ connection lost: not moved, the redelivered message carries on", "queue",
                queue, NULL, NULL);
        job_release(job);
        return;
    }
    /* the headers given, then the job's times, for the next attempt's metrics */
    struct amqp_link_header all[8];
    size_t n_all = 0;
    for (size_t i = 0; i < nh && n_all < 6; i++)
        all[n_all++] = h[i];
    if (job->submitted_ms > 0)
        all[n_all++] = (struct amqp_link_header){.key = HEADER_SUBMITTED, .num = job->submitted_ms};
    if (job->finished_ms > 0)
        all[n_all++] = (struct amqp_link_header){.key = HEADER_FINISHED, .num = job->finished_ms};
    struct amqp_link_publish_opts opts = {.message_id = job->message_id,
                                          .headers = all,
                                          .n_headers = n_all,
                                          .expiration_ms = expiration_ms};
    int r = amqp_link_publish(job->n->link, queue, job->raw, job->raw_len, &opts, on_moved, job);
    if (r < 0) {
        if (r != -ENOTCONN)
            amqp_link_nack(job->n->link, job->gen, job->tag, true);
        job_release(job);
        return;
    }
}

/* failed_callbacks, with why (kind: its class, for the metrics). */
static void park(struct job *job, const char *kind, const char *reason)
{
    METRIC_INC(&m_parked, kind);
    job->parking = true;
    char attempts[24];
    snprintf(attempts, sizeof(attempts), "%lld", (long long)job->failures);
    struct amqp_link_header h[] = {
        {.key = HEADER_REASON, .str = reason},
        {.key = HEADER_ATTEMPTS, .num = job->failures},
        {.key = HEADER_LAST_ERROR, .str = job->last_error[0] ? job->last_error : reason},
        {.key = HEADER_JOB_ID, .str = job->id},
    };
    log_job(LOG_WARN, job, "callback parked in " QUEUE_FAILED_CALLBACKS, "reason", reason,
            "attempts", attempts);
    move(job, QUEUE_FAILED_CALLBACKS, h, sizeof(h) / sizeof(h[0]), 0);
}

static void retry_later(struct job *job, int64_t retry_after_s)
{
    notifier *n = job->n;
    job->failures++;
    int level = schedule_next(&n->cfg.retries, (unsigned)job->failures, retry_after_s);
    if (level < 0) {
        char reason[400];
        snprintf(reason, sizeof(reason), "gave up after %lld attempts - %s",
                 (long long)job->failures, job->last_error);
        park(job, "attempts exhausted", reason);
        return;
    }
    uint64_t delay = n->cfg.retries.delays_ms[level];
    char queue[128], when[32], attempts[24];
    notifier_retry_queue(delay, queue, sizeof(queue));
    snprintf(when, sizeof(when), "%llu", (unsigned long long)(delay / 1000));
    snprintf(attempts, sizeof(attempts), "%lld", (long long)job->failures);
    log_job(LOG_INFO, job, "callback failed, will retry", "error", job->last_error, "retry_in_s",
            when);
    char delay_label[40];
    snprintf(delay_label, sizeof(delay_label), "%ss", when);
    METRIC_INC(&m_retries, delay_label);
    struct amqp_link_header h[] = {
        {.key = HEADER_ATTEMPTS, .num = job->failures},
        {.key = HEADER_LAST_ERROR, .str = job->last_error},
    };
    move(job, queue, h, 2, schedule_jitter(delay, ids_jitter()));
}

/* ---- the POST ----------------------------------------------------------------------------- */

/* The policy of a connection: the job's for the callback's own addresses; for the proxy of
 * CALLBACK_PROXY (the only address the notifier connects to then) only what is refused
 * whatever the policy - the operator chose that address, and proxies live on private
 * networks. */
static const char *check_connection(const notifier *n, const struct sockaddr *sa)
{
    static const struct netpolicy proxy_policy = {.deny_private = false};
    return netpolicy_check_addr(n->cfg.proxy ? &proxy_policy : &n->cfg.policy, sa);
}

static void addr_text(const struct sockaddr *sa, char *ip, size_t len)
{
    snprintf(ip, len, "?");
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, (socklen_t)len);
}

/* Every address curl tries, and every connection before it carries the callback (a reused
 * one too), goes through here: an address refused is never connected to, and curl goes on
 * with the next one (if any); the attempt's outcome is read from what this recorded. */
static const char *check_addr(enum http_addr_step step, const struct sockaddr *sa, void *ud)
{
    struct job *job = ud;
    const char *why = check_connection(job->n, sa);
    if (why) {
        char ip[INET6_ADDRSTRLEN];
        addr_text(sa, ip, sizeof(ip));
        snprintf(job->refused, sizeof(job->refused), "%s %s", why, ip);
        if (step == HTTP_ADDR_OPEN)
            log_job(LOG_DEBUG, job, "callback address refused", "address", ip, "why", why);
        return why;
    }
    if (step == HTTP_ADDR_OPEN)
        job->opened++;
    else
        job->connected = true;
    return NULL;
}

/* The receiver's body is not needed: read and forgotten, at most max_response_bytes. */
static int on_chunk(http_req *req, const char *data, size_t len, void *ud)
{
    (void)req;
    (void)data;
    (void)len;
    (void)ud;
    return 0;
}

static void on_response(http_req *req, const struct http_result *res, void *ud)
{
    struct job *job = ud;
    if (job->n->stop.finished)
        return;
    /* A 2xx is delivered whatever follows its status line: a body over the limit (cut there)
     * or a transfer that fails afterwards. */
    struct callback_attempt a = {.status = res->err == 0 ? res->status : http_req_status(req),
                                 .err = res->err,
                                 .err_detail = res->err_detail,
                                 .refused = job->refused,
                                 .opened = job->opened,
                                 .connected = job->connected};
    enum callback_outcome outcome = callback_outcome(&a);
    METRIC_INC(&m_attempts, metrics_status_class(a.status));
    if (outcome == CALLBACK_REFUSED) {
        /* every address tried was refused: the policy's answer, final */
        char reason[256];
        snprintf(reason, sizeof(reason), "callback refused - %s", job->refused);
        snprintf(job->last_error, sizeof(job->last_error), "%s", reason);
        park(job, "refused", reason);
        return;
    }
    if (outcome == CALLBACK_DELIVERED) {
        char status[16], attempt[24];
        snprintf(status, sizeof(status), "%ld", a.status);
        snprintf(attempt, sizeof(attempt), "%lld", (long long)job->failures + 1);
        log_job(LOG_INFO, job, "callback delivered", "status", status, "attempt", attempt);
        count_delivered(job);
        amqp_link_ack(job->n->link, job->gen, job->tag);
        job_release(job);
        return;
    }
    if (job_stale(job)) {
        /* the broker requeued the message when the connection went: its redelivery (a new
         * job) retries or parks it; a copy from here would be a second live one */
        log_job(LOG_INFO, job,
                "callback failed on a lost RabbitMQ connection: not moved, the redelivered "
                "message carries on",
                NULL, NULL, NULL, NULL);
        job_release(job);
        return;
    }
    if (outcome == CALLBACK_GONE) {
        job->failures++;
        snprintf(job->last_error, sizeof(job->last_error), "HTTP 410 Gone");
        park(job, "gone", "callback gone - the receiver answered 410 Gone");
        return;
    }
    callback_error_text(&a, job->n->cfg.timeout_ms, job->m.callback, job->last_error,
                        sizeof(job->last_error));
    int64_t retry_after = -1;
    if (res->err == 0 && res->retry_after)
        retry_after = schedule_retry_after(res->retry_after, time(NULL));
    retry_later(job, retry_after);
}

static void post(struct job *job)
{
    notifier *n = job->n;
    char ts[32], sig[128], h_id[sizeof(job->id) + 16], h_ts[64], h_sig[160], ua[96];
    const char *headers[8];
    size_t nh = 0;
    headers[nh++] = "Content-Type: application/json";
    snprintf(ua, sizeof(ua), "User-Agent: %s", n->user_agent);
    headers[nh++] = ua;
    headers[nh++] = "Expect:";
    if (n->cfg.has_secret) {
        int64_t now = (int64_t)time(NULL);
        snprintf(ts, sizeof(ts), "%lld", (long long)now);
        if (webhook_sign(n->cfg.secret, n->cfg.secret_len, job->id, now, job->body,
                         strlen(job->body), sig, sizeof(sig)) < 0) {
            snprintf(job->last_error, sizeof(job->last_error), "cannot sign the callback");
            retry_later(job, -1);
            return;
        }
        snprintf(h_id, sizeof(h_id), "webhook-id: %s", job->id);
        snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %s", ts);
        snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
        headers[nh++] = h_id;
        headers[nh++] = h_ts;
        headers[nh++] = h_sig;
    }
    headers[nh] = NULL;
    struct http_req_opts opts = {
        .method = "POST",
        .url = job->m.callback,
        .headers = headers,
        .body = job->body,
        .body_len = strlen(job->body),
        .connect_timeout_ms = n->cfg.timeout_ms,
        .timeout_ms = n->cfg.timeout_ms,
        .max_body_bytes = n->cfg.max_response_bytes,
        .on_chunk = on_chunk,
        .check_addr = check_addr,
        /* libcurl reads http_proxy, https_proxy, ALL_PROXY and NO_PROXY from the environment
         * unless told otherwise: "" means no proxy at all; CALLBACK_PROXY is the only way to
         * one, and then no host is exempt from it. */
        .proxy = n->cfg.proxy ? n->cfg.proxy : "",
    };
    int r = http_request(n->http, &opts, on_response, job, NULL);
    if (r < 0) {
        snprintf(job->last_error, sizeof(job->last_error), "cannot send: %s", strerror(-r));
        retry_later(job, -1);
        return;
    }
}

static bool host_allowed(notifier *n, const char *url, char *host_out, size_t len)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool ok = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
        text_utf8_copy(host_out, len, host, strlen(host)); /* the caller's, cut at a char */
        ok = netpolicy_host_allowed(&n->cfg.policy, host);
    }
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Not a finished message: finished_corrections.invalid, with why. */
static void park_invalid(amqp_link *link, const struct amqp_link_delivery *d, const char *reason)
{
    log_kv(LOG_WARN, "invalid message parked in " QUEUE_FINISHED_INVALID, "reason", reason, NULL);
    int r = amqp_link_park(link, d, reason, NULL, 0);
    if (r == -EINVAL || r == -ENOMEM)
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
}

static void on_delivery(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    notifier *n = ud;
    struct finished_msg m;
    struct msg_error err;
    int r = msg_finished_parse(d->body, d->body_len, n->cfg.amqp.max_message_bytes, &m, &err);
    if (r == -ENOMEM) {
        /* not the message's fault: it waits in the queue */
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        return;
    }
    if (r < 0) {
        char text[600];
        msg_error_text(&err, text, sizeof(text));
        park_invalid(link, d, text);
        return;
    }
    struct job *job = calloc(1, sizeof(*job));
    if (!job || !(job->raw = malloc(d->body_len ? d->body_len : 1)) ||
        (d->message_id && !(job->message_id = strdup(d->message_id)))) {
        if (job) {
            free(job->raw);
            free(job);
        }
        msg_finished_free(&m);
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        return;
    }
    memcpy(job->raw, d->body, d->body_len);
    job->raw_len = d->body_len;
    job->n = n;
    job->gen = d->generation;
    job->tag = d->delivery_tag;
    DLIST_PUSH(n->jobs, job);
    metric_add(&metrics_jobs_taken, 1, NULL);
    int64_t t;
    if (amqp_link_header_num(d, HEADER_SUBMITTED, &t) && t > 0)
        job->submitted_ms = t;
    if (amqp_link_header_num(d, HEADER_FINISHED, &t) && t > 0)
        job->finished_ms = t;
    int64_t failures = 0;
    if (amqp_link_header_num(d, HEADER_ATTEMPTS, &failures) && failures > 0 && failures < 1000)
        job->failures = failures;
    job->m = m;
    job->parsed = true;
    if (job->m.job_id && *job->m.job_id)
        snprintf(job->id, sizeof(job->id), "%s", job->m.job_id);
    else
        ids_uuid_from_bytes(d->body, d->body_len, job->id); /* stable across retries */
    msg_work_id_text(job->m.work_id, job->work_id_log, sizeof(job->work_id_log));
    text_redact_url(job->callback_log, sizeof(job->callback_log), job->m.callback);
    if (msg_validate_callback(job->m.callback, &err) < 0) {
        char text[600];
        msg_error_text(&err, text, sizeof(text));
        callback_scrub(text, sizeof(text), job->m.callback);
        park(job, "invalid callback", text);
        return;
    }
    char host[256] = "";
    if (!host_allowed(n, job->m.callback, host, sizeof(host))) {
        char text[400];
        snprintf(text, sizeof(text), "callback refused - host '%s' is not in CALLBACK_ALLOW_HOSTS",
                 host);
        park(job, "refused", text);
        return;
    }
    /* Before any connection: a literal address the policy refuses, and the names of the
     * metadata services. Behind CALLBACK_PROXY this is all the notifier can see of the
     * callback's destination (the proxy resolves names): the proxy enforces the rest. */
    const char *why = netpolicy_check_host(&n->cfg.policy, host);
    if (why) {
        char text[400];
        size_t hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
            snprintf(text, sizeof(text), "callback refused - %s %.*s", why, (int)hl - 2, host + 1);
        else
            snprintf(text, sizeof(text), "callback refused - %s %s", why, host);
        park(job, "refused", text);
        return;
    }
    job->body = webhook_body(&job->m);
    if (!job->body) {
        amqp_link_nack(link, d->generation, d->delivery_tag, true);
        job_release(job);
        return;
    }
    post(job);
}

/* ---- the link ----------------------------------------------------------------------------- */

static void on_link_event(amqp_link *link, enum amqp_link_event ev, const char *detail, void *ud)
{
    (void)link;
    (void)ud;
    /* On a lost link, deliveries in hand are back in the queue. Requests in flight finish;
     * their ack or move is then stale and ignored, and the redelivery repeats them (at least
     * once, with the same webhook-id). */
    daemon_link_event(ev, detail);
}

static void finish(void *stage);

int notifier_new(uv_loop_t *loop, const struct notifier_config *cfg, notifier **ret,
                 struct ct_error *err)
{
    *ret = NULL;
    notifier *n = calloc(1, sizeof(*n));
    if (!n)
        return ct_error_set(err, -ENOMEM, "out of memory");
    n->cfg = *cfg;
    snprintf(n->user_agent, sizeof(n->user_agent), "correctomatic-notifier/%s", CT_VERSION);
    n->http = http_new(loop);
    struct amqp_link_config acfg = cfg->amqp;
    acfg.prefetch = cfg->concurrency;
    int r = n->http ? amqp_link_new(loop, &acfg, on_link_event, n, &n->link, err)
                    : ct_error_set(err, -ENOMEM, "cannot create the HTTP client");
    if (r < 0) {
        if (n->http)
            http_free(n->http);
        free(n);
        return r;
    }
    stage_stop_init(&n->stop, loop, n, finish, NULL);
    metrics_setup(n);
    *ret = n;
    return 0;
}

int notifier_start(notifier *n)
{
    int r;
    if ((r = amqp_link_declare_queue(n->link, QUEUE_FINISHED, NULL, 0)) < 0 ||
        (r = amqp_link_declare_queue(n->link, QUEUE_FAILED_CALLBACKS, NULL, 0)) < 0)
        return r;
    for (size_t i = 0; i < n->cfg.retries.n; i++) {
        char queue[128];
        uint64_t delay = n->cfg.retries.delays_ms[i];
        notifier_retry_queue(delay, queue, sizeof(queue));
        bool dup = false;
        for (size_t k = 0; k < i; k++)
            dup = dup || n->cfg.retries.delays_ms[k] == delay;
        if (dup)
            continue;
        struct amqp_link_header args[] = {
            {.key = "x-message-ttl", .num = (int64_t)delay},
            {.key = "x-dead-letter-exchange", .str = ""},
            {.key = "x-dead-letter-routing-key", .str = QUEUE_FINISHED},
        };
        if ((r = amqp_link_declare_queue(n->link, queue, args, 3)) < 0)
            return r;
    }
    if ((r = amqp_link_consume(n->link, QUEUE_FINISHED, on_delivery, n)) < 0)
        return r;
    return amqp_link_start(n->link);
}

static void finish(void *stage)
{
    notifier *n = stage;
    if (!stage_stop_finishing(&n->stop))
        return;
    http_free(n->http); /* no callbacks after this */
    n->http = NULL;
    amqp_link_free(n->link); /* unacked deliveries return to the queue */
    n->link = NULL;
    while (n->jobs)
        job_release(n->jobs);
    log_kv(LOG_INFO, "notifier stopped", NULL);
    stage_stop_done(&n->stop);
}

static void shutdown_check(notifier *n)
{
    stage_stop_check(&n->stop, !n->jobs);
}

void notifier_shutdown(notifier *n, void (*done)(void *), void *ud)
{
    if (!stage_stop_begin(&n->stop, n->cfg.shutdown_timeout_ms, done, ud))
        return;
    log_kv(LOG_INFO, "shutting down: finishing the callbacks in flight", NULL);
    amqp_link_pause(n->link, QUEUE_FINISHED);
    shutdown_check(n);
}

void notifier_free(notifier *n)
{
    if (!n)
        return;
    m_in_flight.read = NULL;
    netpolicy_free(&n->cfg.policy);
    free(n);
}

/* ---- replay ------------------------------------------------------------------------------- */

static int rpc_ok(amqp_connection_state_t conn, const char *what, struct ct_error *err)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    ct_error_set(err, -EIO, "%s failed (reply type %d)", what, (int)r.reply_type);
    return -EIO;
}

long notifier_replay_failed(const struct amqp_link_config *cfg, struct ct_error *err)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    long moved = 0;
    int r = 0;
    struct timeval tv = {.tv_sec = 10};
    char at[600];
    if (!sock || amqp_link_open_socket(sock, cfg, &tv, at, sizeof(at)) < 0) {
        ct_error_set(err, -EIO, "cannot connect to RabbitMQ: %s", sock ? at : "out of memory");
        r = -ECONNREFUSED;
        goto out;
    }
    amqp_set_rpc_timeout(conn, &tv);
    amqp_rpc_reply_t login = amqp_login(conn, cfg->vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                        cfg->user, cfg->password);
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
        ct_error_set(err, -EIO, "RabbitMQ login refused");
        r = -EACCES;
        goto out;
    }
    amqp_channel_open(conn, 1);
    if ((r = rpc_ok(conn, "channel.open", err)) < 0)
        goto out;
    amqp_confirm_select(conn, 1);
    if ((r = rpc_ok(conn, "confirm.select", err)) < 0)
        goto out;
    for (;;) {
        amqp_rpc_reply_t g = amqp_basic_get(conn, 1, amqp_cstring_bytes(QUEUE_FAILED_CALLBACKS), 0);
        if (g.reply_type != AMQP_RESPONSE_NORMAL) {
            ct_error_set(err, -EIO, "basic.get on %s failed", QUEUE_FAILED_CALLBACKS);
            r = -EIO;
            goto out;
        }
        if (g.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
            break;
        amqp_basic_get_ok_t *ok = g.reply.decoded;
        uint64_t tag = ok->delivery_tag;
        amqp_message_t msg;
        if (amqp_read_message(conn, 1, &msg, 0).reply_type != AMQP_RESPONSE_NORMAL) {
            ct_error_set(err, -EIO, "cannot read a message of %s", QUEUE_FAILED_CALLBACKS);
            r = -EIO;
            goto out;
        }
        amqp_basic_properties_t props = {0};
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        props.delivery_mode = 2;
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
            props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
            props.message_id = msg.properties.message_id;
        }
        int pr = amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(QUEUE_FINISHED),
                                    1, 0, &props, msg.body);
        /* Wait for the broker's confirm before taking the message off failed_callbacks. */
        amqp_frame_t frame;
        bool confirmed = false;
        while (pr == AMQP_STATUS_OK) {
            if (amqp_simple_wait_frame_noblock(conn, &frame, &tv) != AMQP_STATUS_OK)
                break;
            if (frame.frame_type != AMQP_FRAME_METHOD)
                continue;
            if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                confirmed = true;
                break;
            }
            if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD ||
                frame.payload.method.id == AMQP_BASIC_RETURN_METHOD)
                break;
        }
        amqp_destroy_message(&msg);
        if (!confirmed) {
            ct_error_set(err, -EIO, "the broker did not confirm a re-published message");
            r = -EIO;
            goto out;
        }
        if (amqp_basic_ack(conn, 1, tag, 0) != AMQP_STATUS_OK) {
            r = -EIO;
            goto out;
        }
        moved++;
    }
out:
    if (conn) {
        amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(conn);
    }
    return r < 0 ? r : moved;
}
