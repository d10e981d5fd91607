#!/usr/bin/env bash
# HTTPS benchmark (not a test): requests per second for small responses over HTTPS, with
# HTTP/1.1 (wrk, 50 keep-alive connections) and with HTTP/2 (h2load, 100 concurrent streams on
# each of 4 connections), through edge + connector, next to two nginx hops with TLS between
# them, in the same run against the same nginx origin, as ratios.
#
#   ours:  client -> edge (HTTPS) -> TLS + HTTP/2 tunnel -> connector -> origin nginx
#   peer:  client -> nginx A (HTTPS) -> TLS -> nginx B -> origin nginx
set -euo pipefail
OUT=${OUT:-build}
CFD_BIN="$PWD/$OUT/cfdtunnel"
SECS=${BENCH_SECONDS:-10}
. tests/integration/lib/common.sh

for tool in wrk h2load; do
    command -v $tool >/dev/null || { echo "bench https: $tool is not installed"; exit 0; }
done
. tests/integration/lib/tunnel.sh
. tools/bench/hops.sh
start_bench_origin

# Both front ends show the same certificate (B's, for localhost) with the same protocols.
a_port=$(free_port)
b_port=$(free_port)
hop_conf b "listen 127.0.0.1:$b_port ssl; ssl_certificate $TEST_TMP/b.pem; ssl_certificate_key $TEST_TMP/b.key; ssl_protocols TLSv1.3;" \
    "127.0.0.1:$origin_port" http
hop_conf a "listen 127.0.0.1:$a_port ssl http2; ssl_certificate $TEST_TMP/b.pem; ssl_certificate_key $TEST_TMP/b.key; ssl_protocols TLSv1.3; http2_max_concurrent_streams 128;" \
    "127.0.0.1:$b_port" https
wait_until 10 port_open "$a_port" || fail "nginx A did not start"
wait_until 10 port_open "$b_port" || fail "nginx B did not start"

https_port=$(free_port)
start_edge DFW 127.0.0.1 --https-listen "127.0.0.1:$https_port" --tls-cert "$TEST_TMP/b.pem" \
    --tls-key "$TEST_TMP/b.key"
create_tunnel bench bench.localhost
start_connector connector "http://127.0.0.1:$origin_port" --ha-connections 2
wait_registered connector 2

ours="https://localhost:$https_port/small.txt"
peer="https://localhost:$a_port/small.txt"
read -r ours_h1 _ ours_h1_err < <(rate "$ours" bench.localhost 50)
read -r peer_h1 _ peer_h1_err < <(rate "$peer" localhost 50)
read -r ours_h2 ours_h2_err < <(h2rate "$ours" bench.localhost 4 100)
read -r peer_h2 peer_h2_err < <(h2rate "$peer" localhost 4 100)

echo "https, HTTP/1.1 small responses (50 connections, ${SECS}s): cfdtunnel $ours_h1 req/s, two nginx hops $peer_h1 req/s (non-2xx: $ours_h1_err / $peer_h1_err)"
echo "https, HTTP/2 small responses (4 connections x 100 streams, ${SECS}s): cfdtunnel $ours_h2 req/s, two nginx hops $peer_h2 req/s (failed or not 2xx: $ours_h2_err / $peer_h2_err)"
awk -v a="$ours_h1" -v b="$peer_h1" -v c="$ours_h2" -v d="$peer_h2" 'BEGIN {
    printf "ratio cfdtunnel / nginx+nginx over HTTPS: %.2fx HTTP/1.1, %.2fx HTTP/2 (load average %s)\n",
        (b > 0 ? a / b : 0), (d > 0 ? c / d : 0), "'"$(cut -d' ' -f1 /proc/loadavg)"'" }'
