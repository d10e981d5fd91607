#!/usr/bin/env bash
# Replicas share the load (DESIGN.md story 7, §5 Balancing): three connector processes of one
# tunnel, each connected to both edge locations (DFW 127.0.0.1, MCI 127.0.0.2), each with its own
# origin answering its own name. Steady wrk load through both locations at once: every replica
# serves at least 20% of the requests (overall and through each location), every request is a
# 200 with no socket error; `tunnel info` lists the three connectors, each with 2xDFW, 2xMCI.
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

start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel balance balance.localhost
for r in A B C; do
    start_connector "conn$r" "http://127.0.0.1:${OPORT[$r]}"
done
for r in A B C; do
    wait_registered "conn$r" 4
done

# Every replica answers through each location before the load starts (routing snapshots of
# both edges know all three): at most a few seconds.
for loc in DFW MCI; do
    seen=""
    deadline=$(($(date +%s) + 15))
    while [[ $seen != *A*B*C* ]]; do
        (($(date +%s) < deadline)) || fail "through $loc only replicas '$seen' answered"
        body=$(through "$loc" balance.localhost /) || fail "request through $loc failed"
        [[ $body =~ ^replica([ABC])$ ]] || fail "through $loc got: $body"
        [[ $seen == *"${BASH_REMATCH[1]}"* ]] || seen=$(echo "$seen${BASH_REMATCH[1]}" | grep -o . | sort | tr -d '\n')
    done
done

# tunnel info: three connectors, each with two connections at each location.
info_ok() {
    "$CFD_BIN" tunnel info balance >"$TEST_TMP/info.out" 2>&1 || return 1
    local r id
    for r in A B C; do
        id=$(connector_id "conn$r")
        grep -q "^$id .*2xDFW, 2xMCI\$" "$TEST_TMP/info.out" || return 1
    done
    [[ $(grep -c '^[0-9a-f]\{8\}-.* linux_' "$TEST_TMP/info.out") == 3 ]]
}
wait_until 10 info_ok || fail "tunnel info does not list 3 connectors with 2xDFW, 2xMCI: $(cat "$TEST_TMP/info.out")"
cat "$TEST_TMP/info.out"

# Steady load through both locations at once.
start_load loadDFW DFW balance.localhost / 4 4
start_load loadMCI MCI balance.localhost / 4 4
wait_load loadDFW
wait_load loadMCI

total=0
declare -A served
for loc in DFW MCI; do
    name=load$loc
    echo "$loc: $(load_summary "$name")"
    assert_load_clean "$name" 200
    n=$(load_count "$name" requests)
    total=$((total + n))
    for r in A B C; do
        c=$(load_count "$name" "body_replica$r")
        served[$r]=$((${served[$r]:-0} + c))
        ((c * 5 >= n)) || fail "through $loc replica $r served $c of $n requests (< 20%)"
    done
done
for r in A B C; do
    echo "replica $r served ${served[$r]} of $total"
    ((served[$r] * 5 >= total)) || fail "replica $r served ${served[$r]} of $total requests (< 20%)"
done
((served[A] + served[B] + served[C] == total)) || fail "some bodies named no replica"
