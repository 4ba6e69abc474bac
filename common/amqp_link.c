/* amqp_link: one rabbitmq-c connection driven by a libuv loop. See amqp_link.h.
 *
 * Re-entrancy: user callbacks may call back into the link, including amqp_link_free. Every
 * entry from the loop goes through enter()/leave(); amqp_link_free inside a callback only marks
 * the link closing and leave() destroys it once the outermost callback returns. A connection
 * failure noticed in the middle of work only marks the link lost; the teardown runs from the
 * tick timer, never under the caller's feet. */
/* Why one file of about 1,600 lines: rabbitmq-c's connection state is not re-entrant, and
 * every part here (connect, declare, consume, publish with confirms, ack and nack, parking,
 * heartbeats, the reconnection) reads or writes it under the one enter()/leave() discipline
 * above. Split, each part would need the whole struct and that discipline. */
#include "amqp_link.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "hostlist.h"
#include "ids.h"
#include "metrics.h"
#include "names.h"
#include "qtype.h"
#include "schedule.h"
#include "text.h"

#define CHANNEL 1
#define FRAME_MAX 131072
#define INVALID_SUFFIX ".invalid"
#define PARK_MIN_BYTES (64u << 20)  /* the largest MAX_MESSAGE_BYTES; compose's max_message_size */
#define PARK_MAX_BYTES (512u << 20) /* RabbitMQ refuses max_message_size above this */
#define REASON_MAX_BYTES 1000

struct queue_reg {
    char *name;
    size_t idx;                    /* in l->queues */
    char tag[32];                  /* the consumer tag: "ct-<idx>.<serial>" */
    unsigned serial;               /* consumers started for it so far */
    unsigned prefetch;             /* its consumer's basic.qos; 0: the channel's (cfg) */
    bool declare;                  /* registered with amqp_link_declare_queue */
    struct amqp_link_header *args; /* one block (array then strings) */
    size_t n_args;
    amqp_link_deliver_cb cb; /* NULL: not a consumer */
    void *cb_data;
    bool paused;
};

struct pending {
    uint64_t seq;
    amqp_link_confirm_cb cb;
    void *userdata;
};

/* A delivery being parked: acked once its copy is confirmed. */
struct park {
    uint64_t generation, tag;
    char queue[256]; /* where the copy went, for the error message */
};

struct requeue {
    uint64_t generation, tag;
};

enum incoming_kind { IN_NONE, IN_DELIVER, IN_RETURN };

struct incoming {
    enum incoming_kind kind;
    struct queue_reg *q;
    uint64_t tag;
    bool redelivered;
    bool header_seen;
    bool discard;  /* returned or rejected: read and drop the body */
    bool oversize; /* over max_message_bytes: read (the first `keep` bytes) to be parked */
    size_t size, got, keep;
    char *body;
    void *meta; /* headers array, then key/value strings and message_id */
    const char *message_id;
    struct amqp_link_header *headers;
    size_t n_headers;
    uint64_t timestamp;
};

struct amqp_link {
    uv_loop_t *loop;
    struct hostlist hosts;       /* cfg.host as a list of nodes */
    size_t host_idx;             /* the node the next attempt tries */
    size_t round_tries;          /* nodes tried since the last backoff or connection */
    uint64_t rpc_deadline_ns;    /* the blocking RPCs under way end by then (uv_hrtime) */
    struct amqp_link_config cfg; /* strings owned */
    amqp_link_event_cb on_event;
    void *userdata;

    struct queue_reg **queues;
    size_t n_queues;
    struct pending *pend; /* in publish order, capacity cfg.max_unconfirmed */
    size_t n_pend;
    struct requeue *requeue; /* deliveries whose parking failed, requeued by requeue_timer */
    size_t n_requeue, cap_requeue;

    amqp_connection_state_t conn;
    uv_poll_t *poll; /* one per connection, freed by its close callback */
    uv_timer_t retry, tick, requeue_timer;
    int n_open_handles;
    bool started, up, lost, closing, destroyed, passive, returned;
    unsigned channel_opens; /* open_channel calls so far (a declare may reopen it) */
    /* queues found with other arguments on this connection, said once it is up */
    char mismatch[700];
    unsigned depth;
    unsigned attempt;
    uint64_t generation;
    uint64_t next_seq;
    unsigned heartbeat_s;
    uint64_t last_rx, last_hb;
    struct incoming in;
    char detail[384];
};

void amqp_link_config_defaults(struct amqp_link_config *cfg)
{
    *cfg = (struct amqp_link_config){
        .host = "localhost",
        .port = 5672,
        .user = "guest",
        .password = "guest",
        .vhost = "/",
        .heartbeat_s = 30,
        .prefetch = 16,
        .max_message_bytes = 1 << 20,
        .max_unconfirmed = 256,
        .connect_timeout_ms = 5000,
        .reconnect_min_ms = 500,
        .reconnect_max_ms = 30000,
        .delivery_limit = QTYPE_DELIVERY_LIMIT_DEFAULT,
    };
}

static void set_detail(amqp_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_detail(amqp_link *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->detail, sizeof(l->detail), fmt, ap);
    va_end(ap);
}

static void emit(amqp_link *l, enum amqp_link_event ev, const char *detail)
{
    if (l->on_event && !l->closing)
        l->on_event(l, ev, detail, l->userdata);
}

/* --- headers ---------------------------------------------------------------------------- */

/* Deep copy into one block: the array, then the strings. */
static int dup_headers(const struct amqp_link_header *h, size_t n, struct amqp_link_header **ret)
{
    size_t size = n * sizeof(*h);
    for (size_t i = 0; i < n; i++) {
        if (!h[i].key)
            return -EINVAL;
        size += strlen(h[i].key) + 1 + (h[i].str ? strlen(h[i].str) + 1 : 0);
    }
    struct amqp_link_header *copy = malloc(size ? size : 1);
    if (!copy)
        return -ENOMEM;
    char *p = (char *)(copy + n);
    for (size_t i = 0; i < n; i++) {
        copy[i] = h[i];
        copy[i].key = p;
        p = stpcpy(p, h[i].key) + 1;
        if (h[i].str) {
            copy[i].str = p;
            p = stpcpy(p, h[i].str) + 1;
        }
    }
    *ret = copy;
    return 0;
}

/* The caller frees out->entries. */
static int make_table(const struct amqp_link_header *h, size_t n, amqp_table_t *out)
{
    *out = amqp_empty_table;
    if (n == 0)
        return 0;
    if (n > INT_MAX)
        return -EINVAL;
    amqp_table_entry_t *e = calloc(n, sizeof(*e));
    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        e[i].key = amqp_cstring_bytes(h[i].key);
        if (h[i].str) {
            e[i].value.kind = AMQP_FIELD_KIND_UTF8;
            e[i].value.value.bytes = amqp_cstring_bytes(h[i].str);
        } else {
            e[i].value.kind = AMQP_FIELD_KIND_I64;
            e[i].value.value.i64 = h[i].num;
        }
    }
    out->entries = e;
    out->num_entries = (int)n;
    return 0;
}

