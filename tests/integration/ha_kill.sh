#!/usr/bin/env bash
# A connector killed with SIGKILL under GET load costs no request (DESIGN.md §5 Retry): three
# replicas of one tunnel behind two locations, wrk through both; replica A is SIGKILLed once it
# has served a good share of the load, replica B a moment later. The edge retries the streams
# lost before a response byte on another connector: every request is a 200, no socket error,
# no timeout; the survivor C serves the rest. To be sure a stream is in flight on the victim at
# the kill, a slow GET is held by its origin: it is retried on a surviving replica and answers
# 200 from there.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ha.sh"

start_replica_origins A B C

start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel kill kill.localhost
declare -A CPID
for r in A B C; do
    start_connector "conn$r" "http://127.0.0.1:${OPORT[$r]}"
    CPID[$r]=$CONNECTOR_PID
done
for r in A B C; do
    wait_registered "conn$r" 4
done
# Both edges route to all three before the load starts.
for loc in DFW MCI; do
    wait_until 10 bash -c "[[ \$(curl -s -H 'Host: kill.localhost' http://${EDGE_IP[$loc]}:${EDGE_HTTP[$loc]}/) == replicaA ]]" ||
        fail "$loc does not route to replica A"
done

served() {  # served R: requests connector R counted so far
    curl -s --max-time 2 "$(connector_metrics_url "conn$1")/metrics" |
        awk '$1 == "cfdtunnel_tunnel_total_requests" { print $2 }'
}
retries_before=$(($(edge_metric DFW cfdtunnel_edge_retries_total) + $(edge_metric MCI cfdtunnel_edge_retries_total)))

start_load loadDFW DFW kill.localhost / 8 6
start_load loadMCI MCI kill.localhost / 8 6
wait_until 10 bash -c "(( \$(curl -s $(connector_metrics_url connA)/metrics | awk '\$1 == \"cfdtunnel_tunnel_total_requests\" {print \$2}') >= 300 ))" ||
    fail "replica A did not get load"
hold_on A DFW kill.localhost A
echo "killing A after it served $(served A) requests"
kill -KILL "${CPID[A]}"
wait_until 10 bash -c "compgen -G '$HOLD_DIR/held-[BC]-$HELD_KEY' >/dev/null" ||
    fail "the GET in flight on the killed A was not retried: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
release "$HELD_KEY"
wait "$HELD_PID" || fail "the GET in flight on the killed A failed: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
[[ $(cat "$TEST_TMP/slow-$HELD_KEY.log") =~ ^slow-$HELD_KEY-[BC]$ ]] ||
    fail "the GET in flight on the killed A answered: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
b0=$(served B)
wait_until 10 bash -c "(( \$(curl -s $(connector_metrics_url connB)/metrics | awk '\$1 == \"cfdtunnel_tunnel_total_requests\" {print \$2}') >= $b0 + 300 ))" ||
    fail "replica B did not take more load after A died"
hold_on B MCI kill.localhost B
echo "killing B after it served $(served B) requests"
kill -KILL "${CPID[B]}"
wait_until 10 bash -c "compgen -G '$HOLD_DIR/held-C-$HELD_KEY' >/dev/null" ||
    fail "the GET in flight on the killed B was not retried on C: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
release "$HELD_KEY"
wait "$HELD_PID" || fail "the GET in flight on the killed B failed: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
[[ $(cat "$TEST_TMP/slow-$HELD_KEY.log") == "slow-$HELD_KEY-C" ]] ||
    fail "the GET in flight on the killed B answered: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
c0=$(served C)
wait_load loadDFW
wait_load loadMCI
c1=$(served C)
echo "C served $((c1 - c0)) requests after B died"
((c1 - c0 >= 100)) || fail "replica C served only $((c1 - c0)) requests after A and B died"

for loc in DFW MCI; do
    echo "$loc: $(load_summary "load$loc")"
    assert_load_clean "load$loc" 500
done
retries=$(($(edge_metric DFW cfdtunnel_edge_retries_total) + $(edge_metric MCI cfdtunnel_edge_retries_total) - retries_before))
echo "edge retries during the kills: $retries"
