#!/usr/bin/env bash
# servers.sh: private test servers (a Docker engine, a RabbitMQ node and an image registry) for
# the integration tests.
#
#   CT_SERVERS_DIR=/tmp/x tests/servers.sh ACTION [ARGS...]
#
# Everything lives under $CT_SERVERS_DIR: sockets, data, logs, pids and the env file. Nothing
# listens on a default socket or port: the engine has its own unix socket, the node its own name
# and free ports picked at start. Processes are stopped by the pids this script recorded, never
# by name, so other servers on the machine are left alone.
#
# Actions
#   start               start dockerd, rabbitmq (with the management plugin) and the registry,
#                       wait until they answer, build the test images, write
#                       $CT_SERVERS_DIR/env (source it)
#   start-rabbitmq      start the RabbitMQ node alone (a node of tests/cluster.sh)
#   start-docker        start the engine alone with the test images (a second Docker host);
#                       with CT_DOCKER_TLS=1 also on tcp://127.0.0.1:<port> with mutual TLS
#                       (the env file gives CT_DOCKER_TLS_HOST and CT_DOCKER_CERT_PATH), or on
#                       the IP address CT_DOCKER_TLS_ADDR instead of 127.0.0.1 (the compose
#                       smoke test's host B: the gateway of its compose network, for the
#                       containers); CT_NO_IMAGES=1 skips the test images
#   stop                stop them all, unmount leftovers, remove $CT_SERVERS_DIR
#   status              exit 0 when both answer
#   env                 print the env file
#   docker-stop         stop the engine (data kept) - an engine outage
#   docker-start        start the same engine again (same socket, same data-root)
#   docker-restart      docker-stop then docker-start (containers keep running: --live-restore)
#   rabbitmq-stop-app   rabbitmqctl stop_app - a broker outage (the node stays up)
#   rabbitmq-start-app  rabbitmqctl start_app, wait until AMQP and management answer
#   rabbitmqctl ARGS... rabbitmqctl against the test node
#   registry-stop       stop the registry (data kept) - a registry outage
#   registry-start      start the same registry again (same port, same data)
#   images              (re)build the test images (tests/images/build.sh)
#
# The registry is Debian's docker-registry on 127.0.0.1 (the engine trusts 127.0.0.0/8 without
# TLS) with htpasswd authentication: user "user", password "secret". `docker login` must use
# DOCKER_CONFIG=$CT_DOCKER_CONFIG (exported in the env file) so no user configuration is
# touched. Without /usr/bin/docker-registry and htpasswd the registry is skipped (with a warning)
# and CT_REGISTRY is not exported.
#
# Environment for `start`: CT_START_TIMEOUT (seconds per server, default 60),
# CT_NO_IMAGES=1 to skip the images, CT_ENGINE=docker (the default) or podman.
#
# With CT_ENGINE=podman the engine is `podman system service` (Podman's Docker-compatible API)
# on $CT_SERVERS_DIR/docker/podman.sock instead of dockerd, with a storage, configuration,
# runtime folder, locks, networks and events file of its own under $CT_SERVERS_DIR/docker
# (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF). The env file exports
# the same variables; the engine actions (docker-stop...) act on the service. The engine chosen
# at start is kept in the state: later actions need no CT_ENGINE. Like --live-restore, its
# containers (conmon) outlive a stop of the service.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
DOCKERD=/usr/sbin/dockerd
DOCKER=/usr/bin/docker
PODMAN=/usr/bin/podman
TIMEOUT=${CT_START_TIMEOUT:-60}

die() { echo "servers.sh: $*" >&2; exit 1; }
say() { echo "servers.sh: $*" >&2; }

