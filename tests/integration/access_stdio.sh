#!/usr/bin/env bash
# `cfdtunnel access ssh --hostname H` without --url: one connection over stdin/stdout, as
# OpenSSH's ProxyCommand runs it (through pipes):
#   ssh -o ProxyCommand='cfdtunnel access ssh --hostname %h' -> edge (public HTTP listener,
#   Upgrade) -> tunnel stream -> connector -> a real sshd on loopback.
# A command runs through it, 20 MiB go up and down intact (sha256) with a bounded peak RSS and a
# clean exit (status 0, nothing on stderr); the same over TLS against the WebSocket stand-in,
# where a slow stdout and a slow edge each keep the client's memory bounded;
# a refused hostname (no route: the edge's 404; a rule that is not TCP) or an unreachable edge
# exit non-zero with the reason on stderr and nothing on stdout.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ssh.sh"

start_sshd

# The ProxyCommand runs under this wrapper, which records the client's exit status and peak
# RSS in FILE once it ends. ssh sends SIGHUP to its ProxyCommand when done: passed on.
cat >"$TEST_TMP/proxy_wrap.py" <<'PY'
import os, resource, signal, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGHUP, lambda s, f: p.send_signal(s))
rc = p.wait()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d %d\n" % (rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
sys.exit(rc)
PY
proxy_n=0
# proxy_cmd EDGE_URL [flags...]: a ProxyCommand for ssh -o; sets PROXY_OUT, the wrapper's file.
proxy_cmd() {
    proxy_n=$((proxy_n + 1))
    PROXY_OUT="$TEST_TMP/proxy-$proxy_n.out"
    PROXY="python3 $TEST_TMP/proxy_wrap.py $PROXY_OUT $CFD_BIN access ssh --hostname %h --edge $*"
}
# proxy_done WHAT: the wrapped client ended with status 0 (sets PROXY_RSS).
proxy_done() {
    wait_until 15 test -s "$PROXY_OUT" || fail "$1: the access client did not exit"
    local rc
    read -r rc PROXY_RSS <"$PROXY_OUT"
    [[ $rc == 0 ]] || fail "$1: the access client exited with status $rc"
}

# --- over TLS, against the stand-in for edge + connector -------------------------------------
start_ws_standin ssh.localhost
proxy_cmd "https://127.0.0.1:$STANDIN_PORT" --cacert "$TEST_TMP/pki/ca.pem"
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PROXY" "$SSH_USER@ssh.localhost" \
    'echo via-standin' 2>"$TEST_TMP/ssh.err") ||
    fail "ssh via the stand-in: $(cat "$TEST_TMP/ssh.err")"
[[ $out == via-standin ]] || fail "ssh via the stand-in: $out"
[[ ! -s $TEST_TMP/ssh.err ]] || fail "stderr via the stand-in: $(cat "$TEST_TMP/ssh.err")"
proxy_done "ssh via the stand-in"
head -c $((5 << 20)) /dev/urandom >"$TEST_TMP/small.bin"
proxy_cmd "https://127.0.0.1:$STANDIN_PORT" --cacert "$TEST_TMP/pki/ca.pem"
timeout 120 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PROXY" "$SSH_USER@ssh.localhost" \
    "cat > $TEST_TMP/small.remote" <"$TEST_TMP/small.bin" 2>"$TEST_TMP/ssh.err" ||
    fail "5 MiB via the stand-in: $(cat "$TEST_TMP/ssh.err")"
cmp -s "$TEST_TMP/small.bin" "$TEST_TMP/small.remote" || fail "5 MiB via the stand-in: corrupted"
proxy_done "5 MiB via the stand-in"
check_rss_kb "$PROXY_RSS" "access ssh over stdin/stdout (TLS, 5 MiB)"
# Another CA: the edge's certificate is refused, the client says so and fails.
make_pki "$TEST_TMP/pki-other" ssh.localhost
rc=0
echo | timeout 30 "$CFD_BIN" access ssh --hostname ssh.localhost \
    --edge "https://127.0.0.1:$STANDIN_PORT" --cacert "$TEST_TMP/pki-other/ca.pem" \
    >"$TEST_TMP/badca.out" 2>"$TEST_TMP/badca.err" || rc=$?
((rc == 1)) || fail "unverified edge: status $rc, not 1"
grep -q 'ERR failed to connect to origin.*TLS' "$TEST_TMP/badca.err" ||
    fail "unverified edge: no TLS error on stderr: $(cat "$TEST_TMP/badca.err")"
[[ ! -s $TEST_TMP/badca.out ]] || fail "unverified edge: stdout is not empty"

