/* amqp_link against a real RabbitMQ (CT_RABBITMQ_HOST, CT_RABBITMQ_PORT, CT_SERVERS).
 *
 * Each test drives its own loop with uv_run(UV_RUN_ONCE) until a condition holds or a deadline
 * passes; a blocking rabbitmq-c client ("admin", guest) prepares and checks the broker side. */
#include <errno.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <cmocka.h>
#include <uv.h>

#include "amqp_link.h"

static const char *rmq_host, *servers;
static int rmq_port;

/* --- broker-side helpers ------------------------------------------------------------------ */

static amqp_connection_state_t admin_open(void)
{
    amqp_connection_state_t conn = amqp_new_connection();
    assert_non_null(conn);
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    assert_non_null(sock);
    assert_int_equal(amqp_socket_open(sock, rmq_host, rmq_port), AMQP_STATUS_OK);
    amqp_rpc_reply_t r =
        amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
    amqp_channel_open(conn, 1);
    assert_int_equal(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    return conn;
}

static void admin_close(amqp_connection_state_t conn)
{
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

static void admin_declare(const char *q)
{
    amqp_connection_state_t c = admin_open();
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 1, 0, 0, amqp_empty_table);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    admin_close(c);
}

/* Never fails: used in teardown. */
static void admin_delete(const char *q)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    if (amqp_socket_open(sock, rmq_host, rmq_port) == AMQP_STATUS_OK &&
        amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type ==
            AMQP_RESPONSE_NORMAL) {
        amqp_channel_open(c, 1);
        amqp_queue_delete(c, 1, amqp_cstring_bytes(q), 0, 0);
        amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(c);
}

/* Ready messages and consumers of an existing queue. */
static void admin_count(const char *q, uint32_t *ret_msgs, uint32_t *ret_consumers)
{
    amqp_connection_state_t c = admin_open();
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
    assert_non_null(ok);
    *ret_msgs = ok->message_count;
    if (ret_consumers)
        *ret_consumers = ok->consumer_count;
    admin_close(c);
}

static uint32_t admin_ready(const char *q)
{
    uint32_t n;
    admin_count(q, &n, NULL);
    return n;
}

static uint32_t admin_consumers(const char *q)
{
    uint32_t n, consumers;
    admin_count(q, &n, &consumers);
    return consumers;
}

/* With a message_id and one string header when they are not NULL. */
static void admin_publish_ex(const char *q, const void *body, size_t len, const char *message_id,
                             const char *header, const char *value)
{
    amqp_connection_state_t c = admin_open();
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    amqp_table_entry_t entry;
    if (message_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(message_id);
    }
    if (header) {
        entry.key = amqp_cstring_bytes(header);
        entry.value.kind = AMQP_FIELD_KIND_UTF8;
        entry.value.value.bytes = amqp_cstring_bytes(value);
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers = (amqp_table_t){.num_entries = 1, .entries = &entry};
    }
    amqp_confirm_select(c, 1);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    assert_int_equal(
        amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(q), 1, 0, &props, b), 0);
    amqp_frame_t f; /* wait for the confirm */
    assert_int_equal(amqp_simple_wait_frame(c, &f), AMQP_STATUS_OK);
    assert_int_equal(f.frame_type, AMQP_FRAME_METHOD);
    assert_int_equal(f.payload.method.id, AMQP_BASIC_ACK_METHOD);
    admin_close(c);
}

/* A message taken from q (acked): body (malloc'd, NUL added), message_id and string headers
 * (the first 4) copied. */
struct got {
    char *body;
    size_t len;
    char message_id[256];
    char keys[4][64], values[4][1100];
    int n_headers;
};

static bool admin_get(const char *q, struct got *g)
{
    memset(g, 0, sizeof(*g));
    amqp_connection_state_t a = admin_open();
    amqp_rpc_reply_t r = amqp_basic_get(a, 1, amqp_cstring_bytes(q), 1);
    assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
        admin_close(a);
        return false;
    }
    amqp_message_t m;
    assert_int_equal(amqp_read_message(a, 1, &m, 0).reply_type, AMQP_RESPONSE_NORMAL);
    g->len = m.body.len;
    g->body = malloc(m.body.len + 1);
    assert_non_null(g->body);
    memcpy(g->body, m.body.bytes, m.body.len);
    g->body[m.body.len] = '\0';
    if (m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        snprintf(g->message_id, sizeof(g->message_id), "%.*s", (int)m.properties.message_id.len,
                 (const char *)m.properties.message_id.bytes);
    for (int i = 0; i < m.properties.headers.num_entries && g->n_headers < 4; i++) {
        amqp_table_entry_t *e = &m.properties.headers.entries[i];
        if (e->value.kind != AMQP_FIELD_KIND_UTF8)
            continue;
        snprintf(g->keys[g->n_headers], sizeof(g->keys[0]), "%.*s", (int)e->key.len,
                 (const char *)e->key.bytes);
        snprintf(g->values[g->n_headers], sizeof(g->values[0]), "%.*s",
                 (int)e->value.value.bytes.len, (const char *)e->value.value.bytes.bytes);
        g->n_headers++;
    }
    amqp_destroy_message(&m);
    admin_close(a);
    return true;
}

static const char *got_header(const struct got *g, const char *key)
{
    for (int i = 0; i < g->n_headers; i++)
        if (!strcmp(g->keys[i], key))
            return g->values[i];
    return NULL;
}

static void admin_publish(const char *q, const void *body, size_t len)
{
    amqp_connection_state_t c = admin_open();
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    amqp_confirm_select(c, 1);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    assert_int_equal(
        amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(q), 1, 0, &props, b), 0);
    amqp_frame_t f; /* wait for the confirm */
    assert_int_equal(amqp_simple_wait_frame(c, &f), AMQP_STATUS_OK);
    assert_int_equal(f.frame_type, AMQP_FRAME_METHOD);
    assert_int_equal(f.payload.method.id, AMQP_BASIC_ACK_METHOD);
    admin_close(c);
}

