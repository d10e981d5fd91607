#!/usr/bin/env bash
# Killing one edge location leaves the tunnel serving through the other; when the location comes
# back on the same ports, the connector reconnects to it (with backoff) and it serves again.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
echo "still here" >"$TEST_TMP/www/index.html"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel ha ha.localhost
start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 4

kill -KILL "${EDGE_PID[MCI]}"
wait "${EDGE_PID[MCI]}" 2>/dev/null || true
for _ in $(seq 1 20); do
    body=$(through DFW ha.localhost /) || fail "DFW stopped serving after MCI died"
    [[ $body == "still here" ]] || fail "DFW answered: $body"
done
kill -0 "$CONNECTOR_PID" || fail "the connector exited when one location died"

# MCI returns on the same addresses: the connector reconnects both of its connections there.
start_edge MCI 127.0.0.2
wait_registered connector 6
body=$(through MCI ha.localhost /) || fail "MCI does not serve after it came back"
[[ $body == "still here" ]] || fail "MCI answered: $body"