# --- flow control, the client alone on pipes, against the stand-in -----------------------------
# Origins much slower or faster than the other side: the client's memory stays bounded only if
# it pauses reading the fast side. `source` sends FILE to each connection and closes; `sink`
# stores what it reads into FILE, slowly.
cat >"$TEST_TMP/origin.py" <<'PY'
import os, socket, sys, time
mode, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
srv = socket.socket()
srv.bind(("127.0.0.1", port))
srv.listen(4)
def serve(c):
    if mode == "source":
        with open(path, "rb") as f:
            c.sendfile(f)
        return
    n = 0
    with open(path + ".tmp", "wb") as f:
        while True:
            b = c.recv(65536)
            if not b:
                break
            f.write(b)
            n += len(b)
            time.sleep(0.004)  # a slow reader (~16 MB/s), not a synchronization
    if n > 0:  # not the readiness probe
        os.rename(path + ".tmp", path)
while True:
    c, _ = srv.accept()
    try:
        serve(c)
    except OSError:
        pass  # the readiness probe (port_open) hangs up at once
    c.close()
PY
cat >"$TEST_TMP/slow_sha.py" <<'PY'
import hashlib, sys, time
h = hashlib.sha256()
while True:
    b = sys.stdin.buffer.read1(65536)
    if not b:
        break
    h.update(b)
    time.sleep(0.004)  # a slow reader (~16 MB/s), not a synchronization
print(h.hexdigest())
PY
head -c $((48 << 20)) /dev/urandom >"$TEST_TMP/flow.bin"
flow_sha=$(sha256sum <"$TEST_TMP/flow.bin" | cut -d' ' -f1)
source_port=$(free_port)
start origin-source python3 "$TEST_TMP/origin.py" source "$source_port" "$TEST_TMP/flow.bin"
wait_until 10 port_open "$source_port" || fail "source origin did not start"
start_ws_standin ssh.localhost "$source_port" standin-source
# Slow stdout: stdin stays open (a FIFO this shell holds) while 48 MiB come from the edge.
mkfifo "$TEST_TMP/hold"
exec 3<>"$TEST_TMP/hold"
PROXY_OUT="$TEST_TMP/slow-stdout.out"
got=$(timeout 120 python3 "$TEST_TMP/proxy_wrap.py" "$PROXY_OUT" "$CFD_BIN" access tcp \
    --hostname ssh.localhost --edge "https://127.0.0.1:$STANDIN_PORT" \
    --cacert "$TEST_TMP/pki/ca.pem" <&3 2>"$TEST_TMP/slow-stdout.err" |
    python3 "$TEST_TMP/slow_sha.py") || fail "slow stdout: $(cat "$TEST_TMP/slow-stdout.err")"
exec 3>&-
[[ $got == "$flow_sha" ]] ||
    fail "slow stdout: corrupted ($got != $flow_sha): $(cat "$TEST_TMP/slow-stdout.err")"
proxy_done "slow stdout"
check_rss_kb "$PROXY_RSS" "access tcp over stdin/stdout (48 MiB to a slow stdout)" 40
# Slow edge: 48 MiB on stdin at once, an origin reading slowly; the client exits once the edge
# answered its Close.
sink_port=$(free_port)
start origin-sink python3 "$TEST_TMP/origin.py" sink "$sink_port" "$TEST_TMP/sink.bin"
wait_until 10 port_open "$sink_port" || fail "sink origin did not start"
start_ws_standin ssh.localhost "$sink_port" standin-sink
PROXY_OUT="$TEST_TMP/slow-edge.out"
timeout 120 python3 "$TEST_TMP/proxy_wrap.py" "$PROXY_OUT" "$CFD_BIN" access tcp \
    --hostname ssh.localhost --edge "https://127.0.0.1:$STANDIN_PORT" \
    --cacert "$TEST_TMP/pki/ca.pem" <"$TEST_TMP/flow.bin" >"$TEST_TMP/slow-edge.stdout" \
    2>"$TEST_TMP/slow-edge.err" || fail "slow edge: $(cat "$TEST_TMP/slow-edge.err")"
proxy_done "slow edge"
check_rss_kb "$PROXY_RSS" "access tcp over stdin/stdout (48 MiB to a slow edge)" 40
wait_until 30 test -s "$TEST_TMP/sink.bin" || fail "slow edge: the origin got no end of stream"
got=$(sha256sum <"$TEST_TMP/sink.bin" | cut -d' ' -f1)
[[ $got == "$flow_sha" ]] || fail "slow edge: corrupted ($got != $flow_sha)"
[[ ! -s $TEST_TMP/slow-edge.stdout ]] || fail "slow edge: unexpected bytes on stdout"

