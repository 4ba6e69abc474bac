#!/usr/bin/env bash
# cluster.sh: what #15's multi-host deployment costs, on this machine. As root (it runs its own
# servers through tests/servers.sh and tests/cluster.sh):
#
#   sudo bench/cluster.sh [--runs N] [--jobs N]
#
# 1. builds build-bench/ (Release): the daemons and ct-bench-load
# 2. starts a private engine (host A: tests/servers.sh start), a second one (host B:
#    servers.sh start-docker in its folder) and a three-node RabbitMQ cluster (tests/cluster.sh)
# 3. the broker's cost per job, classic against quorum queues: N trivial jobs (ct-ok) through
#    the three daemons on the cluster (RABBITMQ_HOST lists the nodes), MAX_RUNNING=6; the
#    nodes' CPU (utime + stime of the three beam processes) over the batch, less their idle
#    rate measured just before (5 s), per job; the queues are deleted between runs, the two
#    types alternate
# 4. one Docker host against two: the same batch on quorum queues with host A alone
#    (MAX_RUNNING=4), then with host A and host B (4 each, their own RUNNING_QUEUE); both
#    engines share this machine's cores, so the ratio says what a second host costs in
#    coordination more than what it would add on a machine of its own
# 5. prints the medians; stops everything it started
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD=${CT_BENCH_BUILD:-$ROOT/build-bench}
runs=3 jobs=150
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "cluster.sh: run as root" >&2; exit 1; }

log() { echo "bench/cluster.sh: $*" >&2; }
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCT_TESTS=OFF -DCT_BENCH=ON >/dev/null
cmake --build "$BUILD" -j2 --target correctomatic-starter correctomatic-completer \
    correctomatic-notifier ct-bench-load >/dev/null
BIN=$BUILD/bin

S=$(mktemp -d /tmp/ct-bench-cluster.XXXXXX)
B=$S/hostb C=$S/cluster
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    CT_SERVERS_DIR=$S "$ROOT/tests/servers.sh" stop # also the cluster and host B, in $S
}
trap cleanup EXIT
log "starting the servers in $S"
CT_SERVERS_DIR=$S "$ROOT/tests/servers.sh" start >"$S.start.log" 2>&1
CT_SERVERS_DIR=$B "$ROOT/tests/servers.sh" start-docker >>"$S.start.log" 2>&1
CT_CLUSTER_DIR=$C "$ROOT/tests/cluster.sh" start >>"$S.start.log" 2>&1
# shellcheck disable=SC1091
source "$C/env"
HOST_A=unix://$S/docker/docker.sock
HOST_B=unix://$B/docker/docker.sock
mkdir -p "$S/x" && echo x >"$S/x/job.txt" && chmod -R a+rX "$S/x"

beam_cpu() { # the cluster's beam processes, CPU seconds so far
    local t=0 i pid
    for i in 1 2 3; do
        pid=$(cat "$C/node$i/rabbitmq/rabbitmq.pid")
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$t" # clock ticks
}

delete_queues() {
    CT_CLUSTER_DIR=$C "$ROOT/tests/cluster.sh" env >/dev/null
    local q
    for q in $(CT_SERVERS_DIR=$C/node1 "$ROOT/tests/servers.sh" rabbitmqctl -q list_queues name 2>/dev/null | tail -n +2); do
        CT_SERVERS_DIR=$C/node1 "$ROOT/tests/servers.sh" rabbitmqctl -q delete_queue "$q" >/dev/null
    done
}

# daemon NAME PROGRAM ENV...: started in the background, logging to $S/NAME.log
daemon() {
    local name=$1 prog=$2; shift 2
    env -i PATH=/usr/bin:/bin RABBITMQ_HOST="$CT_CLUSTER_HOSTS" EXERCISE_DIR="$S/x" \
        LOG_LEVEL=info HEALTH_FILE="$S/$name.health" "$@" "$BIN/correctomatic-$prog" \
        >"$S/$name.log" 2>&1 &
    pids+=($!)
}
wait_line() { # file text
    local n=600
    until grep -q "$2" "$1" 2>/dev/null; do
        n=$((n - 1)); [ $n -gt 0 ] || { tail "$1" >&2; log "no '$2' in $1"; exit 1; }
        sleep 0.1
    done
}
stop_daemons() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}

# run TYPE HOSTS: prints "jobs_per_s cpu_ms_per_job"
run() {
    local type=$1 hosts=$2
    delete_queues
    daemon notifier notifier QUEUE_TYPE="$type"
    daemon starter-a starter QUEUE_TYPE="$type" DOCKER_HOST="$HOST_A" MAX_RUNNING=$([ "$hosts" = 1 ] && echo 6 || echo 4) \
        RUNNING_QUEUE=running_corrections.host-a
    daemon completer-a completer QUEUE_TYPE="$type" DOCKER_HOST="$HOST_A" RUNNING_QUEUE=running_corrections.host-a
    wait_line "$S/starter-a.log" "connected to RabbitMQ"
    if [ "$hosts" = 2 ]; then
        daemon starter-b starter QUEUE_TYPE="$type" DOCKER_HOST="$HOST_B" MAX_RUNNING=4 \
            RUNNING_QUEUE=running_corrections.host-b
        daemon completer-b completer QUEUE_TYPE="$type" DOCKER_HOST="$HOST_B" RUNNING_QUEUE=running_corrections.host-b
        wait_line "$S/starter-b.log" "connected to RabbitMQ"
        wait_line "$S/completer-b.log" "connected to RabbitMQ"
    fi
    wait_line "$S/completer-a.log" "connected to RabbitMQ"
    wait_line "$S/notifier.log" "connected to RabbitMQ"
    # the nodes' own background work (statistics, Raft ticks), subtracted below: 5 s idle
    local i0 i1 c0 out c1
    i0=$(beam_cpu); sleep 5; i1=$(beam_cpu)
    c0=$(beam_cpu)
    out=$(RABBITMQ_HOST="$CT_CLUSTER_HOSTS" QUEUE_TYPE="$type" "$BIN/ct-bench-load" --mode pipeline \
        --jobs "$jobs" --image ct-ok:latest --file "$S/x/job.txt" --timeout 900)
    c1=$(beam_cpu)
    stop_daemons
    python3 -c 'import json,sys,os
r = json.loads(sys.argv[1]); hz = os.sysconf("SC_CLK_TCK")
c0, c1, i0, i1, n = (int(x) for x in sys.argv[2:7])
idle = (i1 - i0) / 5.0 * r["seconds"]
print("%.3f %.2f" % (r["per_s"], max(0.0, c1 - c0 - idle) * 1000.0 / hz / n))' \
        "$out" "$c0" "$c1" "$i0" "$i1" "$jobs"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A per_s cpu
for ((r = 1; r <= runs; r++)); do
    for cfg in classic:1 quorum:1 quorum:2; do
        type=${cfg%:*} hosts=${cfg#*:}
        read -r ps cm <<<"$(run "$type" "$hosts")"
        log "run $r $type, $hosts host(s): $ps jobs/s, broker $cm ms CPU per job"
        per_s[$cfg]+="$ps "
        cpu[$cfg]+="$cm "
    done
done
echo "| queues, hosts | jobs/s (median of $runs) | broker CPU ms per job (3 nodes) |"
echo "|---|---|---|"
for cfg in classic:1 quorum:1 quorum:2; do
    echo "| ${cfg%:*}, ${cfg#*:} | $(tr ' ' '\n' <<<"${per_s[$cfg]}" | grep . | median) | $(tr ' ' '\n' <<<"${cpu[$cfg]}" | grep . | median) |"
done