static bool field_int(const amqp_field_value_t *v, int64_t *ret)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        *ret = v->value.i8;
        return true;
    case AMQP_FIELD_KIND_U8:
        *ret = v->value.u8;
        return true;
    case AMQP_FIELD_KIND_I16:
        *ret = v->value.i16;
        return true;
    case AMQP_FIELD_KIND_U16:
        *ret = v->value.u16;
        return true;
    case AMQP_FIELD_KIND_I32:
        *ret = v->value.i32;
        return true;
    case AMQP_FIELD_KIND_U32:
        *ret = v->value.u32;
        return true;
    case AMQP_FIELD_KIND_I64:
        *ret = v->value.i64;
        return true;
    case AMQP_FIELD_KIND_U64:
        *ret = (int64_t)v->value.u64;
        return true;
    default:
        return false;
    }
}

static bool field_str(const amqp_field_value_t *v)
{
    return v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES;
}

static char *copy_bytes(char *p, amqp_bytes_t b)
{
    if (b.len)
        memcpy(p, b.bytes, b.len);
    p[b.len] = '\0';
    return p + b.len + 1;
}

static struct metric m_reconnects = METRIC_COUNTER(
    "correctomatic_amqp_reconnects_total", "Connections to RabbitMQ made again after the first.");
static struct metric m_published =
    METRIC_COUNTER("correctomatic_amqp_published_total", "Messages published, by queue.", "queue");
static struct metric m_confirms =
    METRIC_COUNTER("correctomatic_amqp_confirms_total",
                   "Publisher confirms: ack, nack (refused or unroutable), lost (the connection "
                   "went first).",
                   "result");
static struct metric m_deliveries = METRIC_COUNTER(
    "correctomatic_amqp_deliveries_total", "Messages received, by the queue consumed.", "queue");

/* Copies message_id and the string and integer headers of a delivery. */
static int copy_properties(struct incoming *in, const amqp_basic_properties_t *p)
{
    if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
        in->timestamp = p->timestamp;
    const amqp_table_t *t = &p->headers;
    bool has_headers = p->_flags & AMQP_BASIC_HEADERS_FLAG;
    bool has_id = p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG;
    size_t n = 0, size = has_id ? p->message_id.len + 1 : 0;
    int64_t num;
    for (int i = 0; has_headers && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (field_str(&e->value))
            size += e->value.value.bytes.len + 1;
        else if (!field_int(&e->value, &num))
            continue;
        size += e->key.len + 1;
        n++;
    }
    in->meta = malloc(n * sizeof(struct amqp_link_header) + size + 1);
    if (!in->meta)
        return -ENOMEM;
    in->headers = in->meta;
    char *s = (char *)(in->headers + n);
    for (int i = 0; has_headers && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        struct amqp_link_header *h = &in->headers[in->n_headers];
        *h = (struct amqp_link_header){0};
        if (field_str(&e->value)) {
            h->key = s;
            s = copy_bytes(s, e->key);
            h->str = s;
            s = copy_bytes(s, e->value.value.bytes);
        } else if (field_int(&e->value, &h->num)) {
            h->key = s;
            s = copy_bytes(s, e->key);
        } else {
            continue;
        }
        in->n_headers++;
    }
    if (has_id) {
        in->message_id = s;
        copy_bytes(s, p->message_id);
    }
    return 0;
}

static void incoming_reset(struct incoming *in)
{
    free(in->body);
    free(in->meta);
    *in = (struct incoming){.kind = IN_NONE};
}

/* --- connection lifecycle ------------------------------------------------------------------- */

static void on_tick(uv_timer_t *t);
static void on_retry(uv_timer_t *t);
static void on_poll(uv_poll_t *p, int status, int events);
static void destroy(amqp_link *l);

static void enter(amqp_link *l)
{
    l->depth++;
}

static void leave(amqp_link *l)
{
    if (--l->depth == 0 && l->closing)
        destroy(l);
}

static uint64_t tick_repeat(const amqp_link *l)
{
    return l->heartbeat_s ? l->heartbeat_s * 1000ULL / 2 : 0;
}

/* Have the tick run at the next loop iteration (teardown, or frames rabbitmq-c buffered
 * during a call that did not come from the poll callback). */
static void kick(amqp_link *l)
{
    if (!l->destroyed)
        uv_timer_start(&l->tick, on_tick, 0, l->up ? tick_repeat(l) : 0);
}

static void kick_if_pending(amqp_link *l)
{
    if (l->conn && (amqp_frames_enqueued(l->conn) || amqp_data_in_buffer(l->conn)))
        kick(l);
}

static void mark_lost(amqp_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mark_lost(amqp_link *l, const char *fmt, ...)
{
    if (l->lost)
        return;
    l->lost = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->detail, sizeof(l->detail), fmt, ap);
    va_end(ap);
    if (l->poll)
        uv_poll_stop(l->poll);
    kick(l);
}

static bool usable(const amqp_link *l)
{
    return l->up && !l->lost && !l->closing;
}

static void close_connection(amqp_link *l)
{
    if (l->poll) {
        uv_close((uv_handle_t *)l->poll, (uv_close_cb)free);
        l->poll = NULL;
    }
    if (l->conn) {
        amqp_destroy_connection(l->conn);
        l->conn = NULL;
    }
    incoming_reset(&l->in);
    l->n_requeue = 0; /* the broker requeues them itself */
    l->up = l->lost = l->passive = l->returned = false;
    l->mismatch[0] = '\0';
}

/* Fails the outstanding confirms one by one; a callback may free the link. */
static void fail_pending(amqp_link *l, int status)
{
    while (l->n_pend > 0 && (status == -ECANCELED || !l->closing)) {
        struct pending p = l->pend[0];
        memmove(l->pend, l->pend + 1, --l->n_pend * sizeof(*l->pend));
        METRIC_INC(&m_confirms, "lost");
        p.cb(l, status, p.userdata);
    }
}

static void schedule_retry(amqp_link *l)
{
    if (l->closing)
        return;
    uint64_t delay = schedule_backoff_ms(l->cfg.reconnect_min_ms, l->cfg.reconnect_max_ms,
                                         l->attempt, ids_jitter());
    if (l->attempt < 64)
        l->attempt++;
    uv_timer_stop(&l->tick);
    uv_timer_start(&l->retry, on_retry, delay, 0);
}

static void teardown(amqp_link *l)
{
    bool was_up = l->up;
    close_connection(l);
    if (was_up) {
        /* the node we were on may be the one that went: the next one first */
        l->host_idx = (l->host_idx + 1) % l->hosts.n;
        emit(l, AMQP_LINK_DOWN, l->detail);
        fail_pending(l, -ECONNRESET);
    }
    schedule_retry(l);
}

/* Turns an RPC reply into 0 or a negative errno (detail set); answers a close from the
 * server (the channel or connection is then closed). */
