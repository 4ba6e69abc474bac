#!/usr/bin/env bash
# run.sh: THE test command of correctomatic. As root (it runs a Docker engine and a RabbitMQ
# node of its own):
#
#   sudo tests/run.sh [--no-install] [--no-asan] [-R REGEX] [--keep] [--engine E]
#
#  1. installs the Debian packages it needs, when some are missing (apt-get, non-interactive)
#  2. builds build/ (RelWithDebInfo) and build-asan/ (-DCT_SANITIZE=ON)
#  3. starts private servers (tests/servers.sh) in a temporary folder, on free ports and a
#     private socket, and builds the test images (tests/images/build.sh)
#  4. runs ctest in build/ and in build-asan/ (leak detection on) side by side, each against a
#     set of servers of its own (most of a test's time is waiting for containers and messages;
#     --serial runs them one after the other on one set)
#  5. fuzzes each libFuzzer target of tests/fuzz/ for a short fixed time (tests/fuzz.sh, clang,
#     build-fuzz/; skipped with -R or --no-fuzz)
#  6. stops everything it started, whatever happened; exits non-zero if anything failed
#
# Options
#   --no-install  do not check or install packages
#   --no-asan     skip build-asan/
#   --no-fuzz     skip the fuzzing step (CT_FUZZ_SECONDS, default 12, is its time per target)
#   --serial      run the two builds' tests one after the other, on one set of servers
#   -R REGEX      only the tests whose name matches (passed to ctest -R), e.g. -R unit/
#   --keep        leave the servers running and print how to reuse them: a later run with
#                 CT_SERVERS_DIR set to that folder reuses them (and leaves them running)
#   --engine E    the container engine of the integration tests: docker (the default: a
#                 private dockerd), podman (a private `podman system service`, CT_ENGINE=podman
#                 of tests/servers.sh, in place of dockerd: the same steps), or both (docker as
#                 above, then build/'s engine tests again against a Podman set started then).
#                 Against Podman the tests run are the unit tests and the integration tests
#                 that use the engine (CT_PODMAN_TESTS, a ctest regex, says which; -R narrows
#                 it further). What differs on Podman and how it is handled: README, "Running
#                 against Podman"
#   -h, --help
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
SERVERS=$ROOT/tests/servers.sh
PACKAGES=(build-essential cmake pkg-config librabbitmq-dev libcurl4-openssl-dev libssl-dev
          libjansson-dev libuv1-dev libarchive-dev libh2o-dev libcmocka-dev rabbitmq-server docker.io prometheus
          busybox-static curl ca-certificates python3 docker-registry apache2-utils
          clang libclang-rt-dev iproute2 openssl)

install=1 asan=1 fuzz=1 keep=0 serial=0 regex="" engine=docker
# the tests run against Podman: the unit tests and the integration tests that use the engine
PODMAN_TESTS=${CT_PODMAN_TESTS:-'^(unit/.*|integration/test_(docker|starter|completer|e2e|chaos|corpus|registry|metrics|harness))$'}
while [ $# -gt 0 ]; do
    case "$1" in
    --engine) [ $# -ge 2 ] || { echo "run.sh: --engine needs docker, podman or both" >&2; exit 2; }; engine=$2; shift ;;
    --engine=*) engine=${1#--engine=} ;;
    --no-install) install=0 ;;
    --no-asan) asan=0 ;;
    --no-fuzz) fuzz=0 ;;
    --keep) keep=1 ;;
    --serial) serial=1 ;;
    -R) [ $# -ge 2 ] || { echo "run.sh: -R needs a regex" >&2; exit 2; }; regex=$2; shift ;;
    -R*) regex=${1#-R} ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$engine" in
docker | podman | both) ;;
*) echo "run.sh: --engine must be docker, podman or both (not '$engine')" >&2; exit 2 ;;
esac
# --engine podman: every set of servers is a Podman one
[ "$engine" != podman ] || export CT_ENGINE=podman

