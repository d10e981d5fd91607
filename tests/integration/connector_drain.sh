#!/usr/bin/env bash
# A connector stopped with SIGTERM while a 50 MiB download is in flight (DESIGN.md story 9):
# the download completes intact and the connector exits as soon as it is done, well before its
# grace period. With a grace period shorter than the download, the download is cut when the
# grace period ends and the client sees a clean error (a short body it can tell from a whole
# one), never a hang.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
head -c $((50 << 20)) /dev/urandom >"$TEST_TMP/www/big.bin"
want=$(sha256sum <"$TEST_TMP/www/big.bin" | cut -d' ' -f1)
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1
create_tunnel drain drain.localhost
started() { (( $(stat -c %s "$1" 2>/dev/null || echo 0) > 0 )); }

# 1. The download (about 3 s at 16 MiB/s) finishes; the connector leaves right after it.
start_connector c1 "http://127.0.0.1:$origin_port" --grace-period 30s
wait_registered c1 4
through DFW drain.localhost /big.bin --limit-rate 16M -o "$TEST_TMP/one.bin" &
dl=$!
wait_until 10 started "$TEST_TMP/one.bin" || fail "the download did not start"
signalled=$(date +%s)
kill -TERM "$CONNECTOR_PID"
wait "$dl" || fail "the download failed across the connector's drain"
[[ $(sha256sum <"$TEST_TMP/one.bin" | cut -d' ' -f1) == "$want" ]] || fail "the download differs"
wait_until 10 bash -c "! kill -0 $CONNECTOR_PID 2>/dev/null" || fail "the connector did not exit"
took=$(($(date +%s) - signalled))
echo "drained in ${took}s (grace period 30s)"
((took < 15)) || fail "the connector took ${took}s: it waited for its grace period"
grep -q 'Initiating graceful shutdown' "$TEST_TMP/c1.log" || fail "no drain logged"
! grep -q 'Grace period over' "$TEST_TMP/c1.log" || fail "c1 hit its grace period"

# 2. A grace period shorter than the download: cut at the grace period, with a clean error.
start_connector c2 "http://127.0.0.1:$origin_port" --grace-period 2s
wait_registered c2 4
rc=0
(through DFW drain.localhost /big.bin --limit-rate 4M -o "$TEST_TMP/two.bin" || echo $? >"$TEST_TMP/two.rc") &
dl=$!
wait_until 10 started "$TEST_TMP/two.bin" || fail "the second download did not start"
signalled=$(date +%s)
kill -TERM "$CONNECTOR_PID"
wait_until 15 bash -c "! kill -0 $CONNECTOR_PID 2>/dev/null" || fail "the connector outlived its grace period"
took=$(($(date +%s) - signalled))
wait_until 15 bash -c "! kill -0 $dl 2>/dev/null" || fail "the client hangs after the cut"
rc=$(cat "$TEST_TMP/two.rc" 2>/dev/null || echo 0)
size=$(stat -c %s "$TEST_TMP/two.bin")
echo "cut after ${took}s (grace period 2s): curl exit $rc with $size of $((50 << 20)) bytes"
((took >= 2 && took <= 6)) || fail "cut after ${took}s, not at the 2s grace period"
((rc != 0)) || fail "the client took a cut download for a whole one"
((size < 50 << 20)) || fail "the download was not cut"
grep -q 'Grace period over' "$TEST_TMP/c2.log" || fail "c2 did not log the end of its grace period"