static int check_reply(amqp_link *l, amqp_rpc_reply_t r, const char *what)
{
    uint16_t code = 0;
    amqp_bytes_t text = {0, ""};
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        set_detail(l, "%s: no reply", what);
        return -EPROTO;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        set_detail(l, "%s: %s", what, amqp_error_string2(r.library_error));
        return r.library_error == AMQP_STATUS_TIMEOUT ? -ETIMEDOUT : -EIO;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            amqp_channel_close_ok_t ok = {0};
            code = m->reply_code;
            text = m->reply_text;
            (void)amqp_send_method(l->conn, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            amqp_connection_close_ok_t ok = {0};
            code = m->reply_code;
            text = m->reply_text;
            (void)amqp_send_method(l->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        }
        set_detail(l, "%s: %u %.*s", what, code, (int)text.len, (const char *)text.bytes);
        return code == AMQP_ACCESS_REFUSED        ? -EACCES
               : code == AMQP_NOT_FOUND           ? -ENOENT
               : code == AMQP_PRECONDITION_FAILED ? -EEXIST
                                                  : -EIO;
    }
    set_detail(l, "%s: unexpected reply", what);
    return -EPROTO;
}

/* The blocking calls of a connection attempt (socket open, login, every RPC), or of a
 * declare on an open connection, share one connect_timeout_ms: each gets what is left of it,
 * so a broker that answers every step slowly cannot hold the loop for a dozen timeouts. */
static void rpc_budget_start(amqp_link *l)
{
    l->rpc_deadline_ns = uv_hrtime() + l->cfg.connect_timeout_ms * 1000000ULL;
}

/* Sets what is left as the next blocking call's timeout (tv for the socket open); -ETIMEDOUT
 * (detail set) when nothing is. */
static int rpc_budget(amqp_link *l, const char *what, struct timeval *tv)
{
    uint64_t now = uv_hrtime();
    if (now >= l->rpc_deadline_ns) {
        set_detail(l, "%s: no answer within %llu ms (connect_timeout_ms, for the whole connection)",
                   what, (unsigned long long)l->cfg.connect_timeout_ms);
        return -ETIMEDOUT;
    }
    uint64_t left_us = (l->rpc_deadline_ns - now) / 1000;
    struct timeval left = {.tv_sec = (time_t)(left_us / 1000000),
                           .tv_usec = (suseconds_t)(left_us % 1000000)};
    if (left.tv_sec == 0 && left.tv_usec == 0)
        left.tv_usec = 1;
    if (tv)
        *tv = left;
    if (amqp_set_handshake_timeout(l->conn, &left) != AMQP_STATUS_OK ||
        amqp_set_rpc_timeout(l->conn, &left) != AMQP_STATUS_OK) {
        set_detail(l, "%s: cannot set the timeout", what);
        return -EINVAL;
    }
    return 0;
}

static int open_channel(amqp_link *l)
{
    l->channel_opens++;
    int r = rpc_budget(l, "channel.open", NULL);
    if (r < 0)
        return r;
    amqp_channel_open(l->conn, CHANNEL);
    r = check_reply(l, amqp_get_rpc_reply(l->conn), "channel.open");
    if (r < 0 || (r = rpc_budget(l, "confirm.select", NULL)) < 0)
        return r;
    amqp_confirm_select(l->conn, CHANNEL);
    r = check_reply(l, amqp_get_rpc_reply(l->conn), "confirm.select");
    if (r < 0 || (r = rpc_budget(l, "basic.qos", NULL)) < 0)
        return r;
    amqp_basic_qos(l->conn, CHANNEL, 0,
                   (uint16_t)(l->cfg.prefetch > UINT16_MAX ? UINT16_MAX : l->cfg.prefetch), 0);
    return check_reply(l, amqp_get_rpc_reply(l->conn), "basic.qos");
}

/* Durable declare; when refused (no configure permission), reopens the channel and from then
 * on declares passively on this connection. A queue that exists with other arguments (an
 * earlier version's, another QUEUE_TYPE: the broker answers PRECONDITION_FAILED and never
 * changes a queue) is used as it is: declared passively, and said as an error once the
 * connection is up (l->mismatch), for the operator to re-create it. */
static int declare(amqp_link *l, struct queue_reg *q)
{
    char what[300];
    amqp_table_t args;
    int r;
    snprintf(what, sizeof(what), "declare queue %s", q->name);
    if (!l->passive) {
        r = rpc_budget(l, what, NULL);
        if (r < 0)
            return r;
        struct amqp_link_header all[QTYPE_MAX_ARGS];
        char companion[300];
        int n = qtype_args(l->cfg.quorum ? QTYPE_QUORUM : QTYPE_CLASSIC, l->cfg.delivery_limit,
                           q->name, q->args, q->n_args, all, companion, sizeof(companion));
        if (n < 0) {
            set_detail(l, "%s: too many arguments", what);
            return -EINVAL;
        }
        r = make_table(all, (size_t)n, &args);
        if (r < 0)
            return r;
        amqp_queue_declare(l->conn, CHANNEL, amqp_cstring_bytes(q->name), 0, 1, 0, 0, args);
        free(args.entries);
        r = check_reply(l, amqp_get_rpc_reply(l->conn), what);
        if (r != -EACCES && r != -EEXIST)
            return r;
        if (r == -EEXIST) {
            size_t used = strlen(l->mismatch);
            if (used + 2 < sizeof(l->mismatch))
                snprintf(l->mismatch + used, sizeof(l->mismatch) - used, "%s%s", used ? "; " : "",
                         l->detail);
        } else {
            l->passive = true;
        }
        r = open_channel(l);
        if (r < 0)
            return r;
    }
    r = rpc_budget(l, what, NULL);
    if (r < 0)
        return r;
    amqp_queue_declare(l->conn, CHANNEL, amqp_cstring_bytes(q->name), 1, 0, 0, 0, amqp_empty_table);
    r = check_reply(l, amqp_get_rpc_reply(l->conn), what);
    if (r == -ENOENT)
        set_detail(l, "queue %s not found (passive declare; no permission to create it)", q->name);
    return r;
}

/* Every consumer gets a tag of its own: a delivery still on its way for a cancelled one is
 * told from the next one's (and RabbitMQ 3.10's channel crashes, 541 INTERNAL_ERROR, when a
 * quorum queue delivers to a tag cancelled and consumed again). */
static void next_tag(struct queue_reg *q)
{
    snprintf(q->tag, sizeof(q->tag), "ct-%zu.%u", q->idx, ++q->serial);
}

/* The prefetch of the queue's next consumer (basic.qos with global false applies to the
 * consumers started after it on the channel). */
static unsigned consumer_prefetch(const amqp_link *l, const struct queue_reg *q)
{
    unsigned n = q->prefetch ? q->prefetch : l->cfg.prefetch;
    return n > UINT16_MAX ? UINT16_MAX : n;
}

static int send_consume(amqp_link *l, struct queue_reg *q)
{
    next_tag(q);
    amqp_basic_qos_t qos = {.prefetch_count = (uint16_t)consumer_prefetch(l, q)};
    amqp_basic_consume_t m = {
        .queue = amqp_cstring_bytes(q->name),
        .consumer_tag = amqp_cstring_bytes(q->tag),
        .nowait = 1,
        .arguments = amqp_empty_table,
    };
    int r = amqp_send_method(l->conn, CHANNEL, AMQP_BASIC_QOS_METHOD, &qos);
    if (r == AMQP_STATUS_OK)
        r = amqp_send_method(l->conn, CHANNEL, AMQP_BASIC_CONSUME_METHOD, &m);
    if (r != AMQP_STATUS_OK)
        mark_lost(l, "basic.consume %s: %s", q->name, amqp_error_string2(r));
    return r == AMQP_STATUS_OK ? 0 : -ENOTCONN;
}

