#!/usr/bin/env bash
# The edge's HTTPS listener: the certificate is chosen by SNI among --tls-cert/--tls-key pairs
# and [tls "NAME"] sections (exact names, *. wildcards, the first pair as the default); curl
# verifies each against the CA; TLS 1.2 and 1.3; session resumption; origins see
# X-Forwarded-Proto: https; SIGHUP swaps the certificates while a connection made before keeps
# working; a certificate that fails to load leaves the old ones; plain HTTP sent to the HTTPS
# port gets a 400; configuration errors name the file, the line and the key.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

PKI="$TEST_TMP/pki"
make_pki "$PKI" a.example.test
make_leaf "$PKI" b b.example.test '*.b.example.test'
make_leaf "$PKI" a2 a.example.test
make_leaf "$PKI" noname

# An origin that answers with the headers it saw.
origin_port=$(free_port)
start origin python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$origin_port"
wait_until 10 port_open "$origin_port" || fail "origin did not start"

# Configuration errors first: each names the file, the line and the key, and exits 2.
BAD="$TEST_TMP/bad.ini"
printf '[edge]\nlocation = X\n[tls "b"]\ncert = %s\nkye = %s\n' "$PKI/b.pem" "$PKI/b.key" >"$BAD"
rc=0
"$CFD_BIN" edge --config "$BAD" >"$TEST_TMP/bad.out" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "a misspelt [tls] key did not exit 2"
grep -q "bad.ini:5: key 'kye': unknown key" "$TEST_TMP/bad.out" || fail "no file:line:key: $(cat "$TEST_TMP/bad.out")"
rc=0
"$CFD_BIN" edge --config /dev/null --store "sqlite:$TEST_TMP/bad/edge.db" \
    --tls-cert "$PKI/noname.pem" --tls-key "$PKI/noname.key" --https-listen "127.0.0.1:$(free_port)" \
    --http-listen "127.0.0.1:$(free_port)" --tunnel-listen "127.0.0.1:$(free_port)" \
    --api-listen "127.0.0.1:$(free_port)" --metrics "" >"$TEST_TMP/noname.out" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "a certificate without DNS names did not exit 2"
grep -q "tls-cert #1.*no DNS names" "$TEST_TMP/noname.out" || fail "no cause: $(cat "$TEST_TMP/noname.out")"
rc=0
"$CFD_BIN" edge --config /dev/null --tls-cert "$PKI/b.pem" >"$TEST_TMP/pair.out" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "a --tls-cert without --tls-key did not exit 2"

# The edge: a.example.test from the flags (the default), *.b.example.test from the INI file.
CONF="$TEST_TMP/edge.ini"
cp "$PKI/leaf.pem" "$PKI/a-live.pem"
cp "$PKI/leaf.key" "$PKI/a-live.key"
printf '[tls "b"]\ncert = %s\nkey = %s\n' "$PKI/b.pem" "$PKI/b.key" >"$CONF"
HTTPS=$(free_port)
start_edge DFW 127.0.0.1 --config "$CONF" --https-listen "127.0.0.1:$HTTPS" \
    --tls-cert "$PKI/a-live.pem" --tls-key "$PKI/a-live.key" --https-redirect a.example.test
wait_until 10 port_open "$HTTPS" || fail "no HTTPS listener"
grep -q "Public HTTPS listener ready" "$TEST_TMP/edge-DFW.log" || fail "HTTPS listener not logged"

create_tunnel web a.example.test
"$CFD_BIN" tunnel route dns web x.b.example.test >/dev/null 2>&1 || fail "route dns"
start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 4

# https NAME PATH [curl args]: a request to the HTTPS listener for NAME, verified by the CA.
https() {
    local name=$1 path=$2
    shift 2
    curl -sS --max-time 30 --cacert "$PKI/ca.pem" --resolve "$name:$HTTPS:127.0.0.1" "$@" \
        "https://$name:$HTTPS$path"
}
# served_fp NAME: the SHA-256 fingerprint of the certificate the edge shows for SNI NAME.
served_fp() {
    openssl s_client -connect "127.0.0.1:$HTTPS" -servername "$1" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256
}
fp() { openssl x509 -noout -fingerprint -sha256 -in "$1"; }

out=$(https a.example.test /hello) || fail "HTTPS request for a.example.test failed"
grep -qx "x-forwarded-proto: https" <<<"$out" || fail "origin did not see X-Forwarded-Proto https: $out"
grep -qx "cf-connecting-ip: 127.0.0.1" <<<"$out" || fail "origin did not see Cf-Connecting-IP: $out"
https x.b.example.test / >/dev/null || fail "HTTPS for the wildcard name failed"
[[ $(served_fp a.example.test) == "$(fp "$PKI/leaf.pem")" ]] || fail "a.example.test got the wrong certificate"
[[ $(served_fp x.b.example.test) == "$(fp "$PKI/b.pem")" ]] || fail "x.b.example.test got the wrong certificate"
[[ $(served_fp b.example.test) == "$(fp "$PKI/b.pem")" ]] || fail "b.example.test got the wrong certificate"
# Unknown names get the default certificate, which a verifying client refuses.
[[ $(served_fp unknown.test) == "$(fp "$PKI/leaf.pem")" ]] || fail "unknown name did not get the default"
https unknown.test / -o /dev/null 2>/dev/null && fail "curl accepted the default certificate for another name"

