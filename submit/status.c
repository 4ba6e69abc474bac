/* correctomatic-status: the pipeline on one screen, for an operator or a health check.
 *
 * For each queue the pipeline uses, a passive declare (no management plugin needed): the
 * messages ready in it and its consumers. The three stage queues need a consumer each (the
 * starter, the completer, the notifier); a parked message waits for an operator.
 *
 * For each daemon listed (STATUS_DAEMONS, --daemon: the METRICS_LISTEN address of each), its
 * GET /readyz and GET /metrics: which daemon and version, alive (it answered both), ready, its
 * uptime, memory and its stage's figures. A daemon that does not answer, answers something
 * that does not parse, or is not ready needs attention.
 *
 * Exit status: 0 healthy, 1 something needs attention (a stage queue without a consumer or
 * missing, a message parked, a daemon listed unreachable or not ready), 2 the broker cannot be
 * reached or the configuration is bad.
 *
 * A command-line tool apart from correctomatic-submit: it needs none of a job's arguments, and
 * a health check runs it alone. It blocks (bounded by timeouts: the daemons are asked all at
 * once, each request at most 5 s) and uses no event loop. This file holds the command and the
 * queues; status_daemons.c the daemons. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "names.h"
#include "schedule.h"
#include "status_daemons.h"

#define PROG "correctomatic-status"
#define MAX_QUEUES (8 + SCHEDULE_MAX)

enum role { STAGE, PARKED, RETRY };

struct queue {
    char name[128];
    enum role role;
    const char *consumer; /* STAGE: who consumes it */
    bool exists;
    uint32_t ready, consumers;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " [--json] [--watch [SECONDS]] [--daemon HOST:PORT]...\n\n"
               "The pipeline's queues: messages ready and consumers, through AMQP passive\n"
               "declares (no management plugin needed). Then, for each daemon listed, what its\n"
               "metrics address (METRICS_LISTEN) tells: which daemon and version, alive (it\n"
               "answered /readyz and /metrics), ready (/readyz, or why not), uptime, memory,\n"
               "and its stage's figures (running corrections, jobs taken, started, finished by\n"
               "outcome, callbacks in flight, delivered, parked).\n\n"
               "  --json             one JSON object instead of the tables\n"
               "  --watch [SECONDS]  refresh every SECONDS (default 2) until interrupted\n"
               "  --daemon HOST:PORT a daemon's metrics address; repeat it for each (shown after\n"
               "                     those of STATUS_DAEMONS; at most 32 in all)\n\n"
               "Exit status: 0 healthy; 1 a stage queue has no consumer or is missing, a message\n"
               "is parked, or a daemon listed does not answer (or not as it should) or is not\n"
               "ready; 2 RabbitMQ cannot be reached or the configuration is bad.\n"
               "Settings: RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_USER, RABBITMQ_PASSWORD,\n"
               "RABBITMQ_VHOST as for the daemons; RUNNING_QUEUE (default running_corrections)\n"
               "and CALLBACK_RETRY_DELAYS (the notifier's retry queues) when not the defaults;\n"
               "STATUS_DAEMONS (default empty: no daemon is asked), the daemons' metrics\n"
               "addresses, comma-separated: starter:9100,completer:9100,notifier:9100.\n"
               "A daemon is asked GET /readyz and GET /metrics, all daemons at once: 2 s to\n"
               "connect, 5 s in all, answers up to 4 MiB.\n"
               "(Unacked messages are not told by AMQP: the management UI has them.)\n");
}

static void add(struct queue *q, size_t *n, const char *name, enum role role, const char *who)
{
    snprintf(q[*n].name, sizeof(q[*n].name), "%s", name);
    q[*n].role = role;
    q[*n].consumer = who;
    (*n)++;
}

