#!/usr/bin/env bash
# An ssh:// ingress rule end to end, as cloudflared users reach SSH through a tunnel:
#   ssh/scp -> cfdtunnel access tcp (WebSocket client) -> edge (public HTTP listener, Upgrade)
#   -> tunnel stream -> connector (TCP over WebSocket) -> a real sshd on loopback.
# A command runs through it and scp copies 100 MiB both ways intact (sha256); a hostname whose
# rule is not tcp:// or ssh:// is refused by the access client with the edge's status.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

SSHD=/usr/sbin/sshd
if [[ ! -x $SSHD ]] || ! command -v ssh >/dev/null || ! command -v scp >/dev/null ||
    ! command -v ssh-keygen >/dev/null; then
    echo "SKIP: needs openssh-server and openssh-client (make deps installs them)"
    exit 77
fi

# --- sshd on a free loopback port, everything in the test's folder ------------------------
SSH_DIR="$TEST_TMP/ssh"
mkdir -p "$SSH_DIR"
chmod 0700 "$SSH_DIR"
ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/host_key" || fail "ssh-keygen host key"
ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/client_key" || fail "ssh-keygen client key"
cp "$SSH_DIR/client_key.pub" "$SSH_DIR/authorized_keys"
chmod 0600 "$SSH_DIR/authorized_keys"
# sshd refuses to start without its privilege-separation directory.
[[ -d /run/sshd ]] || mkdir -p /run/sshd
sshd_port=$(free_port)
cat >"$SSH_DIR/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $sshd_port
HostKey $SSH_DIR/host_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
start sshd "$SSHD" -D -e -f "$SSH_DIR/sshd_config"
wait_until 10 port_open "$sshd_port" || fail "sshd did not start: $(cat "$TEST_TMP/sshd.log")"

# check_rss PID WHAT: the access client's peak RSS stays small (its queues are bounded: a few
# MiB per connection). Not under ASan, whose quarantine keeps freed memory.
check_rss() {
    local rss
    rss=$(peak_rss_kb "$1")
    echo "$2: peak RSS ${rss} KiB"
    [[ ${CFD_SANITIZED:-0} == 1 ]] || ((rss < 64 * 1024)) ||
        fail "$2: peak RSS ${rss} KiB, buffers are not bounded"
}

SSH_OPTS=(-F /dev/null -i "$SSH_DIR/client_key" -o IdentitiesOnly=yes -o BatchMode=yes
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o ConnectTimeout=30 -o ServerAliveInterval=5 -o ServerAliveCountMax=6)
user=$(id -un)

# --- the access client alone, against a stand-in WebSocket server over TLS ------------------
# The stand-in plays edge + connector (RFC 6455 server role, payloads to sshd and back): the
# client's https:// path, certificate check against --cacert and SNI are tested whatever the
# edge supports.
make_pki "$TEST_TMP/pki" ssh.localhost
cat >"$TEST_TMP/wsbridge.py" <<'PY'
import asyncio, base64, hashlib, ssl, struct, sys
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def frame(op, payload):
    n = len(payload)
    if n < 126:
        h = struct.pack("!BB", 0x80 | op, n)
    elif n < 65536:
        h = struct.pack("!BBH", 0x80 | op, 126, n)
    else:
        h = struct.pack("!BBQ", 0x80 | op, 127, n)
    return h + payload
async def handle(reader, writer, target):
    head = await reader.readuntil(b"\r\n\r\n")
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    host = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
            if l.lower().startswith(b"host:")][0]
    assert host == b"ssh.localhost", host
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    o_reader, o_writer = await asyncio.open_connection("127.0.0.1", target)
    closed = False
    async def up():
        nonlocal closed
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                assert b1 & 0x80, "client frame not masked"
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await reader.readexactly(8))[0]
                mask = await reader.readexactly(4)
                raw = await reader.readexactly(n)
                k = (mask * (n // 4 + 1))[:n]
                data = (int.from_bytes(raw, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
                op = b0 & 0x0F
                if op == 8:
                    if not closed:
                        closed = True
                        writer.write(frame(8, b"\x03\xe8"))
                        await writer.drain()
                    break
                if op == 9:
                    writer.write(frame(10, data))
                    continue
                o_writer.write(data)
                await o_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        o_writer.close()
    async def down():
        nonlocal closed
        try:
            while True:
                data = await o_reader.read(65536)
                if not data:
                    break
                if not closed:
                    writer.write(frame(2, data))
                    await writer.drain()
            if not closed:
                closed = True
                writer.write(frame(8, b"\x03\xe8"))
                await writer.drain()
        except ConnectionError:
            pass
    await asyncio.gather(up(), down())
    writer.close()
async def main():
    port, target, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(lambda r, w: handle(r, w, target), "127.0.0.1", port,
                                        ssl=ctx)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
standin_port=$(free_port)
start standin python3 "$TEST_TMP/wsbridge.py" "$standin_port" "$sshd_port" \
    "$TEST_TMP/pki/leaf.pem" "$TEST_TMP/pki/leaf.key"
wait_until 10 port_open "$standin_port" || fail "stand-in did not start: $(cat "$TEST_TMP/standin.log")"
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
start_edge DFW 127.0.0.1
create_tunnel sshtun ssh.localhost
"$CFD_BIN" tunnel route dns sshtun web.localhost >/dev/null 2>&1 || fail "route dns web"
CFG="$TEST_TMP/connector.ini"
cat >"$CFG" <<INI
[ingress "ssh"]
hostname = ssh.localhost
service = ssh://127.0.0.1:$sshd_port
[ingress "default"]
service = http_status:404
INI
start connector "$CFD_BIN" tunnel run --credentials-file "$CRED" --config "$CFG" \
    --cacert "$STORE/ca.pem" --edge "127.0.0.1:${EDGE_TUNNEL[DFW]}" --ha-connections 1 \
    --metrics "127.0.0.1:$(free_port)"
CONNECTOR_PID=$LAST_PID
wait_registered connector 1

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
