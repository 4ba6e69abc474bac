#!/usr/bin/env bash
# smoke.sh: the compose smoke test. As root (it runs a Docker engine of its own):
#
#   sudo tests/compose/smoke.sh [--cluster] [--no-install] [--keep]
#
#  1. installs the Debian packages it needs when some are missing (debootstrap, docker-compose...)
#  2. starts a private dockerd (tests/servers.sh docker-start) on its own socket, in a temporary
#     folder; nothing else on the machine is touched
#  3. without a registry: imports debian:bookworm and debian:bookworm-slim from one debootstrap
#     (minbase; the tarball is cached in $CT_CACHE_DIR, default /var/cache/correctomatic-ci, and
#     rebuilt when older than 30 days; the image layers of the last run are cached there too,
#     for --cache-from), builds the RabbitMQ stand-in (tests/compose/rabbitmq/,
#     Debian's rabbitmq-server) as rabbitmq:3.13-management, and builds compose.yaml's image
#     correctomatic:latest with `docker build --network host` (the private engine has no
#     bridge for builds); then `docker-compose up -d --no-build` of the unchanged compose.yaml,
#     with a .env of its own (passwords, DOCKER_GID, the private socket, free ports)
#  4. publishes one job (a busybox correction image made with `docker import`) through the
#     management API, receives its callback on the host (python3 http.server on the compose
#     network's gateway) and checks the body byte for byte; checks that every service becomes
#     healthy and that no message and no correction container is left behind
#  5. tears everything down, whatever happened: docker-compose kill and down -v, the engine
#     (with its data folder, so the images too), the temporary folder
#
# With --cluster, compose.cluster.yaml over compose.yaml instead (README, "Several machines"):
# host A is the engine above; host B a second private engine (tests/servers.sh start-docker
# with CT_DOCKER_TLS=1) listening with mutual TLS on the compose network's gateway, where
# starter-b and completer-b reach it (the client certificate in DOCKER_CERT_PATH_B). It checks
# that the three RabbitMQ nodes form one cluster and every queue is a quorum queue with three
# members, that every service becomes healthy, that jobs run on both engines (MAX_RUNNING=1
# on each; the engines' events say where) with every callback right, and that, with the node
# the daemons are connected to stopped, a job published through another node still goes through.
#
# Options
#   --cluster     the cluster of compose.cluster.yaml (above)
#   --no-install  do not check or install packages
#   --keep        leave the engine and the compose project running; print how to reach them
#   -h, --help
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
HERE=$ROOT/tests/compose
SERVERS=$ROOT/tests/servers.sh
CACHE=${CT_CACHE_DIR:-/var/cache/correctomatic-ci}
PACKAGES=(docker.io docker-compose debootstrap busybox-static curl python3 ca-certificates)
PROJECT=ctsmoke
TIMEOUT=${CT_SMOKE_TIMEOUT:-180} # seconds for each wait

install=1 keep=0 cluster=0
while [ $# -gt 0 ]; do
    case "$1" in
    --no-install) install=0 ;;
    --keep) keep=1 ;;
    --cluster) cluster=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "smoke.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

