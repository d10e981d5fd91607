#!/usr/bin/env bash
# Tunnel benchmark (not a test): requests per second (small responses, 50 keep-alive clients) and
# MB/s (1 MiB responses) through edge + connector, next to two nginx reverse proxies in series
# with TLS between them, measured in the same run against the same nginx origin, as ratios.
#
#   ours:  wrk -> edge (HTTP) -> TLS + HTTP/2 tunnel -> connector -> origin nginx
#   peer:  wrk -> nginx A (HTTP) -> TLS -> nginx B -> origin nginx
set -euo pipefail
OUT=${OUT:-build}
CFD_BIN="$PWD/$OUT/cfdtunnel"
SECS=${BENCH_SECONDS:-10}
. tests/integration/lib/common.sh

command -v wrk >/dev/null || { echo "bench tunnel: wrk is not installed"; exit 0; }
. tests/integration/lib/tunnel.sh

. tools/bench/hops.sh
start_bench_origin

# The peer: nginx B terminates TLS and proxies to the origin; nginx A proxies to B over TLS.
a_port=$(free_port)
b_port=$(free_port)
hop_conf b "listen 127.0.0.1:$b_port ssl; ssl_certificate $TEST_TMP/b.pem; ssl_certificate_key $TEST_TMP/b.key; ssl_protocols TLSv1.3;" \
    "127.0.0.1:$origin_port" http
hop_conf a "listen 127.0.0.1:$a_port;" "127.0.0.1:$b_port" https
wait_until 10 port_open "$a_port" || fail "nginx A did not start"
wait_until 10 port_open "$b_port" || fail "nginx B did not start"

# Ours: one worker each, as the peer's nginx hops each have one worker process.
start_edge DFW 127.0.0.1
create_tunnel bench bench.localhost
start_connector connector "http://127.0.0.1:$origin_port" --ha-connections 2
wait_registered connector 2

edge_url="http://127.0.0.1:${EDGE_HTTP[DFW]}"
read -r ours_rps _ ours_err < <(rate "$edge_url/small.txt" bench.localhost 50)
read -r peer_rps _ peer_err < <(rate "http://127.0.0.1:$a_port/small.txt" localhost 50)
read -r _ ours_mbs _ < <(rate "$edge_url/big.bin" bench.localhost 8)
read -r _ peer_mbs _ < <(rate "http://127.0.0.1:$a_port/big.bin" localhost 8)

echo "tunnel, small responses (50 clients, ${SECS}s): cfdtunnel $ours_rps req/s, two nginx hops with TLS $peer_rps req/s (non-2xx: $ours_err / $peer_err)"
echo "tunnel, 1 MiB responses (8 clients, ${SECS}s): cfdtunnel $ours_mbs MB/s, two nginx hops with TLS $peer_mbs MB/s"
awk -v a="$ours_rps" -v b="$peer_rps" -v c="$ours_mbs" -v d="$peer_mbs" 'BEGIN {
    printf "ratio cfdtunnel / nginx+nginx: %.2fx requests/s, %.2fx MB/s (load average %s)\n",
        (b > 0 ? a / b : 0), (d > 0 ? c / d : 0), "'"$(cut -d' ' -f1 /proc/loadavg)"'" }'
