#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets of tests/fuzz/ with clang into build-fuzz/ and runs each
# for a fixed time, starting from its committed seed corpus (tests/fuzz/corpus/<target>/).
#
#   tests/fuzz.sh [--seconds N] [--parallel P] [--work DIR] [--no-install] [TARGET...]
#
# Options
#   --seconds N   fuzzing time per target (default 600)
#   --parallel P  targets fuzzed at once, one process each (default 1; the CPU may be shared)
#   --work DIR    scratch folder (default /tmp/ct-fuzz): DIR/<target>/corpus keeps the new
#                 inputs the fuzzer found (reused by the next run: the search goes on where it
#                 stopped), DIR/<target>/findings the crashing, leaking or slow inputs,
#                 DIR/<target>/log the fuzzer's output, DIR/<target>/cpu-ledger the CPU seconds
#                 of every run (the table's total-cpu)
#   --no-install  do not check or install clang (apt-get, non-interactive, when missing)
#   TARGET...     only these targets (names of tests/fuzz/*.c, e.g. msg_pending canon)
#   -h, --help
#
# Prints, for each target, the executions, the new corpus entries and the findings, with the
# first lines of each report; the exit status is 1 when anything was found. A finding reproduces
# with build-fuzz/fuzz/fuzz_<target> <file>; once fixed, copy the file into
# tests/fuzz/corpus/<target>/ (named regress-...): the normal build's ctest test fuzz/<target>
# replays every seed, so it stays fixed.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD=${CT_FUZZ_BUILD:-$ROOT/build-fuzz} # the build folder (default build-fuzz/)
PACKAGES=(clang libclang-rt-dev cmake pkg-config librabbitmq-dev libcurl4-openssl-dev libssl-dev
          libjansson-dev libuv1-dev libarchive-dev libh2o-dev)

seconds=600 parallel=1 work=/tmp/ct-fuzz install=1 targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift ;;
    --parallel) parallel=${2:?--parallel needs a number}; shift ;;
    --work) work=${2:?--work needs a folder}; shift ;;
    --no-install) install=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
    esac
    shift
done
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz.sh: --seconds must be a positive number" >&2; exit 2; }
[[ $parallel =~ ^[0-9]+$ && $parallel -gt 0 ]] || { echo "fuzz.sh: --parallel must be a positive number" >&2; exit 2; }

T0=$(date +%s)
log() { echo "fuzz.sh: [$(($(date +%s) - T0))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ ${#targets[@]} -eq 0 ]; then
    for f in "$ROOT"/tests/fuzz/*.c; do
        t=$(basename "$f" .c)
        [ "$t" = replay ] || targets+=("$t")
    done
fi
for t in "${targets[@]}"; do
    [ -f "$ROOT/tests/fuzz/$t.c" ] || die "no target $t (tests/fuzz/$t.c)"
done

if [ $install = 1 ]; then
    [ "$(id -u)" = 0 ] || die "installing packages needs root (or pass --no-install)"
    # shellcheck source=tests/packages.sh
    . "$ROOT/tests/packages.sh"
    install_missing_packages "${PACKAGES[@]}"
fi
command -v clang >/dev/null || die "clang is not installed"

log "building $BUILD/"
CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCT_FUZZ=ON \
    >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log" >&2; die "configuring $BUILD/ failed"; }
rm -f "$BUILD.configure.log"
cmake --build "$BUILD" -j2 --target "${targets[@]/#/fuzz_}" >/dev/null || {
    cmake --build "$BUILD" -j1 --target "${targets[@]/#/fuzz_}" 2>&1 | grep -E 'error|Error' | head -20 >&2
    die "building $BUILD/ failed"
}

# Inputs the targets read whole: larger bounds (messages up to the size limits) need more.
max_len() {
    case "$1" in
    msg_* | output_* | canon | docker_*) echo 20000 ;;
    *) echo 4096 ;;
    esac
}

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

fuzz_one() { # target
    local t=$1 dir=$work/$1
    mkdir -p "$dir/corpus" "$dir/findings"
    touch "$dir/started"
    local rc=0
    "$BUILD/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$dir/findings/" \
        "$dir/corpus" "$ROOT/tests/fuzz/corpus/$t" >"$dir/log" 2>&1 </dev/null || rc=$?
    echo $rc >"$dir/rc"
    # the fuzzer's CPU time (this subshell's children: user and system), also added to a
    # ledger in the scratch folder, which outlives the run
    local cpu
    times >"$dir/times" # not in a pipe: a forked shell would count none of these children
    cpu=$(tail -1 "$dir/times" | awk '{ for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } } END { printf "%.1f", s }')
    echo "$cpu" >"$dir/cpu"
    echo "$(date -u +%FT%TZ) $seconds $cpu" >>"$dir/cpu-ledger"
}

log "fuzzing ${#targets[@]} target(s), ${seconds}s each, $parallel at a time; scratch in $work"
mkdir -p "$work"
for t in "${targets[@]}"; do
    rm -f "$work/$t/rc"
    fuzz_one "$t" &
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
        wait -n || true
    done
done
wait

found=0 total_runs=0
printf '%-14s %10s %9s %7s %9s %6s %s\n' target execs exec/s cpu-s total-cpu "new" findings >&2
for t in "${targets[@]}"; do
    dir=$work/$t
    rc=$(cat "$dir/rc" 2>/dev/null || echo "?")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$dir/log" | tail -1)
    # this run's findings only (earlier ones stay in the folder until removed)
    mapfile -t findings < <(find "$dir/findings" -type f -newer "$dir/started" 2>/dev/null | sort)
    note=none
    if [ "$rc" != 0 ] || [ ${#findings[@]} -gt 0 ]; then
        found=1
        note="exit $rc: ${findings[*]:-(no input saved)}"
    fi
    total_runs=$((total_runs + ${runs:-0}))
    cpu=$(cat "$dir/cpu" 2>/dev/null || echo "?")
    total_cpu=$(awk '{ s += $3 } END { print s + 0 }' "$dir/cpu-ledger" 2>/dev/null || echo "?")
    printf '%-14s %10s %9s %7s %9s %6s %s\n' "$t" "${runs:-?}" "${speed:-?}" "$cpu" "$total_cpu" "${new:-?}" "$note" >&2
    if [ "$rc" != 0 ]; then
        # the report: the invariant or sanitizer line and the top of the stack
        grep -m1 -B2 -A14 -E '^==[0-9]+==ERROR|invariant failed|runtime error|^SUMMARY' "$dir/log" | sed 's/^/    /' >&2 || true
        echo "    full log: $dir/log" >&2
    fi
done
log "$([ $found = 0 ] && echo "no finding" || echo "FINDINGS"): ${#targets[@]} target(s) x ${seconds}s, $total_runs executions in $(($(date +%s) - T0))s"
exit $found
