#!/bin/sh
# ct-echo: the submission on stdout, the environment on stderr
cat /tmp/exercise
env >&2
exit 0
