#!/bin/sh
# Entrypoint wrapper of the compose `rabbitmq` service (see compose.yaml).
#
# RabbitMQ definition files cannot read environment variables, and the passwords live in .env.
# So this renders /etc/rabbitmq/definitions.json (the template mounted from
# compose/rabbitmq/definitions.json: users, permissions) into the file that load_definitions
# points at, replacing each ${NAME} with the JSON-escaped value of the environment variable
# NAME, and "@QUEUES@" with the pipeline's queues, then hands over to the image's own
# entrypoint. Definitions accept a plain "password" (RabbitMQ hashes it on import), so no
# hashing tool is needed here.
#
# The queues, with the arguments the daemons declare them with (common/qtype.h; the
# application user may not configure, so the daemons declare passively and these must exist):
#   pending_corrections, finished_corrections, each running queue (RUNNING_QUEUES: every
#   Docker host's RUNNING_QUEUE, comma-separated; default running_corrections; each
#   dead-lettered to running_corrections.lost, where a completer reports a lost host's jobs),
#   running_corrections.lost, each with its <name>.invalid; failed_callbacks; the notifier's
#   retry queues
#   finished_corrections.retry.<ms>ms, one per delay of CALLBACK_RETRY_DELAYS (default
#   5s,30s,2m,10m,30m,1h,3h), with that TTL and dead-lettered back to finished_corrections.
# QUEUE_TYPE=quorum (default classic) makes them quorum queues: the work queues with
# x-delivery-limit (QUEUE_DELIVERY_LIMIT, default 20) dead-lettered to <name>.invalid, every
# dead-lettering at least once. A queue that exists already keeps its type and arguments
# (RabbitMQ does not change a queue on import): see the README to switch a deployment.
#
# CT_RENDER_ONLY=1 renders $CT_DEFINITIONS_TEMPLATE into $CT_DEFINITIONS_OUT and stops there
# (the test suite's check of this file).
set -eu

template=${CT_DEFINITIONS_TEMPLATE:-/etc/rabbitmq/definitions.json}
out=${CT_DEFINITIONS_OUT:-/etc/rabbitmq/correctomatic-definitions.json}

for v in RABBITMQ_ADMIN_USER RABBITMQ_ADMIN_PASSWORD RABBITMQ_USER RABBITMQ_PASSWORD; do
    eval "val=\${$v:-}"
    if [ -z "$val" ]; then
        echo "init.sh: $v is not set (see .env.example)" >&2
        exit 1
    fi
done
QUEUE_TYPE=${QUEUE_TYPE:-classic}
QUEUE_DELIVERY_LIMIT=${QUEUE_DELIVERY_LIMIT:-20}
RUNNING_QUEUES=${RUNNING_QUEUES:-running_corrections}
CALLBACK_RETRY_DELAYS=${CALLBACK_RETRY_DELAYS:-5s,30s,2m,10m,30m,1h,3h}
export QUEUE_TYPE QUEUE_DELIVERY_LIMIT RUNNING_QUEUES CALLBACK_RETRY_DELAYS

