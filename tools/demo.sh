#!/usr/bin/env bash
# make demo: the main job on loopback. Two edge locations (DFW on 127.0.0.1, MCI on 127.0.0.2)
# sharing one store, an nginx origin, tunnel `demo` routed from demo.localhost, and a connector
# with 2+2 connections. Prints the curl command and `tunnel info demo`, then runs until Ctrl-C
# and stops everything it started. DEMO_ONCE=1 stops right after printing (used by the tests).
set -euo pipefail
OUT=${OUT:-build}
BIN="$PWD/$OUT/cfdtunnel"
HTTP_PORT=${DEMO_HTTP_PORT:-8080}
TUNNEL_PORT=${DEMO_TUNNEL_PORT:-7844}
API_PORT=${DEMO_API_PORT:-7845}
ORIGIN_PORT=${DEMO_ORIGIN_PORT:-8081}
METRICS_PORT=${DEMO_METRICS_PORT:-9100}

work=$(mktemp -d /tmp/cfdtunnel-demo-XXXXXX)
chmod 0755 "$work"
pids=()
stop_all() {
    trap - EXIT INT TERM
    echo
    echo "demo: stopping"
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

die() {
    echo "demo: $*" >&2
    exit 1
}

port_free() {
    ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for SECONDS CMD...: polls CMD until it succeeds or the deadline passes.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

for hp in "127.0.0.1 $HTTP_PORT" "127.0.0.2 $HTTP_PORT" "127.0.0.1 $TUNNEL_PORT" \
    "127.0.0.2 $TUNNEL_PORT" "127.0.0.1 $API_PORT" "127.0.0.1 $((API_PORT + 1))" \
    "127.0.0.1 $ORIGIN_PORT" "127.0.0.1 $METRICS_PORT" "127.0.0.1 $((METRICS_PORT + 1))"; do
    # shellcheck disable=SC2086
    port_free $hp || die "port ${hp/ /:} is in use; set DEMO_HTTP_PORT, DEMO_TUNNEL_PORT, DEMO_API_PORT, DEMO_ORIGIN_PORT or DEMO_METRICS_PORT"
done

run() {  # run NAME CMD...: in the background, logging to $work/NAME.log
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
}

# The origin: a real nginx serving one page.
mkdir -p "$work/www" "$work/nginx" "$work/store" "$work/home"
cat >"$work/www/index.html" <<HTML
<!doctype html><title>cfdtunnel demo</title>
<h1>Hello from the origin behind cfdtunnel</h1>
<p>This page was served by nginx on 127.0.0.1:$ORIGIN_PORT, which has no public port:
the request came through an edge location and down the tunnel.</p>
HTML
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
cat >"$work/nginx/nginx.conf" <<NGINX
$user_line
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    server { listen 127.0.0.1:$ORIGIN_PORT; root $work/www; }
}
NGINX
run origin /usr/sbin/nginx -c "$work/nginx/nginx.conf" -p "$work/nginx"

edge() {  # edge LOCATION IP API_PORT METRICS_PORT
    run "edge-$1" "$BIN" edge --config /dev/null --location "$1" --store "sqlite:$work/store/edge.db" \
        --tunnel-listen "$2:$TUNNEL_PORT" --http-listen "$2:$HTTP_PORT" \
        --api-listen "127.0.0.1:$3" --metrics "127.0.0.1:$4" --workers 2
}
edge DFW 127.0.0.1 "$API_PORT" "$METRICS_PORT"
wait_for 30 test -s "$work/store/api-token" || die "the DFW edge did not start: $(tail -5 "$work/edge-DFW.log")"
edge MCI 127.0.0.2 "$((API_PORT + 1))" "$((METRICS_PORT + 1))"
wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.2/$HTTP_PORT" ||
    die "the MCI edge did not start: $(tail -5 "$work/edge-MCI.log")"

export HOME="$work/home"
export CFDTUNNEL_API="http://127.0.0.1:$API_PORT"
export CFDTUNNEL_API_TOKEN
CFDTUNNEL_API_TOKEN=$(cat "$work/store/api-token")
"$BIN" tunnel create demo
"$BIN" tunnel route dns demo demo.localhost
cred=$(ls "$HOME"/.cfdtunnel/*.json)

run connector "$BIN" tunnel run --credentials-file "$cred" --url "http://127.0.0.1:$ORIGIN_PORT" \
    --cacert "$work/store/ca.pem" --edge "127.0.0.1:$TUNNEL_PORT" --edge "127.0.0.2:$TUNNEL_PORT"
wait_for 30 bash -c "[[ \$(grep -c 'Registered tunnel connection' '$work/connector.log') -ge 4 ]]" ||
    die "the connector did not register: $(tail -5 "$work/connector.log")"

echo
echo "== connector log"
cat "$work/connector.log"
echo
echo "== through edge DFW:  curl -H 'Host: demo.localhost' http://127.0.0.1:$HTTP_PORT/"
curl -sS -H 'Host: demo.localhost' "http://127.0.0.1:$HTTP_PORT/"
echo
echo "== through edge MCI:  curl -H 'Host: demo.localhost' http://127.0.0.2:$HTTP_PORT/"
curl -sS -H 'Host: demo.localhost' "http://127.0.0.2:$HTTP_PORT/"
echo
echo "== cfdtunnel tunnel info demo"
"$BIN" tunnel info demo
echo
if [[ ${DEMO_ONCE:-0} == 1 ]]; then
    exit 0
fi
echo "demo: running; press Ctrl-C to stop everything (logs in $work)"
wait
