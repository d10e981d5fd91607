#!/usr/bin/env bash
# Replicas share light load too (DESIGN.md story 7: "the edge spreads requests across all of
# them"; §5: power of two choices on in-flight streams). Three replicas, two locations; through
# each location, 8 keep-alive clients one after the other, 30 sequential GETs each (nothing
# else in flight, so every choice is a tie on load). Each replica must serve at least 20% of
# the requests through each location; every request a 200 from one of them.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ha.sh"

start_replica_origins A B C
start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel light light.localhost
for r in A B C; do
    start_connector "conn$r" "http://127.0.0.1:${OPORT[$r]}"
done
for r in A B C; do
    wait_registered "conn$r" 4
done
for loc in DFW MCI; do
    for r in A B C; do
        wait_until 10 bash -c "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do curl -s -H 'Host: light.localhost' http://${EDGE_IP[$loc]}:${EDGE_HTTP[$loc]}/; done | grep -q replica$r" ||
            fail "$loc does not route to replica $r"
    done
done

urls=()
for _ in $(seq 1 30); do urls+=("/"); done
for loc in DFW MCI; do
    : >"$TEST_TMP/light-$loc.out"
    for c in $(seq 1 8); do
        # One curl, one keep-alive connection, 30 requests in a row.
        curl -sS --max-time 30 -H "Host: light.localhost" \
            "${urls[@]/#/http://${EDGE_IP[$loc]}:${EDGE_HTTP[$loc]}}" >"$TEST_TMP/client.out" ||
            fail "client $c through $loc failed"
        echo "  $loc client $c: $(sort "$TEST_TMP/client.out" | uniq -c | tr -s ' \n' ' ')"
        cat "$TEST_TMP/client.out" >>"$TEST_TMP/light-$loc.out"
    done
    n=$(wc -l <"$TEST_TMP/light-$loc.out")
    ((n == 240)) || fail "$loc: $n answers of 240"
    for r in A B C; do
        c=$(grep -c "^replica$r\$" "$TEST_TMP/light-$loc.out" || true)
        echo "$loc: replica $r served $c of $n"
        ((c * 5 >= n)) || fail "through $loc replica $r served $c of $n sequential requests (< 20%)"
    done
done