# Both TLS versions; the 1.2 one resumes a session by its ticket.
https a.example.test / --tlsv1.3 -o /dev/null || fail "TLS 1.3 failed"
https a.example.test / --tls-max 1.2 -o /dev/null || fail "TLS 1.2 failed"
SESS="$TEST_TMP/sess"
openssl s_client -connect "127.0.0.1:$HTTPS" -servername a.example.test -tls1_2 \
    -sess_out "$SESS" </dev/null >/dev/null 2>&1 || fail "s_client (first) failed"
openssl s_client -connect "127.0.0.1:$HTTPS" -servername a.example.test -tls1_2 \
    -sess_in "$SESS" </dev/null 2>/dev/null | grep -q "^Reused" || fail "the TLS 1.2 session was not resumed"
python3 - "$HTTPS" "$PKI/ca.pem" <<'PY' || fail "the TLS 1.3 session was not resumed"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
def request(session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                        server_hostname="a.example.test", session=session)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n")
    while s.recv(65536):  # reading also takes the ticket, which TLS 1.3 sends after the handshake
        pass
    return s
first = request()
second = request(first.session)
assert second.version() == "TLSv1.3", second.version()
assert second.session_reused, "not resumed"
PY

# --https-redirect: a.example.test in clear is redirected (301 for GET, 308 for POST, path and
# query kept, the HTTPS port named); x.b.example.test is not.
hdr=$(through DFW a.example.test '/p/q?x=1' -o /dev/null -D - -w '%{http_code}')
grep -q "^301" <<<"$(tail -1 <<<"$hdr")" || fail "GET in clear was not redirected: $hdr"
grep -qi "^location: https://a.example.test:$HTTPS/p/q?x=1" <<<"$hdr" || fail "bad Location: $hdr"
[[ $(through DFW a.example.test /form -d x=1 -o /dev/null -w '%{http_code}') == 308 ]] ||
    fail "POST in clear was not a 308"
[[ $(through DFW x.b.example.test / -o /dev/null -w '%{http_code}') == 200 ]] ||
    fail "a host without redirect was not served in clear"
out=$(curl -sS --max-time 30 -L --cacert "$PKI/ca.pem" --resolve "a.example.test:$HTTPS:127.0.0.1" \
    --resolve "a.example.test:${EDGE_HTTP[DFW]}:127.0.0.1" "http://a.example.test:${EDGE_HTTP[DFW]}/followed") ||
    fail "curl could not follow the redirect"
grep -qx "x-forwarded-proto: https" <<<"$out" || fail "the redirect did not end over HTTPS: $out"

# Plain HTTP sent to the HTTPS port: a readable 400.
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTPS/") || true
[[ $code == 400 ]] || fail "plain HTTP to the HTTPS port got $code, not 400"

# SIGHUP: a connection made before the reload keeps working; new handshakes get the new
# certificate; a broken certificate leaves the old ones in place.
python3 - "$HTTPS" "$PKI" "${EDGE_PID[DFW]}" "$TEST_TMP/edge-DFW.log" <<'PY' || fail "reload across a live connection failed"
import os, shutil, signal, socket, ssl, subprocess, sys, time
port, pki, pid, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=pki + "/ca.pem")
def fingerprint(path):
    return subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", path],
                          capture_output=True, text=True, check=True).stdout.strip()
def served():
    out = subprocess.run("openssl s_client -connect 127.0.0.1:%d -servername a.example.test "
                         "</dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256" % port,
                         shell=True, capture_output=True, text=True).stdout.strip()
    return out
def wait_for(cond, what, secs=15):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    sys.exit("timed out waiting for " + what)
# SNI a.example.test, to a loopback address.
raw = socket.create_connection(("127.0.0.1", port), timeout=30)
tls = ctx.wrap_socket(raw, server_hostname="a.example.test")
def get(path):
    tls.sendall(("GET %s HTTP/1.1\r\nHost: a.example.test\r\n\r\n" % path).encode())
    f = tls.makefile("rb")
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = f.read(length)
    return status, body
s, _ = get("/before")
assert b" 200 " in s, s
old = fingerprint(pki + "/leaf.pem")
new = fingerprint(pki + "/a2.pem")
assert served() == old
shutil.copy(pki + "/a2.pem", pki + "/a-live.pem")
shutil.copy(pki + "/a2.key", pki + "/a-live.key")
os.kill(pid, signal.SIGHUP)
wait_for(lambda: served() == new, "the new certificate")
s, _ = get("/after")
assert b" 200 " in s, "the connection made before the reload broke: %r" % s
# A broken key: the reload fails, logged; the served certificate stays the new one.
with open(pki + "/a-live.key", "w") as f:
    f.write("not a key\n")
os.kill(pid, signal.SIGHUP)
wait_for(lambda: "Cannot reload the HTTPS certificates" in open(log).read(), "the reload error")
assert served() == new, "a failed reload changed the certificate"
tls.close()
PY
https a.example.test /still -o /dev/null || fail "HTTPS after the reloads failed"
grep -q "tls-cert #1.*a-live" "$TEST_TMP/edge-DFW.log" || fail "the reload error does not name the pair"

echo "ok: SNI certificates, TLS 1.2/1.3, resumption, reload, errors"