T0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
log() { printf 'smoke.sh: [%5.1fs] %s\n' "$(($(ms "$T0") / 100))e-1" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
timings=()
# step NAME COMMAND...: runs it, records its duration
step() {
    local name=$1 t; shift
    t=$(date +%s%N)
    log "$name..."
    "$@"
    timings+=("$name $(ms "$t")ms")
}

[ "$(id -u)" = 0 ] || die "must run as root (it runs its own dockerd): sudo $0"

# ---------------------------------------------------------------------------------- packages

# shellcheck source=tests/packages.sh
. "$ROOT/tests/packages.sh"
[ $install = 0 ] || step packages install_missing_packages "${PACKAGES[@]}"

# ---------------------------------------------------------------------------------- cleanup

W=$(mktemp -d /tmp/ct-compose.XXXXXX)
chmod 755 "$W"
export CT_SERVERS_DIR=$W/servers
HOSTB=$CT_SERVERS_DIR/hostb # host B's engine (--cluster); servers.sh stop stops it with A's
engine=0 receiver_pid="" build_pids=()
FILES=(-f "$ROOT/compose.yaml") # with --cluster, compose.cluster.yaml too once .env has its settings
compose() { docker-compose --project-directory "$ROOT" "${FILES[@]}" -p "$PROJECT" --env-file "$W/env" "$@"; }

cleanup() {
    local rc=$? t
    trap - EXIT INT TERM
    set +e
    t=$(date +%s%N)
    [ -z "$receiver_pid" ] || { kill "$receiver_pid"; wait "$receiver_pid"; } 2>/dev/null
    local p
    for p in "${build_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ $rc != 0 ] && [ $engine = 1 ] && [ -f "$W/env" ]; then
        log "compose state and logs (last lines):"
        compose ps >&2
        compose logs --no-color --tail=40 >&2
    fi
    if [ $keep = 1 ] && [ $engine = 1 ]; then
        log "left running; DOCKER_HOST=$DOCKER_HOST, project $PROJECT, env file $W/env"
        echo "  stop with: cd $ROOT && DOCKER_HOST=$DOCKER_HOST docker-compose ${FILES[*]} -p $PROJECT --env-file $W/env down -v" >&2
        echo "             CT_SERVERS_DIR=$CT_SERVERS_DIR $SERVERS stop; rm -rf $W" >&2
        exit $rc
    fi
    if [ $engine = 1 ]; then
        # no graceful stop needed; the images go with the engine's data folder
        if [ -f "$W/env" ]; then
            compose kill >/dev/null 2>&1
            compose down -v >/dev/null 2>&1 || log "WARNING: docker-compose down failed"
        fi
        if [ -d "$HOSTB" ]; then
            CT_SERVERS_DIR=$HOSTB "$SERVERS" stop || log "WARNING: stopping host B's engine failed (folder $HOSTB)"
        fi
        "$SERVERS" stop || log "WARNING: stopping the engine failed (folder $CT_SERVERS_DIR)"
    fi
    rm -rf "$W" 2>/dev/null || log "WARNING: cannot remove $W"
    timings+=("teardown $(ms "$t")ms")
    local result=PASSED
    [ $rc = 0 ] || result=FAILED
    log "$result in $(($(ms "$T0") / 1000))s ($(IFS=','; echo "${timings[*]}" | sed 's/,/, /g'))"
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------------------------- base images

# mirror: the Debian archive of this machine's apt sources (one-line or deb822 format)
debian_mirror() {
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
        /^[ \t]*#/ { next }
        /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == "bookworm") { print $i; exit } break } next }
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm" && uri != "") { print uri; exit } }
        /^[ \t]*$/ { uri = "" }')
    echo "${m:-http://deb.debian.org/debian}"
}