/* Blocking, all its steps together bounded by connect_timeout_ms. 0, or negative errno with
 * detail set. */
static int connect_once(amqp_link *l, bool *operator_error)
{
    struct timeval tv;
    int r;
    rpc_budget_start(l);
    l->conn = amqp_new_connection();
    if (!l->conn)
        return -ENOMEM;
    amqp_socket_t *sock = amqp_tcp_socket_new(l->conn);
    if (!sock)
        return -ENOMEM;
    r = rpc_budget(l, "connect", &tv);
    if (r < 0)
        return r;
    const struct hostlist_node *node = &l->hosts.node[l->host_idx];
    r = amqp_socket_open_noblock(sock, node->host, node->port, &tv);
    if (r != AMQP_STATUS_OK) {
        char at[300];
        hostlist_node_text(node, at, sizeof(at));
        set_detail(l, "connect %s: %s", at, amqp_error_string2(r));
        return -ECONNREFUSED;
    }
    amqp_table_entry_t name = {.key = amqp_cstring_bytes("connection_name"),
                               .value = {.kind = AMQP_FIELD_KIND_UTF8}};
    amqp_table_t props = amqp_empty_table;
    if (l->cfg.connection_name) {
        name.value.value.bytes = amqp_cstring_bytes(l->cfg.connection_name);
        props = (amqp_table_t){.num_entries = 1, .entries = &name};
    }
    r = rpc_budget(l, "login", NULL);
    if (r < 0)
        return r;
    r = check_reply(
        l,
        amqp_login_with_properties(l->conn, l->cfg.vhost, 0, FRAME_MAX, (int)l->cfg.heartbeat_s,
                                   &props, AMQP_SASL_METHOD_PLAIN, l->cfg.user, l->cfg.password),
        "login");
    if (r < 0) {
        *operator_error = r == -EACCES;
        return r;
    }
    r = open_channel(l);
    for (size_t i = 0; r == 0 && i < l->n_queues; i++)
        if (l->queues[i]->declare)
            r = declare(l, l->queues[i]);
    if (r < 0) {
        *operator_error = r == -EACCES || r == -ENOENT;
        return r;
    }
    for (size_t i = 0; i < l->n_queues; i++) {
        struct queue_reg *q = l->queues[i];
        if (!q->cb || q->paused)
            continue;
        char what[300];
        snprintf(what, sizeof(what), "consume queue %s", q->name);
        r = rpc_budget(l, what, NULL);
        if (r < 0)
            return r;
        amqp_basic_qos(l->conn, CHANNEL, 0, (uint16_t)consumer_prefetch(l, q), 0);
        r = check_reply(l, amqp_get_rpc_reply(l->conn), "basic.qos");
        if (r < 0)
            return r;
        if ((r = rpc_budget(l, what, NULL)) < 0)
            return r;
        next_tag(q);
        amqp_basic_consume(l->conn, CHANNEL, amqp_cstring_bytes(q->name),
                           amqp_cstring_bytes(q->tag), 0, 0, 0, amqp_empty_table);
        r = check_reply(l, amqp_get_rpc_reply(l->conn), what);
        if (r < 0) {
            *operator_error = r == -EACCES || r == -ENOENT;
            return r;
        }
    }
    /* What the last step left of the budget is no bound for the connection's later calls: a
     * whole connect_timeout_ms again (a declare or a close starts a budget of its own). */
    rpc_budget_start(l);
    return rpc_budget(l, "connected", NULL);
}

static void on_retry(uv_timer_t *t)
{
    amqp_link *l = t->data;
    bool operator_error = false;
    enter(l);
    int r = connect_once(l, &operator_error);
    uv_update_time(l->loop);
    if (r < 0) {
        close_connection(l);
        emit(l, operator_error ? AMQP_LINK_ERROR : AMQP_LINK_RETRY, l->detail);
        /* The next node at once, on a loop turn of its own; after a whole round, a backoff. */
        l->host_idx = (l->host_idx + 1) % l->hosts.n;
        if (++l->round_tries < l->hosts.n && !l->closing) {
            uv_timer_start(&l->retry, on_retry, 0, 0);
        } else {
            l->round_tries = 0;
            schedule_retry(l);
        }
        goto out;
    }
    l->poll = malloc(sizeof(*l->poll));
    if (!l->poll || uv_poll_init(l->loop, l->poll, amqp_get_sockfd(l->conn)) < 0) {
        free(l->poll);
        l->poll = NULL;
        close_connection(l);
        schedule_retry(l);
        goto out;
    }
    l->poll->data = l;
    uv_poll_start(l->poll, UV_READABLE, on_poll);
    l->up = true;
    l->generation++;
    l->next_seq = 1;
    l->attempt = 0;
    l->round_tries = 0;
    l->heartbeat_s = (unsigned)amqp_get_heartbeat(l->conn);
    l->last_rx = l->last_hb = uv_now(l->loop);
    kick(l); /* drains what arrived during the RPCs, then drives heartbeats */
    if (l->generation > 1)
        metric_add(&m_reconnects, 1, NULL);
    /* said before UP, so that whoever reads "connected" has read this too */
    if (l->mismatch[0]) {
        char what[sizeof(l->mismatch) + 100];
        snprintf(what, sizeof(what),
                 "a queue exists with other arguments, used as it is (re-create it to change "
                 "it): %s",
                 l->mismatch);
        l->mismatch[0] = '\0';
        emit(l, AMQP_LINK_ERROR, what);
    }
    char node[300];
    hostlist_node_text(&l->hosts.node[l->host_idx], node, sizeof(node));
    if (!l->closing)
        emit(l, AMQP_LINK_UP, node);
out:
    leave(l);
}

/* --- frames ------------------------------------------------------------------------------- */

static void confirm(amqp_link *l, uint64_t tag, bool multiple, int status)
{
    bool returned = l->returned;
    l->returned = false;
    while (!l->closing && l->n_pend > 0) {
        size_t i = 0;
        if (!multiple)
            while (i < l->n_pend && l->pend[i].seq != tag)
                i++;
        if (i == l->n_pend || l->pend[i].seq > tag)
            break;
        struct pending p = l->pend[i];
        memmove(l->pend + i, l->pend + i + 1, (--l->n_pend - i) * sizeof(*l->pend));
        int st = returned && p.seq == tag ? -EIO : status;
        METRIC_INC(&m_confirms, st == 0 ? "ack" : "nack");
        p.cb(l, st, p.userdata);
        if (!multiple)
            break;
    }
}

/* --- parking ------------------------------------------------------------------------------ */

static int settle(amqp_link *link, uint64_t generation, uint64_t delivery_tag, bool ack,
                  bool requeue);
static int publish_raw(amqp_link *l, const char *queue, const void *body, size_t len,
                       const struct amqp_link_publish_opts *opts, amqp_link_confirm_cb cb,
                       void *userdata);

static void on_requeue_timer(uv_timer_t *t)
{
    amqp_link *l = t->data;
    if (l->closing)
        return;
    enter(l);
    struct requeue *r = l->requeue;
    size_t n = l->n_requeue;
    l->requeue = NULL;
    l->n_requeue = l->cap_requeue = 0;
    for (size_t i = 0; i < n; i++)
        (void)settle(l, r[i].generation, r[i].tag, false, true); /* stale: back already */
    free(r);
    leave(l);
}

