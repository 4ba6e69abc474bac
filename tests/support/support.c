/* support: helpers for the cmocka integration tests (see support.h). */
#include "docker_compat.h"
#include "support.h"
#include "netns.h"

#include "qtype.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <curl/curl.h>

extern char **environ;

#define CT_HTTP_TIMEOUT_MS 30000
#define CT_AMQP_TIMEOUT_MS 10000
#define CT_POLL_MS 50

/* ------------------------------------------------------------------ environment, files */

const char *ct_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("environment variable %s is not set: run the tests with tests/run.sh", name);
    return v;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fail_msg("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail_msg("vsnprintf failed");
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *ct_unique(const char *prefix)
{
    static unsigned counter;
    static bool seeded;
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        srand((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid()));
        seeded = true;
    }
    return xasprintf("%s-%d-%u-%04x", prefix, (int)getpid(), ++counter, (unsigned)rand() & 0xffff);
}

char *ct_tmpfile(const char *name, const void *data, size_t len)
{
    char *path = xasprintf("%s/%s", ct_env("CT_TMP"), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("cannot create %s: %s", path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_msg("cannot write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    fchmod(fd, 0644);
    close(fd);
    return path;
}

char *ct_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                fail_msg("out of memory");
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

json_t *ct_json(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &err);
    if (!j)
        fail_msg("invalid JSON (%s at %d): %s", err.text, err.position, s);
    return j;
}

/* ------------------------------------------------------------------ processes */

static bool env_name_eq(const char *a, const char *b)
{
    size_t na = strcspn(a, "="), nb = strcspn(b, "=");
    return na == nb && memcmp(a, b, na) == 0;
}

pid_t ct_spawn(const char *path, char *const argv[], char *const extra_env[], const char *log_path)
{
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (extra_env && extra_env[n_extra])
        n_extra++;
    /* built before fork: the child only execs */
    char **envp = xmalloc((n_env + n_extra + 1) * sizeof(*envp));
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        bool overridden = false;
        for (size_t j = 0; j < n_extra && !overridden; j++)
            overridden = env_name_eq(environ[i], extra_env[j]);
        if (!overridden)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < n_extra; j++)
        envp[k++] = extra_env[j];
    envp[k] = NULL;

    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        free(envp);
        fail_msg("cannot open %s: %s", log_path, strerror(errno));
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        fail_msg("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        if (null_fd >= 0)
            dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execve(path, argv, envp);
        dprintf(STDERR_FILENO, "ct_spawn: cannot exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(log_fd);
    if (null_fd >= 0)
        close(null_fd);
    free(envp);
    return pid;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int ct_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

int64_t ct_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ct_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = ct_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status)
                *status = st;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -ECHILD;
        if (ct_now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(10);
    }
}

void ct_kill(pid_t pid, int sig)
{
    if (pid > 0 && kill(pid, sig) < 0 && errno != ESRCH)
        fail_msg("kill(%d, %d): %s", (int)pid, sig, strerror(errno));
}

int ct_terminate(pid_t pid, int timeout_ms)
{
    int st;
    if (pid <= 0)
        return -1;
    /* never signal a pid that is no longer our child: it may belong to someone else now */
    pid_t r0 = waitpid(pid, &st, WNOHANG);
    if (r0 == pid)
        return st;
    if (r0 < 0)
        return -1;
    ct_kill(pid, SIGTERM);
    int r = ct_wait_exit(pid, timeout_ms, &st);
    if (r == -ETIMEDOUT) {
        ct_kill(pid, SIGKILL);
        r = ct_wait_exit(pid, 10000, &st);
    }
    return r == 0 ? st : -1;
}

int ct_servers(const char *action)
{
    const char *servers = ct_env("CT_SERVERS");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execl(servers, servers, action, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------------ waiting */

bool ct_wait_until(bool (*cond)(void *ud), void *ud, int timeout_ms)
{
    int64_t deadline = ct_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ud))
            return true;
        int64_t left = deadline - ct_now_ms();
        if (left <= 0)
            return cond(ud);
        sleep_ms(left < CT_POLL_MS ? (int)left : CT_POLL_MS);
    }
}

/* ------------------------------------------------------------------ AMQP */

static const char *amqp_error(amqp_rpc_reply_t r, char *buf, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return "ok";
    case AMQP_RESPONSE_NONE:
        return "missing RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, len, "connection closed %u: %.*s", m->reply_code, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, len, "channel closed %u: %.*s", m->reply_code, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, len, "server exception, method 0x%08x", r.reply.id);
        }
        return buf;
    }
    return "unknown";
}

static char amqp_vhost[128] = "/";

void ct_amqp_use_vhost(const char *vhost)
{
    snprintf(amqp_vhost, sizeof(amqp_vhost), "%s", vhost ? vhost : "/");
}

