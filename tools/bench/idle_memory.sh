#!/usr/bin/env bash
# Memory per idle public connection (not a test): the edge's RSS before and after N keep-alive
# clients each made one request and stay connected, over HTTP/1.1 in clear, HTTPS with
# HTTP/1.1 and HTTPS with HTTP/2; printed as KiB per connection. nginx, as the same kind of
# front end (one worker, TLS, h2), is measured the same way in the same run.
set -euo pipefail
OUT=${OUT:-build}
CFD_BIN="$PWD/$OUT/cfdtunnel"
N=${IDLE_CONNECTIONS:-2000}
. tests/integration/lib/common.sh
. tests/integration/lib/tunnel.sh
. tools/bench/hops.sh
start_bench_origin
ulimit -n 65536 2>/dev/null || true

https_port=$(free_port)
start_edge DFW 127.0.0.1 --https-listen "127.0.0.1:$https_port" --tls-cert "$TEST_TMP/b.pem" \
    --tls-key "$TEST_TMP/b.key"
create_tunnel bench bench.localhost
start_connector connector "http://127.0.0.1:$origin_port" --ha-connections 2
wait_registered connector 2
a_port=$(free_port)
a_plain=$(free_port)
hop_conf a "listen 127.0.0.1:$a_port ssl http2; listen 127.0.0.1:$a_plain; ssl_certificate $TEST_TMP/b.pem; ssl_certificate_key $TEST_TMP/b.key; keepalive_timeout 600s;" \
    "127.0.0.1:$origin_port" http
wait_until 10 port_open "$a_port" || fail "nginx did not start"
wait_until 10 test -s "$TEST_TMP/nginx-a/nginx.pid" || fail "nginx wrote no pid file"
nginx_worker() { pgrep -P "$(cat "$TEST_TMP/nginx-a/nginx.pid")" | head -1; }

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# per_conn PID MODE PORT HOST: KiB of PID's RSS per idle connection of MODE (h1, h1s, h2s).
per_conn() {
    local pid=$1 before after
    before=$(rss_kb "$pid")
    python3 - "$2" "$3" "$4" "$N" "$TEST_TMP/ready.$2.$3" <<'PY' &
import socket, ssl, sys, time
mode, port, host, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"] if mode == "h2s" else ["http/1.1"])
# HTTP/2: preface, empty SETTINGS, one GET (HEADERS, END_STREAM) with literal fields.
def h2_request():
    def lit(n, v):
        return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
    block = lit(b":method", b"GET") + lit(b":scheme", b"https") + lit(b":path", b"/small.txt") + lit(b":authority", host.encode())
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" +
            len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block)
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if mode != "h1":
        s = ctx.wrap_socket(s, server_hostname="localhost")
    if mode == "h2s":
        s.sendall(h2_request())
    else:
        s.sendall(("GET /small.txt HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
    s.recv(65536)  # the answer (or its first part): the request went through
    conns.append(s)
open(ready, "w").write("ok")
time.sleep(600)
PY
    local py=$!
    wait_until 300 test -s "$TEST_TMP/ready.$2.$3" || fail "clients did not connect"
    sleep 1  # let the last responses flush; this is a measurement, not a test
    after=$(rss_kb "$pid")
    kill "$py" 2>/dev/null || true
    wait "$py" 2>/dev/null || true
    echo $(((after - before) * 1024 / N))
}

edge=${EDGE_PID[DFW]}
e_h1=$(per_conn "$edge" h1 "${EDGE_HTTP[DFW]}" bench.localhost)
e_h1s=$(per_conn "$edge" h1s "$https_port" bench.localhost)
e_h2s=$(per_conn "$edge" h2s "$https_port" bench.localhost)
n_h1=$(per_conn "$(nginx_worker)" h1 "$a_plain" localhost)
n_h1s=$(per_conn "$(nginx_worker)" h1s "$a_port" localhost)
n_h2s=$(per_conn "$(nginx_worker)" h2s "$a_port" localhost)
echo "idle public connections ($N each), bytes of RSS per connection: cfdtunnel edge $e_h1 (HTTP/1.1), $e_h1s (HTTPS), $e_h2s (HTTPS+h2); nginx $n_h1 / $n_h1s / $n_h2s"
