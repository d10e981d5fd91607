#!/usr/bin/env bash
# An ssh:// ingress rule end to end, as cloudflared users reach SSH through a tunnel:
#   ssh/scp -> cfdtunnel access tcp (WebSocket client) -> edge (public HTTP listener, Upgrade)
#   -> tunnel stream -> connector (TCP over WebSocket) -> a real sshd on loopback.
# A command runs through it and scp copies 100 MiB both ways intact (sha256); a hostname whose
# rule is not tcp:// or ssh:// is refused by the access client with the edge's status.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ssh.sh"

start_sshd
user=$SSH_USER

# --- the access client alone, against a stand-in WebSocket server over TLS ------------------
# The stand-in plays edge + connector (RFC 6455 server role, payloads to sshd and back): the
# client's https:// path, certificate check against --cacert and SNI are tested whatever the
# edge supports.
start_ws_standin ssh.localhost
standin_port=$STANDIN_PORT
standin_local=$(free_port)
start access-standin "$CFD_BIN" access ssh --hostname ssh.localhost --url "$standin_local" \
    --edge "https://127.0.0.1:$standin_port" --cacert "$TEST_TMP/pki/ca.pem"
standin_access_pid=$LAST_PID
wait_until 10 port_open "$standin_local" || fail "access ssh did not listen"
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$standin_local" "$user@127.0.0.1" 'echo via-standin') ||
    fail "ssh via the stand-in: $(tail -5 "$TEST_TMP/access-standin.log")"
[[ $out == via-standin ]] || fail "ssh via the stand-in: $out"
head -c $((10 << 20)) /dev/urandom >"$TEST_TMP/small.bin"
timeout 120 scp -q "${SSH_OPTS[@]}" -P "$standin_local" "$TEST_TMP/small.bin" \
    "$user@127.0.0.1:$TEST_TMP/small.remote" 2>"$TEST_TMP/scp.err" ||
    fail "scp via the stand-in: $(cat "$TEST_TMP/scp.err")"
cmp -s "$TEST_TMP/small.bin" "$TEST_TMP/small.remote" || fail "scp via the stand-in: corrupted"
timeout 120 scp -q "${SSH_OPTS[@]}" -P "$standin_local" "$user@127.0.0.1:$TEST_TMP/small.remote" \
    "$TEST_TMP/small.back" 2>"$TEST_TMP/scp.err" ||
    fail "scp back via the stand-in: $(cat "$TEST_TMP/scp.err")"
cmp -s "$TEST_TMP/small.bin" "$TEST_TMP/small.back" || fail "scp back via the stand-in: corrupted"
check_rss "$standin_access_pid" "access ssh (TLS, 2 x 10 MiB)"
# With another CA the edge's certificate is refused, and the client says so.
make_pki "$TEST_TMP/pki-other" ssh.localhost
bad_local=$(free_port)
start access-badca "$CFD_BIN" access tcp --hostname ssh.localhost --url "$bad_local" \
    --edge "https://127.0.0.1:$standin_port" --cacert "$TEST_TMP/pki-other/ca.pem"
wait_until 10 port_open "$bad_local" || fail "access tcp (other CA) did not listen"
timeout 30 ssh "${SSH_OPTS[@]}" -p "$bad_local" "$user@127.0.0.1" true 2>/dev/null &&
    fail "ssh through an unverified edge succeeded"
wait_until 10 grep -q 'ERR failed to connect to origin.*TLS' "$TEST_TMP/access-badca.log" ||
    fail "no TLS error logged: $(cat "$TEST_TMP/access-badca.log")"

# --- edge, tunnel, connector with an ssh:// rule ------------------------------------------
start_ssh_tunnel ssh.localhost web.localhost

# --- the access client ---------------------------------------------------------------------
local_port=$(free_port)
start access "$CFD_BIN" access tcp --hostname ssh.localhost --url "127.0.0.1:$local_port" \
    --edge "http://127.0.0.1:${EDGE_HTTP[DFW]}"
