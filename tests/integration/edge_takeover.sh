#!/usr/bin/env bash
# Zero-downtime restart of an edge location (DESIGN.md story 12): under steady GET load, a new
# edge process starts on the same ports (SO_REUSEPORT), the old one gets SIGTERM and drains.
# Its idle tunnel connections close at once, so the connector moves them to the new process,
# where requests for the tunnel wait (--connector-wait) for them instead of failing; its busy
# ones finish their requests first. Not one request may fail.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

# Connections waiting in a closing listener's accept queue must move to the new listener.
migrate=/proc/sys/net/ipv4/tcp_migrate_req
if [[ ! -w $migrate ]]; then
    echo "$migrate is not writable here: zero-loss takeover not tested"
    exit 77
fi
old_migrate=$(cat "$migrate")
on_exit "echo $old_migrate >$migrate"
echo 1 >"$migrate"

mkdir -p "$TEST_TMP/www"
echo "served" >"$TEST_TMP/www/index.html"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1
create_tunnel takeover takeover.localhost
start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 2

start load python3 "$(dirname "$0")/lib/http_load.py" --port "${EDGE_HTTP[DFW]}" \
    --host takeover.localhost --threads 4 --expect-body served \
    --stop-file "$TEST_TMP/stop" --out "$TEST_TMP/load.json"
load_pid=$LAST_PID
served() { cat "$TEST_TMP/load.json.progress" 2>/dev/null || echo 0; }
wait_until 20 bash -c "(( \$(cat '$TEST_TMP/load.json.progress' 2>/dev/null || echo 0) >= 200 ))" ||
    fail "the load did not get going: $(served) served"

# The new process, same location, same ports, same store.
old_pid=${EDGE_PID[DFW]}
start edge-DFW-new "$CFD_BIN" edge --config /dev/null --location DFW \
    --store "sqlite:$STORE/edge.db" --workers 2 \
    --tunnel-listen "127.0.0.1:${EDGE_TUNNEL[DFW]}" --http-listen "127.0.0.1:${EDGE_HTTP[DFW]}" \
    --api-listen "127.0.0.1:${EDGE_API[DFW]}" --metrics "127.0.0.1:$(free_port)"
new_pid=$LAST_PID
wait_until 20 grep -q 'Public HTTP listener ready' "$TEST_TMP/edge-DFW-new.log" ||
    fail "the new edge did not start: $(tail -5 "$TEST_TMP/edge-DFW-new.log")"

before=$(served)
kill -TERM "$old_pid"
wait_until 30 bash -c "! kill -0 $old_pid 2>/dev/null" || fail "the old edge did not finish its drain"
# The connector moved both connections to the new process, which serves on.
wait_until 20 bash -c "[[ \$(grep -c 'Registered tunnel connection' '$TEST_TMP/connector.log') -ge 4 ]]" ||
    fail "the connector did not move to the new edge: $(tail -5 "$TEST_TMP/connector.log")"
after=$(served)
wait_until 20 bash -c "(( \$(cat '$TEST_TMP/load.json.progress') >= $after + 200 ))" ||
    fail "the new edge does not serve: $(served) served"

touch "$TEST_TMP/stop"
wait "$load_pid" || fail "the load generator failed"
read -r ok failed resent < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["ok"], c["failed"], c["resent"])' "$TEST_TMP/load.json")
echo "takeover: $ok requests served ($before before the signal), $failed failed, $resent resent after a keep-alive race"
((failed == 0)) || fail "requests failed during the takeover: $(cat "$TEST_TMP/load.json")"
kill -0 "$new_pid" || fail "the new edge died"