static int servers_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int servers_run(const char *fmt, ...)
{
    char args[512], cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null 2>&1", servers, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Queues and users created by a test, removed by its teardown even when it fails. */
static char created_queues[16][128];
static int n_created_queues;
static char created_user[64];
static void proxy_stop(void);
static bool app_stopped; /* a failed outage test must not leave the broker down */

static const char *new_queue(const char *what)
{
    static unsigned counter;
    assert_true(n_created_queues < 16);
    char *q = created_queues[n_created_queues++];
    snprintf(q, 128, "ct-it-amqp-%d-%u-%s", (int)getpid(), counter++, what);
    return q;
}

/* --- loop-side helpers ---------------------------------------------------------------------- */

#define MAX_DELIV 64

struct delivery {
    uint64_t generation, tag;
    bool redelivered;
    char queue[128];
    char body[256];
    size_t len;
    char message_id[64];
    bool has_message_id;
    char work_id[64];
    int64_t attempt;
    size_t n_headers;
};

struct ctx {
    uv_loop_t loop;
    uv_timer_t keepalive;
    amqp_link *link;
    struct amqp_link_config cfg;
    int ups, downs, errors, rejects, retries;
    char last_error[512], last_reject[512], last_down[512], last_retry[512], last_up[512];
    struct delivery deliv[MAX_DELIV];
    int n_deliv;
    bool free_in_deliver;
    bool free_in_confirm;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void on_keepalive(uv_timer_t *t)
{
    (void)t;
}

static void step(struct ctx *c)
{
    uv_run(&c->loop, UV_RUN_ONCE);
}

/* Runs the loop until cond holds, at most ms; asserts it. */
#define WAIT_FOR(c, cond, ms)                                                                      \
    do {                                                                                           \
        uint64_t deadline_ = now_ms() + (ms);                                                      \
        while (!(cond) && now_ms() < deadline_)                                                    \
            step(c);                                                                               \
        assert_true(cond);                                                                         \
    } while (0)

static void on_event(amqp_link *link, enum amqp_link_event ev, const char *detail, void *ud)
{
    struct ctx *c = ud;
    assert_ptr_equal(link, c->link);
    switch (ev) {
    case AMQP_LINK_UP:
        c->ups++;
        snprintf(c->last_up, sizeof(c->last_up), "%s", detail ? detail : "");
        break;
    case AMQP_LINK_DOWN:
        c->downs++;
        snprintf(c->last_down, sizeof(c->last_down), "%s", detail ? detail : "");
        break;
    case AMQP_LINK_ERROR:
        c->errors++;
        snprintf(c->last_error, sizeof(c->last_error), "%s", detail ? detail : "");
        break;
    case AMQP_LINK_RETRY:
        c->retries++;
        snprintf(c->last_retry, sizeof(c->last_retry), "%s", detail ? detail : "");
        break;
    case AMQP_LINK_REJECTED:
        c->rejects++;
        snprintf(c->last_reject, sizeof(c->last_reject), "%s", detail ? detail : "");
        break;
    }
}

static void on_deliver(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    struct ctx *c = ud;
    assert_true(c->n_deliv < MAX_DELIV);
    struct delivery *x = &c->deliv[c->n_deliv++];
    *x = (struct delivery){.generation = d->generation,
                           .tag = d->delivery_tag,
                           .redelivered = d->redelivered,
                           .len = d->body_len,
                           .n_headers = d->n_headers};
    snprintf(x->queue, sizeof(x->queue), "%s", d->queue);
    assert_true(d->body_len < sizeof(x->body));
    memcpy(x->body, d->body, d->body_len);
    if (d->message_id) {
        x->has_message_id = true;
        snprintf(x->message_id, sizeof(x->message_id), "%s", d->message_id);
    }
    for (size_t i = 0; i < d->n_headers; i++) {
        if (!strcmp(d->headers[i].key, "work_id") && d->headers[i].str)
            snprintf(x->work_id, sizeof(x->work_id), "%s", d->headers[i].str);
        if (!strcmp(d->headers[i].key, "attempt") && !d->headers[i].str)
            x->attempt = d->headers[i].num;
    }
    if (c->free_in_deliver) {
        amqp_link_free(link);
        c->link = NULL;
    }
}

/* Confirm statuses: 1 = not called yet; a second call is a failure. */
static int confirm_status[512];
static int confirm_calls[512];
static struct ctx *confirm_ctx;

static void on_confirm(amqp_link *link, int status, void *ud)
{
    int *slot = ud;
    size_t i = (size_t)(slot - confirm_status);
    confirm_calls[i]++;
    *slot = status;
    if (confirm_ctx && confirm_ctx->free_in_confirm && confirm_ctx->link) {
        assert_ptr_equal(link, confirm_ctx->link);
        amqp_link_free(link);
        confirm_ctx->link = NULL;
    }
}

static void reset_confirms(void)
{
    for (size_t i = 0; i < 512; i++) {
        confirm_status[i] = 1;
        confirm_calls[i] = 0;
    }
}

static int count_status(int from, int to, int status)
{
    int n = 0;
    for (int i = from; i < to; i++)
        n += confirm_status[i] == status;
    return n;
}

static int publish(struct ctx *c, const char *q, const char *body, int slot)
{
    return amqp_link_publish(c->link, q, body, strlen(body), NULL, on_confirm,
                             &confirm_status[slot]);
}

static void link_create(struct ctx *c)
{
    struct ct_error err = {0};
    if (amqp_link_new(&c->loop, &c->cfg, on_event, c, &c->link, &err) < 0)
        fail_msg("amqp_link_new: %s", err.msg);
    assert_non_null(c->link);
}

static void link_start_up(struct ctx *c)
{
    assert_int_equal(amqp_link_start(c->link), 0);
    WAIT_FOR(c, c->ups == 1, 10000);
    assert_true(amqp_link_is_up(c->link));
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(uv_timer_init(&c->loop, &c->keepalive), 0);
    assert_int_equal(uv_timer_start(&c->keepalive, on_keepalive, 20, 20), 0);
    amqp_link_config_defaults(&c->cfg);
    c->cfg.host = rmq_host;
    c->cfg.port = rmq_port;
    c->cfg.heartbeat_s = 5;
    c->cfg.max_unconfirmed = 64;
    c->cfg.max_message_bytes = 1024;
    c->cfg.connect_timeout_ms = 3000;
    c->cfg.reconnect_min_ms = 100;
    c->cfg.reconnect_max_ms = 1000;
    reset_confirms();
    confirm_ctx = c;
    n_created_queues = 0;
    created_user[0] = '\0';
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    amqp_link_free(c->link);
    uv_close((uv_handle_t *)&c->keepalive, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(&c->loop);
    confirm_ctx = NULL;
    free(c);
    proxy_stop();
    if (app_stopped && servers_run("rabbitmq-start-app") == 0 &&
        servers_run("rabbitmqctl set_vm_memory_high_watermark 0.4") == 0)
        app_stopped = false;
    for (int i = 0; i < n_created_queues; i++) {
        char invalid[160];
        snprintf(invalid, sizeof(invalid), "%.127s.invalid", created_queues[i]);
        admin_delete(created_queues[i]);
        admin_delete(invalid); /* declared by the link for every consumed queue */
    }
    if (created_user[0])
        servers_run("rabbitmqctl delete_user '%s'", created_user);
    return r == 0 ? 0 : -1;
}

/* Frees the link and runs the loop until its handles are released. */
static void link_free(struct ctx *c)
{
    amqp_link_free(c->link);
    c->link = NULL;
    for (int i = 0; i < 10; i++)
        uv_run(&c->loop, UV_RUN_NOWAIT);
}

/* --- tests -------------------------------------------------------------------------------- */

static void test_publish_confirm_consume_ack(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("basic");
    struct amqp_link_header x_args[] = {{.key = "x-max-length", .num = 1000}};
    struct amqp_link_header headers[] = {{.key = "work_id", .str = "w-42"},
                                         {.key = "attempt", .num = 3}};
    struct amqp_link_publish_opts opts = {
        .message_id = "m-1", .headers = headers, .n_headers = 2, .expiration_ms = 60000};

    link_create(c);
    assert_int_equal(amqp_link_publish(c->link, q, "{}", 2, NULL, on_confirm, &confirm_status[0]),
                     -ENOTCONN);
    assert_int_equal(amqp_link_declare_queue(c->link, q, x_args, 1), 0);
    link_start_up(c);
    assert_int_equal(amqp_link_generation(c->link), 1);

    /* the first message is checked by the admin client, the second consumed by the link */
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            amqp_link_publish(c->link, q, "{\"n\":1}", 7, &opts, on_confirm, &confirm_status[i]),
            0);
    WAIT_FOR(c, confirm_status[0] != 1 && confirm_status[1] != 1, 5000);
    assert_int_equal(confirm_status[0], 0);
    assert_int_equal(confirm_status[1], 0);

    amqp_connection_state_t a = admin_open();
    amqp_rpc_reply_t r = amqp_basic_get(a, 1, amqp_cstring_bytes(q), 1);
    assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
    assert_int_equal(r.reply.id, AMQP_BASIC_GET_OK_METHOD);
    amqp_message_t m;
    assert_int_equal(amqp_read_message(a, 1, &m, 0).reply_type, AMQP_RESPONSE_NORMAL);
    assert_true(m.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
    assert_memory_equal(m.properties.content_type.bytes, "application/json", 16);
    assert_int_equal(m.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
    assert_true(m.properties._flags & AMQP_BASIC_EXPIRATION_FLAG);
    assert_int_equal(m.properties.expiration.len, 5);
    assert_memory_equal(m.properties.expiration.bytes, "60000", 5);
    assert_int_equal(m.properties.headers.num_entries, 2);
    amqp_destroy_message(&m);
    admin_close(a);

    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), -EEXIST);
    WAIT_FOR(c, c->n_deliv == 1, 5000);
    struct delivery *d = &c->deliv[0];
    assert_int_equal(d->len, 7);
    assert_memory_equal(d->body, "{\"n\":1}", 7);
    assert_string_equal(d->queue, q);
    assert_true(d->has_message_id);
    assert_string_equal(d->message_id, "m-1");
    assert_string_equal(d->work_id, "w-42");
    assert_int_equal(d->attempt, 3);
    assert_int_equal(d->n_headers, 2);
    assert_false(d->redelivered);
    assert_int_equal(d->generation, 1);
    assert_int_equal(amqp_link_ack(c->link, d->generation, d->tag), 0);

    /* acked: nothing comes back to the queue when the link goes away */
    link_free(c);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    assert_int_equal(admin_ready(q), 0);
    assert_int_equal(c->downs, 0);
    assert_int_equal(c->errors, 0);
}

static void test_confirm_window(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("window");
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    link_start_up(c);

    /* the whole window outstanding at once, then refused */
    for (int i = 0; i < 64; i++)
        assert_int_equal(publish(c, q, "{\"w\":1}", i), 0);
    assert_int_equal(publish(c, q, "{\"w\":1}", 64), -ENOBUFS);
    assert_int_equal(confirm_calls[64], 0);
    WAIT_FOR(c, count_status(0, 64, 1) == 0, 10000);
    assert_int_equal(count_status(0, 64, 0), 64);

    /* a stream bigger than the window, publishing as confirms free room */
    for (int i = 64; i < 400;) {
        int r = publish(c, q, "{\"w\":2}", i);
        if (r == -ENOBUFS) {
            step(c);
            continue;
        }
        assert_int_equal(r, 0);
        i++;
    }
    WAIT_FOR(c, count_status(64, 400, 1) == 0, 20000);
    assert_int_equal(count_status(64, 400, 0), 400 - 64);
    for (int i = 0; i < 400; i++)
        assert_int_equal(confirm_calls[i], 1);
    assert_int_equal(admin_ready(q), 400);
}

static void test_unroutable_publish_fails(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("routable");
    const char *missing = new_queue("missing"); /* never declared */
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    link_start_up(c);
    assert_int_equal(publish(c, missing, "{}", 0), 0);
    assert_int_equal(publish(c, q, "{}", 1), 0);
    assert_int_equal(publish(c, missing, "{}", 2), 0);
    assert_int_equal(publish(c, q, "{}", 3), 0);
    WAIT_FOR(c, count_status(0, 4, 1) == 0, 5000);
    assert_int_equal(confirm_status[0], -EIO);
    assert_int_equal(confirm_status[1], 0);
    assert_int_equal(confirm_status[2], -EIO);
    assert_int_equal(confirm_status[3], 0);
    assert_true(amqp_link_is_up(c->link));
    assert_int_equal(admin_ready(q), 2);
}

static void test_nack_requeue_redelivers(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("nack");
    admin_declare(q);
    admin_publish(q, "{\"job\":7}", 9);
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    link_start_up(c);
    WAIT_FOR(c, c->n_deliv == 1, 5000);
    assert_false(c->deliv[0].redelivered);
    assert_false(c->deliv[0].has_message_id);
    assert_int_equal(amqp_link_nack(c->link, c->deliv[0].generation, c->deliv[0].tag, true), 0);
    WAIT_FOR(c, c->n_deliv == 2, 5000);
    assert_true(c->deliv[1].redelivered);
    assert_int_equal(c->deliv[1].len, 9);
    assert_memory_equal(c->deliv[1].body, "{\"job\":7}", 9);
    assert_int_equal(amqp_link_ack(c->link, c->deliv[1].generation, c->deliv[1].tag), 0);
    link_free(c);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    assert_int_equal(admin_ready(q), 0);
}

/* QUEUE_TYPE=quorum (common/qtype.h): the queues are quorum queues; a message returned more
 * than the delivery limit is dead-lettered to <queue>.invalid by the broker, with its reason;
 * a retry queue's TTL and dead-lettering (the notifier's) work on quorum queues. */
static void test_quorum_queues(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("quorum");
    const char *retry = new_queue("quorum-retry");
    c->cfg.quorum = true;
    c->cfg.delivery_limit = 2;
    link_create(c);
    struct amqp_link_header retry_args[] = {{.key = "x-message-ttl", .num = 300},
                                            {.key = "x-dead-letter-exchange", .str = ""},
                                            {.key = "x-dead-letter-routing-key", .str = q}};
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    assert_int_equal(amqp_link_declare_queue(c->link, retry, retry_args, 3), 0);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    link_start_up(c);

    /* A quorum queue: a classic declare of the same name is refused. */
    amqp_connection_state_t a = admin_open();
    amqp_queue_declare(a, 1, amqp_cstring_bytes(q), 0, 1, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t rr = amqp_get_rpc_reply(a);
    assert_int_equal(rr.reply_type, AMQP_RESPONSE_SERVER_EXCEPTION);
    assert_int_equal(rr.reply.id, AMQP_CHANNEL_CLOSE_METHOD);
    amqp_channel_close_t *cc = rr.reply.decoded;
    assert_int_equal(cc->reply_code, AMQP_PRECONDITION_FAILED);
    print_message("note: a classic declare of the quorum queue: %.*s\n", (int)cc->reply_text.len,
                  (const char *)cc->reply_text.bytes);
    amqp_connection_close(a, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(a);

    /* A message that keeps coming back: delivered, returned, ... then parked by the broker. */
    assert_int_equal(publish(c, q, "{\"poison\":1}", 0), 0);
    char invalid[160];
    snprintf(invalid, sizeof(invalid), "%s.invalid", q);
    int deliveries = 0;
    while (admin_ready(invalid) == 0) {
        WAIT_FOR(c, c->n_deliv == deliveries + 1 || admin_ready(invalid) == 1, 10000);
        if (c->n_deliv == deliveries + 1) {
            struct delivery *d = &c->deliv[deliveries++];
            assert_memory_equal(d->body, "{\"poison\":1}", 12);
            assert_int_equal(amqp_link_nack(c->link, d->generation, d->tag, true), 0);
        }
        assert_true(deliveries <= 10);
    }
    print_message("note: delivered %d time(s) before it was dead-lettered (limit 2)\n", deliveries);
    assert_int_equal(deliveries, 3); /* returned more than twice */
    struct got g;
    assert_true(admin_get(invalid, &g));
    assert_string_equal(g.body, "{\"poison\":1}");
    const char *why = got_header(&g, "x-first-death-reason");
    assert_non_null(why);
    assert_string_equal(why, "delivery_limit");
    free(g.body);
    assert_int_equal(admin_ready(q), 0);

    /* A retry queue on quorum: its TTL ends and the message is back in q. */
    assert_int_equal(publish(c, retry, "{\"later\":1}", 1), 0);
    WAIT_FOR(c, c->n_deliv == deliveries + 1, 10000);
    struct delivery *d = &c->deliv[deliveries];
    assert_memory_equal(d->body, "{\"later\":1}", 11);
    assert_int_equal(amqp_link_ack(c->link, d->generation, d->tag), 0);
    link_free(c);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    assert_int_equal(admin_ready(q), 0);
    assert_int_equal(admin_ready(retry), 0);
}

/* A queue that exists with other arguments (a classic queue when QUEUE_TYPE=quorum, an
 * earlier version's arguments): the broker refuses the declare and never changes the queue;
 * the link uses it as it is (passively) and says so once up, for the operator. */
static void test_existing_queue_other_arguments(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("mismatch");
    admin_declare(q); /* classic, no arguments */
    c->cfg.quorum = true;
    link_create(c);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    link_start_up(c);
    WAIT_FOR(c, c->errors == 1, 5000);
    print_message("note: %s\n", c->last_error);
    assert_non_null(strstr(c->last_error, "used as it is"));
    assert_non_null(strstr(c->last_error, q));
    assert_non_null(strstr(c->last_error, "PRECONDITION_FAILED"));
    /* and it works: a message through it */
    admin_publish(q, "{\"x\":1}", 7);
    WAIT_FOR(c, c->n_deliv == 1, 5000);
    assert_int_equal(amqp_link_ack(c->link, c->deliv[0].generation, c->deliv[0].tag), 0);
    link_free(c);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    assert_int_equal(admin_ready(q), 0);
}

static void test_stale_generation(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("stale");
    admin_declare(q);
    admin_publish(q, "{}", 2);
    link_create(c);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    link_start_up(c);
    WAIT_FOR(c, c->n_deliv == 1, 5000);
    uint64_t gen = c->deliv[0].generation;
    assert_int_equal(amqp_link_ack(c->link, gen + 1, c->deliv[0].tag), -ESTALE);
    assert_int_equal(amqp_link_ack(c->link, gen - 1, c->deliv[0].tag), -ESTALE);
    assert_int_equal(amqp_link_nack(c->link, gen + 7, c->deliv[0].tag, true), -ESTALE);
    /* nothing was sent: the channel is still usable and the message still ours */
    assert_int_equal(amqp_link_ack(c->link, gen, c->deliv[0].tag), 0);
    assert_int_equal(publish(c, q, "{}", 0), 0);
    WAIT_FOR(c, confirm_status[0] != 1, 5000);
    assert_int_equal(confirm_status[0], 0);
    WAIT_FOR(c, c->n_deliv == 2, 5000);
    assert_int_equal(c->downs, 0);
}

static void test_pause_resume(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("pause");
    admin_declare(q);
    link_create(c);
    assert_int_equal(amqp_link_pause(c->link, q), -ENOENT);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    link_start_up(c);
    admin_publish(q, "{\"a\":1}", 7);
    WAIT_FOR(c, c->n_deliv == 1, 5000);
    assert_int_equal(amqp_link_ack(c->link, c->deliv[0].generation, c->deliv[0].tag), 0);

    assert_int_equal(amqp_link_pause(c->link, q), 0);
    assert_int_equal(amqp_link_pause(c->link, q), 0);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    admin_publish(q, "{\"b\":2}", 7);
    /* the message stays ready in the queue while the loop keeps running */
    for (int i = 0; i < 5; i++)
        WAIT_FOR(c, admin_ready(q) == 1, 5000);
    assert_int_equal(c->n_deliv, 1);

    assert_int_equal(amqp_link_resume(c->link, q), 0);
    WAIT_FOR(c, c->n_deliv == 2, 5000);
    assert_memory_equal(c->deliv[1].body, "{\"b\":2}", 7);
    assert_int_equal(amqp_link_ack(c->link, c->deliv[1].generation, c->deliv[1].tag), 0);
    assert_int_equal(admin_consumers(q), 1);

    assert_int_equal(c->downs, 0);
}

static char *invalid_of(const char *q)
{
    static char name[160];
    snprintf(name, sizeof(name), "%s.invalid", q);
    return name;
}

/* Confirms come in publish order: once a later publish is confirmed, the link has handled the
 * confirms of its parked copies (and acked their originals). */
static void sync_confirms(struct ctx *c, int slot)
{
    const char *probe = new_queue("probe");
    admin_declare(probe);
    assert_int_equal(publish(c, probe, "{}", slot), 0);
    WAIT_FOR(c, confirm_status[slot] == 0, 5000);
}

/* Over max_message_bytes: never dropped, parked whole in <queue>.invalid with its reason,
 * message_id and headers, without reaching the consumer; past max_park_bytes, its first bytes
 * are parked and the reason says so. */
static void test_oversized_message_parked(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("big");
    static char big[2000], huge[300000];
    memset(big, 'x', sizeof(big));
    for (size_t i = 0; i < sizeof(huge); i++)
        huge[i] = (char)('a' + i % 26);
    admin_declare(q);
    admin_publish_ex(q, big, sizeof(big), "m-big", "work_id", "w-big");
    admin_publish(q, "{\"small\":1}", 11);
    admin_publish_ex(q, huge, sizeof(huge), NULL, NULL, NULL);
    c->cfg.max_park_bytes = 150000;
    link_create(c);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    link_start_up(c);
    WAIT_FOR(c, c->rejects == 2 && c->n_deliv == 1, 5000);
    assert_non_null(strstr(c->last_reject, q));
    assert_non_null(strstr(c->last_reject, "300000"));
    assert_non_null(strstr(c->last_reject, "parked in"));
    assert_memory_equal(c->deliv[0].body, "{\"small\":1}", 11);
    assert_int_equal(amqp_link_ack(c->link, c->deliv[0].generation, c->deliv[0].tag), 0);
    /* both parked, and the originals acked once their copies were confirmed */
    WAIT_FOR(c, admin_ready(invalid_of(q)) == 2, 5000);
    sync_confirms(c, 0);
    link_free(c);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    assert_int_equal(admin_ready(q), 0);
    assert_int_equal(c->downs, 0);
    assert_int_equal(c->errors, 0);

    struct got g;
    assert_true(admin_get(invalid_of(q), &g));
    assert_int_equal(g.len, sizeof(big));
    assert_memory_equal(g.body, big, sizeof(big));
    assert_string_equal(g.message_id, "m-big");
    assert_string_equal(got_header(&g, "x-correctomatic-reason"),
                        "message too large - 2000 bytes, more than the 1024 accepted");
    assert_string_equal(got_header(&g, "work_id"), "w-big");
    free(g.body);
    assert_true(admin_get(invalid_of(q), &g));
    assert_int_equal(g.len, 150000);
    assert_memory_equal(g.body, huge, 150000);
    assert_string_equal(got_header(&g, "x-correctomatic-reason"),
                        "message too large - 300000 bytes, more than the 1024 accepted; only its "
                        "first 150000 bytes are kept here");
    free(g.body);
}

static struct park_ctx {
    const char *reason;
    int results[8];
    int n;
} park_ctx;

static void on_deliver_park(amqp_link *link, const struct amqp_link_delivery *d, void *ud)
{
    on_deliver(link, d, ud);
    struct amqp_link_header h[] = {{.key = "x-extra", .str = "yes"},
                                   {.key = "x-correctomatic-reason", .str = "not this one"}};
    park_ctx.results[park_ctx.n++ % 8] = amqp_link_park(link, d, park_ctx.reason, h, 2);
}

/* A consumer parks what it cannot accept: the copy in <queue>.invalid with the reason and the
 * headers, the original acked; a delivery of an older connection is not parked. */
static void test_park(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("park");
    admin_declare(q);
    admin_publish_ex(q, "not json", 8, "m-park", "work_id", "w-park");
    /* a reason cut in the middle of a character is made valid UTF-8 */
    park_ctx = (struct park_ctx){.reason = "invalid message - not valid JSON \xc3"};
    link_create(c);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver_park, c), 0);
    link_start_up(c);
    WAIT_FOR(c, admin_ready(invalid_of(q)) == 1, 5000);
    assert_int_equal(park_ctx.n, 1);
    assert_int_equal(park_ctx.results[0], 0);
    struct amqp_link_delivery stale = {.generation = c->deliv[0].generation - 1,
                                       .delivery_tag = c->deliv[0].tag,
                                       .queue = q,
                                       .body = "x",
                                       .body_len = 1};
    assert_int_equal(amqp_link_park(c->link, &stale, "why", NULL, 0), -ESTALE);
    sync_confirms(c, 0);
    link_free(c);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    assert_int_equal(admin_ready(q), 0); /* acked */
    struct got g;
    assert_true(admin_get(invalid_of(q), &g));
    assert_int_equal(g.len, 8);
    assert_memory_equal(g.body, "not json", 8);
    assert_string_equal(g.message_id, "m-park");
    assert_string_equal(got_header(&g, "x-correctomatic-reason"),
                        "invalid message - not valid JSON \xef\xbf\xbd");
    assert_string_equal(got_header(&g, "x-extra"), "yes");
    assert_string_equal(got_header(&g, "work_id"), "w-park");
    assert_int_equal(g.n_headers, 3);
    free(g.body);
    assert_int_equal(admin_ready(invalid_of(q)), 0);
    assert_int_equal(c->errors, 0);
}

/* When the broker refuses the copy (here: <queue>.invalid deleted behind the link's back), the
 * original is not lost: it goes back to its queue after reconnect_max_ms, not in a busy loop. */
static void test_park_refused_requeues_later(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("park-refused");
    admin_declare(q);
    park_ctx = (struct park_ctx){.reason = "invalid message - refused"};
    link_create(c);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver_park, c), 0);
    link_start_up(c);
    admin_delete(invalid_of(q));
    admin_publish(q, "{\"p\":1}", 7);
    WAIT_FOR(c, c->errors == 1, 5000);
    assert_non_null(strstr(c->last_error, "cannot park a message in"));
    assert_non_null(strstr(c->last_error, invalid_of(q)));
    uint64_t refused_at = now_ms();
    WAIT_FOR(c, c->n_deliv == 2, 5000);
    assert_true(now_ms() - refused_at >= 800); /* reconnect_max_ms is 1000 */
    assert_true(c->deliv[1].redelivered);
    assert_memory_equal(c->deliv[1].body, "{\"p\":1}", 7);
    /* once the queue is back, the next attempt parks it */
    admin_declare(invalid_of(q));
    WAIT_FOR(c, admin_ready(invalid_of(q)) == 1, 5000);
    sync_confirms(c, 0);
    link_free(c);
    WAIT_FOR(c, admin_consumers(q) == 0, 5000);
    assert_int_equal(admin_ready(q), 0);
    assert_int_equal(c->downs, 0);
}

