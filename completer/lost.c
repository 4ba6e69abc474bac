/* lost: the running messages of a Docker host that is gone (see lost.h). */
#include "lost.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlist.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "names.h"
#include "schedule.h"

#define LOST_PREFETCH 16 /* messages in hand at most */

struct item {
    struct item *prev, *next;
    lost *l;
    uint64_t gen, tag;
    char *body;
    size_t len;
    struct running_msg m;
    char job_id[IDS_UUID_LEN + 1];
    unsigned attempts;
    uv_timer_t timer;
    bool publishing; /* a confirm is awaited: the item is the callback's */
};

struct lost {
    uv_loop_t *loop;
    amqp_link *link;
    docker *docker;
    struct lost_config cfg;
    struct item *items;
    unsigned n;
    bool paused;
};

static struct metric m_lost = METRIC_COUNTER(
    "correctomatic_hosts_lost_jobs_total",
    "Running messages that expired unclaimed (their host gone), by outcome.", "outcome");

static void item_free_cb(uv_handle_t *h)
{
    struct item *it = h->data;
    free(it->body);
    msg_running_free(&it->m);
    free(it);
}

static void item_drop(struct item *it)
{
    lost *l = it->l;
    DLIST_UNLINK(l->items, it);
    l->n--;
    uv_close((uv_handle_t *)&it->timer, item_free_cb);
}

static void log_item(enum log_level level, const struct item *it, const char *msg, const char *k,
                     const char *v)
{
    char wid[200] = "";
    if (json_is_string(it->m.work_id)) {
        snprintf(wid, sizeof(wid), "%s", json_string_value(it->m.work_id));
    } else if (it->m.work_id) {
        char *w = json_dumps(it->m.work_id, JSON_ENCODE_ANY | JSON_COMPACT);
        if (w)
            snprintf(wid, sizeof(wid), "%s", w);
        free(w);
    }
    log_kv(level, msg, "work_id", wid[0] ? wid : NULL, "job_id", it->job_id[0] ? it->job_id : NULL,
           "container_id", it->m.container_id, k, v, NULL);
}

static void ask_engine(struct item *it);

static void on_retry_timer(uv_timer_t *t)
{
    ask_engine(t->data);
}

/* The engine did not answer: the same question later, the message still in hand. */
static void retry_later(struct item *it, const char *why)
{
    lost *l = it->l;
    uint64_t delay =
        schedule_backoff_ms(l->cfg.retry_min_ms, l->cfg.retry_max_ms, it->attempts++, ids_jitter());
    log_item(LOG_WARN, it, "cannot tell where a lost running message's container is, will retry",
             "error", why);
    uv_timer_start(&it->timer, on_retry_timer, delay, 0);
}

static void on_replaced(amqp_link *link, int status, void *ud)
{
    struct item *it = ud;
    it->publishing = false;
    if (status == -ECANCELED) { /* the link is being freed: the broker requeues the original */
        item_drop(it);
        return;
    }
    if (status < 0) {
        retry_later(it, status == -ECONNRESET ? "connection lost before the confirm"
                                              : "not confirmed by the broker");
        return;
    }
    amqp_link_ack(link, it->gen, it->tag);
    item_drop(it);
}

static void publish_replacement(struct item *it, const char *queue, const char *body, size_t len,
                                uint64_t expiration_ms)
{
    lost *l = it->l;
    struct amqp_link_header h = {.key = HEADER_FINISHED, .num = metrics_wall_ms()};
    struct amqp_link_publish_opts opts = {.message_id = it->job_id[0] ? it->job_id : NULL,
                                          .headers = expiration_ms ? NULL : &h,
                                          .n_headers = expiration_ms ? 0 : 1,
                                          .expiration_ms = expiration_ms};
    int r = amqp_link_publish(l->link, queue, body, len, &opts, on_replaced, it);
    if (r == -ENOTCONN) { /* the broker has the original back */
        item_drop(it);
        return;
    }
    if (r < 0) {
        retry_later(it, strerror(-r));
        return;
    }
    it->publishing = true;
}