umask 077
awk '
function esc(s,    r, i, c) {
    r = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "\"")
            r = r "\\"
        r = r c
    }
    return r
}
function fail(msg) {
    print "init.sh: " msg > "/dev/stderr"
    failed = 1
    exit 1
}
# a queue name as the daemons take it (RUNNING_QUEUE): letters, digits and . _ - : only
function check_name(q) {
    if (q !~ /^[A-Za-z0-9._:-]+$/ || length(q) > 200 || q ~ /\.invalid$/)
        fail("invalid queue name \"" q "\" in RUNNING_QUEUES")
}
# a duration as the daemons read it: a number with ms, s (or none), m, min or h
function duration_ms(d,    n, u) {
    if (!match(d, /^[0-9]+/))
        fail("invalid duration \"" d "\" in CALLBACK_RETRY_DELAYS")
    n = substr(d, 1, RLENGTH) + 0
    u = substr(d, RLENGTH + 1)
    if (u == "" || u == "s") return n * 1000
    if (u == "ms") return n
    if (u == "m" || u == "min") return n * 60000
    if (u == "h") return n * 3600000
    fail("invalid duration \"" d "\" in CALLBACK_RETRY_DELAYS")
}
function queue(name, args) {
    nq++
    qs = qs (nq > 1 ? ",\n" : "") "    {\"name\": \"" name "\", \"vhost\": \"/\", \"durable\": true, " \
         "\"auto_delete\": false, \"arguments\": {" args "}}"
}
function sep(a, b) { return a == "" ? b : b == "" ? a : a ", " b }
# a work queue and its parking queue (common/qtype.h)
function work(name) {
    if (name in seen) return
    seen[name] = 1
    queue(name, quorum ? sep(qt, "\"x-delivery-limit\": " limit ", \"x-dead-letter-exchange\": \"\", " \
                                 "\"x-dead-letter-routing-key\": \"" name ".invalid\", " atleast) : "")
    queue(name ".invalid", quorum ? qt : "")
}
# a running queue: dead-lettered to running_corrections.lost (qtype_running_args), and its
# parking queue
function running(name) {
    if (name in seen) return
    seen[name] = 1
    lost = "\"x-dead-letter-exchange\": \"\", \"x-dead-letter-routing-key\": \"running_corrections.lost\""
    queue(name, quorum ? sep(qt, lost ", \"x-delivery-limit\": " limit ", " atleast) : lost)
    queue(name ".invalid", quorum ? qt : "")
}
BEGIN {
    type = ENVIRON["QUEUE_TYPE"]
    if (type != "classic" && type != "quorum")
        fail("QUEUE_TYPE=" type ": expected classic or quorum")
    quorum = type == "quorum"
    limit = ENVIRON["QUEUE_DELIVERY_LIMIT"]
    if (limit !~ /^[0-9]+$/ || limit + 0 < 1 || limit + 0 > 10000)
        fail("QUEUE_DELIVERY_LIMIT=" limit ": expected a number from 1 to 10000")
    limit += 0
    qt = "\"x-queue-type\": \"quorum\""
    atleast = "\"x-dead-letter-strategy\": \"at-least-once\", \"x-overflow\": \"reject-publish\""
    work("pending_corrections")
    n = split(ENVIRON["RUNNING_QUEUES"], rq, ",")
    for (i = 1; i <= n; i++) {
        gsub(/^[ \t]+|[ \t]+$/, "", rq[i])
        if (rq[i] == "") continue
        check_name(rq[i])
        running(rq[i])
    }
    work("running_corrections.lost")
    work("finished_corrections")
    queue("failed_callbacks", quorum ? qt : "") # parked callbacks: read by people, no limit
    n = split(ENVIRON["CALLBACK_RETRY_DELAYS"], d, ",")
    for (i = 1; i <= n; i++) {
        gsub(/^[ \t]+|[ \t]+$/, "", d[i])
        ms = duration_ms(d[i])
        if ((ms "") in delay) continue
        delay[ms ""] = 1
        queue("finished_corrections.retry." ms "ms",
              sep(quorum ? qt : "", "\"x-message-ttl\": " ms ", \"x-dead-letter-exchange\": \"\", " \
                  "\"x-dead-letter-routing-key\": \"finished_corrections\"" (quorum ? ", " atleast : "")))
    }
}
{
    line = $0; res = ""
    if (line ~ /"@QUEUES@"/) {
        sub(/"@QUEUES@"/, "[\n" qs "\n  ]", line)
        print line
        next
    }
    while (match(line, /\$\{[A-Z_]+\}/)) {
        name = substr(line, RSTART + 2, RLENGTH - 3)
        if (!(name in ENVIRON))
            fail(name " is not set")
        res = res substr(line, 1, RSTART - 1) esc(ENVIRON[name])
        line = substr(line, RSTART + RLENGTH)
    }
    print res line
}' "$template" >"$out.tmp"
# the server runs as the rabbitmq user; the file holds passwords: readable by it alone
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown rabbitmq:rabbitmq "$out.tmp"
fi
mv "$out.tmp" "$out"

[ "${CT_RENDER_ONLY:-0}" = 1 ] && exit 0

# A node of a cluster (compose.cluster.yaml): the Erlang cookie every node shares.
if [ -n "${RABBITMQ_CLUSTER_COOKIE:-}" ]; then
    cookie=/var/lib/rabbitmq/.erlang.cookie
    printf '%s' "$RABBITMQ_CLUSTER_COOKIE" >"$cookie"
    chmod 600 "$cookie"
    if [ "$(id -u)" = 0 ]; then
        chown rabbitmq:rabbitmq "$cookie"
    fi
    # A quorum queue gets members only on the nodes running when it is declared: at the first
    # boot node 1 imports the queues alone, and nodes 2 and 3 join afterwards. So once this
    # node runs (in the cluster, if it joins one), it adds itself to every quorum queue it is
    # not a member of; at later boots there is none and this does nothing. In the background,
    # beside the server; its lines go to the container's log.
    if [ "${1:-}" = rabbitmq-server ]; then
        (
            n=0
            until rabbitmq-diagnostics -q check_running >/dev/null 2>&1; do
                n=$((n + 1))
                [ $n -le 120 ] || { echo "init.sh: the node is not running after 10 min: no quorum queue grown" >&2; exit 0; }
                sleep 5
            done
            self=${RABBITMQ_NODENAME:-rabbit@$(cat /proc/sys/kernel/hostname)}
            if rabbitmq-queues -q grow "$self" all >/dev/null 2>&1; then
                echo "init.sh: $self is a member of every quorum queue"
            else
                echo "init.sh: rabbitmq-queues grow $self all failed: quorum queues may lack this node" >&2
            fi
        ) &
    fi
fi
exec docker-entrypoint.sh "$@"
