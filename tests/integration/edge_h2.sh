#!/usr/bin/env bash
# HTTP/2 to public clients: ALPN picks h2 over HTTPS (http/1.1 when the client asks for it);
# h2load runs 100 concurrent streams per connection, every one a 200 with the right length;
# curl multiplexes 100 different files on one connection and each arrives intact; request
# bodies go up intact; the plain listener takes h2c with prior knowledge; an unknown host is
# a 404 on its own stream; a draining edge sends GOAWAY and lets the stream in flight finish.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

PKI="$TEST_TMP/pki"
make_pki "$PKI" app.example.test echo.example.test nope.example.test

# Files of many sizes, served by nginx.
WWW="$TEST_TMP/www"
mkdir -p "$WWW"
for i in $(seq 1 100); do
    head -c $((i * 997 + (i % 7) * 65536)) /dev/urandom >"$WWW/f$i.bin"
done
head -c 100 /dev/urandom | base64 -w0 >"$WWW/small.txt"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$WWW"

# An origin that answers a POST with the SHA-256 of its body, and /slow after 3 seconds.
echo_port=$(free_port)
start echo python3 -c '
import hashlib, http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        while n > 0:
            b = self.rfile.read(min(n, 65536))
            h.update(b)
            n -= len(b)
        self.reply(h.hexdigest().encode())
    def do_GET(self):
        time.sleep(3)
        self.reply(b"slow done")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$echo_port"
wait_until 10 port_open "$echo_port" || fail "echo origin did not start"

HTTPS=$(free_port)
start_edge DFW 127.0.0.1 --https-listen "127.0.0.1:$HTTPS" --tls-cert "$PKI/leaf.pem" \
    --tls-key "$PKI/leaf.key" --grace-period 20s
create_tunnel web app.example.test
"$CFD_BIN" tunnel route dns web echo.example.test >/dev/null 2>&1 || fail "route dns"
CFG="$TEST_TMP/connector.ini"
cat >"$CFG" <<INI
[ingress "echo"]
hostname = echo.example.test
service = http://127.0.0.1:$echo_port
[ingress "default"]
service = http://127.0.0.1:$origin_port
INI
start_config_connector connector "$CFG"
wait_registered connector 4

base="https://app.example.test:$HTTPS"
curl_h() {  # curl to the HTTPS listener, the names resolved to loopback, verified by the CA
    curl -sS --max-time 60 --cacert "$PKI/ca.pem" --resolve "app.example.test:$HTTPS:127.0.0.1" \
        --resolve "echo.example.test:$HTTPS:127.0.0.1" --resolve "nope.example.test:$HTTPS:127.0.0.1" "$@"
}

# ALPN: h2 when offered, http/1.1 when that is all the client offers.
[[ $(curl_h --http2 -o /dev/null -w '%{http_version}' "$base/small.txt") == 2 ]] || fail "ALPN did not pick h2"
[[ $(curl_h --http1.1 -o /dev/null -w '%{http_version}' "$base/small.txt") == 1.1 ]] || fail "http/1.1 by ALPN failed"

# h2load: 2 connections x 100 concurrent streams, 4000 requests, all 200 with the right size.
size=$(stat -c %s "$WWW/f5.bin")
out=$(h2load -n 4000 -c 2 -m 100 -t 1 "https://127.0.0.1:$HTTPS/f5.bin" \
    -H ':authority: app.example.test' 2>&1) || fail "h2load failed: $out"
grep -q "requests: 4000 total, 4000 started, 4000 done, 4000 succeeded, 0 failed" <<<"$out" ||
    fail "h2load: not every request succeeded: $(grep -E 'requests:|status codes' <<<"$out")"
