#!/usr/bin/env bash
# originRequest options that change the request an HTTP origin sees, against a real origin
# (Python's http.server, reporting the framing it was sent):
#   disableChunkedEncoding: a chunked upload arrives with a Content-Length and all its bytes;
#     without it the same upload arrives chunked;
#   httpHostHeader: Host is replaced, and the client's host arrives as X-Forwarded-Host;
#   and the edge's Cf-Connecting-IP, X-Forwarded-For and X-Forwarded-Proto.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

origin_port=$(free_port)
start origin python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            # Read it whole (a WSGI server would not): an early answer would race the upload.
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                body += self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    break
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
        out = ("te=%s cl=%s read=%d host=%s fwd=%s ip=%s xff=%s proto=%s\n" % (
            self.headers.get("Transfer-Encoding"), self.headers.get("Content-Length"),
            len(body), self.headers.get("Host"), self.headers.get("X-Forwarded-Host"),
            self.headers.get("Cf-Connecting-IP"), self.headers.get("X-Forwarded-For"),
            self.headers.get("X-Forwarded-Proto"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)
        self.close_connection = True
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$origin_port"
wait_until 10 port_open "$origin_port" || fail "origin did not start"

start_edge DFW 127.0.0.1
create_tunnel opts nochunk.localhost
"$CFD_BIN" tunnel route dns opts chunked.localhost >/dev/null 2>&1 || fail "route dns"
"$CFD_BIN" tunnel route dns opts renamed.localhost >/dev/null 2>&1 || fail "route dns"
CFG="$TEST_TMP/connector.ini"
cat >"$CFG" <<INI
[ingress "nochunk"]
hostname = nochunk.localhost
service = http://127.0.0.1:$origin_port
disableChunkedEncoding = true
[ingress "renamed"]
hostname = renamed.localhost
service = http://127.0.0.1:$origin_port
httpHostHeader = internal.example
[ingress "default"]
service = http://127.0.0.1:$origin_port
INI
start_config_connector connector "$CFG" --ha-connections 1
wait_registered connector 1

head -c 200000 /dev/urandom >"$TEST_TMP/up.bin"
upload() {  # HOST: a chunked upload (curl reads stdin: the length is unknown)
    through DFW "$1" / -X POST -H 'Transfer-Encoding: chunked' --data-binary @- <"$TEST_TMP/up.bin"
}
got=$(upload nochunk.localhost) || fail "upload with disableChunkedEncoding"
[[ $got == "te=None cl=200000 read=200000 "* ]] || fail "disableChunkedEncoding: origin saw: $got"
got=$(upload chunked.localhost) || fail "upload without the option"
[[ $got == "te=chunked cl=None read=200000 "* ]] || fail "without the option the origin saw: $got"

got=$(through DFW renamed.localhost / -X POST -d x) || fail "httpHostHeader request"
[[ $got == *"host=internal.example fwd=renamed.localhost "* ]] || fail "httpHostHeader: origin saw: $got"
# The client's address, as the edge saw it, whatever the client claims.
got=$(through DFW renamed.localhost / -X POST -d x -H 'Cf-Connecting-IP: 6.6.6.6' \
    -H 'X-Forwarded-For: 10.1.2.3') || fail "client address request"
[[ $got == *" ip=127.0.0.1 xff=10.1.2.3, 127.0.0.1 proto=http" ]] || fail "client address: origin saw: $got"
