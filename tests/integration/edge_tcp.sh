#!/usr/bin/env bash
# The edge's raw TCP listeners (--tcp-listen ADDR=HOSTNAME): a client's bytes go down the
# tunnel as a raw TCP stream to the connector's tcp:// rule for HOSTNAME and back: 4 MiB echoed
# intact, the origin's close ends the client's connection, and with proxyProtocol = v1 the
# origin first learns the client's real address and port.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

echo_port=$(free_port)
start origin python3 -c '
import socket, sys, threading
def serve(c):
    with c:
        f = c.makefile("rb")
        first = f.readline()
        if first.startswith(b"PROXY "):
            c.sendall(b"saw " + first)  # what the PROXY header said, then the echo
        else:
            c.sendall(first)
        while True:
            b = f.read1(65536)
            if not b:
                return
            c.sendall(b)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$echo_port"
wait_until 10 port_open "$echo_port" || fail "echo origin did not start"

tcp_port=$(free_port)
pp_port=$(free_port)
start_edge DFW 127.0.0.1 --tcp-listen "127.0.0.1:$tcp_port=tcp.localhost" \
    --tcp-listen "127.0.0.1:$pp_port=pp.localhost"
create_tunnel raw tcp.localhost
"$CFD_BIN" tunnel route dns raw pp.localhost >/dev/null 2>&1 || fail "route dns"
CFG="$TEST_TMP/connector.ini"
cat >"$CFG" <<INI
[ingress "tcp"]
hostname = tcp.localhost
service = tcp://127.0.0.1:$echo_port
[ingress "pp"]
hostname = pp.localhost
service = tcp://127.0.0.1:$echo_port
proxyProtocol = v1
[ingress "default"]
service = http_status:404
INI
start_config_connector connector "$CFG"
wait_registered connector 4

python3 - "$tcp_port" "$pp_port" <<'PY' || fail "raw TCP through the edge failed"
import os, socket, sys
tcp_port, pp_port = int(sys.argv[1]), int(sys.argv[2])
def exchange(port, data):
    """Sends `data`, half-closes, reads until the edge closes; returns (our port, reply)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = c.recv(1 << 16)
        if not b:
            return c.getsockname()[1], got
        got += b
# 4 MiB echoed intact (the first line is echoed as it is).
data = b"hello\n" + os.urandom(4 << 20)
_, got = exchange(tcp_port, data)
assert got == data, f"echo differs: {len(got)} of {len(data)} bytes"
# PROXY v1: the origin reports the header the connector sent ahead of our bytes.
port, got = exchange(pp_port, b"ping\n")
want = f"saw PROXY TCP4 127.0.0.1 127.0.0.1 {port} ".encode()
assert got.startswith(want), f"PROXY line: {got[:80]!r}, wanted {want!r}"
assert got.endswith(b"ping\n"), f"after the PROXY line: {got!r}"
print("ok")
PY
