#!/usr/bin/env bash
# Rolling upgrades under POST load (DESIGN.md stories 9 and 10: "no request fails during the
# switch", whatever its method): a deployment of two replicas (2 connections each) behind one
# edge location with two reactors is rolled through six generations, one replica at a time:
# the new one registers, the old one gets SIGTERM and must exit 0 on its own. Meanwhile wrk
# POSTs 2 KiB bodies over 8 keep-alive connections: every POST must be a 200, no socket error.
# A POST that a draining connector never saw (refused before any byte reached a connector, e.g.
# a stream relayed to a core whose connection just unregistered) must be retried, not failed.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ha.sh"

gens=(A B C D E F G H)
start_replica_origins "${gens[@]}"
start_edge DFW 127.0.0.1  # --workers 2
create_tunnel rollpost rollpost.localhost
declare -A CPID
replica() {
    start_connector "conn$1" "http://127.0.0.1:${OPORT[$1]}" --ha-connections 2 --grace-period 20s
    CPID[$1]=$CONNECTOR_PID
}
replica A
replica B
wait_registered connA 2
wait_registered connB 2

WRK_POST_BYTES=2048 start_load post DFW rollpost.localhost / 40 8
wait_until 10 bash -c "(( \$(curl -s $(connector_metrics_url connA)/metrics | awk '\$1 == \"cfdtunnel_tunnel_total_requests\" {print \$2}') >= 100 ))" ||
    fail "the POST load does not reach replica A"
for i in 2 3 4 5 6 7; do
    old=${gens[i - 2]} new=${gens[i]}
    replica "$new"
    wait_registered "conn$new" 2
    kill -TERM "${CPID[$old]}"
    wait_until 15 exited "${CPID[$old]}" || fail "replica $old did not exit after SIGTERM"
    status=0
    wait "${CPID[$old]}" || status=$?
    ((status == 0)) || fail "replica $old exited with status $status"
    kill -0 "${LOAD_PID[post]}" 2>/dev/null || fail "the load ended before the roll to $new"
done
stop_load post
echo "POST load: $(load_summary post)"
echo "edge: retries $(edge_metric DFW cfdtunnel_edge_retries_total)," \
    "relayed $(edge_metric DFW 'cfdtunnel_edge_relayed_streams_total{side="sent"}')"
for r in G H; do
    (($(load_count post "body_replica$r") > 0)) || fail "the last generation ($r) served no POST"
done
assert_load_clean post 1000
