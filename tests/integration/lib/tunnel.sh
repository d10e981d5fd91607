# Starting a small cfdtunnel network for a test: edge locations sharing one store, the CLI
# pointed at the first edge's API, tunnels and connectors. Source after common.sh.

STORE="$TEST_TMP/store"
mkdir -p "$STORE" "$TEST_TMP/home"
export HOME="$TEST_TMP/home"
declare -A EDGE_IP EDGE_HTTP EDGE_TUNNEL EDGE_API EDGE_METRICS EDGE_PID

# start_edge LOCATION IP [flags...]: an edge location on its own loopback address.
start_edge() {
    local loc=$1 ip=$2
    shift 2
    EDGE_IP[$loc]=$ip
    [[ -n ${EDGE_HTTP[$loc]:-} ]] || EDGE_HTTP[$loc]=$(free_port)
    [[ -n ${EDGE_TUNNEL[$loc]:-} ]] || EDGE_TUNNEL[$loc]=$(free_port)
    [[ -n ${EDGE_API[$loc]:-} ]] || EDGE_API[$loc]=$(free_port)
    [[ -n ${EDGE_METRICS[$loc]:-} ]] || EDGE_METRICS[$loc]=$(free_port)
    start "edge-$loc" "$CFD_BIN" edge --config /dev/null --location "$loc" \
        --store "sqlite:$STORE/edge.db" --workers 2 \
        --tunnel-listen "$ip:${EDGE_TUNNEL[$loc]}" --http-listen "$ip:${EDGE_HTTP[$loc]}" \
        --api-listen "127.0.0.1:${EDGE_API[$loc]}" --metrics "127.0.0.1:${EDGE_METRICS[$loc]}" "$@"
    EDGE_PID[$loc]=$LAST_PID
    wait_until 30 port_open_at "$ip" "${EDGE_HTTP[$loc]}" ||
        fail "edge $loc did not start: $(tail -5 "$TEST_TMP/edge-$loc.log")"
    if [[ -z ${CFDTUNNEL_API:-} ]]; then
        wait_until 10 test -s "$STORE/api-token" || fail "edge wrote no api-token"
        export CFDTUNNEL_API="http://127.0.0.1:${EDGE_API[$loc]}"
        export CFDTUNNEL_API_TOKEN
        CFDTUNNEL_API_TOKEN=$(cat "$STORE/api-token")
    fi
}

port_open_at() {
    bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# create_tunnel NAME HOSTNAME: sets CRED to its credentials file.
create_tunnel() {
    "$CFD_BIN" tunnel create --credentials-file "$TEST_TMP/$1.json" "$1" >"$TEST_TMP/create-$1.out" 2>&1 ||
        fail "tunnel create $1: $(cat "$TEST_TMP/create-$1.out")"
    "$CFD_BIN" tunnel route dns "$1" "$2" >/dev/null 2>&1 || fail "route dns $2"
    CRED="$TEST_TMP/$1.json"
}

# start_connector NAME URL [flags...]: a connector to every started edge (--ha-connections, default 4,
# spread over them).
# Without --metrics in the flags it gets a free metrics port (CONNECTOR_DEFAULT_METRICS=1: none).
start_connector() {
    local name=$1 url=$2
    shift 2
    local edges=()
    for loc in "${!EDGE_IP[@]}"; do
        edges+=(--edge "${EDGE_IP[$loc]}:${EDGE_TUNNEL[$loc]}")
    done
    # A free metrics port of its own, unless the test gives one or tests the default ports.
    local metrics=()
    if [[ " $* " != *" --metrics "* && -z ${CONNECTOR_DEFAULT_METRICS:-} ]]; then
        metrics=(--metrics "127.0.0.1:$(free_port)")
    fi
    start "$name" "$CFD_BIN" tunnel run --credentials-file "$CRED" --url "$url" \
        --cacert "$STORE/ca.pem" "${edges[@]}" "${metrics[@]}" "$@"
    CONNECTOR_PID=$LAST_PID
}

# start_config_connector NAME CONFIG [flags...]: a connector for $CRED with ingress rules from
# CONFIG, to the DFW edge, with a free metrics port.
start_config_connector() {
    local name=$1 cfg=$2
    shift 2
    start "$name" "$CFD_BIN" tunnel run --credentials-file "$CRED" --config "$cfg" \
        --cacert "$STORE/ca.pem" --edge "127.0.0.1:${EDGE_TUNNEL[DFW]}" \
        --metrics "127.0.0.1:$(free_port)" "$@"
    CONNECTOR_PID=$LAST_PID
}

# registered NAME: how many connections connector NAME has registered so far.
registered() {
    grep -c 'Registered tunnel connection' "$TEST_TMP/$1.log" 2>/dev/null || true
}

wait_registered() {  # wait_registered NAME COUNT
    wait_until 30 bash -c "[[ \$(grep -c 'Registered tunnel connection' '$TEST_TMP/$1.log') -ge $2 ]]" ||
        fail "$1 did not register $2 connections: $(tail -20 "$TEST_TMP/$1.log")"
}

# through LOCATION HOST PATH [curl args...]: a request through one edge location.
through() {
    local loc=$1 host=$2 path=$3
    shift 3
    curl -sS --max-time 60 -H "Host: $host" "$@" "http://${EDGE_IP[$loc]}:${EDGE_HTTP[$loc]}$path"
}

# edge_metric LOCATION 'NAME{LABELS}': the value of one series on an edge's /metrics (0 if absent).
edge_metric() {
    curl -sS --max-time 10 "http://127.0.0.1:${EDGE_METRICS[$1]}/metrics" |
        awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}