static amqp_connection_state_t amqp_open(void)
{
    const char *host = ct_env("CT_RABBITMQ_HOST");
    int port = atoi(ct_env("CT_RABBITMQ_PORT"));
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s)
        fail_msg("amqp_tcp_socket_new failed");
    struct timeval tv = {.tv_sec = CT_AMQP_TIMEOUT_MS / 1000};
    int rc = amqp_socket_open_noblock(s, host, port, &tv);
    if (rc != AMQP_STATUS_OK) {
        amqp_destroy_connection(c);
        fail_msg("cannot connect to RabbitMQ at %s:%d: %s", host, port, amqp_error_string2(rc));
    }
    amqp_set_rpc_timeout(c, &tv);
    char buf[256];
    amqp_rpc_reply_t r =
        amqp_login(c, amqp_vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        const char *e = amqp_error(r, buf, sizeof(buf));
        amqp_destroy_connection(c);
        fail_msg("AMQP login failed: %s", e);
    }
    amqp_channel_open(c, 1);
    r = amqp_get_rpc_reply(c);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        const char *e = amqp_error(r, buf, sizeof(buf));
        amqp_destroy_connection(c);
        fail_msg("AMQP channel.open failed: %s", e);
    }
    return c;
}

static void amqp_close(amqp_connection_state_t c)
{
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* fails the test (dropping the connection first) unless the RPC succeeded */
static void amqp_check_reply(amqp_connection_state_t c, amqp_rpc_reply_t r, const char *what,
                             const char *queue)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    char buf[256];
    char msg[300];
    snprintf(msg, sizeof(msg), "%s", amqp_error(r, buf, sizeof(buf)));
    amqp_destroy_connection(c);
    fail_msg("AMQP %s of queue %s failed: %s", what, queue, msg);
}

static void amqp_check(amqp_connection_state_t c, const char *what, const char *queue)
{
    amqp_check_reply(c, amqp_get_rpc_reply(c), what, queue);
}

void ct_msg_free(struct ct_msg *m)
{
    if (!m)
        return;
    free(m->body);
    free(m->message_id);
    free(m->content_type);
    json_decref(m->headers);
    free(m);
}

void ct_amqp_declare(const char *queue)
{
    amqp_connection_state_t c = amqp_open();
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    amqp_check(c, "declare", queue);
    amqp_close(c);
}

/* A running queue as the daemons declare it on classic queues (qtype_running_args); one made
 * otherwise before (servers kept from an older version) is made again. */
static void declare_running(const char *queue)
{
    amqp_table_entry_t e[2];
    for (size_t i = 0; i < 2; i++) {
        e[i].key = amqp_cstring_bytes(qtype_running_args[i].key);
        e[i].value.kind = AMQP_FIELD_KIND_UTF8;
        e[i].value.value.bytes = amqp_cstring_bytes(qtype_running_args[i].str);
    }
    amqp_table_t args = {.num_entries = 2, .entries = e};
    amqp_connection_state_t c = amqp_open();
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    if (amqp_get_rpc_reply(c).reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_close(c);
        return;
    }
    amqp_destroy_connection(c); /* its channel was closed by the refusal */
    ct_amqp_delete(queue);
    c = amqp_open();
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    amqp_check(c, "declare", queue);
    amqp_close(c);
}

void ct_amqp_purge(const char *queue)
{
    amqp_connection_state_t c = amqp_open();
    amqp_queue_purge(c, 1, amqp_cstring_bytes(queue));
    amqp_check(c, "purge", queue);
    amqp_close(c);
}

void ct_amqp_delete(const char *queue)
{
    amqp_connection_state_t c = amqp_open();
    amqp_queue_delete(c, 1, amqp_cstring_bytes(queue), 0, 0);
    amqp_check(c, "delete", queue);
    amqp_close(c);
}

int ct_amqp_count(const char *queue)
{
    amqp_connection_state_t c = amqp_open();
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
        ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_FOUND) {
        amqp_destroy_connection(c);
        return -1;
    }
    amqp_check(c, "passive declare", queue);
    int n = (int)ok->message_count;
    amqp_close(c);
    return n;
}

/* headers: a JSON object to an AMQP table (entries allocated in pool) */
static amqp_table_t headers_to_table(json_t *headers, amqp_pool_t *pool)
{
    amqp_table_t t = {0, NULL};
    if (!headers || !json_is_object(headers) || json_object_size(headers) == 0)
        return t;
    t.entries = amqp_pool_alloc(pool, json_object_size(headers) * sizeof(amqp_table_entry_t));
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v)
    {
        amqp_table_entry_t *e = &t.entries[t.num_entries];
        e->key = amqp_cstring_bytes(k);
        if (json_is_string(v)) {
            e->value.kind = AMQP_FIELD_KIND_UTF8;
            e->value.value.bytes = amqp_cstring_bytes(json_string_value(v));
        } else if (json_is_integer(v)) {
            e->value.kind = AMQP_FIELD_KIND_I64;
            e->value.value.i64 = json_integer_value(v);
        } else if (json_is_boolean(v)) {
            e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
            e->value.value.boolean = json_is_true(v);
        } else if (json_is_real(v)) {
            e->value.kind = AMQP_FIELD_KIND_F64;
            e->value.value.f64 = json_real_value(v);
        } else {
            continue;
        }
        t.num_entries++;
    }
    return t;
}