T0=$(date +%s)
log() { echo "run.sh: [$(($(date +%s) - T0))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it runs its own dockerd and rabbitmq): sudo tests/run.sh"

# ---------------------------------------------------------------------------------- packages

# Podman (Debian 12: 4.3) with the network backend servers.sh configures
[ "$engine" = docker ] || PACKAGES+=(podman netavark aardvark-dns conmon)

# shellcheck source=tests/packages.sh
. "$ROOT/tests/packages.sh"
[ $install = 0 ] || install_missing_packages "${PACKAGES[@]}"

# ---------------------------------------------------------------------------------- servers

reuse=0 start_pid="" started=0 dir_b="" start_pid_b="" pid_a="" pid_b="" dir_p=""
if [ -n "${CT_SERVERS_DIR:-}" ] && [ -f "$CT_SERVERS_DIR/env" ] && "$SERVERS" status >/dev/null 2>&1; then
    reuse=1
    log "reusing the servers in $CT_SERVERS_DIR"
else
    CT_SERVERS_DIR=$(mktemp -d /tmp/ct-test.XXXXXX)
fi
export CT_SERVERS_DIR

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    # the two test passes run in process groups of their own: stop them with what they started
    local g
    for g in $pid_a $pid_b; do
        kill -TERM -- "-$g" 2>/dev/null && log "stopping the tests in process group $g"
    done
    [ -z "$pid_a$pid_b" ] || wait $pid_a $pid_b 2>/dev/null
    if [ -n "$start_pid" ]; then
        # let a start in progress finish (it is bounded) so that stop knows every pid
        wait "$start_pid" 2>/dev/null
    fi
    if [ -n "$start_pid_b" ]; then
        wait "$start_pid_b" 2>/dev/null
    fi
    if [ -n "$dir_b" ]; then
        CT_SERVERS_DIR=$dir_b "$SERVERS" stop || log "WARNING: stopping the servers failed (folder $dir_b)"
    fi
    if [ -n "$dir_p" ]; then
        CT_SERVERS_DIR=$dir_p "$SERVERS" stop || log "WARNING: stopping the Podman servers failed (folder $dir_p)"
    fi
    if [ $reuse = 0 ] && [ $started = 1 ]; then
        if [ $keep = 1 ]; then
            log "servers left running; to reuse them:"
            echo "  source $CT_SERVERS_DIR/env   # or: CT_SERVERS_DIR=$CT_SERVERS_DIR tests/run.sh ..." >&2
            echo "  stop them with: CT_SERVERS_DIR=$CT_SERVERS_DIR $SERVERS stop" >&2
        else
            "$SERVERS" stop || log "WARNING: stopping the servers failed (folder $CT_SERVERS_DIR)"
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

if [ $reuse = 0 ]; then
    # the engine and the broker boot while we compile
    started=1
    "$SERVERS" start >"$CT_SERVERS_DIR/start.log" 2>&1 </dev/null &
    start_pid=$!
    log "starting the servers in $CT_SERVERS_DIR"
    if [ $asan = 1 ] && [ $serial = 0 ] && [ $keep = 0 ]; then
        # a second set for build-asan/'s tests, run beside build/'s
        dir_b=$(mktemp -d /tmp/ct-test.XXXXXX)
        CT_SERVERS_DIR=$dir_b "$SERVERS" start >"$dir_b/start.log" 2>&1 </dev/null &
        start_pid_b=$!
        log "starting a second set of servers in $dir_b (for build-asan/)"
    fi
fi

# ---------------------------------------------------------------------------------- build

build() { # dir, cmake args...
    local dir=$1; shift
    log "building $dir/"
    cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$ROOT/$dir.configure.log" 2>&1 ||
        { cat "$ROOT/$dir.configure.log" >&2; rm -f "$ROOT/$dir.configure.log"; die "configuring $dir/ failed"; }
    rm -f "$ROOT/$dir.configure.log"
    cmake --build "$ROOT/$dir" -j2 || die "building $dir/ failed"
}
mkdir -p "$ROOT/build"
build build
[ $asan = 0 ] || build build-asan -DCT_SANITIZE=ON

if [ -n "$start_pid" ]; then
    if ! wait "$start_pid"; then
        start_pid=""
        cat "$CT_SERVERS_DIR/start.log" >&2
        die "the servers did not start"
    fi
    start_pid=""
    if [ -n "$start_pid_b" ]; then
        if ! wait "$start_pid_b"; then
            start_pid_b=""
            cat "$dir_b/start.log" >&2
            die "the second set of servers did not start"
        fi
        start_pid_b=""
    fi
    log "servers ready"
fi
# shellcheck disable=SC1091
source "$CT_SERVERS_DIR/env"

# ---------------------------------------------------------------------------------- tests

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export CTEST_OUTPUT_ON_FAILURE=1

summary=() failed=0
# run_ctest DIR: ctest in DIR against the servers of the environment; its summary line goes to
# DIR/run-summary, and it returns non-zero when a test failed.
run_ctest() { # dir [label]: label "podman" runs PODMAN_TESTS only
    local dir=$1 what=${2:-} rc=0 total line sel=()
    [ -z "$regex" ] || sel+=(-R "$regex")
    if [ "$what" = podman ] || [ "$engine" = podman ]; then
        sel+=(-R "$PODMAN_TESTS")
        what=" (podman)"
    fi
    log "testing $dir/$what (servers $CT_SERVERS_DIR)"
    rm -f "$ROOT/$dir/Testing/Temporary/LastTestsFailed.log"
    (cd "$ROOT/$dir" && ctest --output-on-failure --no-tests=error -j2 "${sel[@]}") || rc=$?
    total=$(cd "$ROOT/$dir" && ctest -N "${sel[@]}" | sed -n 's/^Total Tests: //p' || true)
    if [ "${total:-}" = 0 ]; then
        rc=1
        line="$dir$what: no test matches -R '$regex'"
    elif [ $rc = 0 ]; then
        line="$dir$what: ${total:-?} passed"
    else
        local names
        names=$(sed 's/^[0-9]*://' "$ROOT/$dir/Testing/Temporary/LastTestsFailed.log" 2>/dev/null | paste -sd' ' - || true)
        line="$dir$what: FAILED ${names:-(ctest exit $rc)} of ${total:-?}"
    fi
    echo "$line" >"$ROOT/$dir/run-summary"
    log "$line"
    # the next run starts with an engine without containers
    if [ $reuse = 0 ]; then
        local ids; ids=$(/usr/bin/docker ps -aq 2>/dev/null || true)
        [ -z "$ids" ] || /usr/bin/docker rm -f $ids >/dev/null 2>&1 || true
    fi
    return $rc
}
collect() { # dir rc
    summary+=("$(cat "$ROOT/$1/run-summary" 2>/dev/null || echo "$1: no result")")
    [ "$2" = 0 ] || failed=1
}
if [ -n "$dir_b" ]; then
    # side by side; each log is printed whole once both are done
    rc_a=0 rc_b=0
    set -m # each pass in a process group of its own (see cleanup)
    run_ctest build >"$ROOT/build/run.log" 2>&1 &
    pid_a=$!
    (
        # shellcheck disable=SC1091
        source "$dir_b/env"
        run_ctest build-asan
    ) >"$ROOT/build-asan/run.log" 2>&1 &
    pid_b=$!
    set +m
    log "testing build/ and build-asan/ side by side"
    wait $pid_a || rc_a=$?
    wait $pid_b || rc_b=$?
    pid_a="" pid_b=""
    cat "$ROOT/build/run.log" "$ROOT/build-asan/run.log" >&2
    collect build $rc_a
    collect build-asan $rc_b
else
    rc_a=0
    run_ctest build || rc_a=$?
    collect build $rc_a
    if [ $asan = 1 ]; then
        rc_b=0
        run_ctest build-asan || rc_b=$?
        collect build-asan $rc_b
    fi
fi

# ---------------------------------------------------------------------------------- podman

# --engine both: build/'s engine tests again, against a Podman set of their own, started now
# (beside the docker passes it would only slow them down)
if [ "$engine" = both ]; then
    p_t0=$(date +%s)
    dir_p=$(mktemp -d /tmp/ct-test.XXXXXX)
    log "starting a Podman set of servers in $dir_p"
    if ! CT_ENGINE=podman CT_SERVERS_DIR=$dir_p "$SERVERS" start >"$dir_p/start.log" 2>&1 </dev/null; then
        cat "$dir_p/start.log" >&2
        failed=1
        summary+=("build/ (podman): the Podman servers did not start")
    else
        rc_p=0
        (
            # shellcheck disable=SC1091
            source "$dir_p/env"
            run_ctest build podman
        ) || rc_p=$?
        collect build $rc_p
        summary[-1]="${summary[-1]} in $(($(date +%s) - p_t0))s"
    fi
    CT_SERVERS_DIR=$dir_p "$SERVERS" stop || log "WARNING: stopping the Podman servers failed (folder $dir_p)"
    dir_p=""
fi

# ---------------------------------------------------------------------------------- fuzzing

# Every fuzz target for a short fixed time, two at a time (the servers are idle by now); the
# new inputs stay in build-fuzz/scratch/, so a later run on this machine goes on from them.
if [ $fuzz = 1 ] && [ -z "$regex" ]; then
    if ! command -v clang >/dev/null; then
        failed=1
        summary+=("fuzz: clang missing (run without --no-install, or pass --no-fuzz)")
    else
        fuzz_t0=$(date +%s)
        log "fuzzing every target for ${CT_FUZZ_SECONDS:-12}s"
        if "$ROOT/tests/fuzz.sh" --no-install --seconds "${CT_FUZZ_SECONDS:-12}" --parallel 2 \
            --work "$ROOT/build-fuzz/scratch"; then
            summary+=("fuzz: no finding in $(($(date +%s) - fuzz_t0))s")
        else
            failed=1
            summary+=("fuzz: FINDINGS (see above) in $(($(date +%s) - fuzz_t0))s")
        fi
    fi
fi

result=PASSED
[ $failed = 0 ] || result=FAILED
log "$result in $(($(date +%s) - T0))s: $(IFS=';'; echo "${summary[*]}" | sed 's/;/; /g')"
exit $failed
