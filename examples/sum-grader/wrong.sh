#!/bin/sh
# A wrong submission for the sum-grader example: it multiplies.
echo $(($1 * $2))
