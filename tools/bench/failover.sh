#!/usr/bin/env bash
# Failover benchmark (not a test): requests per second and failed requests while 3 connector
# replicas are restarted one by one (start a new one, SIGTERM an old one), next to the same
# load with no restart in the same run, as a ratio; and the time from SIGKILL of a replica to
# the edge no longer routing to it (its connections gone from the edge's /metrics).
set -euo pipefail
OUT=${OUT:-build}
CFD_BIN="$PWD/$OUT/cfdtunnel"
SECS=${BENCH_SECONDS:-10}
. tests/integration/lib/common.sh

command -v wrk >/dev/null || { echo "bench failover: wrk is not installed"; exit 0; }
. tests/integration/lib/tunnel.sh

www="$TEST_TMP/www"
mkdir -p "$www"
head -c 100 /dev/urandom | base64 -w0 | head -c 100 >"$www/small.txt"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$www"

start_edge DFW 127.0.0.1
create_tunnel failover failover.localhost
TUNNEL_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["TunnelID"])' "$CRED")
declare -A PID
replica() {  # replica N: a connector with 2 connections
    start_connector "r$1" "http://127.0.0.1:$origin_port" --ha-connections 2 --grace-period 10s
    PID[$1]=$CONNECTOR_PID
    wait_registered "r$1" 2
}
for i in 1 2 3; do replica "$i"; done
conns() { edge_metric DFW "cfdtunnel_edge_tunnel_connections{location=\"DFW\",tunnel=\"$TUNNEL_ID\"}"; }

# load SECONDS FILE: wrk in the background; `result FILE` reads its requests/s and failures
# (non-2xx plus socket errors) once it is done.
load() {
    wrk -t 1 -c 32 -d "${1}s" -H "Host: failover.localhost" \
        "http://127.0.0.1:${EDGE_HTTP[DFW]}/small.txt" >"$2" 2>&1 &
    LOAD_PID=$!
}
result() {
    local rps non2xx sock
    rps=$(awk '/Requests\/sec/ {print $2}' "$1")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$1")
    sock=$(awk '/Socket errors/ { n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i; print n }' "$1")
    echo "${rps:-0} $(( ${non2xx:-0} + ${sock:-0} ))"
}

load "$SECS" "$TEST_TMP/steady.out"
wait "$LOAD_PID"
read -r steady_rps steady_fail < <(result "$TEST_TMP/steady.out")

# The rolling restart while wrk loads the edge: 4 replaces 1, 5 replaces 2, 6 replaces 3.
load "$SECS" "$TEST_TMP/roll.out"
for i in 1 2 3; do
    replica $((i + 3))
    kill -TERM "${PID[$i]}"
    wait_until 20 bash -c "! kill -0 ${PID[$i]} 2>/dev/null" || echo "replica $i did not exit"
done
wait "$LOAD_PID"
read -r roll_rps roll_fail < <(result "$TEST_TMP/roll.out")
rolled=$(cat "$TEST_TMP"/r[456].log | grep -c 'Registered tunnel connection' || true)

# SIGKILL: how long until the edge stops routing to the replica (its 2 connections gone).
before=$(conns)
t0=$(date +%s%N)
disown "${PID[4]}" 2>/dev/null || true  # no "Killed" job notice in the output
kill -KILL "${PID[4]}"
until (( $(conns) <= before - 2 )); do
    if (( $(date +%s%N) - t0 > 30000000000 )); then
        echo "the edge still routes to the killed replica after 30 s"
        break
    fi
done
gone_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

echo "failover, steady load (32 clients, ${SECS}s, 3 replicas): $steady_rps req/s, $steady_fail failed"
echo "failover, rolling restart of 3 replicas under the same load: $roll_rps req/s, $roll_fail failed ($rolled connections registered by the new replicas)"
awk -v a="$roll_rps" -v b="$steady_rps" 'BEGIN {
    printf "ratio rolling restart / steady: %.2fx requests/s\n", (b > 0 ? a / b : 0) }'
echo "failover, SIGKILL of a replica to the edge no longer routing to it: ${gone_ms} ms (metrics polled back to back)"
