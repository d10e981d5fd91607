# Helpers for the high-availability tests (ha_*.sh): load with wrk through an edge location,
# counted by status and by body with lib/ha_count.lua. Source after common.sh and tunnel.sh.

HA_LUA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/ha_count.lua"
declare -A LOAD_PID

# start_load NAME LOCATION HOST PATH SECONDS [CONNECTIONS]: wrk (one thread) through a location
# for at most SECONDS, output in $TEST_TMP/NAME.log; stop it early with stop_load. With
# WRK_POST_BYTES=N in the environment, POSTs with N-byte bodies instead of GETs.
start_load() {
    local name=$1 loc=$2 host=$3 path=$4 secs=$5 conns=${6:-4}
    start "$name" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -H "Host: $host" -s "$HA_LUA" \
        "http://${EDGE_IP[$loc]}:${EDGE_HTTP[$loc]}$path"
    LOAD_PID[$name]=$LAST_PID
}

# wait_load NAME: waits (bounded) for wrk to end and print its WRKRESULT line.
wait_load() {
    local pid=${LOAD_PID[$1]}
    wait_until 20 bash -c "! kill -0 $pid 2>/dev/null" || fail "wrk $1 did not end"
    wait "$pid" 2>/dev/null || true
    grep -q '^WRKRESULT ' "$TEST_TMP/$1.log" || fail "wrk $1 printed no result: $(cat "$TEST_TMP/$1.log")"
}

# stop_load NAME: ends wrk now (SIGINT: it prints its report), then as wait_load.
stop_load() {
    kill -INT "${LOAD_PID[$1]}" 2>/dev/null || true
    wait_load "$1"
}

# load_count NAME KEY: a counter from wrk's WRKRESULT line (requests, status_200, body_X,
# err_read, ...), 0 when absent.
load_count() {
    sed -n 's/^WRKRESULT //p' "$TEST_TMP/$1.log" | tr ' ' '\n' |
        awk -F= -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}

# load_summary NAME: the WRKRESULT line without its tag.
load_summary() {
    sed -n 's/^WRKRESULT //p' "$TEST_TMP/$1.log"
}

# assert_load_clean NAME MIN: at least MIN requests, every one a 200, no socket error.
assert_load_clean() {
    local name=$1 min=$2 n ok e
    n=$(load_count "$name" requests)
    ok=$(load_count "$name" status_200)
    ((n >= min)) || fail "load $name made only $n requests (want >= $min): $(load_summary "$name")"
    ((ok == n)) || fail "load $name: $((n - ok)) of $n requests were not 200: $(load_summary "$name")"
    for e in err_connect err_read err_write err_timeout err_status; do
        (($(load_count "$name" $e) == 0)) || fail "load $name had $e: $(load_summary "$name")"
    done
}

# connector_id NAME: the connector ID that connector NAME logged.
connector_id() {
    sed -n 's/.*Generated Connector ID: \([0-9a-f-]*\).*/\1/p' "$TEST_TMP/$1.log" | head -1
}

# connector_metrics_url NAME: the metrics address connector NAME logged.
connector_metrics_url() {
    sed -n 's/.*Starting metrics server on \([0-9.:]*\)\/metrics.*/http:\/\/\1/p' \
        "$TEST_TMP/$1.log" | head -1
}

# ready_code NAME: the HTTP status of connector NAME's /ready (000 when it does not answer).
ready_code() {
    curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$(connector_metrics_url "$1")/ready" || true
}

# exited PID: the process is gone.
exited() {
    ! kill -0 "$1" 2>/dev/null
}

# start_edge_flags LOCATION IP [flags...]: start_edge (lib/tunnel.sh) takes flags itself now.
start_edge_flags() {
    start_edge "$@"
}

# start_replica_origins R...: one nginx with an origin per replica R (port in OPORT[R]):
# GET / answers "replicaR"; GET /slow?k=KEY is held by lib/ha_hold.py until release KEY
# (see hold_on), then answers "slow-KEY-R". Sets HOLD_DIR.
declare -A OPORT
start_replica_origins() {
    local r ready="true" servers="" hold_port
    HOLD_DIR="$TEST_TMP/hold"
    mkdir -p "$HOLD_DIR"
    hold_port=$(free_port)
    start hold python3 "$(dirname "${BASH_SOURCE[0]}")/ha_hold.py" "$hold_port" "$HOLD_DIR"
    wait_until 10 port_open "$hold_port" || fail "the hold origin did not start"
    for r in "$@"; do
        OPORT[$r]=$(free_port)
        ready+=" && port_open ${OPORT[$r]}"
        servers+="    server { listen 127.0.0.1:${OPORT[$r]};
        location / { return 200 \"replica$r\\n\"; }
        location /slow { proxy_pass http://127.0.0.1:$hold_port; proxy_set_header X-Replica $r;
                         proxy_read_timeout 120s; }
    }
"
    done
    start_nginx_servers origins "$ready" <<<"$servers"
}

# hold_on R LOC HOST KEY: slow requests /slow?k=KEY<i> through LOC (curl processes named
# slow-KEY<i>) until one is held by replica R's origin; the ones other replicas got are
# released at once. Sets HELD_KEY and HELD_PID (the curl whose request R holds).
hold_on() {
    local r=$1 loc=$2 host=$3 key=$4 i k who got=""
    for i in $(seq 1 16); do
        k=$key$i
        start "slow-$k" curl -sS --max-time 90 -H "Host: $host" \
            "http://${EDGE_IP[$loc]}:${EDGE_HTTP[$loc]}/slow?k=$k"
        wait_until 10 bash -c "compgen -G '$HOLD_DIR/held-*-$k' >/dev/null" ||
            fail "slow request $k reached no origin: $(cat "$TEST_TMP/slow-$k.log")"
        who=$(basename "$(compgen -G "$HOLD_DIR/held-*-$k" | head -1)")
        who=${who#held-}
        who=${who%-"$k"}
        if [[ $who == "$r" ]]; then
            HELD_KEY=$k
            HELD_PID=$LAST_PID
            return 0
        fi
        got+=$who
        touch "$HOLD_DIR/release-$k"
    done
    fail "no slow request through $loc reached replica $r in 16 tries (they reached: $got)"
}

# release KEY: lets the held request KEY answer.
release() {
    touch "$HOLD_DIR/release-$1"
}

# connector_metric NAME SERIES: a value from connector NAME's /metrics (0 when absent).
connector_metric() {
    curl -s --max-time 2 "$(connector_metrics_url "$1")/metrics" |
        awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}
