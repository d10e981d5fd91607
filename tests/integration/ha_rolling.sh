#!/usr/bin/env bash
# Graceful restart and rolling upgrade (DESIGN.md stories 9 and 10): replicas A and B of one
# tunnel serve wrk load through two locations. C starts and registers, then A gets SIGTERM while
# a slow request it serves is in flight: A logs its drain (graceful shutdown, 4 unregistered
# connections), its /ready answers 503 at once, the edges send it no new request, it stays up
# while its slow request runs, and once that request is answered (intact) A exits 0 with
# "Tunnel server stopped", long before its 20s grace period. Then the same for B, replaced by D.
# Over the whole switch, every request of the load (GETs through DFW, POSTs with a body through
# MCI) is a 200, with no socket error.
# Finally a second SIGTERM makes a draining connector (grace period 60s, a slow request held)
# exit at once with status 1 ("Second signal"); the held GET, which had no response byte yet,
# is retried by the edge on another connector and still answers 200.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ha.sh"

start_replica_origins A B C D E
start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel roll roll.localhost
declare -A CPID
replica() {  # replica R [flags]: connector connR for origin R
    local r=$1
    shift
    start_connector "conn$r" "http://127.0.0.1:${OPORT[$r]}" "$@"
    CPID[$r]=$CONNECTOR_PID
}
replica A --grace-period 20s
replica B --grace-period 20s
wait_registered connA 4
wait_registered connB 4
[[ $(ready_code connA) == 200 ]] || fail "A is not ready: $(ready_code connA)"

# GETs through DFW, POSTs with a 2 KiB body through MCI: no method may fail in the switch.
start_load loadDFW DFW roll.localhost / 40 4
WRK_POST_BYTES=2048 start_load loadMCI MCI roll.localhost / 40 4

# roll OLD NEW: NEW starts and registers, OLD drains under load and exits on its own.
roll() {
    local old=$1 new=$2 t0 pid served0 grace_end secs status
    replica "$new" --grace-period 20s
    wait_registered "conn$new" 4
    wait_until 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' $(connector_metrics_url "conn$new")/ready) == 200 ]]" ||
        fail "$new is not ready"
    hold_on "$old" DFW roll.localhost "$old"
    pid=${CPID[$old]}
    t0=$(date +%s%N)
    kill -TERM "$pid"
    wait_until 1 bash -c "[[ \$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' $(connector_metrics_url "conn$old")/ready) == 503 ]]" ||
        fail "$old's /ready did not turn 503 within 1s of SIGTERM: $(ready_code "conn$old")"
    wait_until 5 grep -q 'Initiating graceful shutdown due to signal terminated' "$TEST_TMP/conn$old.log" ||
        fail "$old did not log the start of its drain: $(tail -5 "$TEST_TMP/conn$old.log")"
    wait_until 5 bash -c "[[ \$(grep -c 'Unregistered tunnel connection' '$TEST_TMP/conn$old.log') -ge 4 ]]" ||
        fail "$old did not unregister its 4 connections: $(tail -8 "$TEST_TMP/conn$old.log")"
    # Unregistered: no new request goes to OLD while the load goes on (the new one takes it).
    served0=$(connector_metric "conn$old" cfdtunnel_tunnel_total_requests)
    local n0
    n0=$(connector_metric "conn$new" cfdtunnel_tunnel_total_requests)
    wait_until 10 bash -c "(( \$(curl -s $(connector_metrics_url "conn$new")/metrics | awk '\$1 == \"cfdtunnel_tunnel_total_requests\" {print \$2}') >= $n0 + 200 ))" ||
        fail "$new does not take the load"
    [[ $(connector_metric "conn$old" cfdtunnel_tunnel_total_requests) == "$served0" ]] ||
        fail "the edges still send new requests to the draining $old"
    kill -0 "$pid" 2>/dev/null || fail "$old exited before its slow request finished"
    [[ $(ready_code "conn$old") == 503 ]] || fail "$old's /ready is not 503 while draining"
    release "$HELD_KEY"
    wait_until 10 bash -c "! kill -0 $HELD_PID 2>/dev/null" || fail "the slow request on $old did not finish"
    wait "$HELD_PID" || fail "the slow request on $old failed: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
    [[ $(cat "$TEST_TMP/slow-$HELD_KEY.log") == "slow-$HELD_KEY-$old" ]] ||
        fail "the slow request on $old answered: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
    wait_until 10 exited "$pid" || fail "$old did not exit once its last request finished"
    status=0
    wait "$pid" || status=$?
    secs=$((($(date +%s%N) - t0) / 1000000))
    echo "$old drained and exited ${secs}ms after SIGTERM (status $status)"
    ((status == 0)) || fail "$old exited with status $status: $(tail -5 "$TEST_TMP/conn$old.log")"
    ((secs < 15000)) || fail "$old took ${secs}ms: it waited for its grace period"
    grep -q 'Tunnel server stopped' "$TEST_TMP/conn$old.log" || fail "$old did not log its stop"
    grep -q 'Grace period over' "$TEST_TMP/conn$old.log" && fail "$old ran out its grace period"
    grep -E 'Initiating graceful|Unregistered tunnel|Tunnel server stopped' "$TEST_TMP/conn$old.log" |
        sed 's/^/    /'
}
roll A C
roll B D

stop_load loadDFW
stop_load loadMCI
for loc in DFW MCI; do
    echo "$loc: $(load_summary "load$loc")"
    assert_load_clean "load$loc" 500
done
for r in A B C D; do
    n=$(($(load_count loadDFW "body_replica$r") + $(load_count loadMCI "body_replica$r")))
    ((n > 0)) || fail "replica $r served none of the load"
done

# A second signal during a drain exits at once, even with a request held and a long grace.
replica E --grace-period 60s
wait_registered connE 4
hold_on E MCI roll.localhost E
kill -TERM "${CPID[E]}"
wait_until 5 grep -q 'Initiating graceful shutdown' "$TEST_TMP/connE.log" || fail "E did not start its drain"
wait_until 5 bash -c "[[ \$(grep -c 'Unregistered tunnel connection' '$TEST_TMP/connE.log') -ge 4 ]]" ||
    fail "E did not unregister: $(tail -5 "$TEST_TMP/connE.log")"
kill -0 "${CPID[E]}" 2>/dev/null || fail "E exited with its slow request in flight"
t0=$(date +%s%N)
kill -TERM "${CPID[E]}"
wait_until 2 exited "${CPID[E]}" || fail "a second SIGTERM did not stop the draining E at once"
status=0
wait "${CPID[E]}" || status=$?
echo "E exited $((($(date +%s%N) - t0) / 1000000))ms after its second signal (status $status)"
((status == 1)) || fail "E exited with status $status after a second signal, not 1"
grep -q 'Second signal terminated: exiting now' "$TEST_TMP/connE.log" ||
    fail "E did not log the second signal: $(tail -3 "$TEST_TMP/connE.log")"
# The held GET had no response byte: the edge retries it on C or D.
wait_until 10 bash -c "compgen -G '$HOLD_DIR/held-[CD]-$HELD_KEY' >/dev/null" ||
    fail "the GET held by E was not retried on another connector: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
release "$HELD_KEY"
wait "$HELD_PID" || fail "the GET held by E failed: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
[[ $(cat "$TEST_TMP/slow-$HELD_KEY.log") =~ ^slow-$HELD_KEY-[CD]$ ]] ||
    fail "the GET held by E answered: $(cat "$TEST_TMP/slow-$HELD_KEY.log")"
