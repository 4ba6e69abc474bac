#!/bin/sh
# ct-sleeper: sleeps ${SLEEP:-300} seconds, then answers
sleep "${SLEEP:-300}"
echo '{"success":true,"grade":10,"comments":["slept"]}'