static json_t *table_to_json(const amqp_table_t *t)
{
    json_t *o = json_object();
    for (int i = 0; t && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        char *key = xasprintf("%.*s", (int)e->key.len, (const char *)e->key.bytes);
        const amqp_field_value_t *v = &e->value;
        json_t *j = NULL;
        switch (v->kind) {
        case AMQP_FIELD_KIND_UTF8:
        case AMQP_FIELD_KIND_BYTES:
            j = json_stringn_nocheck(v->value.bytes.bytes, v->value.bytes.len);
            break;
        case AMQP_FIELD_KIND_BOOLEAN:
            j = json_boolean(v->value.boolean);
            break;
        case AMQP_FIELD_KIND_I8:
            j = json_integer(v->value.i8);
            break;
        case AMQP_FIELD_KIND_U8:
            j = json_integer(v->value.u8);
            break;
        case AMQP_FIELD_KIND_I16:
            j = json_integer(v->value.i16);
            break;
        case AMQP_FIELD_KIND_U16:
            j = json_integer(v->value.u16);
            break;
        case AMQP_FIELD_KIND_I32:
            j = json_integer(v->value.i32);
            break;
        case AMQP_FIELD_KIND_U32:
            j = json_integer(v->value.u32);
            break;
        case AMQP_FIELD_KIND_I64:
            j = json_integer(v->value.i64);
            break;
        case AMQP_FIELD_KIND_U64:
            j = json_integer((json_int_t)v->value.u64);
            break;
        case AMQP_FIELD_KIND_TIMESTAMP:
            j = json_integer((json_int_t)v->value.u64);
            break;
        case AMQP_FIELD_KIND_F32:
            j = json_real(v->value.f32);
            break;
        case AMQP_FIELD_KIND_F64:
            j = json_real(v->value.f64);
            break;
        default:
            j = json_null();
            break;
        }
        json_object_set_new(o, key, j);
        free(key);
    }
    return o;
}

void ct_amqp_publish_ex(const char *queue, const void *body, size_t len,
                        const struct ct_publish_opts *opts)
{
    amqp_connection_state_t c = amqp_open();
    amqp_confirm_select(c, 1);
    amqp_check(c, "confirm.select", queue);

    amqp_pool_t pool;
    init_amqp_pool(&pool, 4096);
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof(p));
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    if (opts && opts->timestamp) {
        p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        p.timestamp = opts->timestamp;
    }
    p.delivery_mode = opts && opts->transient ? 1 : 2;
    if (opts && opts->content_type) {
        p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p.content_type = amqp_cstring_bytes(opts->content_type);
    }
    if (opts && opts->message_id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = amqp_cstring_bytes(opts->message_id);
    }
    if (opts && opts->headers) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers = headers_to_table(opts->headers, &pool);
    }
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    int rc =
        amqp_basic_publish(c, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(queue), 1, 0, &p, b);
    empty_amqp_pool(&pool);
    if (rc != AMQP_STATUS_OK) {
        amqp_destroy_connection(c);
        fail_msg("AMQP publish to %s failed: %s", queue, amqp_error_string2(rc));
    }

    /* a basic.return (unroutable) comes before the ack */
    bool returned = false;
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {.tv_sec = CT_AMQP_TIMEOUT_MS / 1000};
        amqp_maybe_release_buffers(c);
        rc = amqp_simple_wait_frame_noblock(c, &f, &tv);
        if (rc != AMQP_STATUS_OK) {
            amqp_destroy_connection(c);
            fail_msg("AMQP publish to %s: no confirm: %s", queue, amqp_error_string2(rc));
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue; /* the returned message's header and body */
        if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
            returned = true;
            continue;
        }
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD)
            break;
        amqp_destroy_connection(c);
        fail_msg("AMQP publish to %s: unexpected reply 0x%08x (nack?)", queue, f.payload.method.id);
    }
    amqp_close(c);
    if (returned)
        fail_msg("AMQP publish to %s: returned unroutable (does the queue exist?)", queue);
}

void ct_amqp_publish(const char *queue, const char *body, const char *message_id)
{
    struct ct_publish_opts o = {.content_type = "application/json", .message_id = message_id};
    ct_amqp_publish_ex(queue, body, strlen(body), &o);
}

static char *bytes_dup(amqp_bytes_t b)
{
    char *s = xmalloc(b.len + 1);
    if (b.len)
        memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

struct ct_msg *ct_amqp_get(const char *queue, int timeout_ms)
{
    amqp_connection_state_t c = amqp_open();
    int64_t deadline = ct_now_ms() + timeout_ms;
    for (;;) {
        amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 1);
        amqp_check_reply(c, r, "basic.get", queue);
        if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
            amqp_basic_get_ok_t *ok = r.reply.decoded;
            bool redelivered = ok->redelivered;
            amqp_message_t m;
            r = amqp_read_message(c, 1, &m, 0);
            amqp_check_reply(c, r, "basic.get (content)", queue);
            struct ct_msg *msg = xmalloc(sizeof(*msg));
            memset(msg, 0, sizeof(*msg));
            msg->body = bytes_dup(m.body);
            msg->len = m.body.len;
            msg->redelivered = redelivered;
            amqp_basic_properties_t *p = &m.properties;
            if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
                msg->message_id = bytes_dup(p->message_id);
            if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
                msg->timestamp = p->timestamp;
            if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
                msg->content_type = bytes_dup(p->content_type);
            if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
                msg->delivery_mode = p->delivery_mode;
            msg->headers = table_to_json(p->_flags & AMQP_BASIC_HEADERS_FLAG ? &p->headers : NULL);
            amqp_destroy_message(&m);
            amqp_close(c);
            return msg;
        }
        /* basic.get-empty */
        amqp_maybe_release_buffers(c);
        int64_t left = deadline - ct_now_ms();
        if (left <= 0)
            break;
        sleep_ms(left < CT_POLL_MS ? (int)left : CT_POLL_MS);
    }
    amqp_close(c);
    return NULL;
}

