#!/usr/bin/env bash
# The edge's --metrics listener with real processes (issue 4): an edge with two workers, a
# connector, a real nginx origin. N GETs and an upload through the tunnel, a 530 before the
# connector runs, a 404 for an unknown host and a malformed request: /metrics counts each with
# its code and cause, bytes at least the bodies, the tunnel's connections by tunnel; /ready 200,
# /healthcheck OK, an unknown path 404, a POST 405.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

N=5
BODY_SIZE=3000
UPLOAD_SIZE=200000

mkdir -p "$TEST_TMP/www"
head -c "$BODY_SIZE" /dev/zero | tr '\0' 'a' >"$TEST_TMP/www/page.html"
head -c "$UPLOAD_SIZE" /dev/urandom >"$TEST_TMP/upload.bin"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1
M="http://127.0.0.1:${EDGE_METRICS[DFW]}"
metric() { edge_metric DFW "$1"; }
# expect NAME{LABELS} VALUE: the series has exactly VALUE now.
expect() {
    local v
    v=$(metric "$1")
    [[ $v == "$2" ]] || fail "$1 is $v, not $2: $(curl -sS "$M/metrics" | grep -F "${1%%\{*}")"
}
# at_least NAME{LABELS} VALUE
at_least() {
    local v
    v=$(metric "$1")
    ((v >= $2)) || fail "$1 is $v, below $2"
}

# The endpoints themselves.
[[ $(curl -sS "$M/healthcheck") == OK ]] || fail "/healthcheck: $(curl -sS "$M/healthcheck")"
code=$(curl -sS -o "$TEST_TMP/ready.json" -w '%{http_code}' "$M/ready")
[[ $code == 200 ]] || fail "/ready gave $code"
grep -q '^{"status":200,"readyConnections":0,"location":"DFW"}$' "$TEST_TMP/ready.json" ||
    fail "/ready body: $(cat "$TEST_TMP/ready.json")"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$M/nothing-here")
[[ $code == 404 ]] || fail "unknown metrics path gave $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$M/metrics")
[[ $code == 405 ]] || fail "POST /metrics gave $code"
curl -sS -D "$TEST_TMP/metrics.head" -o "$TEST_TMP/metrics0.txt" "$M/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$TEST_TMP/metrics.head" ||
    fail "content type: $(cat "$TEST_TMP/metrics.head")"
for name in requests_total responses_total errors_total concurrent_requests public_connections \
    request_bytes_total response_bytes_total retries_total relayed_streams_total \
    registrations_total tunnel_connections; do
    grep -q "^# HELP cfdtunnel_edge_$name " "$TEST_TMP/metrics0.txt" || fail "no HELP for $name"
    grep -q "^# TYPE cfdtunnel_edge_$name " "$TEST_TMP/metrics0.txt" || fail "no TYPE for $name"
done
grep -q '^cfdtunnel_build_info{version="[^"]*",arch="[^"]*"} 1$' "$TEST_TMP/metrics0.txt" ||
    fail "no build info"
at_least 'process_resident_memory_bytes' 1
expect 'cfdtunnel_edge_requests_total' 0

create_tunnel demo demo.localhost
tunnel_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["TunnelID"])' "$CRED")

# No connector yet: 530, counted with its cause.
code=$(through DFW demo.localhost / -o /dev/null -w '%{http_code}')
[[ $code == 530 ]] || fail "no connector gave $code, not 530"

start_connector connector "http://127.0.0.1:$origin_port" --ha-connections 2
wait_registered connector 2
wait_until 10 bash -c "[[ \$(curl -sS $M/metrics | awk -v k='cfdtunnel_edge_tunnel_connections{location=\"DFW\",tunnel=\"$tunnel_id\"}' '\$1 == k {print \$2}') == 2 ]]" ||
    fail "tunnel connections by tunnel: $(curl -sS "$M/metrics" | grep tunnel_connections)"
