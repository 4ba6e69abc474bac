#!/bin/sh
# ct-invalid: output that is not a response
echo "this is not JSON at all"
echo "{ \"success\": tru"