/* ------------------------------------------------------------------ HTTP (libcurl easy) */

struct buf {
    char *data;
    size_t len, cap;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void curl_init_once(void)
{
    static bool done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        atexit(curl_global_cleanup);
        done = true;
    }
}

/* One request. Returns the body (NUL-terminated, "" when empty) or NULL when there was no
 * answer (*status 0). */
static char *http(const char *url, const char *unix_path, const char *userpwd, const char *method,
                  const char *content_type, const void *body, size_t body_len, long timeout_ms,
                  long *status, size_t *len)
{
    curl_init_once();
    CURL *h = curl_easy_init();
    if (!h)
        fail_msg("curl_easy_init failed");
    struct buf b = {0};
    struct curl_slist *hdrs = NULL;
    char ct[256];
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (unix_path)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, unix_path);
    if (userpwd)
        curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ct);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);

    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (status)
        *status = code;
    if (rc != CURLE_OK) {
        free(b.data);
        return NULL;
    }
    if (!b.data)
        b.data = xstrdup("");
    if (len)
        *len = b.len;
    return b.data;
}

char *ct_http_get(const char *url, long *status)
{
    return http(url, NULL, NULL, "GET", NULL, NULL, 0, 10000, status, NULL);
}

static char *urlencode(const char *s)
{
    curl_init_once();
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e)
        fail_msg("curl_easy_escape failed");
    char *r = xstrdup(e);
    curl_free(e);
    return r;
}

static json_t *parse_or_null(char *body)
{
    json_t *j = NULL;
    if (body && *body)
        j = json_loads(body, JSON_DECODE_ANY, NULL);
    free(body);
    return j;
}

/* ------------------------------------------------------------------ management API */

json_t *ct_mgmt(const char *method, const char *path, const char *body_json, long *status)
{
    char *url = xasprintf("http://%s:%s/api%s", ct_env("CT_RABBITMQ_HOST"),
                          ct_env("CT_RABBITMQ_MGMT_PORT"), path);
    long st = 0;
    char *body = http(url, NULL, "guest:guest", method, body_json ? "application/json" : NULL,
                      body_json, body_json ? strlen(body_json) : 0, CT_HTTP_TIMEOUT_MS, &st, NULL);
    free(url);
    if (status)
        *status = st;
    return parse_or_null(body);
}

json_t *ct_mgmt_queue(const char *queue)
{
    char *q = urlencode(queue);
    char *path = xasprintf("/queues/%%2F/%s", q);
    free(q);
    long st;
    json_t *j = ct_mgmt("GET", path, NULL, &st);
    if (st == 404) {
        json_decref(j);
        j = NULL;
    } else if (st != 200 || !json_is_object(j)) {
        json_decref(j);
        fail_msg("management API GET %s: status %ld", path, st);
    }
    free(path);
    return j;
}

long ct_mgmt_queue_int(const char *queue, const char *field)
{
    json_t *q = ct_mgmt_queue(queue);
    if (!q)
        return -1;
    long v = (long)json_integer_value(json_object_get(q, field));
    json_decref(q);
    return v;
}

/* ------------------------------------------------------------------ Docker Engine API */

static const char *docker_socket(void)
{
    const char *h = ct_env("CT_DOCKER_HOST");
    if (strncmp(h, "unix://", 7) != 0)
        fail_msg("CT_DOCKER_HOST must be unix:///path, not %s", h);
    return h + 7;
}

char *ct_docker_raw(const char *method, const char *path, const char *content_type,
                    const void *body, size_t body_len, long *status, size_t *len)
{
    char *url = xasprintf("http://localhost/v1.41%s", path);
    char *r = http(url, docker_socket(), NULL, method, content_type, body, body_len,
                   CT_HTTP_TIMEOUT_MS * 4, status, len);
    free(url);
    return r;
}

json_t *ct_docker(const char *method, const char *path, const char *body_json, long *status)
{
    char *body = ct_docker_raw(method, path, body_json ? "application/json" : NULL, body_json,
                               body_json ? strlen(body_json) : 0, status, NULL);
    return parse_or_null(body);
}

bool ct_engine_is_podman(void)
{
    static int known = -1;
    if (known < 0) {
        long st;
        json_t *v = ct_docker("GET", "/version", NULL, &st);
        if (st != 200)
            fail_msg("docker GET /version: status %ld", st);
        known = docker_compat_engine(v) == DOCKER_ENGINE_PODMAN;
        json_decref(v);
        fprintf(stderr, "# engine: %s\n", known ? "Podman" : "Docker");
    }
    return known == 1;
}

static json_t *docker_expect(const char *method, const char *path, const char *body_json, long want)
{
    long st;
    json_t *j = ct_docker(method, path, body_json, &st);
    if (st != want) {
        char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", dump ? dump : "");
        free(dump);
        json_decref(j);
        fail_msg("docker %s %s: status %ld (want %ld) %s", method, path, st, want, msg);
    }
    return j;
}