static void test_broker_outage_reconnects(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("outage");
    const char *paused = new_queue("outage-paused");
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    assert_int_equal(amqp_link_declare_queue(c->link, paused, NULL, 0), 0);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    assert_int_equal(amqp_link_consume(c->link, paused, on_deliver, c), 0);
    assert_int_equal(amqp_link_pause(c->link, paused), 0);
    link_start_up(c);
    assert_int_equal(admin_consumers(paused), 0);

    assert_int_equal(publish(c, q, "{\"before\":1}", 0), 0);
    WAIT_FOR(c, c->n_deliv == 1 && confirm_status[0] == 0, 5000);
    struct delivery first = c->deliv[0]; /* left unacked: back in the queue after the outage */

    /* a memory alarm makes the broker stop reading publishes: their confirms are pending
     * when the broker goes away */
    app_stopped = true;
    assert_int_equal(servers_run("rabbitmqctl set_vm_memory_high_watermark 0"), 0);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(publish(c, q, "{\"lost\":1}", i), 0);
    assert_int_equal(servers_run("rabbitmq-stop-app"), 0);
    WAIT_FOR(c, c->downs == 1, 10000);
    assert_false(amqp_link_is_up(c->link));
    for (int i = 1; i <= 5; i++)
        assert_int_equal(confirm_calls[i], 1);
    assert_int_equal(count_status(1, 6, 0) + count_status(1, 6, -ECONNRESET), 5);
    assert_true(count_status(1, 6, -ECONNRESET) >= 1);
    assert_int_equal(publish(c, q, "{}", 10), -ENOTCONN);
    assert_int_equal(amqp_link_ack(c->link, first.generation, first.tag), -ENOTCONN);

    assert_int_equal(servers_run("rabbitmq-start-app"), 0);
    assert_int_equal(servers_run("rabbitmqctl set_vm_memory_high_watermark 0.4"), 0);
    app_stopped = false;
    WAIT_FOR(c, c->ups == 2, 30000);
    assert_true(amqp_link_is_up(c->link));
    assert_int_equal(amqp_link_generation(c->link), first.generation + 1);
    assert_int_equal(amqp_link_ack(c->link, first.generation, first.tag), -ESTALE);

    /* the unacked message comes back, redelivered, on the new generation */
    WAIT_FOR(c, c->n_deliv >= 2, 10000);
    struct delivery *again = &c->deliv[1];
    assert_memory_equal(again->body, "{\"before\":1}", 12);
    assert_true(again->redelivered);
    assert_int_equal(again->generation, first.generation + 1);
    assert_int_equal(amqp_link_ack(c->link, again->generation, again->tag), 0);

    /* consuming and publishing continue; the paused consumer stayed paused */
    int before = c->n_deliv;
    assert_int_equal(publish(c, q, "{\"after\":1}", 11), 0);
    WAIT_FOR(c, confirm_status[11] == 0 && c->n_deliv == before + 1, 10000);
    assert_memory_equal(c->deliv[before].body, "{\"after\":1}", 11);
    assert_int_equal(admin_consumers(paused), 0);
    assert_int_equal(admin_consumers(q), 1);
}

