#!/bin/sh
# ct-stderr: a valid response on stdout, noise on stderr
echo "warning: noise on stderr" >&2
echo '{"success":true,"grade":5,"comments":["stderr ignored"]}'
echo "{ not json, on stderr }" >&2
