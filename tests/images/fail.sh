#!/bin/sh
# ct-fail: a valid failure response
echo '{"success":false,"error":"compilation failed"}'
