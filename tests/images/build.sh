#!/usr/bin/env bash
# build.sh: builds the test correction images into the engine at $DOCKER_HOST, without a
# registry: a busybox-static root file system plus one script, `docker import`ed with
# CMD ["/run.sh"]. Each image is tagged NAME:latest.
#
#   ct-ok         {"success":true,"grade":10,"comments":["well done"]}
#   ct-separator  noise, then the response between the BEGIN/END CORRECTOMATIC RESPONSE markers,
#                 then noise: {"success":true,"grade":7.5,"comments":["separated","by markers"]}
#   ct-stderr     {"success":true,"grade":5,"comments":["stderr ignored"]} plus noise on stderr
#   ct-fail       {"success":false,"error":"compilation failed"}
#   ct-invalid    two lines that are not JSON
#   ct-sleeper    sleeps ${SLEEP:-300} s, then {"success":true,"grade":10,"comments":["slept"]}
#   ct-memhog     allocates memory without bound (to be OOM-killed under a small --memory)
#   ct-echo       /tmp/exercise on stdout, `env` on stderr, exit 0
#   ct-notmp      {"success":true,"grade":10,"comments":["no tmp"]}, and the image has no /tmp
#   ct-badcmd     no /run.sh at all: the container cannot start (a broken correction image)
#   ct-sumgrader  examples/sum-grader/grade.sh: the README's example correction image
#   ct-shell      runs /tmp/exercise as a shell script: the test writes what it prints
#   ct-badvolume  no /run.sh (cannot start) and a VOLUME /data: a broken image whose container
#                 holds an anonymous volume
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
DOCKER=/usr/bin/docker
BUSYBOX=/bin/busybox
[ -n "${DOCKER_HOST:-}" ] || { echo "build.sh: DOCKER_HOST is not set" >&2; exit 1; }
case "$(ldd "$BUSYBOX" 2>&1 || true)" in *"not a dynamic"*) ;; *)
     echo "build.sh: $BUSYBOX is not static (install busybox-static)" >&2; exit 1 ;; esac

# image name -> script (under tests/images), whether the image gets a /tmp folder, and
# optionally "volume" (a VOLUME /data)
IMAGES=(
    "ct-ok ok.sh tmp"
    "ct-separator separator.sh tmp"
    "ct-stderr stderr.sh tmp"
    "ct-fail fail.sh tmp"
    "ct-invalid invalid.sh tmp"
    "ct-sleeper sleeper.sh tmp"
    "ct-memhog memhog.sh tmp"
    "ct-echo echo.sh tmp"
    "ct-notmp notmp.sh notmp"
    "ct-badcmd - tmp"
    "ct-sumgrader ../../examples/sum-grader/grade.sh tmp"
    "ct-shell shell.sh tmp"
    "ct-badvolume - tmp volume"
)

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

base=$W/base
mkdir -p "$base/bin" "$base/etc" "$base/dev" "$base/proc" "$base/sys"
cp "$BUSYBOX" "$base/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -s busybox "$base/bin/$a"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$base/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$base/etc/group"

pids=()
for spec in "${IMAGES[@]}"; do
    read -r name script tmp volume <<<"$spec"
    d=$W/$name
    cp -a "$base" "$d"
    [ "$tmp" = tmp ] && { mkdir "$d/tmp"; chmod 1777 "$d/tmp"; }
    [ "$script" = - ] || install -m 755 "$HERE/$script" "$d/run.sh"
    changes=(-c 'CMD ["/run.sh"]')
    [ "${volume:-}" = volume ] && changes+=(-c 'VOLUME ["/data"]')
    (
        tar --numeric-owner --owner=0 --group=0 -C "$d" -c . |
            "$DOCKER" import "${changes[@]}" -m "correctomatic test image ($script)" - "$name:latest" >/dev/null
    ) &
    pids+=("$!:$name")
done
rc=0
for p in "${pids[@]}"; do
    wait "${p%%:*}" || { echo "build.sh: building ${p#*:} failed" >&2; rc=1; }
done
[ $rc = 0 ] && echo "build.sh: built ${#IMAGES[@]} images"
exit $rc
