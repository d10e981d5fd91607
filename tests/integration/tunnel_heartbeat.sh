#!/usr/bin/env bash
# Dead links are noticed within their timeouts, both ways (issue 4, "Connection death"):
# - a frozen edge (SIGSTOP: its sockets stay open, it just says nothing) is noticed by the
#   connector's silence watchdog, which redials while the other location serves;
# - a frozen connector is noticed by the edge's PINGs, which drops its routes at once: a
#   request then gets the edge's own answer instead of hanging.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
echo "alive" >"$TEST_TMP/www/index.html"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

EDGE_FLAGS=(--ping-interval 1s --ping-timeout 2s)
start_edge DFW 127.0.0.1 "${EDGE_FLAGS[@]}"
start_edge MCI 127.0.0.2 "${EDGE_FLAGS[@]}"
create_tunnel hb hb.localhost
start_connector connector "http://127.0.0.1:$origin_port" --silence-timeout 3s
wait_registered connector 4

# The edge at MCI freezes: within the silence timeout (plus a check period), the connector
# drops both of its MCI connections; DFW serves throughout.
kill -STOP "${EDGE_PID[MCI]}"
frozen_at=$(date +%s)
wait_until 10 bash -c "[[ \$(grep -c 'not even a PING' '$TEST_TMP/connector.log') -ge 2 ]]" ||
    fail "the connector did not notice the silent edge: $(tail -5 "$TEST_TMP/connector.log")"
took=$(($(date +%s) - frozen_at))
echo "silent edge noticed after ${took}s"
((took <= 6)) || fail "noticing the silent edge took ${took}s"
[[ $(through DFW hb.localhost /) == alive ]] || fail "DFW stopped serving"
kill -CONT "${EDGE_PID[MCI]}"
wait_registered connector 6  # back at MCI once it answers again

# The connector freezes: the edges' PINGs go unanswered and its routes are dropped.
kill -STOP "$CONNECTOR_PID"
on_exit "kill -CONT $CONNECTOR_PID"
frozen_at=$(date +%s)
wait_until 10 bash -c "grep -q 'Tunnel connection is dead' '$TEST_TMP/edge-DFW.log'" ||
    fail "the edge did not notice the silent connector: $(tail -5 "$TEST_TMP/edge-DFW.log")"
took=$(($(date +%s) - frozen_at))
echo "silent connector noticed after ${took}s"
((took <= 5)) || fail "noticing the silent connector took ${took}s"
wait_until 5 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H 'Host: hb.localhost' http://127.0.0.1:${EDGE_HTTP[DFW]}/) == 530 ]]" ||
    fail "a request for the frozen connector's tunnel did not get 530"
kill -CONT "$CONNECTOR_PID"
