#!/usr/bin/env bash
# Installs every Debian package the tests and the examples under
# experiments/real/ need (libfaketime: clock faults, docs/faults.md), and
# leaves no service of theirs running: rift
# starts its own redis-server, redis-sentinel and etcd processes, and a
# daemon started by a package's postinst would hold 6379, 26379 or 2379.
#
# Idempotent: packages already installed are not asked for again, and the
# stop step runs every time. Without root or without apt-get it says so in
# one line and exits 0 (tests that need the packages skip on their own).
set -euo pipefail

PACKAGES=(redis-server redis-sentinel etcd-server etcd-client chromium libfaketime fuse3)
# The services those packages register (Debian names).
SERVICES=(redis-server redis-sentinel etcd)
# The daemons they run and the ports they listen on by default.
DAEMONS=(redis-server redis-sentinel redis-check-rdb etcd)
PORTS=(6379 26379 2379 2380)

say() { echo "packages.sh: $*"; }

if [ "$(id -u)" != 0 ]; then
    say "not root: skipping the install of ${PACKAGES[*]}"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    say "no apt-get: skipping the install of ${PACKAGES[*]}"
    exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    # invoke-rc.d and deb-systemd-invoke ask policy-rc.d whether a package
    # may start its service; 101 means "no". Put one in place for the
    # install unless the machine already has its own.
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    cleanup() { if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup EXIT
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        # A stale or absent package list: fetch it once and try again.
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
else
    say "already installed: ${PACKAGES[*]}"
fi

# Stop and disable whatever the packages registered, with whatever init
# tooling this machine has (none, in a container).
for s in "${SERVICES[@]}"; do
    if command -v systemctl >/dev/null 2>&1; then
        # `disable` works without a running systemd (it removes links).
        systemctl disable "$s" >/dev/null 2>&1 || true
    fi
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl stop "$s" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$s" ]; then
        if command -v service >/dev/null 2>&1; then
            service "$s" stop >/dev/null 2>&1 || true
        else
            "/etc/init.d/$s" stop >/dev/null 2>&1 || true
        fi
    fi
    if command -v update-rc.d >/dev/null 2>&1 && [ -x "/etc/init.d/$s" ]; then
        update-rc.d "$s" disable >/dev/null 2>&1 || true
    fi
done

# The pids of processes listening on TCP port $1 (from /proc, no tools).
listeners() {
    local port hex inodes pid fd link
    port=$1
    hex=$(printf '%04X' "$port")
    # Local address column is ADDR:PORT in hex; state 0A is LISTEN.
    inodes=$(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u)
    [ -n "$inodes" ] || return 0
    for pid in /proc/[0-9]*; do
        for fd in "$pid"/fd/*; do
            link=$(readlink "$fd" 2>/dev/null) || continue
            case "$link" in
                socket:\[*\])
                    link=${link#socket:[}
                    link=${link%]}
                    if grep -qx "$link" <<<"$inodes"; then
                        echo "${pid#/proc/}"
                        break
                    fi
                    ;;
            esac
        done
    done | sort -u
}

# A daemon that a postinst started without asking policy-rc.d (or one left
# by an earlier install) is killed by pid, and only if it is one of ours.
for port in "${PORTS[@]}"; do
    for pid in $(listeners "$port"); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
        for d in "${DAEMONS[@]}"; do
            if [ "$comm" = "$d" ] || [ "${comm%% *}" = "$d" ]; then
                say "stopping $comm (pid $pid) on port $port"
                kill "$pid" 2>/dev/null || true
                for _ in 1 2 3 4 5 6 7 8 9 10; do
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.2
                done
                kill -9 "$pid" 2>/dev/null || true
            fi
        done
    done
done

busy=()
for port in "${PORTS[@]}"; do
    if [ -n "$(listeners "$port")" ]; then
        busy+=("$port")
    fi
done
if [ "${#busy[@]}" -gt 0 ]; then
    say "warning: something else listens on port(s) ${busy[*]}"
fi
say "ready: $(redis-server --version 2>/dev/null | awk '{print $1, $2, $3}'); $(etcd --version 2>/dev/null | head -1)"
