#!/usr/bin/env bash
# One rift node of a Redis cluster watched by Sentinel: a redis-server and a
# redis-sentinel, both children of this script and so in the node's process
# group (rift's kill, pause and stop reach both).
#
#   node.sh NAME HOST PORT SENTINEL_PORT DATA_DIR PEERS [PRIMARY]
#
# PEERS is every node, this one included, as NAME=HOST:PORT joined by commas
# (rift's `{peers}` with `include_self = true`). PRIMARY (default n0) starts
# as the primary; the others start as its replicas. Every sentinel monitors
# the primary under the name `rift` with a quorum of a majority of the nodes,
# marks it down after 1 s without an answer and may fail over every 5 s.
#
# On a restart (DATA_DIR already holds the configuration files) the files are
# kept as the processes left them: Sentinel rewrites both (who is primary, the
# epochs it knows), as it does on a real deployment.
set -euo pipefail

if [ "$#" -lt 6 ]; then
    echo "usage: $0 NAME HOST PORT SENTINEL_PORT DATA_DIR PEERS [PRIMARY]" >&2
    exit 2
fi
name=$1 host=$2 port=$3 sport=$4 data=$5 peers=$6 primary=${7:-n0}
down_after=${RIFT_REDIS_DOWN_AFTER_MS:-1000}
failover_timeout=${RIFT_REDIS_FAILOVER_TIMEOUT_MS:-5000}

primary_addr= count=0
IFS=, read -r -a entries <<<"$peers"
for e in "${entries[@]}"; do
    count=$((count + 1))
    if [ "${e%%=*}" = "$primary" ]; then
        primary_addr=${e#*=}
    fi
done
if [ -z "$primary_addr" ]; then
    echo "node.sh: the primary $primary is not in the peer list $peers" >&2
    exit 2
fi
primary_host=${primary_addr%:*} primary_port=${primary_addr##*:}
quorum=$((count / 2 + 1))

mkdir -p "$data/redis" "$data/sentinel"
rconf=$data/redis.conf
sconf=$data/sentinel.conf

if [ ! -e "$rconf" ]; then
    {
        echo "bind $host"
        echo "port $port"
        echo "protected-mode no"
        echo "daemonize no"
        echo "logfile \"\""
        echo "dir $data/redis"
        echo "save \"\""
        echo "appendonly yes"
        echo "appendfsync everysec"
        # Say who we are: on loopback every connection leaves from
        # 127.0.0.1 whatever we bind (under netns both are the node's own).
        echo "replica-announce-ip $host"
        # Sync replicas at once (the default waits 5 s for more replicas),
        # so the sentinels see them in the primary's INFO before any fault.
        echo "repl-diskless-sync-delay 0"
        if [ "$name" != "$primary" ]; then
            echo "replicaof $primary_host $primary_port"
        fi
    } >"$rconf.tmp"
    mv "$rconf.tmp" "$rconf"
fi
if [ ! -e "$sconf" ]; then
    {
        echo "bind $host"
        echo "port $sport"
        echo "protected-mode no"
        echo "daemonize no"
        echo "logfile \"\""
        echo "dir $data/sentinel"
        echo "sentinel announce-ip $host"
        echo "sentinel monitor rift $primary_host $primary_port $quorum"
        echo "sentinel down-after-milliseconds rift $down_after"
        echo "sentinel failover-timeout rift $failover_timeout"
        echo "sentinel parallel-syncs rift 1"
    } >"$sconf.tmp"
    mv "$sconf.tmp" "$sconf"
fi

redis=$(command -v redis-server || true)
sentinel=$(command -v redis-sentinel || true)
if [ -z "$redis" ] || [ -z "$sentinel" ]; then
    echo "node.sh: redis-server and redis-sentinel are needed (bash .ci/packages.sh installs them)" >&2
    exit 127
fi

echo "node.sh: $name redis $host:$port sentinel $host:$sport primary $primary=$primary_addr quorum $quorum"
"$redis" "$rconf" &
rpid=$!
"$sentinel" "$sconf" &
spid=$!

stop() {
    kill -TERM "$rpid" "$spid" 2>/dev/null || true
    wait "$rpid" "$spid" 2>/dev/null || true
    exit 143
}
trap stop TERM INT

# When either exits, stop the other and exit with its status, so rift sees
# the node die.
set +e
wait -n "$rpid" "$spid"
status=$?
echo "node.sh: a process of $name exited with status $status; stopping the other" >&2
kill -TERM "$rpid" "$spid" 2>/dev/null
wait "$rpid" "$spid" 2>/dev/null
exit "$status"
