#!/usr/bin/env bash
# The connector's --metrics server with real processes (DESIGN.md §5 Observability, story 10):
# /ready is 503 until a connection registers, then 200 with readyConnections 4 and the connector
# ID the connector logged; requests through the edge show in total_requests and
# response_by_code; after SIGTERM /ready turns 503 while a slow request keeps the process in its
# grace period; without --metrics a connector whose default port 20241 is taken uses the next.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

# An origin whose /slow answers only once $TEST_TMP/release exists (bounded), so the test holds
# a request open for exactly as long as it needs.
cat >"$TEST_TMP/origin.py" <<'PY'
import http.server, os, sys, time
release = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/slow":
            deadline = time.time() + 60
            while not os.path.exists(release) and time.time() < deadline:
                time.sleep(0.02)
        code, body = (404, b"missing\n") if self.path == "/missing" else (200, b"hello\n")
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
origin_port=$(free_port)
start origin python3 "$TEST_TMP/origin.py" "$origin_port" "$TEST_TMP/release"
wait_until 10 port_open "$origin_port" || fail "origin did not start"

start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel metrics metrics.localhost

mport=$(free_port)
start_connector connector "http://127.0.0.1:$origin_port" --metrics "127.0.0.1:$mport" \
    --grace-period 60s
CONN=$CONNECTOR_PID
murl="http://127.0.0.1:$mport"

# ready_body: "<status> <json>"
ready() {
    curl -sS --max-time 5 -w ' %{http_code}' "$murl/ready"
}
# metric 'name{labels}': its value in /metrics, or nothing.
metric() {
    curl -sS --max-time 5 "$murl/metrics" | awk -v n="$1" '$1 == n {print $2}'
}

wait_until 10 port_open "$mport" || fail "no metrics server: $(tail -5 "$TEST_TMP/connector.log")"
grep -q "Starting metrics server on 127.0.0.1:$mport/metrics" "$TEST_TMP/connector.log" ||
    fail "the connector did not log its metrics address"
id=$(sed -n 's/.*Generated Connector ID: \([0-9a-f-]*\).*/\1/p' "$TEST_TMP/connector.log")
[[ -n $id ]] || fail "no connector ID in the log"

