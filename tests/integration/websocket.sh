#!/usr/bin/env bash
# A WebSocket through the edge and the tunnel (DESIGN.md §2, issue 5): a real client and a real
# echo origin (Debian's node-ws) exchange 10,000 messages, text and binary, up to 64 KiB, every
# one checked, then close cleanly with 1000; once through an edge core that holds the tunnel
# connection and once through the cross-core relay. A refused upgrade is an ordinary response.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

export NODE_PATH=/usr/share/nodejs
if ! node -e "require('ws')" 2>/dev/null; then
    echo "node-ws is missing: WebSocket test skipped"
    exit 77
fi
WS="$(dirname "$0")/lib/ws_echo.js"
ws_port=$(free_port)
start origin node "$WS" server "$ws_port"
wait_until 10 port_open "$ws_port" || fail "the echo origin did not start"

start_edge DFW 127.0.0.1  # two reactors
create_tunnel ws ws.localhost
start_connector connector "http://127.0.0.1:$ws_port" --ha-connections 1
wait_registered connector 1

got=$(timeout 120 node "$WS" client "ws://127.0.0.1:${EDGE_HTTP[DFW]}/echo" ws.localhost 10000) ||
    fail "the WebSocket exchange failed: $got"
[[ $got == "ok 10000" ]] || fail "client said: $got"

# New connections land on either reactor; with one tunnel connection, some are relayed.
for i in $(seq 1 8); do
    got=$(timeout 60 node "$WS" client "ws://127.0.0.1:${EDGE_HTTP[DFW]}/echo" ws.localhost 200) ||
        fail "WebSocket $i failed: $got"
done
relayed=$(edge_metric DFW 'cfdtunnel_edge_relayed_streams_total{side="sent"}')
echo "websocket: 10000 messages, then 8 more clients ($relayed relayed streams)"

# An upgrade the origin refuses (no Sec-WebSocket-Key: node-ws answers 400): the client gets
# that answer as it is, not a hang and not a 101.
code=$(through DFW ws.localhost /plain --max-time 10 -H 'Upgrade: websocket' \
    -H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 13' -o /dev/null -w '%{http_code}') ||
    true
[[ $code == 400 ]] || fail "a refused upgrade came back as $code, not the origin's 400"