json_t *ct_docker_inspect(const char *id_or_name)
{
    char *path = xasprintf("/containers/%s/json", id_or_name);
    long st;
    json_t *j = ct_docker("GET", path, NULL, &st);
    if (st == 404) {
        json_decref(j);
        j = NULL;
    } else if (st != 200) {
        json_decref(j);
        fail_msg("docker GET %s: status %ld", path, st);
    }
    free(path);
    return j;
}

json_t *ct_docker_list(const char *label_filter)
{
    json_t *f = json_pack("{s:[s]}", "label", label_filter);
    char *fs = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    char *enc = urlencode(fs);
    free(fs);
    char *path = xasprintf("/containers/json?all=1&filters=%s", enc);
    free(enc);
    json_t *j = docker_expect("GET", path, NULL, 200);
    free(path);
    if (!json_is_array(j))
        fail_msg("docker list: not an array");
    return j;
}

void ct_docker_remove_labelled(const char *label)
{
    json_t *list = ct_docker_list(label);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "Id"));
        if (!id)
            continue;
        char *path = xasprintf("/containers/%s?force=1&v=1", id);
        long st;
        json_decref(ct_docker("DELETE", path, NULL, &st));
        free(path);
        if (st != 204 && st != 404 && st != 409) /* 409: removal already in progress */
            fail_msg("docker remove %s: status %ld", id, st);
    }
    json_decref(list);
}

char *ct_docker_create(const char *image, const char *const env[], json_t *labels,
                       json_t *host_config)
{
    json_t *req = json_pack("{s:s}", "Image", image);
    if (env) {
        json_t *e = json_array();
        for (size_t i = 0; env[i]; i++)
            json_array_append_new(e, json_string(env[i]));
        json_object_set_new(req, "Env", e);
    }
    if (labels)
        json_object_set(req, "Labels", labels);
    if (host_config)
        json_object_set(req, "HostConfig", host_config);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    long st;
    json_t *j = ct_docker("POST", "/containers/create", body, &st);
    free(body);
    const char *id = json_string_value(json_object_get(j, "Id"));
    if (st != 201 || !id) {
        json_decref(j);
        fail_msg("docker create %s: status %ld", image, st);
    }
    char *r = xstrdup(id);
    json_decref(j);
    return r;
}

void ct_docker_start(const char *id)
{
    char *path = xasprintf("/containers/%s/start", id);
    long st;
    json_decref(ct_docker("POST", path, NULL, &st));
    free(path);
    if (st != 204 && st != 304)
        fail_msg("docker start %s: status %ld", id, st);
}

int ct_docker_wait(const char *id, int timeout_ms)
{
    char *url = xasprintf("http://localhost/v1.41/containers/%s/wait", id);
    long st;
    char *body = http(url, docker_socket(), NULL, "POST", NULL, NULL, 0, timeout_ms, &st, NULL);
    free(url);
    if (!body)
        return -ETIMEDOUT;
    json_t *j = parse_or_null(body);
    json_t *code = json_object_get(j, "StatusCode");
    if (st != 200 || !json_is_integer(code)) {
        json_decref(j);
        fail_msg("docker wait %s: status %ld", id, st);
    }
    int r = (int)json_integer_value(code);
    json_decref(j);
    return r;
}

char *ct_docker_logs(const char *id, bool out, bool err, size_t *len)
{
    char *path = xasprintf("/containers/%s/logs?stdout=%d&stderr=%d", id, out, err);
    long st;
    size_t n = 0;
    char *raw = ct_docker_raw("GET", path, NULL, NULL, 0, &st, &n);
    free(path);
    if (!raw || st != 200) {
        free(raw);
        fail_msg("docker logs %s: status %ld", id, st);
    }
    /* without a TTY the stream is multiplexed: [type, 0, 0, 0, size (4 bytes BE)] payload */
    char *res = xmalloc(n + 1);
    size_t k = 0, i = 0;
    while (i + 8 <= n) {
        const unsigned char *hd = (const unsigned char *)raw + i;
        size_t sz = (size_t)hd[4] << 24 | (size_t)hd[5] << 16 | (size_t)hd[6] << 8 | hd[7];
        i += 8;
        if (sz > n - i)
            sz = n - i;
        memcpy(res + k, raw + i, sz);
        k += sz;
        i += sz;
    }
    res[k] = '\0';
    free(raw);
    if (len)
        *len = k;
    return res;
}

/* ustar: a header's numeric field in octal */
static size_t tar_octal(const char *f, size_t n)
{
    size_t v = 0;
    for (size_t i = 0; i < n && f[i]; i++) {
        if (f[i] == ' ')
            continue;
        if (f[i] < '0' || f[i] > '7')
            break;
        v = v * 8 + (size_t)(f[i] - '0');
    }
    return v;
}