# Before every connection registered: 503 with readyConnections < 4, or (the edge is fast)
# already 200. Either way the body has the shape of story 10 and names this connector.
out=$(ready)
code=${out##* }
body=${out% *}
[[ $body =~ ^\{\"status\":$code,\"readyConnections\":[0-4],\"connectorId\":\"$id\"\}$ ]] ||
    fail "/ready answered: $out"
if [[ $code == 503 ]]; then
    [[ $body == *'"readyConnections":0'* ]] || fail "503 with registered connections: $body"
else
    [[ $code == 200 ]] || fail "/ready status $code"
fi

wait_registered connector 4
want="{\"status\":200,\"readyConnections\":4,\"connectorId\":\"$id\"} 200"
wait_until 10 bash -c "[[ \$(curl -sS -w ' %{http_code}' '$murl/ready') == '$want' ]]" ||
    fail "/ready after registration: $(ready), want $want"
[[ $(metric cfdtunnel_tunnel_ha_connections) == 4 ]] || fail "ha_connections $(metric cfdtunnel_tunnel_ha_connections)"

[[ $(curl -sS "$murl/healthcheck") == OK ]] || fail "/healthcheck"
[[ $(curl -sS -o /dev/null -w '%{http_code}' "$murl/nothing") == 404 ]] || fail "unknown path not 404"
[[ $(curl -sS -o /dev/null -w '%{http_code}' -X POST "$murl/ready") == 405 ]] || fail "POST not 405"
curl -sS -D "$TEST_TMP/metrics.head" -o "$TEST_TMP/metrics.txt" "$murl/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$TEST_TMP/metrics.head" ||
    fail "metrics content type: $(cat "$TEST_TMP/metrics.head")"
for name in ha_connections total_requests concurrent_requests response_by_code request_errors \
    server_locations; do
    grep -q "^# TYPE cfdtunnel_tunnel_$name " "$TEST_TMP/metrics.txt" || fail "no $name family"
done
grep -q '^cfdtunnel_build_info{version="' "$TEST_TMP/metrics.txt" || fail "no build info"
for loc in DFW MCI; do
    [[ $(grep -c "^cfdtunnel_tunnel_server_locations{connection_id=\"[0-3]\",edge_location=\"$loc\"} 1" \
        "$TEST_TMP/metrics.txt") == 2 ]] || fail "server_locations for $loc: $(grep server_locations "$TEST_TMP/metrics.txt")"
done

# N requests through both locations: every one counted, by code too.
n=6
for i in $(seq 1 $n); do
    loc=DFW
    ((i % 2)) && loc=MCI
    [[ $(through "$loc" metrics.localhost /) == hello ]] || fail "request $i through $loc"
done
[[ $(through DFW metrics.localhost /missing -o /dev/null -w '%{http_code}') == 404 ]] || fail "404"
[[ $(metric cfdtunnel_tunnel_total_requests) == $((n + 1)) ]] ||
    fail "total_requests $(metric cfdtunnel_tunnel_total_requests), want $((n + 1))"
[[ $(metric 'cfdtunnel_tunnel_response_by_code{status_code="200"}') == "$n" ]] ||
    fail "response_by_code 200: $(metric 'cfdtunnel_tunnel_response_by_code{status_code="200"}')"
[[ $(metric 'cfdtunnel_tunnel_response_by_code{status_code="404"}') == 1 ]] || fail "404 count"
[[ $(metric cfdtunnel_tunnel_request_errors) == 0 ]] || fail "request_errors"
[[ $(metric cfdtunnel_tunnel_concurrent_requests) == 0 ]] || fail "concurrent not 0 when idle"

# A slow request in flight keeps the connector in its grace period after SIGTERM.
start slow curl -sS --max-time 60 -H "Host: metrics.localhost" \
    "http://${EDGE_IP[DFW]}:${EDGE_HTTP[DFW]}/slow"
SLOW=$LAST_PID
wait_until 10 bash -c "[[ \$(curl -sS '$murl/metrics' | awk '\$1 == \"cfdtunnel_tunnel_concurrent_requests\" {print \$2}') == 1 ]]" ||
    fail "the slow request is not in flight: concurrent $(metric cfdtunnel_tunnel_concurrent_requests)"
kill -TERM "$CONN"
wait_until 5 bash -c "[[ \$(curl -sS -o /dev/null -w '%{http_code}' '$murl/ready') == 503 ]]" ||
    fail "/ready after SIGTERM: $(ready)"
kill -0 "$CONN" 2>/dev/null || fail "the connector exited before its slow request finished"
[[ $(ready) =~ ^\{\"status\":503,\"readyConnections\":[0-4],\"connectorId\":\"$id\"\}\ 503$ ]] ||
    fail "draining /ready body: $(ready)"
[[ $(metric cfdtunnel_tunnel_draining) == 1 ]] || fail "draining gauge"
touch "$TEST_TMP/release"
wait_until 30 bash -c "! kill -0 $SLOW 2>/dev/null" || fail "the slow request did not finish"
wait "$SLOW" || fail "the slow request failed: $(cat "$TEST_TMP/slow.log")"
[[ $(cat "$TEST_TMP/slow.log") == hello ]] || fail "slow request got: $(cat "$TEST_TMP/slow.log")"
wait_until 30 bash -c "! kill -0 $CONN 2>/dev/null" || fail "the connector did not exit after its drain"

# An explicit address that cannot be bound is an error naming it.
if "$CFD_BIN" tunnel run --credentials-file "$CRED" --url "http://127.0.0.1:$origin_port" \
    --edge "127.0.0.1:${EDGE_TUNNEL[DFW]}" --cacert "$STORE/ca.pem" \
    --metrics "127.0.0.1:${EDGE_HTTP[DFW]}" >"$TEST_TMP/busy.log" 2>&1; then
    fail "a connector started with its metrics address in use"
fi
grep -q -- "--metrics 127.0.0.1:${EDGE_HTTP[DFW]}" "$TEST_TMP/busy.log" ||
    fail "the error does not name the address: $(cat "$TEST_TMP/busy.log")"

# The default address falls back to the next port when 20241 is taken. Only when 20241 is free
# on this machine: we take it ourselves first.
if port_open 20241; then
    echo "port 20241 is in use on this machine: default fallback not tested"
    exit 0
fi
start blocker python3 -c 'import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 20241))
s.listen()
time.sleep(600)'
if ! wait_until 5 port_open 20241; then
    echo "could not take port 20241: default fallback not tested"
    exit 0
fi
CONNECTOR_DEFAULT_METRICS=1 start_connector fallback "http://127.0.0.1:$origin_port" \
    --ha-connections 2
wait_until 10 grep -q 'Starting metrics server on ' "$TEST_TMP/fallback.log" ||
    fail "no metrics server: $(tail -5 "$TEST_TMP/fallback.log")"
grep -q 'Default metrics address localhost:20241 is in use: using localhost:2024[2-5]' \
    "$TEST_TMP/fallback.log" || fail "no fallback logged: $(cat "$TEST_TMP/fallback.log")"
fport=$(sed -n 's/.*Starting metrics server on 127.0.0.1:\(2024[2-5]\)\/metrics.*/\1/p' \
    "$TEST_TMP/fallback.log")
[[ -n $fport ]] || fail "fallback port not logged: $(cat "$TEST_TMP/fallback.log")"
fid=$(sed -n 's/.*Generated Connector ID: \([0-9a-f-]*\).*/\1/p' "$TEST_TMP/fallback.log")
wait_registered fallback 2
wait_until 10 bash -c "curl -sS 'http://127.0.0.1:$fport/ready' | grep -q '\"readyConnections\":2,\"connectorId\":\"$fid\"'" ||
    fail "fallback /ready: $(curl -sS "http://127.0.0.1:$fport/ready")"