static void test_passive_fallback_without_configure_permission(void **state)
{
    struct ctx *c = *state;
    const char *existing = new_queue("existing");
    const char *missing = new_queue("absent");
    snprintf(created_user, sizeof(created_user), "ct-it-amqp-%d", (int)getpid());
    admin_declare(existing);
    admin_declare(invalid_of(existing)); /* consuming needs it too */
    assert_int_equal(servers_run("rabbitmqctl add_user '%s' secret", created_user), 0);
    assert_int_equal(
        servers_run("rabbitmqctl set_permissions -p / '%s' '' '.*' '.*'", created_user), 0);
    admin_publish(existing, "{\"p\":1}", 7);

    c->cfg.user = created_user;
    c->cfg.password = "secret";
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, existing, NULL, 0), 0);
    assert_int_equal(amqp_link_consume(c->link, existing, on_deliver, c), 0);
    link_start_up(c);
    WAIT_FOR(c, c->n_deliv == 1, 5000);
    assert_int_equal(amqp_link_ack(c->link, c->deliv[0].generation, c->deliv[0].tag), 0);
    assert_int_equal(publish(c, existing, "{}", 0), 0);
    WAIT_FOR(c, confirm_status[0] == 0, 5000);
    assert_int_equal(c->errors, 0);
    link_free(c);

    /* a missing queue is reported by name, and retried */
    c->ups = 0;
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, existing, NULL, 0), 0);
    assert_int_equal(amqp_link_declare_queue(c->link, missing, NULL, 0), 0);
    assert_int_equal(amqp_link_start(c->link), 0);
    WAIT_FOR(c, c->errors >= 2, 10000);
    assert_non_null(strstr(c->last_error, missing));
    assert_int_equal(c->ups, 0);
    assert_false(amqp_link_is_up(c->link));

    /* once an operator creates it, the link comes up by itself */
    admin_declare(missing);
    WAIT_FOR(c, c->ups == 1, 10000);
}