/* The queues of this deployment, from the same settings as the daemons'. */
static int list_queues(struct queue *q, size_t *n, struct ct_error *e)
{
    const char *running, *delays;
    struct schedule sched;
    if (config_str("RUNNING_QUEUE", QUEUE_RUNNING, &running, e) < 0 ||
        config_str("CALLBACK_RETRY_DELAYS", "5s,30s,2m,10m,30m,1h,3h", &delays, e) < 0)
        return -EINVAL;
    if (strlen(running) > 100) {
        ct_error_set(e, -EINVAL, "invalid RUNNING_QUEUE: over 100 bytes");
        return -EINVAL;
    }
    if (schedule_parse(delays, &sched) < 0) {
        ct_error_set(e, -EINVAL, "invalid CALLBACK_RETRY_DELAYS");
        return -EINVAL;
    }
    char invalid[128];
    *n = 0;
    add(q, n, QUEUE_PENDING, STAGE, "starter");
    add(q, n, running, STAGE, "completer");
    add(q, n, QUEUE_FINISHED, STAGE, "notifier");
    add(q, n, QUEUE_PENDING_INVALID, PARKED, NULL);
    snprintf(invalid, sizeof(invalid), "%s.invalid", running);
    add(q, n, invalid, PARKED, NULL);
    add(q, n, QUEUE_FINISHED_INVALID, PARKED, NULL);
    add(q, n, QUEUE_FAILED_CALLBACKS, PARKED, NULL);
    for (size_t i = 0; i < sched.n; i++) {
        char name[128];
        snprintf(name, sizeof(name), QUEUE_RETRY_FMT, (unsigned long long)sched.delays_ms[i]);
        bool seen = false; /* a delay given twice is one queue */
        for (size_t j = 0; j < *n; j++)
            seen = seen || strcmp(q[j].name, name) == 0;
        if (!seen)
            add(q, n, name, RETRY, NULL);
    }
    return 0;
}

/* Connects, and declares each queue passively on a channel of its own (a missing queue closes
 * its channel). 0, or -1 with the reason on stderr. */
static int read_queues(const struct amqp_link_config *c, struct queue *q, size_t n)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    struct timeval tv = {.tv_sec = 5};
    int r = -1;
    char at[600];
    if (!sock || amqp_link_open_socket(sock, c, &tv, at, sizeof(at)) < 0) {
        fprintf(stderr, PROG ": cannot connect to RabbitMQ: %s\n", sock ? at : "out of memory");
        goto out;
    }
    if (amqp_set_rpc_timeout(conn, &tv) != AMQP_STATUS_OK)
        goto out;
    amqp_table_entry_t name = {.key = amqp_cstring_bytes("connection_name"),
                               .value = {.kind = AMQP_FIELD_KIND_UTF8}};
    name.value.value.bytes = amqp_cstring_bytes(c->connection_name ? c->connection_name : PROG);
    amqp_table_t props = {.num_entries = 1, .entries = &name};
    if (amqp_login_with_properties(conn, c->vhost, 0, 131072, 0, &props, AMQP_SASL_METHOD_PLAIN,
                                   c->user, c->password)
            .reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, PROG ": RabbitMQ refused the login of %s\n", c->user);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        amqp_channel_t ch = (amqp_channel_t)(i + 1);
        amqp_channel_open(conn, ch);
        if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
            fprintf(stderr, PROG ": cannot open a channel\n");
            goto out;
        }
        amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, ch, amqp_cstring_bytes(q[i].name), 1,
                                                         0, 0, 0, amqp_empty_table);
        amqp_rpc_reply_t rep = amqp_get_rpc_reply(conn);
        q[i].exists = ok && rep.reply_type == AMQP_RESPONSE_NORMAL;
        if (q[i].exists) {
            q[i].ready = ok->message_count;
            q[i].consumers = ok->consumer_count;
            amqp_channel_close(conn, ch, AMQP_REPLY_SUCCESS);
        } else if (rep.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
                   rep.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            /* 404: the broker closed the channel; say we saw it */
            amqp_channel_close_ok_t close_ok = {0};
            if (amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok) !=
                AMQP_STATUS_OK)
                goto out;
        } else {
            fprintf(stderr, PROG ": no answer to the declare of %s\n", q[i].name);
            goto out;
        }
    }
    r = 0;
out:
    if (conn) {
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(conn);
    }
    return r;
}

/* ---- the output ------------------------------------------------------------------------- */

/* Why the queue needs attention, or NULL. */
static const char *problem(const struct queue *q)
{
    if (q->role == STAGE && !q->exists)
        return "missing";
    if (q->role == STAGE && q->consumers == 0)
        return "no consumer";
    if (q->role == PARKED && q->exists && q->ready > 0)
        return "messages parked";
    return NULL;
}