# the debootstrap tarball (cached): one minbase root file system for both tags
base_tarball() {
    local tar=$CACHE/debian-bookworm-minbase.tar
    if [ -f "$tar" ] && [ -z "$(find "$tar" -mtime +30)" ]; then
        echo "$tar"
        return
    fi
    local mirror b
    mirror=$(debian_mirror)
    b=$W/rootfs
    log "debootstrap bookworm from $mirror (cached afterwards in $CACHE)" 
    debootstrap --variant=minbase bookworm "$b" "$mirror" >"$W/debootstrap.log" 2>&1 ||
        { tail -n 20 "$W/debootstrap.log" >&2; die "debootstrap failed"; }
    # as the official images: apt lists and caches empty, no documentation
    rm -rf "$b"/var/lib/apt/lists/* "$b"/var/cache/apt/*.bin "$b"/var/cache/apt/archives/*.deb \
        "$b"/usr/share/doc/* "$b"/usr/share/man/* "$b"/usr/share/info/* "$b"/var/log/*.log
    mkdir -p "$CACHE"
    tar -C "$b" -cf "$tar.new" .
    mv "$tar.new" "$tar"
    date +%s%N >"$tar.id" # a new tarball: new base image ids, so the cached layers are stale
    rm -rf "$b"
    echo "$tar"
}

# The image layers of the last run (base images, the RabbitMQ stand-in, the build stage and the
# image) are cached too, as a `docker save` next to the tarball: builds then reuse their apt-get
# layers through --cache-from (docker itself decides what is still valid). They are kept while
# the tarball and the Dockerfiles are the same.
layers_key() {
    cat "$CACHE/debian-bookworm-minbase.tar.id" "$ROOT/Dockerfile" "$HERE"/rabbitmq/* 2>/dev/null | sha256sum | cut -c1-16
}
LAYERS=$CACHE/layers.tar
layers_loaded=0

import_base() {
    local tar
    tar=$(base_tarball)
    [ -s "$tar.id" ] || date +%s%N >"$tar.id"
    if [ -f "$LAYERS" ] && [ "$(cat "$LAYERS.key" 2>/dev/null)" = "$(layers_key)" ] &&
        docker load -q -i "$LAYERS" >/dev/null 2>&1; then
        layers_loaded=1
        return
    fi
    docker import - debian:bookworm-slim <"$tar" >/dev/null
    docker tag debian:bookworm-slim debian:bookworm
}

save_layers() {
    [ $layers_loaded = 0 ] || return 0
    mkdir -p "$CACHE"
    if docker save -o "$LAYERS.new" debian:bookworm-slim debian:bookworm rabbitmq:3.13-management \
        correctomatic-build:cache correctomatic:latest 2>"$W/save.log"; then
        mv "$LAYERS.new" "$LAYERS"
        layers_key >"$LAYERS.key"
    else
        rm -f "$LAYERS.new"
        log "WARNING: cannot cache the image layers: $(cat "$W/save.log")"
    fi
}

# ---------------------------------------------------------------------------------- images

# a correction image: busybox-static and one script that prints a response made of the
# submission and a param, as tests/images/build.sh does
correction_image() {
    local d
    d=$(mktemp -d "$W/ct-smoke.XXXXXX")
    chmod 755 "$d"
    mkdir -p "$d/bin" "$d/tmp"
    chmod 1777 "$d/tmp"
    cp /bin/busybox "$d/bin/"
    ln -s busybox "$d/bin/sh"
    ln -s busybox "$d/bin/head"
    cat >"$d/run.sh" <<'EOF'
#!/bin/sh
line=$(head -n 1 /tmp/exercise)
echo "grading..."
echo "-----BEGIN CORRECTOMATIC RESPONSE-----"
echo "{\"success\": true, \"grade\": 9.5, \"comments\": [\"$line\", \"$GREETING\"]}"
echo "-----END CORRECTOMATIC RESPONSE-----"
EOF
    chmod 755 "$d/run.sh"
    tar -C "$d" -c . | docker import -c 'CMD ["/run.sh"]' - ct-smoke:latest >/dev/null
}

# build LOG ARGS...: docker build on the host network, quietly unless it fails
build() {
    local log=$1; shift
    docker build --network host "$@" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; return 1; }
}

build_correctomatic() { # the build stage tagged too, for the layer cache
    local log=$W/build-correctomatic.log
    build "$log" --target build --cache-from correctomatic-build:cache -t correctomatic-build:cache "$ROOT" &&
        build "$log" --cache-from correctomatic-build:cache --cache-from correctomatic:latest \
            -t correctomatic:latest "$ROOT"
}

build_images() {
    # both at once: apt-get in one, the compiler in the other
    build "$W/build-rabbitmq.log" --cache-from rabbitmq:3.13-management -t rabbitmq:3.13-management \
        "$HERE/rabbitmq" & build_pids+=($!)
    build_correctomatic & build_pids+=($!)
    local p rc=0
    for p in "${build_pids[@]}"; do wait "$p" || rc=1; done
    build_pids=()
    [ $rc = 0 ] || die "building the images failed"
}

# ---------------------------------------------------------------------------------- compose

# free_port: a free TCP port on 127.0.0.1
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_env() {
    mkdir -p "$W/uploads"
    chmod 755 "$W/uploads"
    AMQP_PORT=$(free_port)
    MGMT_PORT=$(free_port)
    ADMIN_PASSWORD="adm'in \"pw\\$RANDOM" # quotes and a backslash: init.sh must escape them
    # .env format of docker-compose 1.29: VAR=VAL, the value taken literally
    cat >"$W/env" <<EOF
RABBITMQ_ADMIN_USER=admin
RABBITMQ_ADMIN_PASSWORD=$ADMIN_PASSWORD
RABBITMQ_USER=correctomatic
RABBITMQ_PASSWORD=app-$RANDOM$RANDOM
DOCKER_SOCKET=${DOCKER_HOST#unix://}
DOCKER_GID=$(stat -c %g "${DOCKER_HOST#unix://}")
UPLOADS_DIR=$W/uploads
AMQP_PUBLISH=127.0.0.1:$AMQP_PORT
MANAGEMENT_PUBLISH=127.0.0.1:$MGMT_PORT
LOG_LEVEL=debug
EOF
}

# compose/init-env.sh, the README's set-up: run on a copy, its .env must have random
# passwords and the socket's group, and make compose.yaml valid.
check_init_env() {
    local t=$W/init-env socket=${DOCKER_HOST#unix://}
    mkdir -p "$t/compose"
    cp "$ROOT/.env.example" "$t/"
    cp "$ROOT/compose/init-env.sh" "$t/compose/"
    DOCKER_SOCKET=$socket sh "$t/compose/init-env.sh" >/dev/null || die "compose/init-env.sh failed"
    grep -Eq '^RABBITMQ_ADMIN_PASSWORD=.{16,}$' "$t/.env" &&
        grep -Eq '^RABBITMQ_PASSWORD=.{16,}$' "$t/.env" &&
        grep -qx "DOCKER_GID=$(stat -c %g "$socket")" "$t/.env" ||
        die "compose/init-env.sh wrote a wrong .env"
    docker-compose --project-directory "$ROOT" -f "$ROOT/compose.yaml" --env-file "$t/.env" \
        config -q || die "compose.yaml does not validate with the .env of compose/init-env.sh"
}

compose_up() {
    check_init_env
    write_env
    [ $cluster = 0 ] || cluster_env
    compose config -q || die "${FILES[*]} does not validate"
    # returns once the broker is healthy (depends_on) and the daemons are started
    compose up -d --no-build >"$W/up.log" 2>&1 || { cat "$W/up.log" >&2; die "docker-compose up failed"; }
}

# the compose network's gateway: the host's side of its bridge
gateway() {
    local net
    net=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | head -n 1)
    docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$net"
}

# --cluster: host B's engine on the compose network's gateway (so the network first, from
# compose.yaml alone: nothing starts), the correction image in it, its client certificate for
# uid 10001, and compose.cluster.yaml's settings in .env
cluster_env() {
    local gw b
    compose up --no-start >"$W/up.log" 2>&1 || { cat "$W/up.log" >&2; die "docker-compose up --no-start failed"; }
    gw=$(gateway)
    [ -n "$gw" ] || die "no gateway address on the compose network"
    log "host B's engine, with TLS on $gw..."
    CT_SERVERS_DIR=$HOSTB CT_DOCKER_TLS=1 CT_DOCKER_TLS_ADDR=$gw CT_NO_IMAGES=1 "$SERVERS" start-docker ||
        die "host B's engine did not start"
    # shellcheck disable=SC1091 # written by servers.sh
    b=$(. "$HOSTB/env" && echo "$CT_DOCKER_TLS_HOST")
    DOCKER_HOST_B="unix://$HOSTB/docker/docker.sock"
    DOCKER_HOST=$DOCKER_HOST_B correction_image
    cp -r "$HOSTB/tls/client" "$W/certs-b"
    chown -R 10001:10001 "$W/certs-b"
    chmod 700 "$W/certs-b"
    b=${b#tcp://}
    cat >>"$W/env" <<EOF
RABBITMQ_CLUSTER_COOKIE=cookie-$RANDOM$RANDOM$RANDOM$RANDOM
DOCKER_HOST_B=${b%:*}
DOCKER_PORT_B=${b##*:}
DOCKER_CERT_PATH_B=$W/certs-b
MAX_RUNNING=1
MAX_RUNNING_B=1
EOF
    FILES+=(-f "$ROOT/compose.cluster.yaml")
    log "host B ready; up with compose.cluster.yaml..."
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s
wait_for() {
    local n=$(($1 * 5)) what=$2; shift 2
    until "$@"; do
        n=$((n - 1)); [ $n -gt 0 ] || die "timed out waiting for $what"
        sleep 0.2
    done
}

# the management API: of node 1 through its published port, or of MGMT_NODE (a service, with
# --cluster) at its address on the compose network
MGMT_NODE=""
mgmt() { # METHOD PATH [BODY]
    local base=http://127.0.0.1:$MGMT_PORT
    [ -z "$MGMT_NODE" ] || base=http://$(ip_of "$MGMT_NODE"):15672
    curl -fsS -m 30 -u "admin:$ADMIN_PASSWORD" -H 'content-type: application/json' -X "$1" \
        "$base/api/$2" ${3:+--data-binary "$3"}
}

# the callback receiver: on the compose network's gateway; each callback in a file of its own
# under $W/callbacks, named after the job's work_id and a count
start_receiver() {
    local gw
    gw=$(gateway)
    [ -n "$gw" ] || die "no gateway address on the compose network"
    RECEIVER_PORT=$(free_port)
    RECEIVER_URL="http://$gw:$RECEIVER_PORT/grade?x=1"
    mkdir -p "$W/callbacks"
    python3 - "$gw" "$RECEIVER_PORT" "$W/callbacks" <<'EOF' >"$W/receiver.log" 2>&1 &
import http.server, itertools, json, os, sys

host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count = itertools.count()

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            wid = str(json.loads(body).get("work_id", "none"))
        except Exception:
            wid = "invalid"
        wid = "".join(c for c in wid if c.isalnum() or c in "-_")
        name = os.path.join(out, "%s.%d" % (wid, next(count)))
        with open(name + ".tmp", "wb") as f:
            f.write(json.dumps({"path": self.path, "type": self.headers.get("Content-Type"),
                                "body": body.decode("utf-8", "replace")}).encode())
        os.replace(name + ".tmp", name)
        self.send_response(204)
        self.end_headers()

http.server.HTTPServer((host, port), H).serve_forever()
EOF
    receiver_pid=$!
    wait_for 10 "the callback receiver" bash -c "exec 3<>/dev/tcp/$gw/$RECEIVER_PORT" 2>/dev/null
}

# publish_job WORK_ID: a job whose submission is a line of its own
publish_job() {
    local id=$1 job payload
    echo "exercise-$id-$RANDOM" >"$W/uploads/$id.txt"
    chmod 644 "$W/uploads/$id.txt"
    job=$(python3 -c 'import json, sys; print(json.dumps({"work_id": sys.argv[2], "image": "ct-smoke:latest",
        "file": "/srv/uploads/" + sys.argv[2] + ".txt", "callback": sys.argv[1], "params": ["GREETING=hello=world"]}))' "$RECEIVER_URL" "$id")
    payload=$(python3 -c 'import json, sys; print(json.dumps({"properties": {"delivery_mode": 2,
        "content_type": "application/json"}, "routing_key": "pending_corrections",
        "payload": sys.argv[1], "payload_encoding": "string"}))' "$job")
    mgmt POST exchanges/%2F/amq.default/publish "$payload" | grep -q '"routed":true' ||
        die "job $id was not routed to pending_corrections"
}

got_callback() { compgen -G "$W/callbacks/$1.[0-9]*" >/dev/null; }

# check_callback WORK_ID: its callback arrives, byte for byte; a repeat (delivery is at least
# once) must be the same
check_callback() {
    local id=$1 want f got
    wait_for "$TIMEOUT" "the callback of $id" got_callback "$id"
    want="/grade?x=1 application/json
{\"comments\":[\"$(cat "$W/uploads/$id.txt")\",\"hello=world\"],\"grade\":9.5,\"success\":true,\"work_id\":\"$id\"}"
    for f in "$W/callbacks/$id".[0-9]*; do
        got=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["path"], d["type"]); print(d["body"])' "$f")
        [ "$got" = "$want" ] || die "unexpected callback for $id: $got (expected POST $want)"
    done
}

# the container of a compose service; its address on the compose network
container() {
    docker ps -q --filter "label=com.docker.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1"
}
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container "$1")"; }

# the services whose containers must be healthy: 4; 8 with --cluster, 7 once a node is stopped
SERVICES=4
healthy() {
    [ "$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Status}}' |
        grep -c '(healthy)')" = "$SERVICES" ]
}

BROKER=rabbitmq # the node whose rabbitmqctl lists the queues
queues_empty() { # no message anywhere, from the broker itself
    local out
    out=$(docker exec "$(container "$BROKER")" rabbitmqctl -q list_queues name messages 2>/dev/null) || return 1
    [ -n "$out" ] && ! awk '$2 != 0 && $2 ~ /^[0-9]+$/ { bad = 1 } END { exit !bad }' <<<"$out"
}

no_correction_containers() {
    [ -z "$(docker ps -aq --filter label=correctomatic.job_id)" ] &&
        { [ $cluster = 0 ] || [ -z "$(DOCKER_HOST=$DOCKER_HOST_B docker ps -aq --filter label=correctomatic.job_id)" ]; }
}

check_clean() {
    local t=60
    [ $cluster = 0 ] || t=$TIMEOUT # a node down: rabbitmqctl is slower, the daemons reconnect
    wait_for "$t" "the queues to be empty" queues_empty
    [ $cluster = 0 ] || log "no message left"
    wait_for "$t" "the correction containers to be removed" no_correction_containers
    [ $cluster = 0 ] || log "no correction container left on either host"
    wait_for "$t" "every service to be healthy" healthy
}

one_job() {
    publish_job smoke-1
    check_callback smoke-1
}

# ---------------------------------------------------------------------------------- --cluster

# the three nodes run, in one cluster (the management API's /api/nodes lists the cluster's)
cluster_formed() {
    mgmt GET nodes 2>/dev/null | python3 -c 'import json, sys
n = json.load(sys.stdin)
sys.exit(sorted(x["name"] for x in n if x.get("running")) != ["rabbit@rabbitmq", "rabbit@rabbitmq-2", "rabbit@rabbitmq-3"])'
}

# every queue of the definitions is a quorum queue with a member on each node
queues_quorum() {
    mgmt GET queues 2>/dev/null | python3 -c 'import json, sys
q = json.load(sys.stdin)
bad = [x["name"] for x in q if x.get("type") != "quorum" or len(x.get("members", [])) != 3]
print("%d queues, not quorum with 3 members: %s" % (len(q), " ".join(bad) or "none"), file=open(sys.argv[1], "w"))
sys.exit(not q or bool(bad))' "$W/queues.txt"
}

check_cluster() {
    wait_for "$TIMEOUT" "the three RabbitMQ nodes to form one cluster" cluster_formed
    log "one cluster: rabbit@rabbitmq, rabbit@rabbitmq-2, rabbit@rabbitmq-3"
    wait_for "$TIMEOUT" "quorum queues with three members" queues_quorum
    log "$(cat "$W/queues.txt")"
    compose logs --no-color rabbitmq rabbitmq-2 rabbitmq-3 2>/dev/null | grep 'init\.sh:' >&2 || true
    SERVICES=8
    wait_for "$TIMEOUT" "every service to be healthy" healthy
}

# started ENGINE: the work ids of the correction containers started on that engine
started() {
    DOCKER_HOST=$1 docker events --since "$EVENTS_SINCE" --until "$(($(date +%s) + 1))" --filter type=container \
        --filter event=start --filter label=correctomatic.job_id \
        --format '{{index .Actor.Attributes "correctomatic.work_id"}}'
}

# jobs, four at a time, until each host ran at least one (MAX_RUNNING=1 on each)
jobs_on_both_hosts() {
    local round i a=0 b=0
    EVENTS_SINCE=$(date +%s)
    for round in 1 2 3 4 5; do
        for i in 1 2 3 4; do publish_job "job-$round-$i"; done
        for i in 1 2 3 4; do check_callback "job-$round-$i"; done
        a=$(started "$DOCKER_HOST" | wc -l)
        b=$(started "$DOCKER_HOST_B" | wc -l)
        log "after $((round * 4)) jobs: $a ran on host A, $b on host B, every callback right"
        if [ "$a" -gt 0 ] && [ "$b" -gt 0 ]; then return 0; fi
    done
    die "after 20 jobs, a host ran none (host A: $a, host B: $b)"
}

# the node most daemons are connected to
daemons_node() {
    mgmt GET connections | python3 -c 'import collections, json, sys
c = collections.Counter(x["node"] for x in json.load(sys.stdin)
                        if (x.get("client_properties") or {}).get("connection_name", "").startswith("correctomatic-"))
print(c.most_common(1)[0][0] if c else "")'
}

# leader_not_on NODE: pending_corrections has a leader, not NODE
leader_not_on() {
    mgmt GET queues/%2F/pending_corrections 2>/dev/null | python3 -c 'import json, sys
q = json.load(sys.stdin)
sys.exit(not q.get("leader") or q.get("leader") == sys.argv[1] or q.get("state") != "running")' "$1"
}

node_lost() {
    local node svc other
    node=$(daemons_node)
    [ -n "$node" ] || die "no daemon connected to the broker"
    svc=${node#rabbit@}
    compose stop "$svc" >>"$W/up.log" 2>&1 || die "docker-compose stop $svc failed"
    log "stopped $svc ($node, the node the daemons were on)"
    for other in rabbitmq rabbitmq-2 rabbitmq-3; do [ "$other" = "$svc" ] || break; done
    MGMT_NODE=$other BROKER=$other SERVICES=7
    # the management API of a node answers once it knows the other is gone, and a quorum queue
    # takes jobs once it has elected a leader among the two members left
    wait_for "$TIMEOUT" "pending_corrections to have a leader on a running node" leader_not_on "$node"
    log "pending_corrections has a leader on a running node"
    publish_job after-node-lost
    check_callback after-node-lost
    log "job after-node-lost went through, published to $other"
}

# ---------------------------------------------------------------------------------- run

engine=1
step "engine" "$SERVERS" docker-start
export DOCKER_HOST="unix://$CT_SERVERS_DIR/docker/docker.sock"
step "base images" import_base
step "correction image" correction_image
step "image builds" build_images
step "compose up" compose_up
step "receiver" start_receiver
if [ $cluster = 0 ]; then
    step "job" one_job
else
    step "cluster formed" check_cluster
    step "jobs on both hosts" jobs_on_both_hosts
    step "a node lost" node_lost
fi
step "clean state" check_clean
step "layer cache" save_layers
if [ $cluster = 0 ]; then
    log "OK: the job went through the three daemons and its callback arrived"
else
    log "OK: one cluster of three nodes with quorum queues, jobs on both hosts, a job through with a node lost"
fi
