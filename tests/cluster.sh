#!/usr/bin/env bash
# cluster.sh: a private three-node RabbitMQ cluster for the tests (#15). Each node is a
# tests/servers.sh folder of its own ($CT_CLUSTER_DIR/node<N>, servers.sh start-rabbitmq: its
# own node name, ports and data), joined to node 1 with rabbitmqctl join_cluster.
#
#   CT_CLUSTER_DIR=/tmp/x tests/cluster.sh ACTION [N]
#
# Actions
#   start         start the three nodes (at once), join 2 and 3 to 1, write $CT_CLUSTER_DIR/env:
#                 CT_CLUSTER_HOSTS (127.0.0.1:port,... for RABBITMQ_HOST), and for each node N
#                 CT_CLUSTER_PORT_N, CT_CLUSTER_MGMT_PORT_N
#   stop          stop the nodes, remove $CT_CLUSTER_DIR
#   node-stop N   rabbitmqctl stop_app on node N: its listeners close, its queue replicas stop
#   node-start N  start_app again, wait until AMQP and management answer
#   env           print the env file
# Like servers.sh, it never touches a server it did not start (pids and names of its folders).
set -euo pipefail

SERVERS=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/servers.sh
die() { echo "cluster.sh: $*" >&2; exit 1; }
[ -n "${CT_CLUSTER_DIR:-}" ] || die "CT_CLUSTER_DIR is not set"
C=$(readlink -f "$CT_CLUSTER_DIR")
node() { CT_SERVERS_DIR=$C/node$1 "$SERVERS" "${@:2}"; }
state() { cat "$C/node$1/state/$2"; }

action=${1:-}
case "$action" in
start)
    [ "$(id -u)" = 0 ] || die "must run as root"
    mkdir -p "$C"
    t0=$(date +%s%N)
    pids=()
    for i in 1 2 3; do
        node "$i" start-rabbitmq >"$C/start-$i.log" 2>&1 </dev/null &
        pids+=($!)
    done
    for i in 1 2 3; do
        wait "${pids[$((i - 1))]}" || { cat "$C/start-$i.log" >&2; die "node $i did not start"; }
    done
    first=$(state 1 rabbitmq_node)
    for i in 2 3; do
        node "$i" rabbitmqctl -q stop_app >/dev/null
        node "$i" rabbitmqctl -q join_cluster "$first" >/dev/null || die "node $i cannot join $first"
        node "$i" rabbitmq-start-app
    done
    running=$(node 1 rabbitmqctl -q cluster_status --formatter json |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')
    [ "$running" = 3 ] || die "the cluster has $running running nodes, not 3"
    {
        hosts=""
        for i in 1 2 3; do
            hosts="$hosts${hosts:+,}127.0.0.1:$(state "$i" rabbitmq_port)"
            echo "export CT_CLUSTER_PORT_$i='$(state "$i" rabbitmq_port)'"
            echo "export CT_CLUSTER_MGMT_PORT_$i='$(state "$i" rabbitmq_mgmt_port)'"
        done
        echo "export CT_CLUSTER_HOSTS='$hosts'"
        echo "export CT_CLUSTER='$(readlink -f "${BASH_SOURCE[0]}")'"
        echo "export CT_CLUSTER_DIR='$C'"
    } >"$C/env.new"
    mv "$C/env.new" "$C/env"
    echo "cluster.sh: three nodes joined in $((($(date +%s%N) - t0) / 1000000)) ms; source $C/env" >&2
    ;;
stop)
    [ -d "$C" ] || exit 0
    for i in 1 2 3; do
        [ -d "$C/node$i" ] && node "$i" stop &
    done
    wait || true
    rm -rf "$C"
    ;;
node-stop)
    [ -n "${2:-}" ] || die "node-stop N"
    node "$2" rabbitmq-stop-app
    ;;
node-start)
    [ -n "${2:-}" ] || die "node-start N"
    node "$2" rabbitmq-start-app
    ;;
env)
    cat "$C/env"
    ;;
*)
    die "unknown action '${action}' (start, stop, node-stop N, node-start N, env)"
    ;;
esac
