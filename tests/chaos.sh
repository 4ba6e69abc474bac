#!/usr/bin/env bash
# chaos.sh: the chaos test (tests/integration/test_chaos.c) alone, with as many jobs as asked.
# As root (it runs its own dockerd and RabbitMQ node, like tests/run.sh):
#
#   sudo tests/chaos.sh [--jobs N] [--asan] [--keep]
#
# The test command (tests/run.sh) runs the short version (100 jobs, about two minutes on an
# idle 2-core machine); `--jobs 1000` is the long one whose figures are in docs/CHAOS.md.
# While the jobs are published (one every 0.5 s) the harness injects a fault every 6 s, in
# turn: SIGKILL the starter, SIGKILL the completer, stop and start the RabbitMQ application,
# SIGKILL the notifier, restart dockerd. It then checks that no job was lost, nothing is stuck,
# no container is left, duplicates carry the same webhook-id and body, and no infrastructure
# fault reached a caller as the job's failure. The figures are printed on a line "chaos: jobs=".
#
# Options
#   --jobs N   number of jobs (default 1000)
#   --asan     run the build-asan/ binaries (built with -DCT_SANITIZE=ON)
#   --keep     leave the servers running (see tests/run.sh --keep)
# With CT_SERVERS_DIR set to the folder of running servers (tests/run.sh --keep), they are
# reused and left running.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
SERVERS=$ROOT/tests/servers.sh
jobs=1000 dir=build keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --jobs) [ $# -ge 2 ] || { echo "chaos.sh: --jobs needs a number" >&2; exit 2; }; jobs=$2; shift ;;
    --asan) dir=build-asan ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "chaos.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$jobs" in '' | *[!0-9]*) echo "chaos.sh: --jobs needs a number" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "chaos.sh: must run as root" >&2; exit 1; }

reuse=0 started=0
if [ -n "${CT_SERVERS_DIR:-}" ] && [ -f "$CT_SERVERS_DIR/env" ] && "$SERVERS" status >/dev/null 2>&1; then
    reuse=1
else
    CT_SERVERS_DIR=$(mktemp -d /tmp/ct-chaos.XXXXXX)
fi
export CT_SERVERS_DIR
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ $reuse = 0 ] && [ $started = 1 ]; then
        if [ $keep = 1 ]; then
            echo "chaos.sh: servers left running: source $CT_SERVERS_DIR/env" >&2
        else
            "$SERVERS" stop || echo "chaos.sh: WARNING: stopping the servers failed" >&2
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ $reuse = 0 ]; then
    started=1
    "$SERVERS" start >"$CT_SERVERS_DIR/start.log" 2>&1 </dev/null || { cat "$CT_SERVERS_DIR/start.log" >&2; exit 1; }
fi
extra=()
[ "$dir" = build-asan ] && extra=(-DCT_SANITIZE=ON)
cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" >/dev/null
cmake --build "$ROOT/$dir" -j2 >/dev/null
# shellcheck disable=SC1091
source "$CT_SERVERS_DIR/env"
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "chaos.sh: $jobs jobs, binaries of $dir/, servers in $CT_SERVERS_DIR" >&2
CT_CHAOS_JOBS=$jobs "$ROOT/$dir/tests/it_test_chaos"
