/* correctomatic-submit: publishes one job to pending_corrections, as an API would, and with
 * --wait receives its callback on a one-shot local HTTP listener and prints the result.
 *
 * A command-line tool, not a daemon: it blocks (bounded by timeouts) and uses no event loop. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "exercise.h"
#include "ids.h"
#include "msg.h"
#include "names.h"

#define MAX_CALLBACK_BYTES (1024 * 1024)

struct opts {
    const char *image, *file, *callback, *work_id, *uploads, *listen;
    const char *params[MSG_MAX_PARAMS];
    size_t n_params;
    bool wait;
    int timeout_s;
};

static void usage(FILE *f)
{
    fprintf(
        f, "Usage: correctomatic-submit --image IMAGE --file PATH [--callback URL] [--work-id ID]\n"
           "                            [--param NAME=VALUE]... [--uploads LOCAL:REMOTE]\n"
           "                            [--wait [--listen ADDR:PORT] [--timeout SECONDS]]\n\n"
           "Publishes a job to pending_corrections (confirmed by the broker) and prints it.\n\n"
           "  --image IMAGE        the correction image\n"
           "  --file PATH          the submission (as the starter sees it, or see --uploads)\n"
           "  --callback URL       where the result goes (with --wait: the local listener)\n"
           "  --work-id ID         your id for the job, echoed in the callback\n"
           "  --param NAME=VALUE   an environment variable for the correction (repeatable)\n"
           "  --uploads LOCAL:REMOTE  copy the file into the folder LOCAL, shared with the\n"
           "                       starter as REMOTE (compose: ./uploads:/srv/uploads)\n"
           "  --wait               listen for the callback and print it (exit 0 on success,\n"
           "                       1 when the correction failed, 3 on timeout)\n"
           "  --listen ADDR:PORT   the listener's address (default 127.0.0.1:0, any free port)\n"
           "  --timeout SECONDS    how long --wait waits (default 300)\n\n"
           "RabbitMQ settings come from RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER,\n"
           "RABBITMQ_PASSWORD, RABBITMQ_VHOST, as for the daemons.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"image", required_argument, 0, 'i'},
        {"file", required_argument, 0, 'f'},
        {"callback", required_argument, 0, 'c'},
        {"work-id", required_argument, 0, 'w'},
        {"param", required_argument, 0, 'p'},
        {"uploads", required_argument, 0, 'u'},
        {"wait", no_argument, 0, 'W'},
        {"listen", required_argument, 0, 'l'},
        {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    o->timeout_s = 300;
    o->listen = "127.0.0.1:0";
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            o->image = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'c':
            o->callback = optarg;
            break;
        case 'w':
            o->work_id = optarg;
            break;
        case 'p':
            if (o->n_params == MSG_MAX_PARAMS) {
                fprintf(stderr, "correctomatic-submit: too many --param\n");
                return 2;
            }
            o->params[o->n_params++] = optarg;
            break;
        case 'u':
            o->uploads = optarg;
            break;
        case 'W':
            o->wait = true;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 't':
            o->timeout_s = atoi(optarg);
            if (o->timeout_s <= 0) {
                fprintf(stderr, "correctomatic-submit: --timeout must be a positive number\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !o->image || !o->file || (!o->callback && !o->wait)) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Copies the file into the shared uploads folder: returns the path the starter will see. */
static char *upload(const char *file, const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || !colon[1]) {
        fprintf(stderr, "correctomatic-submit: --uploads takes LOCAL:REMOTE\n");
        return NULL;
    }
    struct msg_error err;
    void *data = NULL;
    size_t len = 0;
    if (exercise_read(file, NULL, 64ULL * 1024 * 1024, &data, &len, &err) < 0) {
        fprintf(stderr, "correctomatic-submit: %s - %s\n", err.reason, err.detail);
        return NULL;
    }
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char name[300], local[4400], *remote = NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof(name), "%lld%03ld-%.200s", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
             base);
    snprintf(local, sizeof(local), "%.*s/%s", (int)(colon - spec), spec, name);
    int fd = open(local, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len)) {
        fprintf(stderr, "correctomatic-submit: cannot write %s: %s\n", local, strerror(errno));
    } else if (asprintf(&remote, "%s/%s", colon + 1, name) < 0) {
        remote = NULL;
    }
    if (fd >= 0)
        close(fd);
    free(data);
    return remote;
}

