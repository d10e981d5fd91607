#!/usr/bin/env bash
# The connector limit (DESIGN.md story 7): two edge locations sharing a store, each started with
# --max-connectors-per-tunnel 2. Two replicas register all their connections; a third is refused
# on every connection with a cause naming the limit and the flag, is told to retry in 30s, never
# registers, and is not listed by `tunnel info`; the first two keep serving through both
# locations under load, every request a 200.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ha.sh"

declare -A OPORT
for r in A B C; do OPORT[$r]=$(free_port); done
start_nginx_servers origins "port_open ${OPORT[A]} && port_open ${OPORT[B]} && port_open ${OPORT[C]}" <<NGINX
    server { listen 127.0.0.1:${OPORT[A]}; location / { return 200 "replicaA\n"; } }
    server { listen 127.0.0.1:${OPORT[B]}; location / { return 200 "replicaB\n"; } }
    server { listen 127.0.0.1:${OPORT[C]}; location / { return 200 "replicaC\n"; } }
NGINX

start_edge_flags DFW 127.0.0.1 --max-connectors-per-tunnel 2
start_edge_flags MCI 127.0.0.2 --max-connectors-per-tunnel 2
create_tunnel limit limit.localhost
for r in A B; do
    start_connector "conn$r" "http://127.0.0.1:${OPORT[$r]}"
done
wait_registered connA 4
wait_registered connB 4

start_connector connC "http://127.0.0.1:${OPORT[C]}"
CPID=$CONNECTOR_PID
# Every one of its 4 connections is refused, at both locations, with a cause naming the limit.
wait_until 20 bash -c "[[ \$(grep -c 'Register tunnel error from server side' '$TEST_TMP/connC.log') -ge 4 ]]" ||
    fail "the third connector was not refused on its 4 connections: $(cat "$TEST_TMP/connC.log")"
grep 'Register tunnel error from server side' "$TEST_TMP/connC.log" | head -1
grep 'Register tunnel error from server side' "$TEST_TMP/connC.log" | grep -v -q -- '--max-connectors-per-tunnel' &&
    fail "a refusal does not name --max-connectors-per-tunnel: $(grep 'Register tunnel error' "$TEST_TMP/connC.log")"
grep 'Register tunnel error from server side' "$TEST_TMP/connC.log" | grep -q 'already has 2 connectors' ||
    fail "the refusal does not say the tunnel has 2 connectors: $(grep 'Register tunnel error' "$TEST_TMP/connC.log")"
# Told to come back in 30 seconds, not to give up.
wait_until 5 grep -q 'Retrying connection connIndex=[0-9] in=30s' "$TEST_TMP/connC.log" ||
    fail "the refused connector does not wait 30s: $(grep Retrying "$TEST_TMP/connC.log")"
for loc in DFW MCI; do
    grep -q "Refused tunnel connection: connector limit reached.*limit=2" "$TEST_TMP/edge-$loc.log" ||
        fail "edge $loc did not log the refusal: $(tail -5 "$TEST_TMP/edge-$loc.log")"
done
kill -0 "$CPID" || fail "a connector refused for the limit exited (it should retry): $(tail -5 "$TEST_TMP/connC.log")"
[[ $(registered connC) == 0 ]] || fail "the third connector registered a connection"

"$CFD_BIN" tunnel info limit >"$TEST_TMP/info.out" || fail "tunnel info"
[[ $(grep -c '2xDFW, 2xMCI' "$TEST_TMP/info.out") == 2 ]] || fail "info: $(cat "$TEST_TMP/info.out")"
grep -q "$(connector_id connC)" "$TEST_TMP/info.out" && fail "info lists the refused connector"

# The first two keep serving, through both locations, and only they do.
start_load loadDFW DFW limit.localhost / 3 4
start_load loadMCI MCI limit.localhost / 3 4
wait_load loadDFW
wait_load loadMCI
for loc in DFW MCI; do
    echo "$loc: $(load_summary "load$loc")"
    assert_load_clean "load$loc" 100
    (($(load_count "load$loc" body_replicaC) == 0)) || fail "the refused connector served through $loc"
    (($(load_count "load$loc" body_replicaA) > 0)) || fail "replica A did not serve through $loc"
    (($(load_count "load$loc" body_replicaB) > 0)) || fail "replica B did not serve through $loc"
done
[[ $(registered connC) == 0 ]] || fail "the third connector registered a connection"
