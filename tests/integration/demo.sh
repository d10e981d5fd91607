#!/usr/bin/env bash
# `make demo` works: tools/demo.sh (run once, on free ports) reaches the origin through both edge
# locations and prints `tunnel info demo` with one connector on 2xDFW, 2xMCI.
. "$(dirname "$0")/lib/common.sh"
DEMO_ONCE=1 OUT=$(realpath --relative-to="$PWD" "$(dirname "$CFD_BIN")") \
    DEMO_HTTP_PORT=$(free_port) DEMO_TUNNEL_PORT=$(free_port) DEMO_API_PORT=$(free_port) \
    DEMO_ORIGIN_PORT=$(free_port) DEMO_METRICS_PORT=$(free_port) bash tools/demo.sh >"$TEST_TMP/demo.out" 2>&1 ||
    fail "demo failed: $(tail -20 "$TEST_TMP/demo.out")"
[[ $(grep -c 'Hello from the origin behind cfdtunnel' "$TEST_TMP/demo.out") == 2 ]] ||
    fail "the origin page did not come through both locations: $(cat "$TEST_TMP/demo.out")"
grep -q '2xDFW, 2xMCI' "$TEST_TMP/demo.out" || fail "no 2xDFW, 2xMCI in: $(cat "$TEST_TMP/demo.out")"
