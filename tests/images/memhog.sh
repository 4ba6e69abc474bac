#!/bin/sh
# ct-memhog: allocates memory without bound (tail keeps the endless "line" of /dev/zero)
echo "allocating" >&2
exec tail /dev/zero