[ -n "${CT_SERVERS_DIR:-}" ] || die "CT_SERVERS_DIR is not set (the folder for the servers' state)"
case "$CT_SERVERS_DIR" in /*) ;; *) CT_SERVERS_DIR=$(readlink -f "$CT_SERVERS_DIR") ;; esac
S=$CT_SERVERS_DIR
D=$S/docker
R=$S/rabbitmq
G=$S/registry
REGISTRY=/usr/bin/docker-registry
HTPASSWD=/usr/bin/htpasswd
REGISTRY_USER=user
REGISTRY_PASSWORD=secret

# state: one file per key under $S/state (the two servers start concurrently)
state_get() { cat "$S/state/$1" 2>/dev/null || true; }
state_set() { mkdir -p "$S/state"; echo "$2" >"$S/state/$1.new"; mv "$S/state/$1.new" "$S/state/$1"; }

# proc_stat PID: "state ppid pgrp session ..." from /proc (procps may not be installed)
proc_stat() {
    local st
    { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
    echo "${st##*) }"
}

# alive PID: the process exists and is not a zombie (PID 1 here may be slow to reap)
alive() {
    local st
    [ -n "${1:-}" ] || return 1
    st=$(proc_stat "$1") || return 1
    [ "${st%% *}" != Z ]
}

# wait_up NAME PID LOG LINES PERIOD CMD...: runs CMD every PERIOD seconds until it succeeds;
# dies, with the last LINES of LOG, when PID is gone or after TIMEOUT seconds
wait_up() {
    local name=$1 pid=$2 log=$3 lines=$4 period=$5
    shift 5
    local n
    n=$(awk -v t="$TIMEOUT" -v p="$period" 'BEGIN { printf "%d", t / p }')
    until "$@"; do
        alive "$pid" || { tail -n "$lines" "$log" >&2; die "$name exited during start"; }
        n=$((n - 1)); [ $n -gt 0 ] || { tail -n "$lines" "$log" >&2; die "$name not ready after ${TIMEOUT}s"; }
        sleep "$period"
    done
}

# wait_gone PID SECONDS: 0 when the process has exited
wait_gone() {
    local pid=$1 n=$(($2 * 10))
    while alive "$pid"; do
        n=$((n - 1)); [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, below the ephemeral range
free_ports() {
    python3 - "$1" <<'EOF'
import random, socket, sys
n, got, socks = int(sys.argv[1]), [], []
while len(got) < n:
    p = random.randrange(12000, 31000)
    if p in got or p + 10000 in got:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close()
        continue
    socks.append(s); got.append(p)
print(" ".join(map(str, got)))
EOF
}

# ---------------------------------------------------------------------------------- docker

# the engine: chosen by CT_ENGINE at start, then read from the state
engine() {
    local e; e=$(state_get engine)
    echo "${e:-docker}"
}
engine_socket() { if [ "$(engine)" = podman ]; then echo "$D/podman.sock"; else echo "$D/docker.sock"; fi; }
engine_pid() { if [ "$(engine)" = podman ]; then state_get podman_pid; else state_get dockerd_pid; fi; }
engine_launch() { if [ "$(engine)" = podman ]; then podman_launch; else docker_launch; fi; }
engine_halt() { if [ "$(engine)" = podman ]; then podman_halt "$@"; else docker_halt "$@"; fi; }

docker_env() { export DOCKER_HOST="unix://$(engine_socket)"; }

# CT_DOCKER_TLS=1 (start-docker): the engine also listens on tcp://<address>:<port> with mutual
# TLS, as DOCKER_TLS_VERIFY clients expect (address: CT_DOCKER_TLS_ADDR, default 127.0.0.1): a
# CA, a server certificate for that address (and 127.0.0.1, localhost) and a client
# certificate, made here with openssl ($S/tls; the client's ca.pem, cert.pem, key.pem in
# $S/tls/client, the layout of DOCKER_CERT_PATH).
docker_tls_addr() { local a; a=$(state_get docker_tls_addr); echo "${a:-127.0.0.1}"; }
docker_tls_certs() {
    local t=$S/tls san=IP:127.0.0.1,DNS:localhost addr
    addr=$(docker_tls_addr)
    [ "$addr" = 127.0.0.1 ] || san="$san,IP:$addr"
    mkdir -p "$t/client"
    (
        cd "$t"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ct test CA" \
            -keyout ca-key.pem -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$addr" -keyout server-key.pem -out server.csr
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile server.ext -out server-cert.pem
        openssl req -newkey rsa:2048 -nodes -subj "/CN=ct test client" -keyout client/key.pem -out client.csr
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile client.ext -out client/cert.pem
        cp ca.pem client/ca.pem
    ) >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; die "making the TLS certificates failed"; }
    chmod 600 "$t"/*key.pem "$t/client/key.pem"
}

docker_launch() {
    mkdir -p "$D/root" "$D/exec"
    local tls=()
    if [ -n "$(state_get docker_tls_port)" ]; then
        tls=(--host "tcp://$(docker_tls_addr):$(state_get docker_tls_port)" --tlsverify
            --tlscacert "$S/tls/ca.pem" --tlscert "$S/tls/server-cert.pem" --tlskey "$S/tls/server-key.pem")
    fi
    # The data-root as a shared mount of its own, made here once: dockerd then leaves it alone.
    # Otherwise dockerd bind-mounts it itself and unmounts it when it stops, and the overlay
    # mounts of containers that outlive a restart (--live-restore) end up hidden under the
    # next dockerd's bind mount: removing those containers fails with "device or resource busy".
    if ! mountpoint -q "$D/root"; then
        mount --bind "$D/root" "$D/root" && mount --make-shared "$D/root"
    fi
    setsid "$DOCKERD" --host "unix://$D/docker.sock" "${tls[@]}" --data-root "$D/root" --exec-root "$D/exec" \
        --pidfile "$D/docker.pid" --iptables=false --ip-masq=false --bridge=none \
        --live-restore --shutdown-timeout 2 >>"$D/dockerd.log" 2>&1 </dev/null &
    state_set dockerd_pid $!
    docker_env
    wait_up dockerd "$(state_get dockerd_pid)" "$D/dockerd.log" 20 0.1 docker_up
}
docker_up() { "$DOCKER" version >/dev/null 2>&1; }

docker_halt() { # $1: remove containers first (final stop)
    local pid; pid=$(state_get dockerd_pid)
    alive "$pid" || return 0
    docker_env
    if [ "${1:-}" = clean ]; then
        local ids; ids=$(timeout 20 "$DOCKER" ps -aq 2>/dev/null || true)
        [ -z "$ids" ] || timeout 30 "$DOCKER" rm -f $ids >/dev/null 2>&1 || true
    fi
    local cpid; cpid=$(cat "$D/exec/containerd/containerd.pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 30; then
        say "dockerd $pid did not stop, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || true
    fi
    # the containerd that this dockerd started normally exits with it
    if alive "$cpid" && grep -q -- "$D/exec" "/proc/$cpid/cmdline" 2>/dev/null; then
        kill -TERM "$cpid" 2>/dev/null || true
        wait_gone "$cpid" 10 || kill -KILL "$cpid" 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------------------------- podman

# podman_env: the private configuration of the podman instance, for the service and for the
# podman CLI run here (conmon and the cleanup processes it starts when a container exits
# inherit it from the service).
podman_env() {
    export CONTAINERS_CONF=$D/containers.conf CONTAINERS_STORAGE_CONF=$D/storage.conf
    export CONTAINERS_REGISTRIES_CONF=$D/registries.conf
    export XDG_RUNTIME_DIR=$D/xdg TMPDIR=$D/tmp
    docker_env
}

podman_configure() {
    mkdir -p "$D/root" "$D/run" "$D/libpod" "$D/xdg" "$D/tmp" "$D/networks" "$D/copy"
    chmod 700 "$D/xdg"
    cat >"$D/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$D/root"
runroot = "$D/run"
EOF
    # default_ulimits: Podman's own default (nofile=1048576) is above this machine's hard limit
    # and creating any container fails ("error setting rlimit type 7: operation not permitted")
    local nofile nproc
    nofile=$(ulimit -Hn); { [ "$nofile" = unlimited ] || [ "$nofile" -ge 1024 ]; } && nofile=1024
    nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -ge 1024 ]; } && nproc=1024
    cat >"$D/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$D/events.log"
events_logfile_max_size = 0
tmp_dir = "$D/libpod"
static_dir = "$D/root/libpod"
volume_path = "$D/root/volumes"
image_copy_tmp_dir = "$D/copy"
lock_type = "file"

[network]
network_backend = "netavark"
network_config_dir = "$D/networks"
EOF
    # the test registry is plain HTTP on 127.0.0.1 (dockerd trusts 127.0.0.0/8 by itself)
    {
        echo 'unqualified-search-registries = ["docker.io"]'
        echo 'short-name-mode = "permissive"'
        local port; port=$(state_get registry_port)
        if [ -n "$port" ]; then
            echo '[[registry]]'
            echo "location = \"127.0.0.1:$port\""
            echo 'insecure = true'
        fi
    } >"$D/registries.conf"
}

podman_launch() {
    [ -f "$D/containers.conf" ] || podman_configure
    podman_env
    rm -f "$D/podman.sock"
    # in $D: conmon writes files (an "oom" marker) into the folder it was started from
    (cd "$D" && exec setsid "$PODMAN" system service --time=0 "unix://$D/podman.sock" \
        >>"$D/podman.log" 2>&1 </dev/null) &
    local pid=$!
    state_set podman_pid "$pid"
    wait_up podman "$pid" "$D/podman.log" 20 0.1 podman_up
}
podman_up() { curl -fsS -m 2 --unix-socket "$D/podman.sock" http://d/_ping >/dev/null 2>&1; }

podman_halt() { # $1: remove containers first (final stop)
    local pid; pid=$(state_get podman_pid)
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" 30; then
            say "podman $pid did not stop, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 5 || true
        fi
    fi
    if [ "${1:-}" = clean ] && [ -f "$D/containers.conf" ]; then
        # the containers (and their conmon) outlive the service: removed by the podman CLI on
        # the same storage, which also unmounts their layers
        podman_env
        timeout 60 "$PODMAN" rm -af -t 0 >/dev/null 2>&1 || say "podman rm -af failed"
    fi
}

# ---------------------------------------------------------------------------------- rabbitmq

rabbit_env() {
    local node; node=$(state_get rabbitmq_node)
    [ -n "$node" ] || die "rabbitmq was not started in $S"
    export RABBITMQ_NODENAME=$node
    export RABBITMQ_MNESIA_BASE=$R/mnesia RABBITMQ_LOG_BASE=$R/log
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT=$(state_get rabbitmq_port); export RABBITMQ_NODE_PORT
    RABBITMQ_DIST_PORT=$(state_get rabbitmq_dist_port); export RABBITMQ_DIST_PORT
    export RABBITMQ_ENABLED_PLUGINS_FILE=$R/enabled_plugins RABBITMQ_CONFIG_FILE=$R/rabbitmq
    export RABBITMQ_ADVANCED_CONFIG_FILE=$R/advanced.config
    export RABBITMQ_PID_FILE=$R/rabbitmq.pid
}

rabbitmqctl_() { rabbit_env; timeout 60 /usr/sbin/rabbitmqctl -n "$RABBITMQ_NODENAME" "$@"; }

mgmt_up() {
    curl -fsS -m 2 -u guest:guest "http://127.0.0.1:$(state_get rabbitmq_mgmt_port)/api/overview" >/dev/null 2>&1
}
amqp_up() { (exec 3<>"/dev/tcp/127.0.0.1/$(state_get rabbitmq_port)") 2>/dev/null; }

rabbit_wait() { # until the AMQP port and the management API answer
    wait_up rabbitmq "$(state_get rabbitmq_pid)" "$R/server.log" 30 0.2 rabbit_up
}
rabbit_up() { amqp_up && mgmt_up; }

rabbit_launch() {
    local ports amqp mgmt dist
    ports=$(free_ports 3); read -r amqp mgmt dist <<<"$ports"
    state_set rabbitmq_node "ct-$(basename "$S" | tr -c 'a-zA-Z0-9\n' '-')-$$@localhost"
    state_set rabbitmq_port "$amqp"
    state_set rabbitmq_mgmt_port "$mgmt"
    state_set rabbitmq_dist_port "$dist"
    mkdir -p "$R/mnesia" "$R/log"
    echo '[rabbitmq_management].' >"$R/enabled_plugins"
    cat >"$R/rabbitmq.conf" <<EOF
management.tcp.port = $mgmt
management.tcp.ip = 127.0.0.1
collect_statistics_interval = 500
management.rates_mode = none
log.console = false
log.file.level = info
EOF
    # the management API reports queue counts per sample: 1 s samples instead of 5 s
    cat >"$R/advanced.config" <<EOF
[{rabbitmq_management_agent, [{sample_retention_policies,
    [{global, [{605, 1}]}, {basic, [{605, 1}]}, {detailed, [{605, 1}]}]}]}].
EOF
    chown -R rabbitmq:rabbitmq "$R"
    rabbit_env
    setsid /usr/sbin/rabbitmq-server >"$R/server.log" 2>&1 </dev/null &
    state_set rabbitmq_pid $!
    rabbit_wait
}

# rabbit_pids: the processes started for the node. The launcher was started with setsid; su
# opens one more session for the server scripts and beam: both sessions, found by their ids.
rabbit_pids() {
    local pid; pid=$(state_get rabbitmq_pid)
    [ -n "$pid" ] || return 0
    local f st ppid sid
    for f in /proc/[0-9]*/stat; do
        { read -r st <"$f"; } 2>/dev/null || continue
        st=${st##*) }
        f=${f#/proc/}
        read -r _ ppid _ sid _ <<<"$st"
        echo "${f%/stat} $ppid $sid"
    done | awk -v s="$pid" '
        { P[$1] = $2; S[$1] = $3 }
        END {
            ses[s] = 1
            for (p in P) if ((P[p] in S) && S[P[p]] == s) ses[S[p]] = 1
            for (p in S) if (S[p] in ses) print p
        }'
}

rabbit_halt() {
    local pid beam pids
    pid=$(state_get rabbitmq_pid)
    pids=$(rabbit_pids)
    [ -n "$pids" ] || return 0
    beam=$(cat "$R/rabbitmq.pid" 2>/dev/null || true)
    # beam stops the node cleanly on SIGTERM, in ~6 s; its data is about to be removed: KILL
    if [ -n "$beam" ] && grep -qx "$beam" <<<"$pids"; then
        kill -KILL "$beam" 2>/dev/null || true
        wait_gone "$beam" 20 || kill -KILL "$beam" 2>/dev/null || true
    fi
    wait_gone "$pid" 5 || true
    pids=$(rabbit_pids)
    [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
    wait_gone "$pid" 5 || true
    pids=$(rabbit_pids)
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

# ---------------------------------------------------------------------------------- registry

registry_available() { [ -x "$REGISTRY" ] && [ -x "$HTPASSWD" ]; }

registry_up() { # /v2/ answers (401 without credentials)
    local code
    code=$(curl -sS -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(state_get registry_port)/v2/" 2>/dev/null) || return 1
    [ "$code" = 401 ] || [ "$code" = 200 ]
}

registry_launch() {
    local port; port=$(state_get registry_port)
    if [ -z "$port" ]; then
        port=$(free_ports 1)
        state_set registry_port "$port"
    fi
    mkdir -p "$G/data" "$S/docker-config"
    [ -f "$G/htpasswd" ] || "$HTPASSWD" -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$G/htpasswd"
    cat >"$G/config.yml" <<CONF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $G/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: ct-registry
    path: $G/htpasswd
CONF
    setsid "$REGISTRY" serve "$G/config.yml" >>"$G/log" 2>&1 </dev/null &
    local pid=$!
    state_set registry_pid "$pid"
    wait_up "the registry" "$pid" "$G/log" 20 0.1 registry_up
}

registry_halt() {
    local pid; pid=$(state_get registry_pid)
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
}

# ---------------------------------------------------------------------------------- env

write_env() {
    local f=$S/env
    {
        echo "export CT_SERVERS='$SELF'"
        echo "export CT_SERVERS_DIR='$S'"
        echo "export CT_DOCKER_HOST='unix://$(engine_socket)'"
        echo "export DOCKER_HOST='unix://$(engine_socket)'"
        echo "export CT_RABBITMQ_HOST='127.0.0.1'"
        echo "export CT_RABBITMQ_PORT='$(state_get rabbitmq_port)'"
        echo "export CT_RABBITMQ_MGMT_PORT='$(state_get rabbitmq_mgmt_port)'"
        echo "export CT_RABBITMQ_NODE='$(state_get rabbitmq_node)'"
        echo "export CT_TMP='$S/tmp'"
        if [ -n "$(state_get docker_tls_port)" ]; then
            echo "export CT_DOCKER_TLS_HOST='tcp://$(docker_tls_addr):$(state_get docker_tls_port)'"
            echo "export CT_DOCKER_CERT_PATH='$S/tls/client'"
        fi
        if [ -n "$(state_get registry_pid)" ]; then
            echo "export CT_REGISTRY='127.0.0.1:$(state_get registry_port)'"
            echo "export CT_REGISTRY_USER='$REGISTRY_USER'"
            echo "export CT_REGISTRY_PASSWORD='$REGISTRY_PASSWORD'"
            echo "export CT_REGISTRY_LOG='$G/log'"
            echo "export CT_DOCKER_CONFIG='$S/docker-config'"
        fi
    } >"$f.new"
    mv "$f.new" "$f"
}

unmount_under() {
    local m
    # deepest first; /proc/mounts escapes spaces, our paths have none
    for m in $(awk -v p="$1" 'index($2, p "/") == 1 || $2 == p { print $2 }' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
    done
}

# ---------------------------------------------------------------------------------- actions

action=${1:-}
[ $# -eq 0 ] || shift
case "$action" in
start)
    [ "$(id -u)" = 0 ] || die "must run as root (dockerd, rabbitmq)"
    mkdir -p "$S"
    if alive "$(engine_pid)"; then die "servers already running in $S"; fi
    case "${CT_ENGINE:-docker}" in
    docker) ;;
    podman) [ -x "$PODMAN" ] || die "CT_ENGINE=podman: $PODMAN missing (package podman)" ;;
    *) die "CT_ENGINE must be docker or podman, not ${CT_ENGINE}" ;;
    esac
    state_set engine "${CT_ENGINE:-docker}"
    mkdir -p "$S/tmp" "$D" "$R"
    chmod 755 "$S"; chmod 1777 "$S/tmp"
    t0=$(date +%s%N)
    # both at once: the broker takes several seconds, the engine one
    rabbit_launch & rpid=$!
    if registry_available; then
        registry_launch
    else
        say "WARNING: $REGISTRY or $HTPASSWD missing (packages docker-registry, apache2-utils): no registry"
    fi
    engine_launch
    if [ "${CT_NO_IMAGES:-}" != 1 ]; then
        "$HERE/images/build.sh" >"$S/images.log" 2>&1 || { wait "$rpid" || true; cat "$S/images.log" >&2; die "building the test images failed"; }
    fi
    wait "$rpid" || die "rabbitmq did not start (log: $R/server.log)"
    write_env
    say "ready in $((($(date +%s%N) - t0) / 1000000)) ms; source $S/env"
    ;;
start-docker)
    # the engine alone, with the test images (a second Docker host of a test); CT_DOCKER_TLS=1
    # adds its TLS listener (above)
    [ "$(id -u)" = 0 ] || die "must run as root (dockerd)"
    mkdir -p "$S"
    if alive "$(state_get dockerd_pid)"; then die "dockerd already running in $S"; fi
    mkdir -p "$S/tmp" "$D"
    chmod 755 "$S"; chmod 1777 "$S/tmp"
    if [ "${CT_DOCKER_TLS:-}" = 1 ]; then
        addr=${CT_DOCKER_TLS_ADDR:-127.0.0.1}
        [[ $addr =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "CT_DOCKER_TLS_ADDR=$addr: expected an IPv4 address"
        state_set docker_tls_addr "$addr"
        docker_tls_certs
        state_set docker_tls_port "$(free_ports 1)"
    fi
    docker_launch
    if [ "${CT_NO_IMAGES:-}" != 1 ]; then
        "$HERE/images/build.sh" >"$S/images.log" 2>&1 || { cat "$S/images.log" >&2; die "building the test images failed"; }
    fi
    write_env
    ;;
start-rabbitmq)
    # the RabbitMQ node alone (a node of tests/cluster.sh); stop stops it as usual
    [ "$(id -u)" = 0 ] || die "must run as root (rabbitmq)"
    mkdir -p "$S"
    if alive "$(state_get rabbitmq_pid)"; then die "rabbitmq already running in $S"; fi
    mkdir -p "$S/tmp" "$R"
    chmod 755 "$S"; chmod 1777 "$S/tmp"
    rabbit_launch
    write_env
    ;;
stop)
    [ -d "$S" ] || exit 0
    # a test's cluster (tests/cluster.sh) and second engine, should it have died before
    # stopping them
    if [ -d "$S/cluster" ]; then
        CT_CLUSTER_DIR=$S/cluster "$HERE/cluster.sh" stop || say "WARNING: stopping the cluster failed"
    fi
    if [ -d "$S/hostb" ]; then
        CT_SERVERS_DIR=$S/hostb "$SELF" stop || say "WARNING: stopping $S/hostb failed"
    fi
    # with --live-restore, containers outlive the engine: bring it back to remove them
    if [ "$(engine)" = docker ] && [ -n "$(state_get dockerd_pid)" ] && ! alive "$(state_get dockerd_pid)"; then
        docker_launch || true
    fi
    rabbit_halt &
    registry_halt
    engine_halt clean
    wait $! || true
    unmount_under "$S"
    rm -rf "$S" 2>/dev/null || { unmount_under "$S"; rm -rf "$S" || die "cannot remove $S"; }
    ;;
status)
    docker_env; "$DOCKER" version >/dev/null 2>&1 || { echo "docker: down"; exit 1; }
    amqp_up && mgmt_up || { echo "rabbitmq: down"; exit 1; }
    [ -z "$(state_get registry_pid)" ] || registry_up || { echo "registry: down"; exit 1; }
    echo "up"
    ;;
env)
    cat "$S/env"
    ;;
docker-stop)
    engine_halt
    ;;
docker-start)
    alive "$(engine_pid)" && die "the engine is already running"
    rm -f "$D/docker.pid"
    engine_launch
    ;;
docker-restart)
    engine_halt
    rm -f "$D/docker.pid"
    engine_launch
    ;;
rabbitmq-stop-app)
    rabbitmqctl_ -q stop_app >/dev/null
    ;;
rabbitmq-start-app)
    rabbitmqctl_ -q start_app >/dev/null
    rabbit_wait
    ;;
rabbitmqctl)
    rabbitmqctl_ "$@"
    ;;
registry-stop)
    registry_halt
    ;;
registry-start)
    [ -n "$(state_get registry_port)" ] || die "the registry was not started in $S"
    alive "$(state_get registry_pid)" && die "the registry is already running"
    registry_launch
    ;;
images)
    docker_env
    "$HERE/images/build.sh"
    ;;
*)
    sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