char *ct_docker_read_file(const char *container, const char *path, size_t *len)
{
    char *enc = urlencode(path);
    char *p = xasprintf("/containers/%s/archive?path=%s", container, enc);
    free(enc);
    long st;
    size_t n = 0;
    char *tar = ct_docker_raw("GET", p, NULL, NULL, 0, &st, &n);
    free(p);
    if (!tar || st != 200) {
        free(tar);
        if (st == 404)
            return NULL;
        fail_msg("docker archive %s:%s: status %ld", container, path, st);
    }
    /* the first entry of interest is the file itself (named by its base name); skip pax and
     * GNU long-name entries */
    char *res = NULL;
    size_t off = 0;
    while (off + 512 <= n) {
        const char *h = tar + off;
        if (h[0] == '\0')
            break;
        size_t size = tar_octal(h + 124, 12);
        char type = h[156];
        off += 512;
        if (size > n - off)
            break;
        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
            off += (size + 511) / 512 * 512;
            continue;
        }
        if (type == '0' || type == '\0') {
            res = xmalloc(size + 1);
            memcpy(res, tar + off, size);
            res[size] = '\0';
            if (len)
                *len = size;
        }
        break;
    }
    free(tar);
    return res;
}

long ct_docker_put_file(const char *container, const char *dir, const char *name, const void *data,
                        size_t len)
{
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > 99)
        fail_msg("ct_docker_put_file: bad name %s", name);
    size_t data_blocks = (len + 511) / 512 * 512;
    size_t total = 512 + data_blocks + 1024;
    char *tar = xmalloc(total);
    memset(tar, 0, total);
    char *h = tar;
    memcpy(h, name, name_len);
    snprintf(h + 100, 8, "%07o", 0644);
    snprintf(h + 108, 8, "%07o", 0);
    snprintf(h + 116, 8, "%07o", 0);
    snprintf(h + 124, 12, "%011llo", (unsigned long long)len);
    snprintf(h + 136, 12, "%011llo", (unsigned long long)time(NULL));
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    if (len)
        memcpy(tar + 512, data, len);

    char *enc = urlencode(dir);
    char *p = xasprintf("/containers/%s/archive?path=%s", container, enc);
    free(enc);
    long st;
    free(ct_docker_raw("PUT", p, "application/x-tar", tar, total, &st, NULL));
    free(p);
    free(tar);
    return st;
}

bool ct_docker_image_exists(const char *image)
{
    char *path = xasprintf("/images/%s/json", image);
    long st;
    json_decref(ct_docker("GET", path, NULL, &st));
    free(path);
    if (st != 200 && st != 404)
        fail_msg("docker image inspect %s: status %ld", image, st);
    return st == 200;
}

void ct_oom_watch_start(struct ct_oom_watch *w)
{
    char since[32], host[4200];
    snprintf(since, sizeof(since), "%lld", (long long)time(NULL) - 2);
    snprintf(host, sizeof(host), "DOCKER_HOST=%s", ct_env("CT_DOCKER_HOST"));
    char *const argv[] = {"docker",    "events",   "--since",    since, "--filter",
                          "event=oom", "--format", "{{json .}}", NULL};
    char *const env[] = {host, NULL};
    w->path = ct_unique("oom-events");
    char *full = xasprintf("%s/%s.jsonl", ct_env("CT_TMP"), w->path);
    free(w->path);
    w->path = full;
    w->pid = ct_spawn("/usr/bin/docker", argv, env, w->path);
    ct_track(w->pid);
}

bool ct_oom_watch_saw(const struct ct_oom_watch *w, const char *id, const char *label,
                      const char *value)
{
    size_t len;
    char *text = ct_read_file(w->path, &len);
    bool seen = false;
    for (char *line = text, *next; line && *line && !seen; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        json_t *ev = json_loads(line, 0, NULL);
        json_t *actor = json_object_get(ev, "Actor");
        if (id)
            seen = json_is_string(json_object_get(actor, "ID")) &&
                   strcmp(json_string_value(json_object_get(actor, "ID")), id) == 0;
        else {
            const char *v =
                json_string_value(json_object_get(json_object_get(actor, "Attributes"), label));
            seen = v && strcmp(v, value) == 0;
        }
        json_decref(ev);
    }
    free(text);
    return seen;
}

void ct_oom_watch_stop(struct ct_oom_watch *w)
{
    ct_untrack(w->pid);
    ct_terminate(w->pid, 5000);
    unlink(w->path);
    free(w->path);
    w->path = NULL;
}

/* ------------------------------------------------------------------ processes of a test */

#define MAX_TRACKED 64
static pid_t tracked[MAX_TRACKED];

void ct_track(pid_t pid)
{
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (tracked[i] == 0) {
            tracked[i] = pid;
            return;
        }
    }
    fail_msg("ct_track: more than %d processes", MAX_TRACKED);
}

void ct_untrack(pid_t pid)
{
    for (size_t i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid)
            tracked[i] = 0;
}

void ct_kill_tracked(void)
{
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (tracked[i] > 0)
            ct_terminate(tracked[i], 5000);
        tracked[i] = 0;
    }
}

int ct_file_count(const char *path, const char *needle)
{
    char *s = ct_read_file(path, NULL);
    int n = 0;
    for (char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(s);
    return n;
}

/* ------------------------------------------------------------------ our daemons */

/* The settings in order, each NAME once: the first list's unless a later list names it too. */
static size_t env_merge(char env[][1024], size_t max, const char *const *lists[], size_t n_lists)
{
    size_t n = 0;
    for (size_t l = 0; l < n_lists; l++) {
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            bool overridden = false;
            for (size_t m = l + 1; m < n_lists && !overridden; m++)
                for (size_t j = 0; lists[m] && lists[m][j] && !overridden; j++)
                    overridden = env_name_eq(lists[l][i], lists[m][j]);
            if (overridden)
                continue;
            if (n == max)
                fail_msg("ct_daemon_start: too many settings");
            snprintf(env[n++], 1024, "%.1000s", lists[l][i]);
        }
    }
    return n;
}