expect 'cfdtunnel_edge_tunnel_connections{location="DFW"}' 2
grep -q '"readyConnections":2' <(curl -sS "$M/ready") || fail "/ready: $(curl -sS "$M/ready")"

for i in $(seq 1 "$N"); do
    size=$(through DFW demo.localhost /page.html -o "$TEST_TMP/page.$i" -w '%{size_download}')
    [[ $size == "$BODY_SIZE" ]] || fail "GET $i got $size bytes"
done
code=$(through DFW demo.localhost /uploads/up.bin -T "$TEST_TMP/upload.bin" -o /dev/null -w '%{http_code}')
[[ $code == 201 ]] || fail "upload gave $code"
cmp -s "$TEST_TMP/upload.bin" "$TEST_TMP/www/uploads/up.bin" || fail "upload differs"

code=$(through DFW nobody.localhost / -o /dev/null -w '%{http_code}')
[[ $code == 404 ]] || fail "unknown host gave $code"
code=$(printf 'GARBAGE\r\n\r\n' | timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/${EDGE_HTTP[DFW]}; cat >&3; head -c 12 <&3" | cut -c10-12)
[[ $code == 400 ]] || fail "malformed request gave '$code'"

# 1 (530) + N GETs + 1 upload + 1 (404) + 1 malformed.
expect 'cfdtunnel_edge_requests_total' $((N + 4))
expect 'cfdtunnel_edge_responses_total{code="200"}' "$N"
expect 'cfdtunnel_edge_responses_total{code="201"}' 1
expect 'cfdtunnel_edge_responses_total{code="404"}' 1
expect 'cfdtunnel_edge_responses_total{code="530"}' 1
expect 'cfdtunnel_edge_responses_total{code="400"}' 1
expect 'cfdtunnel_edge_errors_total{cause="unknown_host"}' 1
expect 'cfdtunnel_edge_errors_total{cause="no_connector"}' 1
expect 'cfdtunnel_edge_errors_total{cause="malformed"}' 1
expect 'cfdtunnel_edge_errors_total{cause="bad_gateway"}' 0
at_least 'cfdtunnel_edge_request_bytes_total' "$UPLOAD_SIZE"
at_least 'cfdtunnel_edge_response_bytes_total' $((N * BODY_SIZE))
expect 'cfdtunnel_edge_registrations_total{result="accepted"}' 2
# The clients are gone: the gauges come back to 0 (the edge sees the closes asynchronously).
wait_until 10 bash -c "[[ \$(curl -sS $M/metrics | awk '\$1 == \"cfdtunnel_edge_public_connections\" {print \$2}') == 0 ]]" ||
    fail "public connections: $(metric cfdtunnel_edge_public_connections)"
expect 'cfdtunnel_edge_concurrent_requests' 0

# A request in flight shows in the gauges: a slow upload holds its stream open.
mkfifo "$TEST_TMP/slow"
through DFW demo.localhost /uploads/slow.bin -T - -o /dev/null <"$TEST_TMP/slow" &
slow_pid=$!
exec 7>"$TEST_TMP/slow"
printf 'first bytes' >&7
wait_until 10 bash -c "[[ \$(curl -sS $M/metrics | awk '\$1 == \"cfdtunnel_edge_concurrent_requests\" {print \$2}') == 1 ]]" ||
    fail "concurrent requests: $(metric cfdtunnel_edge_concurrent_requests)"
expect 'cfdtunnel_edge_public_connections' 1
exec 7>&-
wait "$slow_pid" || fail "slow upload failed"
wait_until 10 bash -c "[[ \$(curl -sS $M/metrics | awk '\$1 == \"cfdtunnel_edge_concurrent_requests\" {print \$2}') == 0 ]]" ||
    fail "concurrent requests after the upload: $(metric cfdtunnel_edge_concurrent_requests)"
expect 'cfdtunnel_edge_responses_total{code="201"}' 2
echo "edge metrics: OK"