static void on_inspected(const struct docker_result *res, void *ud)
{
    struct item *it = ud;
    lost *l = it->l;
    if (res->err != 0 || res->status >= 500) {
        retry_later(it, res->message);
        return;
    }
    if (res->status == 200) {
        json_t *labels = json_object_get(json_object_get(res->json, "Config"), "Labels");
        const char *jid = json_string_value(json_object_get(labels, LABEL_JOB_ID));
        if (jid && (!it->job_id[0] || strcmp(jid, it->job_id) == 0)) {
            /* Our own: our completer was away longer than the job's time limit plus the
             * grace. It goes back to our running queue, where it is taken the usual way. */
            log_item(LOG_WARN, it,
                     "a running message of this host expired unclaimed: back to its queue", "queue",
                     l->cfg.running_queue);
            METRIC_INC(&m_lost, "ours");
            publish_replacement(it, l->cfg.running_queue, it->body, it->len, l->cfg.grace_ms);
            return;
        }
    } else if (res->status != 404) {
        retry_later(it, res->message);
        return;
    }
    /* No such container here: its host is gone. */
    char text[400];
    snprintf(text, sizeof(text),
             "host lost - no completer of its Docker host took this correction back by its time "
             "limit plus %llu s (HOST_LOST_GRACE): the host is gone, and its result with it",
             (unsigned long long)(l->cfg.grace_ms / 1000));
    char *result = msg_finished_error_serialize(it->m.work_id, it->job_id[0] ? it->job_id : NULL,
                                                it->m.callback, text);
    if (!result) {
        retry_later(it, "out of memory");
        return;
    }
    log_item(LOG_WARN, it, "correction lost with its Docker host, reported to the caller", NULL,
             NULL);
    METRIC_INC(&m_lost, "reported");
    METRIC_INC(&metrics_jobs_finished, "error", "host lost");
    publish_replacement(it, QUEUE_FINISHED, result, strlen(result), 0);
    free(result);
}

static void ask_engine(struct item *it)
{
    int r = docker_container_inspect(it->l->docker, it->m.container_id, on_inspected, it);
    if (r < 0)
        retry_later(it, strerror(-r));
}

static const char *header_str(const struct amqp_link_delivery *d, const char *key)
{
    for (size_t i = 0; i < d->n_headers; i++)
        if (strcmp(d->headers[i].key, key) == 0)
            return d->headers[i].str;
    return NULL;
}

static void park(lost *l, const struct amqp_link_delivery *d, const char *why)
{
    int r = amqp_link_park(l->link, d, why, NULL, 0);
    if (r == -EINVAL || r == -ENOMEM)
        amqp_link_nack(l->link, d->generation, d->delivery_tag, true);
    else if (r == 0)
        METRIC_INC(&metrics_parked, QUEUE_RUNNING_LOST ".invalid");
}

static void on_delivery(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    (void)link;
    lost *l = ud;
    const char *reason = header_str(d, "x-first-death-reason");
    const char *from = header_str(d, "x-first-death-queue");
    if (!reason || strcmp(reason, "expired") != 0) {
        char why[300];
        snprintf(why, sizeof(why), "dead-lettered from %.120s (%.60s), not expired",
                 from ? from : "an unknown queue", reason ? reason : "no reason given");
        park(l, d, why);
        return;
    }
    struct item *it = calloc(1, sizeof(*it));
    struct msg_error err = {0};
    if (!it || !(it->body = malloc(d->body_len + 1))) {
        free(it);
        amqp_link_nack(l->link, d->generation, d->delivery_tag, true);
        return;
    }
    memcpy(it->body, d->body, d->body_len);
    it->body[d->body_len] = '\0';
    it->len = d->body_len;
    if (msg_running_parse(d->body, d->body_len, l->cfg.max_message_bytes, &it->m, &err) < 0) {
        char text[600];
        park(l, d, msg_error_text(&err, text, sizeof(text)));
        free(it->body);
        free(it);
        return;
    }
    if (it->m.job_id)
        snprintf(it->job_id, sizeof(it->job_id), "%s", it->m.job_id);
    it->l = l;
    it->gen = d->generation;
    it->tag = d->delivery_tag;
    uv_timer_init(l->loop, &it->timer);
    it->timer.data = it;
    DLIST_PUSH(l->items, it);
    l->n++;
    ask_engine(it);
}

int lost_new(uv_loop_t *loop, amqp_link *link, docker *d, const struct lost_config *cfg, lost **ret)
{
    *ret = NULL;
    lost *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->loop = loop;
    l->link = link;
    l->docker = d;
    l->cfg = *cfg;
    metrics_register(&m_lost);
    int r = amqp_link_declare_queue(link, QUEUE_RUNNING_LOST, NULL, 0);
    if (r == 0)
        r = amqp_link_consume(link, QUEUE_RUNNING_LOST, on_delivery, l);
    if (r == 0)
        r = amqp_link_set_prefetch(link, QUEUE_RUNNING_LOST, LOST_PREFETCH);
    if (r < 0) {
        free(l);
        return r;
    }
    *ret = l;
    return 0;
}

void lost_pause(lost *l)
{
    if (l && !l->paused) {
        l->paused = true;
        (void)amqp_link_pause(l->link, QUEUE_RUNNING_LOST);
        /* what waits for the engine goes back to the queue now: it would not finish in time */
        for (struct item *it = l->items, *next; it; it = next) {
            next = it->next;
            if (!it->publishing && uv_is_active((uv_handle_t *)&it->timer)) {
                amqp_link_nack(l->link, it->gen, it->tag, true);
                item_drop(it);
            }
        }
    }
}

unsigned lost_in_hand(const lost *l)
{
    return l ? l->n : 0;
}

void lost_free(lost *l)
{
    if (!l)
        return;
    while (l->items)
        item_drop(l->items);
    free(l);
}
