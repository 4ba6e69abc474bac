# packages.sh: sourced by tests/run.sh, tests/compose/smoke.sh and bench/run.sh.
#
#   install_missing_packages PKG...
#
# Installs, with apt-get, those of the Debian packages named that are not installed yet
# (non-interactive; `apt-get update` first, only when something is missing), keeping the
# packages' own services (a system dockerd, rabbitmq) from starting. Uses the caller's `log`
# and `die`.
install_missing_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy=/usr/sbin/policy-rc.d
    fi
    local rc=0
    apt-get update -q </dev/null || rc=$?
    [ $rc != 0 ] || apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null || rc=$?
    [ -z "$policy" ] || rm -f "$policy"
    [ $rc = 0 ] || die "apt-get failed"
}