/* A delivery that could not be parked goes back to its queue, later: parking it again at once
 * would only meet the same refusal. */
static void requeue_later(amqp_link *l, uint64_t generation, uint64_t tag, const char *queue)
{
    if (l->n_requeue == l->cap_requeue) {
        size_t cap = l->cap_requeue ? 2 * l->cap_requeue : 8;
        struct requeue *p = realloc(l->requeue, cap * sizeof(*p));
        if (!p) {
            (void)settle(l, generation, tag, false, true); /* at once rather than never */
            return;
        }
        l->requeue = p;
        l->cap_requeue = cap;
    }
    l->requeue[l->n_requeue++] = (struct requeue){generation, tag};
    if (!uv_is_active((uv_handle_t *)&l->requeue_timer))
        uv_timer_start(&l->requeue_timer, on_requeue_timer, l->cfg.reconnect_max_ms, 0);
    char detail[400];
    snprintf(detail, sizeof(detail),
             "cannot park a message in %s (refused by the broker, or too many publishes "
             "unconfirmed); it goes back to its queue in %llu ms",
             queue, (unsigned long long)l->cfg.reconnect_max_ms);
    emit(l, AMQP_LINK_ERROR, detail);
}

static void on_parked(amqp_link *l, int status, void *userdata)
{
    struct park *p = userdata;
    if (status == 0) {
        METRIC_INC(&metrics_parked, p->queue);
        (void)settle(l, p->generation, p->tag, true, false);
    } else if (status != -ECONNRESET && status != -ECANCELED)
        requeue_later(l, p->generation, p->tag, p->queue);
    free(p);
}

static bool has_key(const struct amqp_link_header *h, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].key, key) == 0)
            return true;
    return false;
}

/* Publishes the copy to "<queue>.invalid"; on_parked acks the original. 0 (also when the park
 * is deferred), -ENOTCONN (lost: the broker requeues the original), -EINVAL, -ENOMEM. */
static int park_body(amqp_link *l, uint64_t generation, uint64_t tag, const char *queue,
                     const void *body, size_t len, const char *message_id, const char *reason,
                     const struct amqp_link_header *extra, size_t n_extra,
                     const struct amqp_link_header *orig, size_t n_orig)
{
    struct park *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    int n = snprintf(p->queue, sizeof(p->queue), "%s" INVALID_SUFFIX, queue);
    if (n < 0 || n > 255) {
        free(p);
        return -EINVAL;
    }
    p->generation = generation;
    p->tag = tag;
    struct amqp_link_header *h = malloc((1 + n_extra + n_orig) * sizeof(*h));
    char *why = malloc(REASON_MAX_BYTES + 1);
    if (!h || !why) {
        free(h);
        free(why);
        free(p);
        return -ENOMEM;
    }
    text_utf8_copy(why, REASON_MAX_BYTES + 1, reason, strlen(reason)); /* a header: valid UTF-8 */
    size_t k = 0;
    h[k++] = (struct amqp_link_header){.key = HEADER_REASON, .str = why};
    for (size_t i = 0; i < n_extra; i++)
        if (!has_key(h, k, extra[i].key))
            h[k++] = extra[i];
    size_t ours = k;
    for (size_t i = 0; i < n_orig; i++)
        if (!has_key(h, ours, orig[i].key))
            h[k++] = orig[i];
    struct amqp_link_publish_opts opts = {.message_id = message_id, .headers = h, .n_headers = k};
    int r = publish_raw(l, p->queue, body, len, &opts, on_parked, p);
    free(h);
    free(why);
    if (r == -ENOBUFS) {
        requeue_later(l, generation, tag, p->queue);
        free(p);
        return 0;
    }
    if (r < 0)
        free(p); /* else on_parked owns it */
    return r;
}

/* A delivery over max_message_bytes: parked without reaching the consumer. */
static void park_oversized(amqp_link *l, struct incoming *in)
{
    char reason[300], detail[600];
    if (in->keep < in->size)
        snprintf(reason, sizeof(reason),
                 "message too large - %zu bytes, more than the %zu accepted; only its first %zu "
                 "bytes are kept here",
                 in->size, l->cfg.max_message_bytes, in->keep);
    else
        snprintf(reason, sizeof(reason),
                 "message too large - %zu bytes, more than the %zu accepted", in->size,
                 l->cfg.max_message_bytes);
    int r = park_body(l, l->generation, in->tag, in->q->name, in->body, in->keep, in->message_id,
                      reason, NULL, 0, in->headers, in->n_headers);
    if (r == -ENOTCONN)
        return;
    if (r < 0) {
        requeue_later(l, l->generation, in->tag, in->q->name);
        return;
    }
    snprintf(detail, sizeof(detail), "queue %s: message of %zu bytes exceeds %zu; parked in %s%s",
             in->q->name, in->size, l->cfg.max_message_bytes, in->q->name, INVALID_SUFFIX);
    emit(l, AMQP_LINK_REJECTED, detail);
}

static void finish_incoming(amqp_link *l)
{
    struct incoming in = l->in;
    l->in = (struct incoming){.kind = IN_NONE};
    if (in.kind == IN_DELIVER && !in.discard && in.oversize) {
        park_oversized(l, &in);
    } else if (in.kind == IN_DELIVER && !in.discard) {
        struct amqp_link_delivery d = {
            .generation = l->generation,
            .delivery_tag = in.tag,
            .redelivered = in.redelivered,
            .queue = in.q->name,
            .message_id = in.message_id,
            .body = in.body,
            .body_len = in.size,
            .headers = in.headers,
            .n_headers = in.n_headers,
            .timestamp = in.timestamp,
        };
        METRIC_INC(&m_deliveries, in.q->name);
        in.q->cb(l, &d, in.q->cb_data);
    }
    incoming_reset(&in);
}

static void on_header(amqp_link *l, const amqp_frame_t *f)
{
    struct incoming *in = &l->in;
    if (in->kind == IN_NONE || in->header_seen) {
        mark_lost(l, "unexpected content header");
        return;
    }
    in->header_seen = true;
    if (f->payload.properties.body_size > SIZE_MAX - 1) {
        mark_lost(l, "content too large");
        return;
    }
    in->size = (size_t)f->payload.properties.body_size;
    in->keep = in->size;
    if (in->kind == IN_DELIVER) {
        if (in->size > l->cfg.max_message_bytes) {
            in->oversize = true;
            if (in->keep > l->cfg.max_park_bytes)
                in->keep = l->cfg.max_park_bytes;
        }
        in->body = malloc(in->keep ? in->keep : 1);
        if (!in->body || copy_properties(in, f->payload.properties.decoded) < 0) {
            /* cannot take it now: give it back to the queue */
            in->discard = true;
            if (amqp_basic_nack(l->conn, CHANNEL, in->tag, 0, 1) != AMQP_STATUS_OK)
                mark_lost(l, "basic.nack failed");
        }
    }
    if (!l->lost && !l->closing && in->size == 0)
        finish_incoming(l);
}

