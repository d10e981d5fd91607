#!/usr/bin/env bash
# Two edge locations started at the same moment on a new store make one CA between them (the
# first takes the folder's set-up lock, the other waits and reads what it wrote): a connector
# verifying both against ca.pem registers with both, and there is one API token.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

for loc in DFW MCI; do
    EDGE_HTTP[$loc]=$(free_port)
    EDGE_TUNNEL[$loc]=$(free_port)
    EDGE_API[$loc]=$(free_port)
done
EDGE_IP[DFW]=127.0.0.1
EDGE_IP[MCI]=127.0.0.2
for loc in DFW MCI; do
    ip=${EDGE_IP[$loc]}
    start "edge-$loc" "$CFD_BIN" edge --config /dev/null --location "$loc" \
        --store "sqlite:$STORE/edge.db" --workers 1 --metrics "" \
        --tunnel-listen "$ip:${EDGE_TUNNEL[$loc]}" --http-listen "$ip:${EDGE_HTTP[$loc]}" \
        --api-listen "127.0.0.1:${EDGE_API[$loc]}"
    EDGE_PID[$loc]=$LAST_PID
done
for loc in DFW MCI; do
    wait_until 30 port_open_at "${EDGE_IP[$loc]}" "${EDGE_HTTP[$loc]}" ||
        fail "edge $loc did not start: $(tail -5 "$TEST_TMP/edge-$loc.log")"
done
[[ $(grep -c 'BEGIN CERTIFICATE' "$STORE/ca.pem") == 1 ]] || fail "ca.pem is not one certificate"
export CFDTUNNEL_API="http://127.0.0.1:${EDGE_API[DFW]}"
CFDTUNNEL_API_TOKEN=$(cat "$STORE/api-token")
export CFDTUNNEL_API_TOKEN
curl -sf -H "Authorization: Bearer $CFDTUNNEL_API_TOKEN" "http://127.0.0.1:${EDGE_API[MCI]}/v1/tunnels" \
    >/dev/null || fail "the other edge does not accept the one token"

mkdir -p "$TEST_TMP/www"
echo "one CA" >"$TEST_TMP/www/index.html"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"
create_tunnel first first.localhost
start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 4
for loc in DFW MCI; do
    [[ $(through "$loc" first.localhost /) == "one CA" ]] || fail "through $loc"
done
