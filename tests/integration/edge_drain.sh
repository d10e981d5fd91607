#!/usr/bin/env bash
# An edge stopped with SIGTERM drains (DESIGN.md story 12): /ready turns 503 at once, the
# listeners close, a download in flight finishes intact, an idle keep-alive client is let go,
# then the tunnel connections close and the process exits; the connector stays up. A second
# SIGTERM stops an edge at once.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
head -c $((8 << 20)) /dev/urandom >"$TEST_TMP/www/big.bin"
want=$(sha256sum <"$TEST_TMP/www/big.bin" | cut -d' ' -f1)
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1
create_tunnel drain drain.localhost
start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 2
ready() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${EDGE_METRICS[DFW]}/ready"; }
[[ $(ready) == 200 ]] || fail "/ready before the drain: $(ready)"

# A slow download (8 MiB at 2 MiB/s: about 4 s) is in flight when the signal comes.
through DFW drain.localhost /big.bin --limit-rate 2M -o "$TEST_TMP/slow.bin" &
slow=$!
wait_until 10 bash -c "(( \$(stat -c %s '$TEST_TMP/slow.bin' 2>/dev/null || echo 0) > 0 ))" ||
    fail "the download did not start"
# An idle keep-alive client, after one exchange: it must be let go, not held for the grace.
exec 5<>"/dev/tcp/127.0.0.1/${EDGE_HTTP[DFW]}"
printf 'GET /big.bin HTTP/1.1\r\nHost: drain.localhost\r\nRange: bytes=0-9\r\n\r\n' >&5
read -r -t 10 status <&5 || fail "no answer to the keep-alive client"
[[ $status == *206* ]] || fail "keep-alive client got: $status"

kill -TERM "${EDGE_PID[DFW]}"
wait_until 5 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${EDGE_METRICS[DFW]}/ready) == 503 ]]" ||
    fail "/ready did not turn 503 during the drain"
wait_until 5 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/${EDGE_HTTP[DFW]}) 2>/dev/null" ||
    fail "the public listener still accepts during the drain"
kill -0 "${EDGE_PID[DFW]}" || fail "the edge exited before its download finished"

# The idle client sees its connection close (cat reaches EOF) long before the download ends.
timeout 5 cat <&5 >/dev/null || fail "the idle keep-alive client was not let go"
exec 5<&-
wait "$slow" || fail "the download in flight failed"
[[ $(sha256sum <"$TEST_TMP/slow.bin" | cut -d' ' -f1) == "$want" ]] ||
    fail "the download in flight arrived damaged"
wait_until 10 bash -c "! kill -0 ${EDGE_PID[DFW]} 2>/dev/null" || fail "the edge did not exit after the drain"
grep -q 'Every public request finished' "$TEST_TMP/edge-DFW.log" ||
    fail "the edge did not log the end of its drain: $(tail -5 "$TEST_TMP/edge-DFW.log")"
kill -0 "$CONNECTOR_PID" || fail "the connector exited with the edge"

# A second signal does not wait for the grace period.
start_edge DFW 127.0.0.1
wait_registered connector 4
(through DFW drain.localhost /big.bin --limit-rate 1M -o "$TEST_TMP/slow2.bin" || true) &
wait_until 10 bash -c "(( \$(stat -c %s '$TEST_TMP/slow2.bin' 2>/dev/null || echo 0) > 0 ))" ||
    fail "the second download did not start"
kill -TERM "${EDGE_PID[DFW]}"
wait_until 5 bash -c "grep -q 'Initiating graceful shutdown' '$TEST_TMP/edge-DFW.log'" || fail "no drain"
kill -TERM "${EDGE_PID[DFW]}"
wait_until 5 bash -c "! kill -0 ${EDGE_PID[DFW]} 2>/dev/null" || fail "a second SIGTERM did not stop the edge"
grep -q 'Second signal' "$TEST_TMP/edge-DFW.log" || fail "the second signal was not logged"
