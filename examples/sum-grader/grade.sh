#!/bin/sh
# An example correction image's entry point (see ../../README.md, "The correction image").
#
# The exercise: a shell script that prints the sum of its two arguments. The submission is at
# /tmp/exercise; the teacher's parameters arrive as environment variables:
#   CASES   test cases "a b expected" separated by ';' (default: three cases)
#   POINTS  the grade of a perfect submission (default 10)
# Anything may be printed around the response block; the response itself follows the contract.
CASES=${CASES:-"2 3 5;10 -4 6;0 0 0"}
POINTS=${POINTS:-10}

echo "sum-grader: checking $(wc -c </tmp/exercise) bytes"
total=0
passed=0
comments=""
IFS=';'
for case in $CASES; do
    IFS=' '
    set -- $case
    total=$((total + 1))
    got=$(timeout 5 sh /tmp/exercise "$1" "$2" 2>/dev/null | head -n 1)
    if [ "$got" = "$3" ]; then
        passed=$((passed + 1))
        comment="sum of $1 and $2: ok"
    else
        comment="sum of $1 and $2: expected $3"
    fi
    comments="$comments${comments:+,}\"$comment\""
    IFS=';'
done

if [ "$total" -eq 0 ]; then
    echo '{"success":false,"error":"no test cases"}'
    exit 0
fi
grade=$((POINTS * passed / total))
echo "-----BEGIN CORRECTOMATIC RESPONSE-----"
printf '{"success":true,"grade":%s,"comments":[%s]}\n' "$grade" "$comments"
echo "-----END CORRECTOMATIC RESPONSE-----"
echo "sum-grader: $passed of $total cases passed"