static void on_body(amqp_link *l, const amqp_frame_t *f)
{
    struct incoming *in = &l->in;
    amqp_bytes_t b = f->payload.body_fragment;
    if (in->kind == IN_NONE || !in->header_seen || b.len > in->size - in->got) {
        mark_lost(l, "unexpected content body");
        return;
    }
    if (!in->discard && b.len && in->got < in->keep)
        memcpy(in->body + in->got, b.bytes,
               b.len < in->keep - in->got ? b.len : in->keep - in->got);
    in->got += b.len;
    if (in->got == in->size)
        finish_incoming(l);
}

/* The queue of a consumer tag "ct-<idx>.<serial>", whichever of its consumers (a delivery may
 * come for one just cancelled). */
static struct queue_reg *find_tag(amqp_link *l, amqp_bytes_t tag)
{
    char t[32];
    if (tag.len < 6 || tag.len >= sizeof(t))
        return NULL;
    memcpy(t, tag.bytes, tag.len);
    t[tag.len] = '\0';
    size_t idx;
    unsigned serial;
    int used = 0;
    if (sscanf(t, "ct-%zu.%u%n", &idx, &serial, &used) != 2 || (size_t)used != tag.len ||
        idx >= l->n_queues || serial == 0 || serial > l->queues[idx]->serial)
        return NULL;
    return l->queues[idx];
}

static void on_method(amqp_link *l, const amqp_frame_t *f)
{
    const amqp_method_t *m = &f->payload.method;
    if (l->in.kind != IN_NONE) {
        mark_lost(l, "method frame inside content");
        return;
    }
    switch (m->id) {
    case AMQP_BASIC_DELIVER_METHOD: {
        const amqp_basic_deliver_t *d = m->decoded;
        struct queue_reg *q = find_tag(l, d->consumer_tag);
        if (!q || !q->cb) {
            mark_lost(l, "delivery for an unknown consumer");
            return;
        }
        l->in = (struct incoming){
            .kind = IN_DELIVER, .q = q, .tag = d->delivery_tag, .redelivered = d->redelivered};
        break;
    }
    case AMQP_BASIC_RETURN_METHOD:
        /* the basic.ack of this publish follows: it fails with -EIO */
        l->returned = true;
        l->in = (struct incoming){.kind = IN_RETURN, .discard = true};
        break;
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = m->decoded;
        confirm(l, a->delivery_tag, a->multiple, 0);
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *n = m->decoded;
        confirm(l, n->delivery_tag, n->multiple, -EIO);
        break;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        mark_lost(l, "consumer cancelled by the broker");
        break;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = *m};
        (void)check_reply(l, r,
                          m->id == AMQP_CHANNEL_CLOSE_METHOD ? "channel closed by broker"
                                                             : "connection closed by broker");
        char detail[sizeof(l->detail)];
        memcpy(detail, l->detail, sizeof(detail));
        mark_lost(l, "%s", detail);
        break;
    }
    default:
        break; /* consume-ok, cancel-ok, qos-ok... */
    }
}

static void drain(amqp_link *l)
{
    struct timeval zero = {0, 0};
    do {
        amqp_frame_t f;
        errno = 0;
        int r = amqp_simple_wait_frame_noblock(l->conn, &f, &zero);
        int os_err = errno;
        if (r == AMQP_STATUS_TIMEOUT)
            return;
        if (r == AMQP_STATUS_SOCKET_ERROR && os_err != 0) {
            /* rabbitmq-c's text is only "a socket error occurred": say which */
            mark_lost(l, "read: %s", strerror(os_err));
            return;
        }
        if (r != AMQP_STATUS_OK) {
            mark_lost(l, "read: %s", amqp_error_string2(r));
            return;
        }
        if (f.channel == CHANNEL || f.channel == 0) {
            if (f.frame_type == AMQP_FRAME_METHOD)
                on_method(l, &f);
            else if (f.frame_type == AMQP_FRAME_HEADER)
                on_header(l, &f);
            else if (f.frame_type == AMQP_FRAME_BODY)
                on_body(l, &f);
        }
        if (l->lost || l->closing)
            return;
        amqp_maybe_release_buffers(l->conn);
    } while (amqp_frames_enqueued(l->conn) || amqp_data_in_buffer(l->conn));
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    amqp_link *l = p->data;
    (void)events;
    if (!usable(l))
        return;
    enter(l);
    l->last_rx = uv_now(l->loop);
    if (status < 0) {
        /* libuv reports any POLLERR as UV_EBADF: the socket's own error says what happened
         * (a reset, say); without one, reading finds the cause (the peer closed). The poll
         * handle is stopped either way. */
        int err = 0;
        socklen_t len = sizeof(err);
        int fd = amqp_get_sockfd(l->conn);
        if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
            mark_lost(l, "socket error: %s", strerror(err));
        else
            drain(l);
        if (!l->lost)
            mark_lost(l, "poll: %s", uv_strerror(status));
    } else {
        drain(l);
    }
    leave(l);
}

static void on_tick(uv_timer_t *t)
{
    amqp_link *l = t->data;
    if (l->closing)
        return;
    enter(l);
    uint64_t now = uv_now(l->loop);
    if (l->up && !l->lost && l->heartbeat_s) {
        if (now - l->last_rx > 2000ULL * l->heartbeat_s) {
            mark_lost(l, "no frame from the broker for %u s (heartbeat)", 2 * l->heartbeat_s);
        } else if (now - l->last_hb >= tick_repeat(l)) {
            amqp_frame_t hb = {.frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0};
            int r = amqp_send_frame(l->conn, &hb);
            if (r != AMQP_STATUS_OK)
                mark_lost(l, "heartbeat: %s", amqp_error_string2(r));
            l->last_hb = now;
        }
    }
    if (l->up && !l->lost)
        drain(l);
    if (l->lost && !l->closing)
        teardown(l);
    leave(l);
}

/* --- public API --------------------------------------------------------------------------- */

static char *dup_or(const char *s, const char *fallback)
{
    return strdup(s ? s : fallback);
}

int amqp_link_open_socket(struct amqp_socket_t_ *sock, const struct amqp_link_config *cfg,
                          struct timeval *timeout, char *at, size_t atlen)
{
    struct hostlist hosts;
    char why[200];
    if (hostlist_parse(cfg->host ? cfg->host : "localhost", cfg->port, &hosts, why, sizeof(why)) <
        0) {
        snprintf(at, atlen, "RABBITMQ_HOST: %s", why);
        return -1;
    }
    int r = AMQP_STATUS_OK;
    for (size_t i = 0; i < hosts.n; i++) {
        hostlist_node_text(&hosts.node[i], at, atlen);
        struct timeval tv = *timeout;
        r = amqp_socket_open_noblock(sock, hosts.node[i].host, hosts.node[i].port, &tv);
        if (r == AMQP_STATUS_OK)
            return 0;
    }
    snprintf(why, sizeof(why), "%s", at);
    if (hosts.n > 1)
        snprintf(at, atlen, "none of the %zu nodes (the last, %s: %s)", hosts.n, why,
                 amqp_error_string2(r));
    else
        snprintf(at, atlen, "%s: %s", why, amqp_error_string2(r));
    return -1;
}

