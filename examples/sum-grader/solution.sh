#!/bin/sh
# A correct submission for the sum-grader example.
echo $(($1 + $2))