access_pid=$LAST_PID
wait_until 10 port_open "$local_port" || fail "access tcp did not listen: $(cat "$TEST_TMP/access.log")"
grep -q 'INF Start Websocket listener' "$TEST_TMP/access.log" ||
    fail "no listener line: $(cat "$TEST_TMP/access.log")"

# The edge's side of WebSocket pass-through may be missing: then the access client logs the
# edge's status for the Upgrade, and this says so instead of a bare ssh failure.
if ! out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$local_port" "$user@127.0.0.1" \
    'echo through-the-tunnel; uname -s' 2>"$TEST_TMP/ssh.err"); then
    if grep -q 'instead of 101' "$TEST_TMP/access.log"; then
        fail "the edge does not pass WebSocket upgrades through yet: $(grep -m1 ERR "$TEST_TMP/access.log")"
    fi
    fail "ssh through the tunnel: $(cat "$TEST_TMP/ssh.err"); access: $(tail -5 "$TEST_TMP/access.log")"
fi
[[ $out == $'through-the-tunnel\nLinux' ]] || fail "ssh command output: $out"
grep -q 'INF Accepted connection' "$TEST_TMP/access.log" || fail "no accepted-connection line"

# --- 100 MiB both ways with scp, checked with sha256 ---------------------------------------
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/up.bin"
want=$(sha256sum <"$TEST_TMP/up.bin" | cut -d' ' -f1)
timeout 300 scp -q "${SSH_OPTS[@]}" -P "$local_port" "$TEST_TMP/up.bin" \
    "$user@127.0.0.1:$TEST_TMP/remote.bin" 2>"$TEST_TMP/scp.err" ||
    fail "scp upload: $(cat "$TEST_TMP/scp.err")"
got=$(sha256sum <"$TEST_TMP/remote.bin" | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "upload corrupted: $got != $want"
timeout 300 scp -q "${SSH_OPTS[@]}" -P "$local_port" "$user@127.0.0.1:$TEST_TMP/remote.bin" \
    "$TEST_TMP/down.bin" 2>"$TEST_TMP/scp.err" || fail "scp download: $(cat "$TEST_TMP/scp.err")"
got=$(sha256sum <"$TEST_TMP/down.bin" | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "download corrupted: $got != $want"
# Bounded buffers: 200 MiB went through, the client's memory did not follow.
check_rss "$access_pid" "access tcp (2 x 100 MiB)"
echo "connector peak RSS: $(peak_rss_kb "$CONNECTOR_PID") KiB"

# Several sessions at once, each closed cleanly.
pids=()
for i in 1 2 3 4; do
    timeout 60 ssh "${SSH_OPTS[@]}" -p "$local_port" "$user@127.0.0.1" "echo session-$i" \
        >"$TEST_TMP/par-$i.out" 2>&1 &
    pids+=($!)
done
for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}" || fail "parallel ssh $i: $(cat "$TEST_TMP/par-$i.out")"
    [[ $(cat "$TEST_TMP/par-$i.out") == "session-$i" ]] || fail "parallel ssh $i output"
done

# --- a hostname whose rule is not a TCP service: refused, the client says why ---------------
web_port=$(free_port)
start access-web "$CFD_BIN" access tcp --hostname web.localhost --url "$web_port" \
    --edge "http://127.0.0.1:${EDGE_HTTP[DFW]}"
wait_until 10 port_open "$web_port" || fail "second access tcp did not listen"
timeout 30 ssh "${SSH_OPTS[@]}" -p "$web_port" "$user@127.0.0.1" true 2>/dev/null &&
    fail "ssh through a non-TCP rule succeeded"
wait_until 10 grep -q 'ERR failed to connect to origin' "$TEST_TMP/access-web.log" ||
    fail "no error logged for a refused upgrade: $(cat "$TEST_TMP/access-web.log")"

# The access client and the connector still serve after all that.
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$local_port" "$user@127.0.0.1" 'echo still-here') ||
    fail "ssh after the refused one"
[[ $out == still-here ]] || fail "ssh after: $out"
echo "PASS: ssh and 100 MiB scp both ways through cfdtunnel access tcp and an ssh:// rule"
