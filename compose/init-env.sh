#!/bin/sh
# init-env.sh: writes .env for `docker compose up` from .env.example, once: random passwords
# for the broker's two users and Grafana's admin, and the group id of the Docker socket. An
# existing .env is left as it is (edit it by hand; .env.example describes every variable).
#
#   compose/init-env.sh && docker compose up -d --build
set -eu
cd "$(dirname "$0")/.."
if [ -e .env ]; then
    echo "init-env.sh: .env exists, left as it is"
    exit 0
fi
socket=${DOCKER_SOCKET:-/var/run/docker.sock}
gid=$(stat -c %g "$socket" 2>/dev/null) || {
    echo "init-env.sh: no Docker socket at $socket (set DOCKER_SOCKET)" >&2
    exit 1
}
password() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
mkdir -p uploads # the shared upload folder, readable by the daemons' user
umask 077
sed -e "s|^RABBITMQ_ADMIN_PASSWORD=.*|RABBITMQ_ADMIN_PASSWORD=$(password)|" \
    -e "s|^RABBITMQ_PASSWORD=.*|RABBITMQ_PASSWORD=$(password)|" \
    -e "s|^GRAFANA_ADMIN_PASSWORD=.*|GRAFANA_ADMIN_PASSWORD=$(password)|" \
    -e "s|^DOCKER_GID=.*|DOCKER_GID=$gid|" \
    -e "s|^DOCKER_SOCKET=.*|DOCKER_SOCKET=$socket|" .env.example >.env
echo "init-env.sh: wrote .env (random passwords, DOCKER_GID=$gid); the admin passwords are in it"