void ct_daemon_start_how(struct ct_daemon *d, const char *program, const char *name,
                         const struct ct_daemon_how *how, const char *const *defaults,
                         const char *const *extra_env)
{
    static char env[48][1024];
    static char *envp[49];
    const char *tmp = ct_env("CT_TMP");
    char base[7][1024];
    snprintf(base[0], sizeof(base[0]), "RABBITMQ_HOST=%s", ct_env("CT_RABBITMQ_HOST"));
    snprintf(base[1], sizeof(base[1]), "RABBITMQ_PORT=%s", ct_env("CT_RABBITMQ_PORT"));
    snprintf(base[2], sizeof(base[2]), "DOCKER_HOST=%s", ct_env("CT_DOCKER_HOST"));
    snprintf(base[3], sizeof(base[3]), "LOG_LEVEL=debug");
    snprintf(base[4], sizeof(base[4]), "RABBITMQ_HEARTBEAT=2");
    snprintf(base[5], sizeof(base[5]), "HEALTH_FILE=%s/%s-%s.health", tmp, program, name);
    /* The starter refuses to run without its upload folder: the tests write there. */
    size_t n_base = 6;
    if (strcmp(program, "starter") == 0)
        snprintf(base[n_base++], sizeof(base[0]), "EXERCISE_DIR=%s", tmp);
    const char *base_list[8];
    for (size_t i = 0; i < n_base; i++)
        base_list[i] = base[i];
    base_list[n_base] = NULL;
    size_t n = env_merge(env, 48, (const char *const *[]){base_list, defaults, extra_env}, 3);
    for (size_t i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char path[1024];
    snprintf(path, sizeof(path), "%s/correctomatic-%s", CT_BIN_DIR, program);
    snprintf(d->log, sizeof(d->log), "%s/%s-%s.log", tmp, program, name);
    unlink(d->log); /* a fresh log: waits count only this run's lines */
    char *argv[] = {path, how ? (char *)how->arg : NULL, NULL};
    if (how && how->ns) {
        d->pid = ct_netns_spawn(how->ns, path, argv, envp, d->log); /* tracked */
    } else {
        d->pid = ct_spawn(path, argv, envp, d->log);
        ct_track(d->pid);
    }
    if (d->pid <= 0)
        fail_msg("could not start %s (log: %s)", path, d->log);
}

void ct_daemon_start(struct ct_daemon *d, const char *program, const char *name,
                     const char *const *extra_env)
{
    ct_daemon_start_how(d, program, name, NULL, NULL, extra_env);
}

int ct_daemon_stop(struct ct_daemon *d)
{
    int status = -1;
    ct_kill(d->pid, SIGTERM);
    if (ct_wait_exit(d->pid, 20000, &status) < 0) {
        ct_kill(d->pid, SIGKILL);
        ct_wait_exit(d->pid, 5000, &status);
        ct_untrack(d->pid);
        fail_msg("%s did not exit within 20 s of SIGTERM", d->log);
    }
    ct_untrack(d->pid);
    return status;
}

void ct_daemon_kill(struct ct_daemon *d)
{
    ct_kill(d->pid, SIGKILL);
    ct_wait_exit(d->pid, 10000, NULL);
    ct_untrack(d->pid);
}

struct log_wait {
    const char *path, *needle;
    int count;
};

static bool log_has(void *ud)
{
    struct log_wait *w = ud;
    return ct_file_count(w->path, w->needle) >= w->count;
}

void ct_daemon_wait_log(const struct ct_daemon *d, const char *needle, int count, int timeout_ms)
{
    struct log_wait w = {d->log, needle, count};
    if (!ct_wait_until(log_has, &w, timeout_ms))
        fail_msg("'%s' did not appear %d time(s) in %s", needle, count, d->log);
}

int ct_file_count_lines(const char *path, const char *needle, const char *also)
{
    char *s = ct_read_file(path, NULL);
    int n = 0;
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, needle) && (!also || strstr(line, also)))
            n++;
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(s);
    return n;
}

struct lines_wait {
    const char *path, *needle, *also;
    int count;
};

static bool lines_have(void *ud)
{
    struct lines_wait *w = ud;
    return ct_file_count_lines(w->path, w->needle, w->also) >= w->count;
}

void ct_daemon_wait_lines(const struct ct_daemon *d, const char *needle, const char *also,
                          int count, int timeout_ms)
{
    struct lines_wait w = {d->log, needle, also, count};
    if (!ct_wait_until(lines_have, &w, timeout_ms))
        fail_msg("'%s'%s%s did not appear %d time(s) in %s", needle, also ? " with " : "",
                 also ? also : "", count, d->log);
}

void ct_daemon_start_over(struct ct_daemon *d, const char *program, const char *name,
                          const char *const *defaults, const char *const *extra_env)
{
    ct_daemon_start_how(d, program, name, NULL, defaults, extra_env);
}

/* ------------------------------------------------------------------ a callback receiver */