static void test_bad_login_reported(void **state)
{
    struct ctx *c = *state;
    c->cfg.password = "wrong-password";
    link_create(c);
    assert_int_equal(amqp_link_start(c->link), 0);
    WAIT_FOR(c, c->errors >= 1, 10000);
    assert_non_null(strstr(c->last_error, "login"));
    assert_int_equal(c->ups, 0);
}

static void test_free_inside_callbacks(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("free");
    admin_declare(q);

    /* from a confirm callback, with more confirms outstanding */
    link_create(c);
    link_start_up(c);
    c->free_in_confirm = true;
    for (int i = 0; i < 5; i++)
        assert_int_equal(publish(c, q, "{}", i), 0);
    WAIT_FOR(c, count_status(0, 5, 1) == 0, 5000);
    assert_null(c->link);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(confirm_calls[i], 1);
        assert_true(confirm_status[i] == 0 || confirm_status[i] == -ECANCELED);
    }
    c->free_in_confirm = false;

    /* from a delivery callback, with more deliveries buffered */
    c->ups = 0;
    link_create(c);
    assert_int_equal(amqp_link_consume(c->link, q, on_deliver, c), 0);
    c->free_in_deliver = true;
    assert_int_equal(amqp_link_start(c->link), 0);
    WAIT_FOR(c, c->link == NULL, 5000);
    assert_int_equal(c->ups, 1);
    assert_int_equal(c->n_deliv, 1);
    /* all five reached the queue; unacked, they are all back there */
    WAIT_FOR(c, admin_ready(q) == 5, 5000);
}

