#!/usr/bin/env bash
# Benchmarks (not tests). Prints each figure next to the ceiling measured on this CPU in the same
# run. `make bench` builds $OUT/bench_tls and runs this script.
#
# TLS path: bytes through the reactor's TLS path on loopback (TLS 1.3, AES-128-GCM, a client and
# a server reactor on two threads) against `openssl speed -evp aes-128-gcm` on 16 KiB blocks.
# Two figures: wall-clock MB/s, and MB/s per core (bytes / CPU time of the busier reactor thread),
# which is what the path sustains when each reactor has its core to itself; openssl speed also
# reports per-CPU-time throughput, so the per-core ratio is the like-for-like one on a shared box.
set -u
OUT=${OUT:-build}
MIB=${BENCH_TLS_MIB:-2048}
RUNS=${BENCH_TLS_RUNS:-3}

bin="$OUT/bench_tls"
if [[ ! -x $bin ]]; then
    echo "bench: $bin missing (make bench builds it)" >&2
    exit 1
fi

best_wall=0
best_core=0
for ((i = 1; i <= RUNS; i++)); do
    out=$("$bin" "$MIB")
    rc=$?
    if [[ $rc -eq 77 ]]; then
        echo "bench: skipped: $out"
        exit 0
    fi
    if [[ $rc -ne 0 ]]; then
        echo "bench: bench_tls failed (status $rc)" >&2
        exit 1
    fi
    echo "$out"
    wall=$(sed -nE 's/^tls_throughput: .* = ([0-9.]+) MB\/s.*/\1/p' <<<"$out")
    core=$(sed -nE 's/^tls_throughput_cpu: .* = ([0-9.]+) MB\/s per core.*/\1/p' <<<"$out")
    best_wall=$(awk -v a="$best_wall" -v b="${wall:-0}" 'BEGIN { print (b > a) ? b : a }')
    best_core=$(awk -v a="$best_core" -v b="${core:-0}" 'BEGIN { print (b > a) ? b : a }')
done

ceiling=0
if command -v openssl >/dev/null; then
    # The last line reads "AES-128-GCM  3161503.93k": thousands of bytes per second.
    line=$(openssl speed -evp aes-128-gcm -bytes 16384 -seconds 3 2>/dev/null | tail -n 1)
    k=$(awk '{ v = $NF; sub(/k$/, "", v); print v }' <<<"$line")
    ceiling=$(awk -v k="${k:-0}" 'BEGIN { printf "%.1f", k / 1000 }')
    echo "openssl speed -evp aes-128-gcm (16 KiB blocks): $ceiling MB/s"
else
    echo "openssl not installed: no ceiling"
fi

load=$(cut -d' ' -f1 /proc/loadavg)
echo "TLS path, best of $RUNS: $best_wall MB/s wall, $best_core MB/s per core (load average $load)"
if awk -v c="$ceiling" 'BEGIN { exit !(c > 0) }'; then
    awk -v w="$best_wall" -v p="$best_core" -v c="$ceiling" 'BEGIN {
        printf "ratio to the AES-128-GCM ceiling: %.0f%% wall, %.0f%% per core", 100 * w / c, 100 * p / c
        printf " (target: 1000 MB/s and 40%%)\n" }'
fi

echo
echo "== tunnel: edge + connector vs two nginx hops with TLS between them"
OUT="$OUT" bash tools/bench/tunnel.sh

echo
echo "== failover: rolling restart of 3 replicas under load, and SIGKILL to no longer routed"
OUT="$OUT" bash tools/bench/failover.sh

echo
echo "== https: HTTP/1.1 and HTTP/2 over TLS, edge + connector vs two nginx hops"
OUT="$OUT" bash tools/bench/https.sh

echo
echo "== memory per idle public connection: edge vs nginx"
OUT="$OUT" bash tools/bench/idle_memory.sh