int amqp_link_new(uv_loop_t *loop, const struct amqp_link_config *cfg, amqp_link_event_cb on_event,
                  void *userdata, amqp_link **ret, struct ct_error *err)
{
    struct amqp_link_config def;
    *ret = NULL;
    if (!loop)
        return ct_error_set(err, -EINVAL, "amqp_link_new: no loop");
    metrics_register(&m_reconnects);
    metrics_register(&m_published);
    metrics_register(&m_confirms);
    metrics_register(&m_deliveries);
    metrics_register(&metrics_parked);
    if (!cfg) {
        amqp_link_config_defaults(&def);
        cfg = &def;
    }
    if (cfg->max_unconfirmed == 0)
        return ct_error_set(err, -EINVAL, "amqp_link_new: max_unconfirmed is 0");
    if (cfg->port <= 0 || cfg->port > 65535)
        return ct_error_set(err, -EINVAL, "invalid RabbitMQ port %d", cfg->port);
    if (cfg->quorum && cfg->delivery_limit == 0)
        return ct_error_set(err, -EINVAL, "quorum queues need a delivery limit");
    amqp_link *l = calloc(1, sizeof(*l));
    if (!l)
        return ct_error_set(err, -ENOMEM, "out of memory");
    l->loop = loop;
    l->on_event = on_event;
    l->userdata = userdata;
    l->cfg = *cfg;
    l->cfg.host = dup_or(cfg->host, "localhost");
    l->cfg.user = dup_or(cfg->user, "guest");
    l->cfg.password = dup_or(cfg->password, "guest");
    l->cfg.vhost = dup_or(cfg->vhost, "/");
    l->cfg.connection_name = cfg->connection_name ? strdup(cfg->connection_name) : NULL;
    if (l->cfg.reconnect_max_ms < l->cfg.reconnect_min_ms)
        l->cfg.reconnect_max_ms = l->cfg.reconnect_min_ms;
    if (l->cfg.max_park_bytes == 0) {
        size_t m = l->cfg.max_message_bytes;
        l->cfg.max_park_bytes = m > PARK_MAX_BYTES / 16   ? PARK_MAX_BYTES
                                : 16 * m < PARK_MIN_BYTES ? PARK_MIN_BYTES
                                                          : 16 * m;
    }
    l->pend = calloc(cfg->max_unconfirmed, sizeof(*l->pend));
    char why[200];
    int r = 0;
    if (!l->cfg.host || !l->cfg.user || !l->cfg.password || !l->cfg.vhost || !l->pend ||
        (cfg->connection_name && !l->cfg.connection_name))
        r = ct_error_set(err, -ENOMEM, "out of memory");
    else if (hostlist_parse(l->cfg.host, l->cfg.port, &l->hosts, why, sizeof(why)) < 0)
        r = ct_error_set(err, -EINVAL, "invalid RABBITMQ_HOST \"%.200s\": %s", l->cfg.host, why);
    if (r < 0) {
        free((char *)l->cfg.host);
        free((char *)l->cfg.user);
        free((char *)l->cfg.password);
        free((char *)l->cfg.vhost);
        free((char *)l->cfg.connection_name);
        free(l->pend);
        free(l);
        return r;
    }
    uv_timer_init(loop, &l->retry);
    uv_timer_init(loop, &l->tick);
    uv_timer_init(loop, &l->requeue_timer);
    l->retry.data = l->tick.data = l->requeue_timer.data = l;
    l->n_open_handles = 3;
    *ret = l;
    return 0;
}

static struct queue_reg *find_queue(amqp_link *l, const char *queue)
{
    for (size_t i = 0; i < l->n_queues; i++)
        if (!strcmp(l->queues[i]->name, queue))
            return l->queues[i];
    return NULL;
}

static int get_queue(amqp_link *l, const char *queue, struct queue_reg **ret)
{
    struct queue_reg *q = find_queue(l, queue);
    if (q) {
        *ret = q;
        return 0;
    }
    if (l->n_queues >= 1000)
        return -ENOSPC;
    struct queue_reg **qs = realloc(l->queues, (l->n_queues + 1) * sizeof(*qs));
    if (!qs)
        return -ENOMEM;
    l->queues = qs;
    q = calloc(1, sizeof(*q));
    if (!q || !(q->name = strdup(queue))) {
        free(q);
        return -ENOMEM;
    }
    q->idx = l->n_queues;
    next_tag(q);
    l->queues[l->n_queues++] = q;
    *ret = q;
    return 0;
}

static bool valid_queue(const char *queue)
{
    return queue && *queue && strlen(queue) <= 255;
}

int amqp_link_declare_queue(amqp_link *link, const char *queue,
                            const struct amqp_link_header *x_args, size_t n_x_args)
{
    struct amqp_link_header *args = NULL;
    struct queue_reg *q;
    if (!link || !valid_queue(queue) || (n_x_args && !x_args))
        return -EINVAL;
    if (link->closing)
        return -ESHUTDOWN;
    int r = dup_headers(x_args, n_x_args, &args);
    if (r < 0)
        return r;
    r = get_queue(link, queue, &q);
    if (r < 0) {
        free(args);
        return r;
    }
    free(q->args);
    q->args = args;
    q->n_args = n_x_args;
    q->declare = true;
    if (qtype_companion(link->cfg.quorum ? QTYPE_QUORUM : QTYPE_CLASSIC, queue, x_args, n_x_args)) {
        /* the target of its dead-lettering (qtype.h) */
        char invalid[300];
        if (strlen(queue) + strlen(INVALID_SUFFIX) > 255)
            return -EINVAL;
        snprintf(invalid, sizeof(invalid), "%s" INVALID_SUFFIX, queue);
        struct queue_reg *iq = find_queue(link, invalid);
        if (!(iq && iq->declare) && (r = amqp_link_declare_queue(link, invalid, NULL, 0)) < 0)
            return r;
    }
    if (usable(link)) {
        /* a failure, or the fallback reopening the channel, loses the channel state: the
         * reconnection declares again and reports */
        unsigned opens = link->channel_opens;
        rpc_budget_start(link);
        if (declare(link, q) < 0 || link->channel_opens != opens)
            mark_lost(link, "%s", link->detail);
        kick_if_pending(link);
    }
    return 0;
}

int amqp_link_consume(amqp_link *link, const char *queue, amqp_link_deliver_cb cb, void *userdata)
{
    struct queue_reg *q;
    char invalid[300];
    if (!link || !valid_queue(queue) || !cb || strlen(queue) + strlen(INVALID_SUFFIX) > 255)
        return -EINVAL;
    if (link->closing)
        return -ESHUTDOWN;
    snprintf(invalid, sizeof(invalid), "%s" INVALID_SUFFIX, queue);
    struct queue_reg *iq = find_queue(link, invalid);
    int r = iq && iq->declare ? 0 : amqp_link_declare_queue(link, invalid, NULL, 0);
    if (r < 0)
        return r;
    r = get_queue(link, queue, &q);
    if (r < 0)
        return r;
    if (q->cb)
        return -EEXIST;
    q->cb = cb;
    q->cb_data = userdata;
    if (usable(link))
        (void)send_consume(link, q);
    return 0;
}