/* --- a TCP proxy, on its own loop and thread (the link blocks its loop while connecting),
 * that can freeze its connections: a peer that stops answering without closing; or slow
 * down the broker: everything it sends is held delay_ms ---------------------------------- */

enum { PROXY_FREEZE = 1, PROXY_STOP, PROXY_RESET };

struct proxy_pair {
    uv_tcp_t side[2]; /* 0: from the link, 1: to the broker */
    uv_connect_t connect;
    bool closing;
};

static struct proxy {
    bool running;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t async;
    uv_sem_t done;
    atomic_int cmd;
    uv_tcp_t listener;
    int port;
    struct proxy_pair pairs[8];
    int n_pairs;
    uint64_t delay_ms; /* from the broker to the link */
} proxy;

struct proxy_write {
    uv_write_t req;
    uv_buf_t buf;
};

static void proxy_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(size);
    buf->len = buf->base ? size : 0;
}

static void proxy_pair_close(struct proxy_pair *pp)
{
    if (pp->closing)
        return;
    pp->closing = true;
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&pp->side[i], NULL);
}

static void proxy_written(uv_write_t *req, int status)
{
    struct proxy_write *w = (struct proxy_write *)req;
    (void)status;
    free(w->buf.base);
    free(w);
}

static void proxy_forward(struct proxy_pair *pp, uv_stream_t *to, struct proxy_write *w)
{
    if (pp->closing || uv_write(&w->req, to, &w->buf, 1, proxy_written) < 0) {
        free(w->buf.base);
        free(w);
        proxy_pair_close(pp);
    }
}

