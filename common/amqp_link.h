/* amqp_link: one connection to RabbitMQ (rabbitmq-c) driven by a libuv loop.
 *
 * A handle. It connects in the background and keeps reconnecting with capped exponential
 * backoff and jitter. On every (re)connection it opens one channel, puts it in confirm mode,
 * sets basic.qos prefetch, declares the registered queues (durable; when the user may not
 * configure, it falls back to a passive declare and, if the queue is missing, reports which
 * one and retries later), and restores the registered consumers that are not paused.
 *
 * The socket is watched with uv_poll_t; frames are drained without blocking while
 * amqp_frames_enqueued() or amqp_data_in_buffer() is true; heartbeats are driven by a timer.
 * Opening the connection and the login/declare RPCs block for at most connect_timeout_ms in
 * all (each step gets what is left of it: the only blocking calls, made on (re)connect, and
 * for a declare registered while connected).
 *
 * Every delivery carries the connection generation it came on: acks and nacks for an older
 * generation are ignored (the broker already requeued those messages).
 *
 * Parking: a delivery a consumer cannot accept is never dropped. Every consumed queue Q comes
 * with "Q.invalid" (declared with it, durable); amqp_link_park re-publishes such a delivery
 * there with its reason in the x-correctomatic-reason header, and acks the original only once
 * the broker has confirmed the copy. The link parks by itself every delivery larger than
 * max_message_bytes (the consumer never sees it; AMQP_LINK_REJECTED says so). To park it,
 * the link reads such a body anyway, up to max_park_bytes; past that only the first
 * max_park_bytes are kept, and the reason says so (RabbitMQ's own max_message_size, 128 MiB
 * by default, bounds what can exist: set it, as compose does, to keep the two in step).
 *
 * Publishing is persistent (delivery_mode 2), content_type application/json, with the
 * timestamp property (seconds: when published, unless given), mandatory, with
 * publisher confirms: many may be outstanding at once (up to max_unconfirmed); each publish
 * gets exactly one confirm callback: 0 on basic.ack, -EIO on basic.nack or basic.return
 * (unroutable), -ECONNRESET when the connection was lost first, -ECANCELED on amqp_link_free. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <uv.h>

#include "error.h"

typedef struct amqp_link amqp_link;

struct amqp_link_config {
    const char *host;            /* default "localhost"; or a list of nodes, "a,b:5673"
                                    (common/hostlist.h), tried in turn: one after the other
                                    at once, a backoff after a whole round; a connection
                                    lost moves to the next node first */
    int port;                    /* default 5672 */
    const char *user;            /* default "guest" */
    const char *password;        /* default "guest" */
    const char *vhost;           /* default "/" */
    unsigned heartbeat_s;        /* default 30; 0 disables */
    unsigned prefetch;           /* basic.qos prefetch_count; 0 = unlimited; default 16 */
    size_t max_message_bytes;    /* bigger: parked in <queue>.invalid; default 1 MiB */
    size_t max_park_bytes;       /* the most of an oversized body kept to park it; 0 (the
                                    default): max(64 MiB, 16 x max_message_bytes), at most
                                    512 MiB (RabbitMQ's own ceiling) */
    unsigned max_unconfirmed;    /* publishes awaiting confirm; beyond: -ENOBUFS; default 256 */
    uint64_t connect_timeout_ms; /* a connection attempt in all (socket open, login, every
                                    RPC); default 5000 */
    uint64_t reconnect_min_ms;   /* first backoff, default 500 */
    uint64_t reconnect_max_ms;   /* cap, default 30000; also how long a delivery whose
                                    parking the broker refused waits before it is requeued */
    const char *connection_name; /* optional: shown by the broker (management UI) */
    bool quorum;                 /* declare quorum queues (common/qtype.h); default classic */
    unsigned delivery_limit;     /* quorum: x-delivery-limit of the work queues; default 20 */
};
void amqp_link_config_defaults(struct amqp_link_config *cfg);

/* For the command-line tools, which block: opens sock (an amqp_tcp_socket) to the first node of
 * cfg->host that accepts a connection, each within *timeout. 0 with the node ("host:port") in
 * at; or -1 with why in at. */
struct amqp_socket_t_;
int amqp_link_open_socket(struct amqp_socket_t_ *sock, const struct amqp_link_config *cfg,
                          struct timeval *timeout, char *at, size_t atlen);

enum amqp_link_event {
    AMQP_LINK_UP,       /* connected, channel ready, queues declared, consumers restored */
    AMQP_LINK_DOWN,     /* lost (detail says why); unacked deliveries are back in their queues */
    AMQP_LINK_ERROR,    /* a problem that needs an operator (missing queue, bad login); retrying */
    AMQP_LINK_RETRY,    /* a connection attempt failed otherwise (detail says why); retrying */
    AMQP_LINK_REJECTED, /* a delivery was parked before reaching the consumer (too big) */
};
typedef void (*amqp_link_event_cb)(amqp_link *link, enum amqp_link_event ev, const char *detail,
                                   void *userdata);

struct amqp_link_header {
    const char *key;
    const char *str; /* a string value, or NULL for an integer */
    int64_t num;
};

