#!/bin/sh
# Entrypoint wrapper of the compose `rabbitmq` service (see compose.yaml).
#
# RabbitMQ definition files cannot read environment variables, and the passwords live in .env.
# So this renders /etc/rabbitmq/definitions.json (the template mounted from
# compose/rabbitmq/definitions.json: users, permissions, queues) into the file that
# load_definitions points at, replacing each ${NAME} with the JSON-escaped value of the
# environment variable NAME, then hands over to the image's own entrypoint. Definitions accept
# a plain "password" (RabbitMQ hashes it on import), so no hashing tool is needed here.
set -eu

template=/etc/rabbitmq/definitions.json
out=/etc/rabbitmq/correctomatic-definitions.json

for v in RABBITMQ_ADMIN_USER RABBITMQ_ADMIN_PASSWORD RABBITMQ_USER RABBITMQ_PASSWORD; do
    eval "val=\${$v:-}"
    if [ -z "$val" ]; then
        echo "init.sh: $v is not set (see .env.example)" >&2
        exit 1
    fi
done

umask 077
awk '
function esc(s,    r, i, c) {
    r = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "\"")
            r = r "\\"
        r = r c
    }
    return r
}
{
    line = $0; res = ""
    while (match(line, /\$\{[A-Z_]+\}/)) {
        name = substr(line, RSTART + 2, RLENGTH - 3)
        if (!(name in ENVIRON)) {
            print "init.sh: " name " is not set" > "/dev/stderr"
            exit 1
        }
        res = res substr(line, 1, RSTART - 1) esc(ENVIRON[name])
        line = substr(line, RSTART + RLENGTH)
    }
    print res line
}' "$template" >"$out.tmp"
# the server runs as the rabbitmq user; the file holds passwords: readable by it alone
if [ "$(id -u)" = 0 ]; then
    chown rabbitmq:rabbitmq "$out.tmp"
fi
mv "$out.tmp" "$out"

exec docker-entrypoint.sh "$@"