grep -q "status codes: 4000 2xx" <<<"$out" || fail "h2load: not all 2xx: $(grep 'status codes' <<<"$out")"
grep -q "Application protocol: h2" <<<"$out" || fail "h2load did not speak h2"
data=$(awk '/^traffic:/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "data") { v = $i; gsub(/[()]/, "", v); print v } }' <<<"$out")
[[ $data == $((4000 * size)) ]] || fail "h2load received $data data bytes, want $((4000 * size))"

# curl: 100 different files multiplexed on one connection, each checked.
DL="$TEST_TMP/dl"
mkdir -p "$DL"
args=()
for i in $(seq 1 100); do
    args+=(-o "$DL/f$i.bin" "$base/f$i.bin")
done
curl_h --http2 --parallel --parallel-max 100 --no-progress-meter -w '%{http_version} %{num_connects}\n' \
    "${args[@]}" >"$TEST_TMP/multi.out" || fail "parallel download failed"
for i in $(seq 1 100); do
    cmp -s "$WWW/f$i.bin" "$DL/f$i.bin" || fail "f$i.bin arrived damaged"
done
[[ $(grep -c '^2 ' "$TEST_TMP/multi.out") == 100 ]] || fail "not all 100 over HTTP/2"
[[ $(awk '{ s += $2 } END { print s }' "$TEST_TMP/multi.out") -le 2 ]] ||
    fail "curl did not multiplex: $(awk '{ s += $2 } END { print s }' "$TEST_TMP/multi.out") connections"

# A 20 MiB request body over HTTP/2, intact.
head -c $((20 << 20)) /dev/urandom >"$TEST_TMP/up.bin"
want=$(sha256sum "$TEST_TMP/up.bin" | cut -d' ' -f1)
got=$(curl_h --http2 --data-binary @"$TEST_TMP/up.bin" "https://echo.example.test:$HTTPS/up") || fail "upload failed"
[[ $got == "$want" ]] || fail "upload arrived as $got, want $want"

# Unknown host: 404 on that stream.
[[ $(curl_h --http2 -o /dev/null -w '%{http_code}' "https://nope.example.test:$HTTPS/") == 404 ]] ||
    fail "an unknown host over h2 was not a 404"

# h2c with prior knowledge on the plain listener.
v=$(curl -sS --max-time 30 --http2-prior-knowledge -H 'Host: app.example.test' -o "$TEST_TMP/h2c.bin" \
    -w '%{http_version}' "http://127.0.0.1:${EDGE_HTTP[DFW]}/f7.bin") || fail "h2c request failed"
[[ $v == 2 ]] || fail "h2c answered over HTTP/$v"
cmp -s "$WWW/f7.bin" "$TEST_TMP/h2c.bin" || fail "h2c body damaged"
[[ $(curl -sS --max-time 30 -H 'Host: app.example.test' -o /dev/null -w '%{http_version}' \
    "http://127.0.0.1:${EDGE_HTTP[DFW]}/small.txt") == 1.1 ]] || fail "HTTP/1.1 in clear broke"

# Drain: a slow request in flight on an h2 connection finishes after SIGTERM; the client hears
# GOAWAY.
start nghttp nghttp -v --timeout=30 "https://127.0.0.1:$HTTPS/slow" -H ':authority: echo.example.test'
NGHTTP=$LAST_PID
wait_until 10 grep -q "send HEADERS frame" "$TEST_TMP/nghttp.log" || fail "nghttp did not send"
kill -TERM "${EDGE_PID[DFW]}"
wait "$NGHTTP" || fail "nghttp failed across the drain: $(tail -5 "$TEST_TMP/nghttp.log")"
grep -q "recv GOAWAY frame" "$TEST_TMP/nghttp.log" || fail "no GOAWAY on drain"
grep -q "slow done" "$TEST_TMP/nghttp.log" || fail "the request in flight did not finish"
grep -q ":status: 200" "$TEST_TMP/nghttp.log" || fail "the request in flight was not a 200"

echo "ok: h2 by ALPN, 100 streams per connection, multiplexed bodies intact, h2c, GOAWAY on drain"