struct proxy_delayed {
    uv_timer_t timer;
    struct proxy_pair *pp;
    struct proxy_write *w;
};

static void proxy_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Timers of one delay fire in the order they were started: the bytes keep their order. */
static void proxy_delayed_due(uv_timer_t *t)
{
    struct proxy_delayed *d = t->data;
    proxy_forward(d->pp, (uv_stream_t *)&d->pp->side[0], d->w);
    uv_close((uv_handle_t *)t, proxy_delayed_closed);
}

static void proxy_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct proxy_pair *pp = s->data;
    bool from_broker = s == (uv_stream_t *)&pp->side[1];
    uv_stream_t *other = (uv_stream_t *)&pp->side[from_broker ? 0 : 1];
    struct proxy_write *w = n > 0 ? malloc(sizeof(*w)) : NULL;
    if (!w) {
        free(buf->base);
        if (n != 0)
            proxy_pair_close(pp);
        return;
    }
    w->buf = uv_buf_init(buf->base, (unsigned)n);
    struct proxy_delayed *d = from_broker && proxy.delay_ms ? malloc(sizeof(*d)) : NULL;
    if (d) {
        d->pp = pp;
        d->w = w;
        d->timer.data = d;
        uv_timer_init(s->loop, &d->timer);
        uv_timer_start(&d->timer, proxy_delayed_due, proxy.delay_ms, 0);
        return;
    }
    proxy_forward(pp, other, w);
}

static void proxy_connected(uv_connect_t *req, int status)
{
    struct proxy_pair *pp = req->data;
    if (status < 0 || pp->closing) {
        proxy_pair_close(pp);
        return;
    }
    for (int i = 0; i < 2; i++)
        uv_read_start((uv_stream_t *)&pp->side[i], proxy_alloc, proxy_read);
}

static void proxy_accept(uv_stream_t *server, int status)
{
    struct sockaddr_in addr;
    if (status < 0 || proxy.n_pairs == 8)
        return;
    struct proxy_pair *pp = &proxy.pairs[proxy.n_pairs++];
    for (int i = 0; i < 2; i++) {
        uv_tcp_init(server->loop, &pp->side[i]);
        pp->side[i].data = pp;
    }
    pp->connect.data = pp;
    if (uv_accept(server, (uv_stream_t *)&pp->side[0]) < 0 ||
        uv_ip4_addr(rmq_host, rmq_port, &addr) < 0 ||
        uv_tcp_connect(&pp->connect, &pp->side[1], (struct sockaddr *)&addr, proxy_connected) < 0)
        proxy_pair_close(pp);
}

static void proxy_command(uv_async_t *a)
{
    int cmd = atomic_exchange(&proxy.cmd, 0);
    for (int i = 0; i < proxy.n_pairs; i++) {
        struct proxy_pair *pp = &proxy.pairs[i];
        if (cmd == PROXY_RESET && !pp->closing) {
            /* an RST to the link: a socket error on its side */
            pp->closing = true;
            uv_tcp_close_reset(&pp->side[0], NULL);
            uv_close((uv_handle_t *)&pp->side[1], NULL);
        }
        if (cmd == PROXY_STOP)
            proxy_pair_close(pp);
        for (int j = 0; cmd == PROXY_FREEZE && j < 2 && !proxy.pairs[i].closing; j++)
            uv_read_stop((uv_stream_t *)&proxy.pairs[i].side[j]);
    }
    if (cmd == PROXY_STOP) {
        uv_close((uv_handle_t *)&proxy.listener, NULL);
        uv_close((uv_handle_t *)a, NULL);
    }
    uv_sem_post(&proxy.done);
}

static void proxy_thread(void *arg)
{
    (void)arg;
    uv_run(&proxy.loop, UV_RUN_DEFAULT);
}

static int proxy_start_delayed(uint64_t delay_ms)
{
    struct sockaddr_in addr;
    int len = sizeof(addr);
    memset(&proxy, 0, sizeof(proxy));
    proxy.delay_ms = delay_ms;
    assert_int_equal(uv_loop_init(&proxy.loop), 0);
    assert_int_equal(uv_sem_init(&proxy.done, 0), 0);
    assert_int_equal(uv_async_init(&proxy.loop, &proxy.async, proxy_command), 0);
    assert_int_equal(uv_tcp_init(&proxy.loop, &proxy.listener), 0);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&proxy.listener, (struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&proxy.listener, 8, proxy_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&proxy.listener, (struct sockaddr *)&addr, &len), 0);
    proxy.port = ntohs(addr.sin_port);
    assert_int_equal(uv_thread_create(&proxy.thread, proxy_thread, NULL), 0);
    proxy.running = true;
    return proxy.port;
}

static int proxy_start(void)
{
    return proxy_start_delayed(0);
}

static void proxy_send(int cmd)
{
    atomic_store(&proxy.cmd, cmd);
    uv_async_send(&proxy.async);
    uv_sem_wait(&proxy.done);
}

/* Never fails: used in teardown. */
static void proxy_stop(void)
{
    if (!proxy.running)
        return;
    proxy.running = false;
    proxy_send(PROXY_STOP);
    uv_thread_join(&proxy.thread);
    uv_loop_close(&proxy.loop);
    uv_sem_destroy(&proxy.done);
}