struct amqp_link_delivery {
    uint64_t generation;
    uint64_t delivery_tag;
    bool redelivered;
    const char *queue;      /* the queue of the consumer */
    const char *message_id; /* NULL when the property is absent */
    const void *body;
    size_t body_len;
    const struct amqp_link_header *headers; /* string and integer headers only */
    size_t n_headers;
    uint64_t timestamp; /* the timestamp property (seconds since the epoch), 0 when absent */
};
/* The integer header key of d into *ret: true, else false (absent, or a string). */
bool amqp_link_header_num(const struct amqp_link_delivery *d, const char *key, int64_t *ret);

/* The delivery and everything it points to are valid only during the callback: copy what
 * you keep. Ack or nack later with (generation, delivery_tag). */
typedef void (*amqp_link_deliver_cb)(amqp_link *link, const struct amqp_link_delivery *d,
                                     void *userdata);
typedef void (*amqp_link_confirm_cb)(amqp_link *link, int status, void *userdata);

struct amqp_link_publish_opts {
    const char *message_id;                 /* optional */
    const struct amqp_link_header *headers; /* optional */
    size_t n_headers;
    uint64_t expiration_ms; /* 0: none; else per-message TTL */
    uint64_t timestamp;     /* the timestamp property, seconds since the epoch; 0: now */
};

/* cfg NULL means the defaults. 0 with the link in *ret; or a negative errno with why in err
 * (which may be NULL): -EINVAL for an invalid cfg (max_unconfirmed 0, a port out of range, a
 * host list that is not one, quorum without a delivery limit), -ENOMEM. The strings of cfg
 * are copied. */
int amqp_link_new(uv_loop_t *loop, const struct amqp_link_config *cfg, amqp_link_event_cb on_event,
                  void *userdata, amqp_link **ret, struct ct_error *err);
/* Registration, before or after start; each is (re)applied on every connection.
 * x_args: optional extra declare arguments as headers (e.g. "x-dead-letter-exchange"). */
int amqp_link_declare_queue(amqp_link *link, const char *queue,
                            const struct amqp_link_header *x_args, size_t n_x_args);
/* Consuming queue also declares "<queue>.invalid" (durable, no arguments, unless it was
 * declared already), where deliveries are parked: with a user without configure permission,
 * both must exist. -EINVAL when the name leaves no room for ".invalid" (255 bytes). */
int amqp_link_consume(amqp_link *link, const char *queue, amqp_link_deliver_cb cb, void *userdata);
/* Stop / restart delivering from a registered consumer (basic.cancel / basic.consume).
 * Messages already delivered stay with us until acked or nacked. */
int amqp_link_pause(amqp_link *link, const char *queue);
int amqp_link_resume(amqp_link *link, const char *queue);
/* The basic.qos prefetch of the queue's consumers started from now on (a resume, a
 * reconnection); 0: the configured prefetch. Each consumer is a new one (a tag of its own), so
 * its prefetch counts only what it delivers: a pause then a resume asks for at most prefetch
 * more messages, whatever is still unacked from before. */
int amqp_link_set_prefetch(amqp_link *link, const char *queue, unsigned prefetch);
int amqp_link_start(amqp_link *link);
bool amqp_link_is_up(const amqp_link *link);
uint64_t amqp_link_generation(const amqp_link *link);

/* -ENOTCONN when the link is down (cb not called), -ENOBUFS when too many are unconfirmed,
 * -EINVAL, -ENOMEM; else 0 and cb will be called exactly once. */
int amqp_link_publish(amqp_link *link, const char *queue, const void *body, size_t len,
                      const struct amqp_link_publish_opts *opts, amqp_link_confirm_cb cb,
                      void *userdata);
/* 0; -ESTALE when generation is not the current one (nothing sent); -ENOTCONN. */
int amqp_link_ack(amqp_link *link, uint64_t generation, uint64_t delivery_tag);
int amqp_link_nack(amqp_link *link, uint64_t generation, uint64_t delivery_tag, bool requeue);

/* Parks a delivery the consumer cannot accept (not JSON, unknown shape...): its body and
 * message_id go to "<d->queue>.invalid" with reason (made valid UTF-8, at most 1,000 bytes)
 * in the x-correctomatic-reason header, then the given headers, then the delivery's own string
 * and integer headers (those not set already). The original is acked once the broker confirms
 * the copy; until then it stays unacked, and if the connection is lost first the broker
 * requeues it. When the broker refuses the copy (basic.nack, basic.return) or too many
 * publishes are unconfirmed, the original is requeued after reconnect_max_ms (no busy loop)
 * and AMQP_LINK_ERROR says why.
 * 0: the link owns the delivery now (do not ack or nack it). -ESTALE: d came on an older
 * connection, nothing is done (the broker requeued it already). -ENOTCONN: the link is down
 * (the broker requeues it). -EINVAL, -ENOMEM: nothing done, the delivery is still the
 * caller's. */
int amqp_link_park(amqp_link *link, const struct amqp_link_delivery *d, const char *reason,
                   const struct amqp_link_header *headers, size_t n_headers);

/* Closes the connection cleanly (if up), fails outstanding confirms with -ECANCELED, stops
 * its handles and frees the link once libuv has released them (run the loop afterwards). */
void amqp_link_free(amqp_link *link);
