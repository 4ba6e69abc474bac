#!/bin/sh
# ct-ok: a valid successful response as the whole output
echo '{"success":true,"grade":10,"comments":["well done"]}'
