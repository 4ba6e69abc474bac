#!/usr/bin/env bash
# run.sh: THE benchmark command of correctomatic. As root (it runs a Docker engine and a
# RabbitMQ node of its own, through tests/servers.sh):
#
#   sudo bench/run.sh [--quick] [--runs N] [--jobs N] [--only LIST] [--ways LIST] [--original DIR]
#                     [--cpu-split] [--no-install]
#
#  1. installs the Debian packages it needs when some are missing (those of tests/run.sh, and
#     python3-matplotlib for the plots, redis-server for the original correctomatic)
#  2. builds build-bench/ (Release): the daemons, ct-bench-baseline and ct-bench-load
#  3. starts private servers in a temporary folder (tests/servers.sh start, test images)
#  4. runs bench/bench.py: throughput, latency, notifier, scale, profile (where the engine's time
#     goes, bench/profile.py), modes (the pipeline in each EXERCISE_MODE beside docker run),
#     original (with --original: the original correctomatic beside docker run and the pipeline
#     with its settings, in the same round-robin as modes)
#  5. writes docs/BENCHMARKS.md, docs/bench-*.png, docs/bench-results.json
#  6. stops the servers it started, whatever happened
#
# Options
#   --quick       a smoke pass (1 run, small counts), about a minute
#   --runs N      runs per figure (default 3)
#   --jobs N      throughput jobs per run (default 100; the issue's figure is 500)
#   --only LIST   some of throughput,latency,notifier,scale,profile,modes,original
#                 (comma-separated; default all, original only with --original)
#   --ways LIST   with modes/original: only these ways (names as in docs/bench-results.json,
#                 comma-separated), e.g. --only modes --ways baseline_bind,pipeline_bind
#   --original DIR  a checkout of the original correctomatic (github.com/correctomatic/
#                 correction-runner; default $CT_ORIGINAL_DIR): copied to a scratch folder, its
#                 dependencies installed there with npm (node and npm needed), run against a
#                 private redis-server. Nothing of it is kept. E.g.
#                 sudo bench/run.sh --only modes,original --original ~/correction-runner
#   --cpu-split   with modes/original: split each batch's CPU by who used it (the engine, the
#                 corrections, RabbitMQ, our daemons, the client, bench.py, the rest), through
#                 cpuacct groups of cgroup v1 made for the run and removed after it
#   --no-install  do not check or install packages
#   -h, --help
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
SERVERS=$ROOT/tests/servers.sh
BUILD=${CT_BENCH_BUILD:-$ROOT/build-bench}
PACKAGES=(build-essential cmake pkg-config librabbitmq-dev libcurl4-openssl-dev libssl-dev
          libjansson-dev libuv1-dev libarchive-dev libh2o-dev libcmocka-dev rabbitmq-server docker.io
          busybox-static curl ca-certificates python3 python3-matplotlib
          redis-server)

install=1 args=() cmdline="sudo bench/run.sh"
while [ $# -gt 0 ]; do
    case "$1" in
    --no-install) install=0 ;;
    --quick) args+=(--quick); cmdline+=" --quick" ;;
    --cpu-split) args+=(--cpu-split); cmdline+=" --cpu-split" ;;
    --runs | --jobs | --only | --ways | --original)
        [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
        v=$2
        [ "$1" != --original ] || v=$(readlink -f "$2")
        args+=("$1" "$v"); cmdline+=" $1 $2"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

T0=$(date +%s)
log() { echo "run.sh: [$(($(date +%s) - T0))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it runs its own dockerd and rabbitmq): sudo bench/run.sh"

# shellcheck source=tests/packages.sh
. "$ROOT/tests/packages.sh"
[ $install = 0 ] || install_missing_packages "${PACKAGES[@]}"

log "building $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCT_TESTS=OFF -DCT_BENCH=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target correctomatic-starter correctomatic-completer \
    correctomatic-notifier ct-bench-baseline ct-bench-load >/dev/null

export CT_SERVERS_DIR
CT_SERVERS_DIR=$(mktemp -d /tmp/ct-bench.XXXXXX)
OUT=$(mktemp -d /tmp/ct-bench-out.XXXXXX)
cleanup() {
    log "stopping the servers"
    "$SERVERS" stop || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "starting private servers in $CT_SERVERS_DIR"
"$SERVERS" start
# shellcheck disable=SC1091
. "$CT_SERVERS_DIR/env"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log "benchmarks (logs in $OUT/logs)"
python3 "$ROOT/bench/bench.py" --bin "$BUILD/bin" --out "$OUT" --docs "$ROOT/docs" \
    --cmdline "$cmdline" ${args[@]+"${args[@]}"}
log "done: $ROOT/docs/BENCHMARKS.md"