/* A listening TCP socket on ADDR:PORT; *port gets the actual port. */
static int listen_on(const char *spec, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(spec, ':');
    if (!colon) {
        fprintf(stderr, "correctomatic-submit: --listen takes ADDR:PORT\n");
        return -1;
    }
    snprintf(host, hostlen, "%.*s", (int)(colon - spec), spec);
    struct addrinfo hints = {
        .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "correctomatic-submit: bad --listen address %s\n", spec);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 8) < 0) {
        fprintf(stderr, "correctomatic-submit: cannot listen on %s: %s\n", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms =
        (deadline->tv_sec - now.tv_sec) * 1000LL + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms > 1000000000 ? 1000000000 : (int)ms;
}

/* Reads one HTTP request (headers + Content-Length body, bounded), answers 200 with
 * "Connection: close". Returns the body (malloc'd) or NULL. */
static char *receive_one(int lfd, const struct timespec *deadline)
{
    for (;;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int r = poll(&p, 1, ms_left(deadline));
        if (r <= 0)
            return NULL;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        size_t cap = 65536, len = 0;
        char *buf = malloc(cap + 1);
        char *body = NULL;
        size_t need = 0;
        while (buf) {
            struct pollfd q = {.fd = fd, .events = POLLIN};
            if (poll(&q, 1, ms_left(deadline)) <= 0)
                break;
            if (len == cap) {
                if (cap >= MAX_CALLBACK_BYTES)
                    break;
                cap *= 2;
                char *nb = realloc(buf, cap + 1);
                if (!nb)
                    break;
                buf = nb;
            }
            ssize_t n = read(fd, buf + len, cap - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            if (!need) {
                char *cl = strcasestr(buf, "\r\ncontent-length:");
                need = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            }
            if (len >= need) {
                body = strdup(end + 4);
                break;
            }
        }
        static const char ok[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (body && write(fd, ok, sizeof(ok) - 1) < 0)
            fprintf(stderr, "correctomatic-submit: could not answer the callback\n");
        close(fd);
        free(buf);
        if (body)
            return body;
    }
}

static int publish(const char *body, const char *message_id)
{
    struct daemon_common common;
    struct ct_error e = {0};
    if (daemon_load_common(&common, "correctomatic-submit", false, &e) < 0) {
        fprintf(stderr, "correctomatic-submit: %s\n", e.msg);
        return -EINVAL;
    }
    const struct amqp_link_config *c = &common.amqp;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    struct timeval tv = {.tv_sec = 10};
    int r = -EIO;
    char at[600];
    if (!sock || amqp_link_open_socket(sock, c, &tv, at, sizeof(at)) < 0) {
        fprintf(stderr, "correctomatic-submit: cannot connect to RabbitMQ: %s\n",
                sock ? at : "out of memory");
        goto out;
    }
    amqp_set_rpc_timeout(conn, &tv);
    if (amqp_login(conn, c->vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, c->user, c->password)
            .reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "correctomatic-submit: RabbitMQ refused the login of %s\n", c->user);
        goto out;
    }
    amqp_channel_open(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        goto out;
    amqp_confirm_select(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        goto out;
    amqp_basic_properties_t props = {0};
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;
    props.message_id = amqp_cstring_bytes(message_id);
    if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(QUEUE_PENDING), 1, 0,
                           &props, amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
        goto out;
    for (;;) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame_noblock(conn, &f, &tv) != AMQP_STATUS_OK)
            break;
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            r = 0;
            break;
        }
        if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
            fprintf(stderr,
                    "correctomatic-submit: the queue %s does not exist (is the starter "
                    "running?)\n",
                    QUEUE_PENDING);
            break;
        }
        if (f.payload.method.id == AMQP_BASIC_NACK_METHOD)
            break;
    }
    if (r < 0)
        fprintf(stderr, "correctomatic-submit: the broker did not confirm the job\n");
out:
    if (conn) {
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(conn);
    }
    return r;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    int code = parse_args(argc, argv, &o);
    if (code >= 0)
        return code;
    char *remote = NULL;
    if (o.uploads && !(remote = upload(o.file, o.uploads)))
        return 1;
    const char *file = remote ? remote : o.file;

    int lfd = -1, port = 0;
    char host[256], cb[512];
    if (o.wait) {
        if ((lfd = listen_on(o.listen, host, sizeof(host), &port)) < 0) {
            free(remote);
            return 1;
        }
        if (!o.callback) {
            snprintf(cb, sizeof(cb), "http://%s:%d/correctomatic-submit",
                     strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, port);
            o.callback = cb;
        }
    }
    json_t *job = json_object();
    json_t *params = json_array();
    for (size_t i = 0; i < o.n_params; i++)
        json_array_append_new(params, json_string(o.params[i]));
    if (o.work_id)
        json_object_set_new(job, "work_id", json_string(o.work_id));
    json_object_set_new(job, "image", json_string(o.image));
    json_object_set_new(job, "file", json_string(file));
    json_object_set_new(job, "callback", json_string(o.callback));
    json_object_set_new(job, "params", params);
    char *body = json_dumps(job, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(job);
    free(remote);

    /* The same validation as the starter's, so a bad job is caught here. */
    struct pending_job pj;
    struct msg_error err;
    int r = msg_pending_parse(body, strlen(body), 1024 * 1024, &pj, &err);
    msg_pending_free(&pj);
    if (r < 0) {
        fprintf(stderr, "correctomatic-submit: %s - %s\n", err.reason, err.detail);
        free(body);
        if (lfd >= 0)
            close(lfd);
        return 2;
    }
    struct stat st;
    if (stat(file, &st) < 0)
        fprintf(stderr,
                "correctomatic-submit: note: %s is not visible here (fine if it is the "
                "starter's path)\n",
                file);
    char message_id[IDS_UUID_LEN + 1];
    ids_uuid_random(message_id);
    if (publish(body, message_id) < 0) {
        free(body);
        if (lfd >= 0)
            close(lfd);
        return 1;
    }
    printf("published to %s (message_id %s):\n%s\n", QUEUE_PENDING, message_id, body);
    fflush(stdout);
    free(body);
    if (!o.wait)
        return 0;

    fprintf(stderr, "waiting up to %d s for the callback on %s:%d ...\n", o.timeout_s, host, port);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += o.timeout_s;
    char *result = receive_one(lfd, &deadline);
    close(lfd);
    if (!result) {
        fprintf(stderr, "correctomatic-submit: no callback within %d s\n", o.timeout_s);
        return 3;
    }
    json_t *res = json_loads(result, 0, NULL);
    char *pretty = res ? json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    printf("callback received:\n%s\n", pretty ? pretty : result);
    bool success = res && json_is_true(json_object_get(res, "success"));
    free(pretty);
    json_decref(res);
    free(result);
    return success ? 0 : 1;
}