static bool print(const struct queue *q, size_t n, const struct status_daemons *sd, bool as_json)
{
    bool healthy = status_daemons_healthy(sd);
    for (size_t i = 0; i < n; i++)
        healthy = healthy && !problem(&q[i]);
    if (as_json) {
        json_t *root = json_pack("{s:b, s:[]}", "healthy", healthy, "queues");
        json_t *list = json_object_get(root, "queues");
        for (size_t i = 0; i < n && root; i++) {
            static const char *const roles[] = {"stage", "parked", "retry"};
            json_t *o = json_pack("{s:s, s:s, s:b}", "name", q[i].name, "role", roles[q[i].role],
                                  "exists", q[i].exists);
            if (o && q[i].exists) {
                json_object_set_new(o, "ready", json_integer(q[i].ready));
                json_object_set_new(o, "consumers", json_integer(q[i].consumers));
            }
            if (o && q[i].consumer)
                json_object_set_new(o, "consumer", json_string(q[i].consumer));
            if (o && problem(&q[i]))
                json_object_set_new(o, "problem", json_string(problem(&q[i])));
            if (!o || json_array_append_new(list, o) < 0) {
                json_decref(root);
                root = NULL;
            }
        }
        if (root && status_daemons_count(sd) > 0 &&
            json_object_set_new(root, "daemons", status_daemons_json(sd)) < 0) {
            json_decref(root);
            root = NULL;
        }
        if (!root || json_dumpf(root, stdout, JSON_INDENT(1)) < 0) {
            fprintf(stderr, PROG ": out of memory\n");
            json_decref(root);
            return false;
        }
        json_decref(root);
        printf("\n");
    } else {
        printf("%-44s %8s %10s  %s\n", "queue", "ready", "consumers", "");
        for (size_t i = 0; i < n; i++) {
            const char *p = problem(&q[i]);
            char note[96] = "";
            if (p)
                snprintf(note, sizeof(note), "%s%s%s", p, q[i].consumer ? ": the " : "",
                         q[i].consumer ? q[i].consumer : "");
            if (q[i].exists)
                printf("%-44s %8u %10u  %s\n", q[i].name, q[i].ready, q[i].consumers, note);
            else
                printf("%-44s %8s %10s  %s\n", q[i].name, "-", "-", p ? note : "not declared yet");
        }
        status_daemons_print(sd);
        printf("%s\n", healthy ? "healthy" : "needs attention");
    }
    fflush(stdout);
    return healthy;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"watch", optional_argument, NULL, 'w'},
                                             {"daemon", required_argument, NULL, 'd'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bool as_json = false;
    long watch_s = 0;
    int c, code = 2;
    struct ct_error e = {0};
    struct status_daemons *sd = status_daemons_new();
    size_t n_opt = 0;
    const char *opt_daemons[STATUS_DAEMONS_MAX];
    if (!sd) {
        fprintf(stderr, PROG ": out of memory\n");
        return 2;
    }
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            as_json = true;
            break;
        case 'w': {
            const char *v = optarg                                      ? optarg
                            : (optind < argc && argv[optind][0] != '-') ? argv[optind++]
                                                                        : "2";
            char *end;
            watch_s = strtol(v, &end, 10);
            if (*end || watch_s < 1 || watch_s > 3600) {
                fprintf(stderr, PROG ": --watch takes 1 to 3600 seconds\n");
                goto out;
            }
            break;
        }
        case 'd': /* added after those of STATUS_DAEMONS */
            if (n_opt == STATUS_DAEMONS_MAX) {
                fprintf(stderr, PROG ": too many daemons (--daemon): at most %d\n",
                        STATUS_DAEMONS_MAX);
                goto out;
            }
            opt_daemons[n_opt++] = optarg;
            break;
        case 'h':
            usage(stdout);
            code = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        usage(stderr);
        goto out;
    }
    struct daemon_common common;
    struct queue q[MAX_QUEUES];
    size_t n = 0;
    const char *listed;
    if (daemon_load_common(&common, PROG, false, &e) < 0 || list_queues(q, &n, &e) < 0 ||
        config_str("STATUS_DAEMONS", "", &listed, &e) < 0 ||
        (listed[strspn(listed, " \t")] &&
         status_daemons_add(sd, listed, "STATUS_DAEMONS", &e) < 0)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        goto out;
    }
    for (size_t i = 0; i < n_opt; i++) {
        if (status_daemons_add(sd, opt_daemons[i], "--daemon", &e) < 0) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            goto out;
        }
    }
    if (status_daemons_prepare(sd) < 0) {
        fprintf(stderr, PROG ": cannot initialise libcurl\n");
        goto out;
    }
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            q[i].exists = false;
            q[i].ready = q[i].consumers = 0;
        }
        int r = read_queues(&common.amqp, q, n);
        if (r == 0)
            status_daemons_read(sd);
        if (watch_s) {
            printf("\033[H\033[2J");
            time_t now = time(NULL);
            char when[32];
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&now));
            printf("%s, every %ld s\n\n", when, watch_s);
        }
        bool healthy = r == 0 && print(q, n, sd, as_json);
        if (!watch_s) {
            code = r < 0 ? 2 : healthy ? 0 : 1;
            break;
        }
        sleep((unsigned)watch_s);
    }
out:
    status_daemons_free(sd);
    return code;
}
