#!/bin/sh
# The stand-in's entrypoint: like the official image's (which uses gosu), run rabbitmq-server
# as the rabbitmq user by exec, so that it is PID 1 and gets the SIGTERM of `docker stop`.
set -eu
if [ "${1:-}" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
    find /var/lib/rabbitmq ! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' +
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi
exec "$@"
