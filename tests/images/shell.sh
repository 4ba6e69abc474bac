#!/bin/sh
# ct-shell: runs the submission as a shell script, so a test decides what is printed on stdout
# and stderr, how much, and how it ends (tests/integration/test_corpus.c, test_chaos.c)
exec sh /tmp/exercise