const char *ct_receiver_script(void)
{
    static char path[1024];
    /* this file is tests/support/support.c, compiled by absolute path; receiver.py is beside */
    snprintf(path, sizeof(path), "%s", __FILE__);
    char *slash = strrchr(path, '/');
    if (!slash)
        fail_msg("cannot locate receiver.py from %s", __FILE__);
    snprintf(slash, sizeof(path) - (size_t)(slash - path), "/receiver.py");
    return path;
}

static bool port_written(void *ud)
{
    struct ct_receiver *r = ud;
    char *s = ct_read_file(r->port_file, NULL);
    r->port = s ? atoi(s) : 0;
    free(s);
    return r->port > 0;
}

void ct_receiver_start(struct ct_receiver *r, const char *name, int port, bool fresh)
{
    const char *tmp = ct_env("CT_TMP");
    snprintf(r->log, sizeof(r->log), "%s/receiver-%s.jsonl", tmp, name);
    snprintf(r->port_file, sizeof(r->port_file), "%s/receiver-%s.port", tmp, name);
    snprintf(r->out, sizeof(r->out), "%s/receiver-%s.out", tmp, name);
    if (fresh)
        unlink(r->log);
    unlink(r->port_file);
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    char *argv[] = {"/usr/bin/python3",
                    (char *)ct_receiver_script(),
                    "serve",
                    "--log",
                    r->log,
                    "--port-file",
                    r->port_file,
                    "--port",
                    port_s,
                    NULL};
    r->pid = ct_spawn("/usr/bin/python3", argv, NULL, r->out);
    ct_track(r->pid);
    if (!ct_wait_until(port_written, r, 10000))
        fail_msg("the receiver did not start (see %s)", r->out);
    if (port && r->port != port)
        fail_msg("the receiver listens on %d, not %d", r->port, port);
}

void ct_receiver_stop(struct ct_receiver *r)
{
    ct_terminate(r->pid, 5000);
    ct_untrack(r->pid);
    r->pid = 0;
}

void ct_receiver_url(char *buf, size_t len, const struct ct_receiver *r, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", r->port, path);
}

json_t *ct_receiver_requests(const struct ct_receiver *r)
{
    json_t *all = json_array();
    char *s = ct_read_file(r->log, NULL);
    for (char *line = s, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            fail_msg("bad line in %s: %s", r->log, line);
        json_array_append_new(all, j);
    }
    free(s);
    return all;
}

int ct_receiver_count(const struct ct_receiver *r, const char *path, long status)
{
    json_t *all = ct_receiver_requests(r);
    int n = 0;
    size_t i;
    json_t *q;
    json_array_foreach(all, i, q)
    {
        const char *p = json_string_value(json_object_get(q, "path"));
        json_t *st = json_object_get(q, "status");
        long s = json_is_integer(st) ? (long)json_integer_value(st) : -1;
        if ((!path || (p && strcmp(p, path) == 0)) && (status == -1 || s == status))
            n++;
    }
    json_decref(all);
    return n;
}

struct req_wait {
    const struct ct_receiver *r;
    const char *path;
    long status;
    int n;
};

static bool has_requests(void *ud)
{
    struct req_wait *w = ud;
    return ct_receiver_count(w->r, w->path, w->status) >= w->n;
}

void ct_receiver_wait(const struct ct_receiver *r, const char *path, long status, int n,
                      int timeout_ms)
{
    struct req_wait w = {r, path, status, n};
    if (!ct_wait_until(has_requests, &w, timeout_ms))
        fail_msg("%d request(s) to %s answered %ld, expected %d (log %s)",
                 ct_receiver_count(r, path, status), path ? path : "*", status, n, r->log);
}

void ct_receiver_wait_progress(const struct ct_receiver *r, const char *path, long status, int n,
                               int stall_ms, int max_ms)
{
    int64_t start = ct_now_ms();
    int seen = ct_receiver_count(r, path, status);
    for (;;) {
        int64_t left = max_ms - (ct_now_ms() - start);
        struct req_wait w = {r, path, status, n};
        if (left <= 0)
            break;
        if (ct_wait_until(has_requests, &w, (int)(left < stall_ms ? left : stall_ms)))
            return;
        int now = ct_receiver_count(r, path, status);
        if (now == seen)
            break; /* stalled: nothing came for stall_ms */
        seen = now;
    }
    fail_msg("%d request(s) to %s answered %ld, expected %d (log %s)",
             ct_receiver_count(r, path, status), path ? path : "*", status, n, r->log);
}

/* ------------------------------------------------------------------ the pipeline's state */

void ct_reset_pipeline(void)
{
    static const char *const queues[] = {
        "pending_corrections",      "pending_corrections.invalid",
        "running_corrections",      "running_corrections.invalid",
        "running_corrections.lost", "running_corrections.lost.invalid",
        "finished_corrections",     "finished_corrections.invalid",
        "failed_callbacks"};
    ct_kill_tracked();
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        if (strcmp(queues[i], "running_corrections") == 0)
            declare_running(queues[i]);
        else
            ct_amqp_declare(queues[i]);
        ct_amqp_purge(queues[i]);
    }
    ct_docker_remove_labelled("correctomatic.job_id");
}

int ct_reset_pipeline_fixture(void **state)
{
    (void)state;
    ct_reset_pipeline();
    return 0;
}