int amqp_link_pause(amqp_link *link, const char *queue)
{
    if (!link || !queue)
        return -EINVAL;
    struct queue_reg *q = find_queue(link, queue);
    if (!q || !q->cb)
        return -ENOENT;
    if (q->paused)
        return 0;
    q->paused = true;
    if (usable(link)) {
        amqp_basic_cancel_t m = {.consumer_tag = amqp_cstring_bytes(q->tag), .nowait = 1};
        int r = amqp_send_method(link->conn, CHANNEL, AMQP_BASIC_CANCEL_METHOD, &m);
        if (r != AMQP_STATUS_OK)
            mark_lost(link, "basic.cancel %s: %s", q->name, amqp_error_string2(r));
    }
    return 0;
}

int amqp_link_resume(amqp_link *link, const char *queue)
{
    if (!link || !queue)
        return -EINVAL;
    struct queue_reg *q = find_queue(link, queue);
    if (!q || !q->cb)
        return -ENOENT;
    if (!q->paused)
        return 0;
    q->paused = false;
    if (usable(link))
        (void)send_consume(link, q);
    return 0;
}

int amqp_link_set_prefetch(amqp_link *link, const char *queue, unsigned prefetch)
{
    if (!link || !queue)
        return -EINVAL;
    struct queue_reg *q = find_queue(link, queue);
    if (!q || !q->cb)
        return -ENOENT;
    q->prefetch = prefetch;
    return 0;
}

int amqp_link_start(amqp_link *link)
{
    if (!link)
        return -EINVAL;
    if (link->closing)
        return -ESHUTDOWN;
    if (link->started)
        return -EALREADY;
    link->started = true;
    uv_timer_start(&link->retry, on_retry, 0, 0);
    return 0;
}

bool amqp_link_is_up(const amqp_link *link)
{
    return link && usable(link);
}

uint64_t amqp_link_generation(const amqp_link *link)
{
    return link ? link->generation : 0;
}

static int publish_raw(amqp_link *link, const char *queue, const void *body, size_t len,
                       const struct amqp_link_publish_opts *opts, amqp_link_confirm_cb cb,
                       void *userdata)
{
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                  AMQP_BASIC_TIMESTAMP_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
        .timestamp = opts && opts->timestamp ? opts->timestamp : (uint64_t)time(NULL),
    };
    char expiration[24];
    if (!usable(link))
        return -ENOTCONN;
    if (link->n_pend >= link->cfg.max_unconfirmed)
        return -ENOBUFS;
    if (opts && opts->message_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(opts->message_id);
    }
    if (opts && opts->expiration_ms) {
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        snprintf(expiration, sizeof(expiration), "%" PRIu64, opts->expiration_ms);
        props.expiration = amqp_cstring_bytes(expiration);
    }
    if (opts && opts->n_headers) {
        for (size_t i = 0; i < opts->n_headers; i++)
            if (!opts->headers[i].key)
                return -EINVAL;
        int r = make_table(opts->headers, opts->n_headers, &props.headers);
        if (r < 0)
            return r;
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
    }
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    int r = amqp_basic_publish(link->conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(queue), 1,
                               0, &props, b);
    free(props.headers.entries);
    if (r != AMQP_STATUS_OK) {
        mark_lost(link, "basic.publish: %s", amqp_error_string2(r));
        return -ENOTCONN;
    }
    link->pend[link->n_pend++] = (struct pending){link->next_seq++, cb, userdata};
    METRIC_INC(&m_published, queue);
    kick_if_pending(link);
    return 0;
}

bool amqp_link_header_num(const struct amqp_link_delivery *d, const char *key, int64_t *ret)
{
    for (size_t i = 0; i < d->n_headers; i++)
        if (strcmp(d->headers[i].key, key) == 0 && !d->headers[i].str) {
            *ret = d->headers[i].num;
            return true;
        }
    return false;
}

int amqp_link_publish(amqp_link *link, const char *queue, const void *body, size_t len,
                      const struct amqp_link_publish_opts *opts, amqp_link_confirm_cb cb,
                      void *userdata)
{
    if (!link || !valid_queue(queue) || (len && !body) || !cb ||
        (opts && opts->n_headers && !opts->headers))
        return -EINVAL;
    return publish_raw(link, queue, body, len, opts, cb, userdata);
}

int amqp_link_park(amqp_link *link, const struct amqp_link_delivery *d, const char *reason,
                   const struct amqp_link_header *headers, size_t n_headers)
{
    if (!link || !d || !d->queue || !reason || (d->body_len && !d->body) ||
        (n_headers && !headers) || (d->n_headers && !d->headers))
        return -EINVAL;
    for (size_t i = 0; i < n_headers; i++)
        if (!headers[i].key)
            return -EINVAL;
    if (d->generation != link->generation)
        return -ESTALE;
    if (!usable(link))
        return -ENOTCONN;
    return park_body(link, d->generation, d->delivery_tag, d->queue, d->body, d->body_len,
                     d->message_id, reason, headers, n_headers, d->headers, d->n_headers);
}

static int settle(amqp_link *link, uint64_t generation, uint64_t delivery_tag, bool ack,
                  bool requeue)
{
    if (!link)
        return -EINVAL;
    if (generation != link->generation)
        return -ESTALE;
    if (!usable(link))
        return -ENOTCONN;
    int r = ack ? amqp_basic_ack(link->conn, CHANNEL, delivery_tag, 0)
                : amqp_basic_nack(link->conn, CHANNEL, delivery_tag, 0, requeue);
    if (r != AMQP_STATUS_OK) {
        mark_lost(link, "%s: %s", ack ? "basic.ack" : "basic.nack", amqp_error_string2(r));
        return -ENOTCONN;
    }
    return 0;
}

int amqp_link_ack(amqp_link *link, uint64_t generation, uint64_t delivery_tag)
{
    return settle(link, generation, delivery_tag, true, false);
}

int amqp_link_nack(amqp_link *link, uint64_t generation, uint64_t delivery_tag, bool requeue)
{
    return settle(link, generation, delivery_tag, false, requeue);
}

static void on_handle_closed(uv_handle_t *h)
{
    amqp_link *l = h->data;
    if (--l->n_open_handles > 0)
        return;
    for (size_t i = 0; i < l->n_queues; i++) {
        free(l->queues[i]->name);
        free(l->queues[i]->args);
        free(l->queues[i]);
    }
    free(l->queues);
    free(l->pend);
    free(l->requeue);
    free((char *)l->cfg.connection_name);
    free((char *)l->cfg.host);
    free((char *)l->cfg.user);
    free((char *)l->cfg.password);
    free((char *)l->cfg.vhost);
    free(l);
}

static void destroy(amqp_link *l)
{
    if (l->destroyed)
        return;
    l->destroyed = true;
    l->depth++; /* callbacks below must not destroy again */
    if (l->conn && l->up && !l->lost) {
        rpc_budget_start(l);
        if (rpc_budget(l, "connection.close", NULL) == 0)
            (void)amqp_connection_close(l->conn, AMQP_REPLY_SUCCESS);
    }
    close_connection(l);
    fail_pending(l, -ECANCELED);
    uv_close((uv_handle_t *)&l->retry, on_handle_closed);
    uv_close((uv_handle_t *)&l->tick, on_handle_closed);
    uv_close((uv_handle_t *)&l->requeue_timer, on_handle_closed);
}

void amqp_link_free(amqp_link *link)
{
    if (!link || link->closing)
        return;
    link->closing = true;
    if (link->depth == 0)
        destroy(link);
}
