#!/usr/bin/env bash
# sd_notify with real processes, each speaking to a python3 unix-datagram listener standing in
# for systemd's $NOTIFY_SOCKET (Type=notify, etc/systemd/):
#   - the edge (abstract socket '@...') sends READY=1 with its listeners already accepting,
#     STOPPING=1 on SIGTERM, and nothing more;
#   - the connector (socket file) sends READY=1 once, only after "Registered tunnel connection"
#     is in its log, STATUS= lines as the registered count changes, and STOPPING=1 on SIGTERM,
#     then exits 0;
#   - a connector whose NOTIFY_SOCKET nobody listens on warns and serves anyway.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

# listener.py ADDRESS OUT MODE ARG: writes one line per datagram to OUT, the datagram's
# newlines as ';', then a tab and what was true when it arrived (so ordering is checked at
# the receiving instant, not later): MODE=log counts ARG's "Registered tunnel connection"
# lines; MODE=port tries to connect to ARG (host:port).
cat >"$TEST_TMP/listener.py" <<'PY'
import os, socket, sys
addr, out, mode, arg = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
open(out, "a").close()  # exists once the socket is bound
while True:
    d = s.recv(65536).decode()
    if mode == "log":
        try:
            with open(arg) as f:
                note = "registered=%d" % f.read().count("Registered tunnel connection")
        except FileNotFoundError:
            note = "registered=0"
    else:
        host, port = arg.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            note = "accepting=1"
        except OSError:
            note = "accepting=0"
    with open(out, "a") as f:
        f.write(d.replace("\n", ";") + "\t" + note + "\n")
PY

# has FILE PATTERN: a notice matching PATTERN (grep -E) arrived.
has() {
    grep -qE "$2" "$1"
}
notices() {
    sed 's/^/    /' "$1"
}

# The edge: an abstract socket, as containers' supervisors often use. Its ports are chosen
# here so the listener can probe the public port when READY=1 arrives.
EDGE_HTTP[DFW]=$(free_port)
edge_notify="$TEST_TMP/edge.notices"
edge_sock="@cfd-it-notify-$$-$RANDOM"
start edge-listener python3 "$TEST_TMP/listener.py" "$edge_sock" "$edge_notify" port \
    "127.0.0.1:${EDGE_HTTP[DFW]}"
wait_until 10 test -e "$edge_notify" || fail "the edge's notify listener did not start"
NOTIFY_SOCKET=$edge_sock start_edge DFW 127.0.0.1
wait_until 10 has "$edge_notify" '^READY=1' ||
    fail "the edge sent no READY=1: $(tail -5 "$TEST_TMP/edge-DFW.log")"
has "$edge_notify" '^READY=1;STATUS=Serving location DFW.*accepting=1$' ||
    fail "the edge's READY=1 came before its public listener accepted:
$(notices "$edge_notify")"
[[ $(wc -l <"$edge_notify") -eq 1 ]] || fail "the edge sent more than READY=1:
$(notices "$edge_notify")"

create_tunnel notify notify.localhost

# The connector: a socket file, as systemd uses (/run/systemd/notify).
conn_notify="$TEST_TMP/connector.notices"
conn_sock="$TEST_TMP/notify.sock"
start conn-listener python3 "$TEST_TMP/listener.py" "$conn_sock" "$conn_notify" log \
    "$TEST_TMP/connector.log"
wait_until 10 test -S "$conn_sock" || fail "the connector's notify listener did not start"
NOTIFY_SOCKET=$conn_sock start_connector connector http_status:204 --ha-connections 2
CONN=$CONNECTOR_PID
wait_registered connector 2
wait_until 10 has "$conn_notify" '^READY=1' || fail "the connector sent no READY=1:
$(tail -10 "$TEST_TMP/connector.log")"
first=$(head -n 1 "$conn_notify")
[[ $first =~ ^READY=1\;STATUS=Connected\ [12]\ of\ 2\ connections$'\t'registered=[12]$ ]] ||
    fail "the connector's first notice was not READY=1 after a registration: '$first'"
# STATUS= follows the count up to both connections.
wait_until 10 has "$conn_notify" '^STATUS=Connected 2 of 2 connections|^READY=1;STATUS=Connected 2 ' ||
    fail "no STATUS= for 2 connections:
$(notices "$conn_notify")"
[[ $(grep -c 'READY=1' "$conn_notify") -eq 1 ]] || fail "READY=1 sent more than once:
$(notices "$conn_notify")"
has "$conn_notify" 'STOPPING=1' && fail "STOPPING=1 before any signal"

# The tunnel serves: READY=1 meant it.
code=$(through DFW notify.localhost / -o /dev/null -w '%{http_code}')
[[ $code == 204 ]] || fail "request through the tunnel: $code"

# A connector whose manager is away still serves, with a warning naming the socket.
NOTIFY_SOCKET=$TEST_TMP/nobody.sock start_connector orphan http_status:204 --ha-connections 1
wait_registered orphan 1
wait_until 10 grep -q 'Cannot notify the service manager.*nobody.sock' "$TEST_TMP/orphan.log" ||
    fail "no warning for an absent NOTIFY_SOCKET: $(tail -5 "$TEST_TMP/orphan.log")"
kill -TERM "$CONNECTOR_PID"

# SIGTERM: STOPPING=1 (with a STATUS=), then a clean exit.
kill -TERM "$CONN"
wait_until 10 has "$conn_notify" '^STOPPING=1;STATUS=Draining' ||
    fail "the connector sent no STOPPING=1 after SIGTERM:
$(notices "$conn_notify")"
wait_until 40 bash -c "! kill -0 $CONN" || fail "the connector did not exit after SIGTERM"
wait "$CONN" && rc=0 || rc=$?
[[ $rc -eq 0 ]] || fail "the connector exited $rc after SIGTERM: $(tail -n 5 "$TEST_TMP/connector.log")"
[[ $(tail -n 1 "$conn_notify" | cut -f1) == STOPPING=1* ]] ||
    fail "a notice after STOPPING=1:
$(notices "$conn_notify")"

kill -TERM "${EDGE_PID[DFW]}"
wait_until 10 has "$edge_notify" '^STOPPING=1;STATUS=Draining' ||
    fail "the edge sent no STOPPING=1 after SIGTERM:
$(notices "$edge_notify")"
wait_until 40 bash -c "! kill -0 ${EDGE_PID[DFW]}" || fail "the edge did not exit after SIGTERM"
echo "ok: edge and connector notices:"
notices "$edge_notify"
notices "$conn_notify"