# --- through a real edge and connector -------------------------------------------------------
start_ssh_tunnel ssh.localhost web.localhost
EDGE_URL="http://127.0.0.1:${EDGE_HTTP[DFW]}"

proxy_cmd "$EDGE_URL"
if ! out=$(timeout 60 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PROXY" "$SSH_USER@ssh.localhost" \
    'echo through-stdio; uname -s' 2>"$TEST_TMP/ssh.err"); then
    fail "ssh with ProxyCommand: $(cat "$TEST_TMP/ssh.err")"
fi
[[ $out == $'through-stdio\nLinux' ]] || fail "ssh command output: $out"
[[ ! -s $TEST_TMP/ssh.err ]] || fail "stderr: $(cat "$TEST_TMP/ssh.err")"
proxy_done "ssh with ProxyCommand"

# 20 MiB up through ssh's stdin and `cat > file`, then back through `cat file`.
head -c $((20 << 20)) /dev/urandom >"$TEST_TMP/up.bin"
want=$(sha256sum <"$TEST_TMP/up.bin" | cut -d' ' -f1)
proxy_cmd "$EDGE_URL"
timeout 120 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PROXY" "$SSH_USER@ssh.localhost" \
    "cat > $TEST_TMP/remote.bin" <"$TEST_TMP/up.bin" 2>"$TEST_TMP/ssh.err" ||
    fail "20 MiB upload: $(cat "$TEST_TMP/ssh.err")"
got=$(sha256sum <"$TEST_TMP/remote.bin" | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "upload corrupted: $got != $want"
proxy_done "20 MiB upload"
check_rss_kb "$PROXY_RSS" "access ssh over stdin/stdout (20 MiB up)"
proxy_cmd "$EDGE_URL"
timeout 120 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PROXY" "$SSH_USER@ssh.localhost" \
    "cat $TEST_TMP/remote.bin" >"$TEST_TMP/down.bin" 2>"$TEST_TMP/ssh.err" ||
    fail "20 MiB download: $(cat "$TEST_TMP/ssh.err")"
got=$(sha256sum <"$TEST_TMP/down.bin" | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "download corrupted: $got != $want"
proxy_done "20 MiB download"
check_rss_kb "$PROXY_RSS" "access ssh over stdin/stdout (20 MiB down)"

# --- refused or unreachable: non-zero, the reason on stderr, nothing on stdout ----------------
# refused NAME HOSTNAME EDGE PATTERN: the client alone (stdin a pipe) fails with PATTERN logged.
refused() {
    local rc=0
    echo hello | timeout 30 "$CFD_BIN" access ssh --hostname "$2" --edge "$3" \
        >"$TEST_TMP/$1.out" 2>"$TEST_TMP/$1.err" || rc=$?
    ((rc == 1)) || fail "$1: status $rc, not 1 ($(cat "$TEST_TMP/$1.err"))"
    grep -q "ERR failed to connect to origin.*$4" "$TEST_TMP/$1.err" ||
        fail "$1: no error on stderr matching '$4': $(cat "$TEST_TMP/$1.err")"
    [[ ! -s $TEST_TMP/$1.out ]] || fail "$1: stdout is not empty: $(cat "$TEST_TMP/$1.out")"
}
# No route for the hostname: the edge itself answers 404.
refused unknown-host nosuch.localhost "$EDGE_URL" 'the edge answered 404 instead of 101'
# Routed, but the connector's rule is not a TCP service.
refused not-tcp web.localhost "$EDGE_URL" 'instead of 101'
# Nothing listens there.
refused unreachable ssh.localhost "http://127.0.0.1:$(free_port)" 'cannot reach the edge'
# And through ssh, which fails instead of hanging.
timeout 60 ssh "${SSH_OPTS[@]}" \
    -o ProxyCommand="$CFD_BIN access ssh --hostname %h --edge $EDGE_URL" \
    "$SSH_USER@nosuch.localhost" true 2>"$TEST_TMP/ssh.err" && fail "ssh to a refused host succeeded"
grep -q 'instead of 101' "$TEST_TMP/ssh.err" ||
    fail "ssh to a refused host: the reason is not on stderr: $(cat "$TEST_TMP/ssh.err")"

# The tunnel still serves after all that.
proxy_cmd "$EDGE_URL"
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PROXY" "$SSH_USER@ssh.localhost" \
    'echo still-here') || fail "ssh after the refused ones"
[[ $out == still-here ]] || fail "ssh after: $out"
proxy_done "ssh after the refused ones"
echo "PASS: ssh with cfdtunnel access ssh as ProxyCommand (stdin/stdout), 20 MiB both ways"
