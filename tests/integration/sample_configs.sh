#!/usr/bin/env bash
# The sample configurations etc/edge.ini and etc/connector.ini load, with every key they hold:
#   - `cfdtunnel edge --config etc/edge.ini`, with flags moving its listeners to free loopback
#     ports and its store to a temporary folder (flags override the file), starts: its API
#     answers 401 without a token, and the token it wrote is accepted;
#   - `cfdtunnel tunnel run --config etc/connector.ini` (its [connector] keys, [originRequest]
#     and three ingress rules) gets past the configuration to the start-up lines and registers
#     with that edge, printing no error that names the file.
# The connector has no `tunnel ingress validate` command yet, so running it is the check.
. "$(dirname "$0")/lib/common.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EDGE_INI=$ROOT/etc/edge.ini
CONN_INI=$ROOT/etc/connector.ini
[[ -f $EDGE_INI ]] || fail "missing $EDGE_INI"
[[ -f $CONN_INI ]] || fail "missing $CONN_INI"
[[ -x $CFD_BIN ]] || fail "no binary at $CFD_BIN (build it, or set CFD_BIN)"

if "$CFD_BIN" version | grep -q 'unavailable'; then
    echo "io_uring is refused here"
    exit 77
fi

# Every key of the samples must be one the loaders know; these lists catch a key removed from
# a sample by mistake (the loaders themselves refuse unknown keys).
for k in location tunnel-listen http-listen https-listen api-listen metrics store cert key workers \
    max-connectors-per-tunnel loglevel output; do
    grep -Eq "^$k *=" "$EDGE_INI" || fail "etc/edge.ini lacks the key $k"
done
for k in credentials-file token edge cacert ha-connections url grace-period loglevel output \
    workers edge-server-name metrics api api-token connectTimeout tlsTimeout tcpKeepAlive \
    noHappyEyeballs keepAliveConnections keepAliveTimeout httpHostHeader originServerName \
    matchSNItoHost caPool noTLSVerify disableChunkedEncoding bastionMode proxyAddress \
    proxyPort proxyType http2Origin hostname path service; do
    grep -Eq "^$k *=" "$CONN_INI" || fail "etc/connector.ini lacks the key $k"
done

# ---- the edge sample -------------------------------------------------------------------
STORE=$TEST_TMP/store
TUNNEL_PORT=$(free_port)
HTTP_PORT=$(free_port)
API_PORT=$(free_port)
METRICS_PORT=$(free_port)
start edge "$CFD_BIN" edge --config "$EDGE_INI" \
    --tunnel-listen "127.0.0.1:$TUNNEL_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
    --api-listen "127.0.0.1:$API_PORT" --metrics "127.0.0.1:$METRICS_PORT" \
    --store "sqlite:$STORE/edge.db" --workers 2
EDGE_PID=$LAST_PID
edge_up() { port_open "$API_PORT" || ! kill -0 "$EDGE_PID"; }
wait_until 20 edge_up || fail "the edge's API port did not open: $(cat "$TEST_TMP/edge.log")"
kill -0 "$EDGE_PID" 2>/dev/null || fail "the edge exited: $(cat "$TEST_TMP/edge.log")"
if grep -qF "$EDGE_INI" "$TEST_TMP/edge.log"; then
    fail "the edge reported a problem with etc/edge.ini: $(cat "$TEST_TMP/edge.log")"
fi
# The sample's values that no flag overrode are in force.
grep -q 'Starting edge location=DFW' "$TEST_TMP/edge.log" || fail "location from the file not used"

API=http://127.0.0.1:$API_PORT
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/tunnels")
[[ $code == 401 ]] || fail "API without a token answered $code, expected 401"
[[ -f $STORE/api-token ]] || fail "no api-token in the store's folder"
[[ $(stat -c %a "$STORE/api-token") == 600 ]] || fail "api-token is not mode 0600"
[[ -f $STORE/ca.pem && -f $STORE/edge.pem && -f $STORE/edge.key ]] ||
    fail "the edge did not generate ca.pem, edge.pem and edge.key in $STORE"
TOKEN=$(head -n1 "$STORE/api-token")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$API/v1/tunnels")
[[ $code == 200 ]] || fail "API with the edge's token answered $code, expected 200"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/healthcheck")
[[ $code == 200 ]] || fail "/healthcheck answered $code"
echo "edge sample: loaded, API 401 without token, 200 with it"