static void test_dead_peer_detected_by_heartbeat(void **state)
{
    struct ctx *c = *state;
    c->cfg.port = proxy_start();
    c->cfg.heartbeat_s = 1;
    link_create(c);
    link_start_up(c);
    /* heartbeats keep an idle link up: several intervals pass without a loss */
    uint64_t until = now_ms() + 3500;
    WAIT_FOR(c, now_ms() >= until || c->downs > 0, 5000);
    assert_int_equal(c->downs, 0);

    proxy_send(PROXY_FREEZE);
    uint64_t frozen_at = now_ms();
    WAIT_FOR(c, c->downs == 1, 6000);
    assert_true(now_ms() - frozen_at >= 1500);
    assert_non_null(strstr(c->last_down, "heartbeat"));
    WAIT_FOR(c, c->ups == 2, 10000); /* a new connection through the proxy works */
    link_free(c);
    proxy_stop();
}

/* A connection reset is reported as such, not as libuv's "bad file descriptor" for POLLERR. */
static void test_socket_error_logged(void **state)
{
    struct ctx *c = *state;
    c->cfg.port = proxy_start();
    link_create(c);
    link_start_up(c);
    proxy_send(PROXY_RESET);
    WAIT_FOR(c, c->downs == 1, 5000);
    if (!strstr(c->last_down, "Connection reset by peer"))
        fail_msg("lost with '%s'", c->last_down);
    WAIT_FOR(c, c->ups == 2, 10000);
    link_free(c);
    proxy_stop();
}

/* A broker that answers every step of the connection, each well within connect_timeout_ms,
 * but all of them together not: the attempt as a whole is bounded (it blocks the loop), and
 * fails. With time enough for the whole, the same slow broker is connected. */
static void test_slow_broker_bounded_in_all(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("slow");
    c->cfg.port = proxy_start_delayed(300); /* login alone is 3 answers, the link 7 or more */
    c->cfg.connect_timeout_ms = 1000;
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    assert_int_equal(amqp_link_start(c->link), 0);
    WAIT_FOR(c, c->retries >= 1, 30000);
    assert_int_equal(c->ups, 0);
    assert_true(c->last_retry[0] != '\0');
    link_free(c);

    c->cfg.connect_timeout_ms = 30000;
    c->retries = 0;
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    assert_int_equal(amqp_link_start(c->link), 0);
    WAIT_FOR(c, c->ups == 1, 60000);
    assert_int_equal(c->retries, 0);
    link_free(c);
    proxy_stop();
}

/* A listening socket that never accepts: the kernel completes the TCP handshake, and the
 * AMQP handshake then waits forever (a half-alive broker). */
static int stalled_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* RABBITMQ_HOST as a list of nodes: a node that stalls after TCP (bounded by
 * connect_timeout_ms) and one that refuses are passed over, at once, to the first that
 * answers; a connection lost moves to the next node. */
static void test_node_list(void **state)
{
    struct ctx *c = *state;
    int stalled;
    int lfd = stalled_listener(&stalled);
    int refusing, rfd = stalled_listener(&refusing);
    close(rfd); /* nothing listens there now: refused */
    char hosts[256], want[128];
    snprintf(hosts, sizeof(hosts), "127.0.0.1:%d, 127.0.0.1:%d,%s", stalled, refusing, rmq_host);
    c->cfg.host = hosts; /* without a port: cfg.port */
    c->cfg.connect_timeout_ms = 1000;
    c->cfg.reconnect_min_ms = c->cfg.reconnect_max_ms = 60000; /* no backoff within a round */
    link_create(c);
    assert_int_equal(amqp_link_start(c->link), 0);
    WAIT_FOR(c, c->ups == 1, 20000);
    assert_int_equal(c->retries, 2);
    snprintf(want, sizeof(want), "%s:%d", rmq_host, rmq_port);
    assert_string_equal(c->last_up, want);
    snprintf(want, sizeof(want), "127.0.0.1:%d", refusing);
    if (!strstr(c->last_retry, want))
        fail_msg("last retry: %s", c->last_retry);
    link_free(c);
    close(lfd);

    /* through a proxy first; when it cuts the connection, the next node */
    int proxied = proxy_start();
    snprintf(hosts, sizeof(hosts), "127.0.0.1:%d,%s:%d", proxied, rmq_host, rmq_port);
    c->cfg.reconnect_min_ms = 100;
    c->cfg.reconnect_max_ms = 1000;
    c->ups = c->retries = 0;
    link_create(c);
    link_start_up(c);
    snprintf(want, sizeof(want), "127.0.0.1:%d", proxied);
    assert_string_equal(c->last_up, want);
    proxy_send(PROXY_RESET);
    WAIT_FOR(c, c->ups == 2, 10000);
    snprintf(want, sizeof(want), "%s:%d", rmq_host, rmq_port);
    assert_string_equal(c->last_up, want);
    link_free(c);
    proxy_stop();

    /* a list that is not one, said */
    c->cfg.host = "127.0.0.1:0";
    struct ct_error err = {0};
    amqp_link *none = (amqp_link *)c; /* set to NULL on failure */
    assert_int_equal(amqp_link_new(&c->loop, &c->cfg, on_event, c, &none, &err), -EINVAL);
    assert_null(none);
    assert_non_null(strstr(err.msg, "RABBITMQ_HOST"));
}

static void test_free_cancels_outstanding(void **state)
{
    struct ctx *c = *state;
    const char *q = new_queue("cancel");
    link_create(c);
    assert_int_equal(amqp_link_declare_queue(c->link, q, NULL, 0), 0);
    link_start_up(c);
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish(c, q, "{}", i), 0);
    amqp_link_free(c->link); /* outside any callback: confirms fail right away */
    c->link = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(confirm_calls[i], 1);
        assert_int_equal(confirm_status[i], -ECANCELED);
    }
}

int main(void)
{
    const char *port = getenv("CT_RABBITMQ_PORT");
    rmq_host = getenv("CT_RABBITMQ_HOST");
    servers = getenv("CT_SERVERS");
    if (!rmq_host || !port || !servers || !*rmq_host || !*servers) {
        fprintf(stderr, "test_amqp_link: CT_RABBITMQ_HOST, CT_RABBITMQ_PORT and CT_SERVERS "
                        "must be set (run through tests/run.sh)\n");
        return 1;
    }
    rmq_port = atoi(port);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_confirm_consume_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirm_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unroutable_publish_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nack_requeue_redelivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_queue_other_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_message_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_refused_requeues_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_error_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passive_fallback_without_configure_permission, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_login_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels_outstanding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_broker_bounded_in_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_peer_detected_by_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_outage_reconnects, setup, teardown),
    };
    if (getenv("CT_TEST_FILTER")) /* e.g. CT_TEST_FILTER='test_park*' */
        cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