# ---- the connector sample --------------------------------------------------------------
# A tunnel on this edge, whose token the connector uses instead of the sample's (empty)
# credentials; the sample's cacert and edge are overridden to point at this edge.
created=$(curl -s -H "Authorization: Bearer $TOKEN" -d '{"name":"sample"}' "$API/v1/tunnels")
TUNNEL_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$created") ||
    fail "could not create a tunnel: $created"
TUNNEL_TOKEN=$(curl -s -H "Authorization: Bearer $TOKEN" "$API/v1/tunnels/$TUNNEL_ID/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') ||
    fail "could not get the tunnel's token"

# HOME points at the test's folder so that no ~/.cfdtunnel of the user takes part.
start connector env HOME="$TEST_TMP" "$CFD_BIN" tunnel run --config "$CONN_INI" \
    --token "$TUNNEL_TOKEN" --cacert "$STORE/ca.pem" --edge "127.0.0.1:$TUNNEL_PORT" \
    --ha-connections 2
CONN_PID=$LAST_PID
CONN_LOG=$TEST_TMP/connector.log
conn_started() { grep -q 'Generated Connector ID' "$CONN_LOG" || ! kill -0 "$CONN_PID"; }
wait_until 20 conn_started || fail "the connector printed no start-up lines: $(cat "$CONN_LOG")"
if grep -qF "$CONN_INI" "$CONN_LOG"; then
    fail "the connector reported a problem with etc/connector.ini: $(cat "$CONN_LOG")"
fi
kill -0 "$CONN_PID" 2>/dev/null || fail "the connector exited: $(cat "$CONN_LOG")"
grep -q "Starting tunnel tunnelID=$TUNNEL_ID" "$CONN_LOG" || fail "no 'Starting tunnel' line"
echo "connector sample: loaded (ingress rules and [connector] keys accepted)"

# Beyond loading: the connector registers with the edge using the sample's other settings
# (edge-server-name h2.cftunnel.com against the generated certificate).
registered() { grep -q 'Registered tunnel connection' "$CONN_LOG"; }
wait_until 20 registered || fail "the connector did not register: $(cat "$CONN_LOG")"
echo "connector sample: registered with the edge"

# Stop both; SIGTERM is the documented way, and each logs its last line.
kill -TERM "$CONN_PID"
conn_gone() { ! kill -0 "$CONN_PID"; }
wait_until 40 conn_gone || fail "the connector did not stop on SIGTERM"
kill -TERM "$EDGE_PID"
edge_gone() { ! kill -0 "$EDGE_PID"; }
wait_until 20 edge_gone || fail "the edge did not stop on SIGTERM"
grep -q 'Edge stopped' "$TEST_TMP/edge.log" || fail "the edge did not log 'Edge stopped'"

# A misspelt section is a configuration error (exit 2) naming the file, the line and the
# section, for both roles: never ignored in silence.
printf '[edge]\nlocation = DFW\n[egde]\nworkers = 2\n' >"$TEST_TMP/typo-edge.ini"
rc=0
"$CFD_BIN" edge --config "$TEST_TMP/typo-edge.ini" 2>"$TEST_TMP/typo-edge.err" || rc=$?
((rc == 2)) || fail "a misspelt edge section exited $rc, not 2"
grep -q 'typo-edge.ini:4.*unknown section \[egde\]' "$TEST_TMP/typo-edge.err" ||
    fail "edge typo message: $(cat "$TEST_TMP/typo-edge.err")"
printf '[conector]\nurl = http://127.0.0.1:1\n' >"$TEST_TMP/typo-conn.ini"
rc=0
"$CFD_BIN" tunnel run --config "$TEST_TMP/typo-conn.ini" --token x 2>"$TEST_TMP/typo-conn.err" || rc=$?
((rc == 2)) || fail "a misspelt connector section exited $rc, not 2"
grep -q 'typo-conn.ini:2.*unknown section \[conector\]' "$TEST_TMP/typo-conn.err" ||
    fail "connector typo message: $(cat "$TEST_TMP/typo-conn.err")"
echo "PASS"
