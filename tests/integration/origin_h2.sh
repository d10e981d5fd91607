#!/usr/bin/env bash
# http2Origin against a real nginx (its $server_protocol comes back in X-Proto), through a real
# edge and connector. Each check fails when the option is ignored or broken:
#   https:// with http2Origin (nginx `listen ... ssl http2`, ALPN h2)    -> HTTP/2.0
#   the same origin without the option                                -> HTTP/1.1
#   http:// with http2Origin (nginx `listen ... http2`: prior knowledge) -> HTTP/2.0 (an
#     HTTP/1.1 request there fails, so a connector ignoring the option gets a 502)
#   an https:// origin without h2 in ALPN -> HTTP/1.1 on that connection, one warning
#   50 concurrent requests to the h2 origin: all succeed with their own body, on few origin
#     connections ($connection), not one each
#   a 20 MiB download and a 20 MiB upload (WebDAV PUT) over HTTP/2, checksums intact.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

PKI="$TEST_TMP/pki"
make_pki "$PKI" origin.test
ROOT="$TEST_TMP/www"
mkdir -p "$ROOT/uploads"
head -c $((20 << 20)) /dev/urandom >"$ROOT/big.bin"
head -c $((20 << 20)) /dev/urandom >"$TEST_TMP/up.bin"

h2_port=$(free_port)
h2c_port=$(free_port)
h1_port=$(free_port)
start_nginx_servers origin "port_open $h2_port && port_open $h2c_port && port_open $h1_port" <<NGINX
    server {
        listen 127.0.0.1:$h2_port ssl http2;
        ssl_certificate $PKI/leaf.pem;
        ssl_certificate_key $PKI/leaf.key;
        root $ROOT;
        add_header X-Proto \$server_protocol always;
        location /echo/ { return 200 "uri=\$uri conn=\$connection\n"; }
        location /uploads/ {
            dav_methods PUT;
            create_full_put_path on;
        }
    }
    server {
        listen 127.0.0.1:$h2c_port http2;
        add_header X-Proto \$server_protocol always;
        location / { return 200 "h2c uri=\$uri\n"; }
    }
    server {
        listen 127.0.0.1:$h1_port ssl;
        ssl_certificate $PKI/leaf.pem;
        ssl_certificate_key $PKI/leaf.key;
        add_header X-Proto \$server_protocol always;
        location / { return 200 "h1 uri=\$uri\n"; }
    }
NGINX

start_edge DFW 127.0.0.1
create_tunnel h2 h2tls.localhost
for h in h1tls h2c h1only; do
    "$CFD_BIN" tunnel route dns h2 "$h.localhost" >/dev/null 2>&1 || fail "route dns $h"
done
CFG="$TEST_TMP/connector.ini"
cat >"$CFG" <<INI
[originRequest]
caPool = $PKI/ca.pem
originServerName = origin.test
[ingress "h2tls"]
hostname = h2tls.localhost
service = https://127.0.0.1:$h2_port
http2Origin = true
[ingress "h1tls"]
hostname = h1tls.localhost
service = https://127.0.0.1:$h2_port
[ingress "h2c"]
hostname = h2c.localhost
service = http://127.0.0.1:$h2c_port
http2Origin = true
[ingress "h1only"]
hostname = h1only.localhost
service = https://127.0.0.1:$h1_port
http2Origin = true
[ingress "default"]
service = http_status:404
INI
start_config_connector connector "$CFG" --ha-connections 1 --workers 1
wait_registered connector 1
grep -q 'http2Origin is not supported' "$TEST_TMP/connector.log" &&
    fail "the old 'not supported' warning is still logged"

proto() {  # HOST PATH: "STATUS X-Proto" as the client sees them
    through DFW "$1" "$2" -o /dev/null -D - | tr -d '\r' |
        awk 'NR == 1 { s = $2 } tolower($1) == "x-proto:" { p = $2 } END { print s, p }'
}
got=$(proto h2tls.localhost /echo/a) || fail "h2 over TLS request"
[[ $got == "200 HTTP/2.0" ]] || fail "http2Origin over https: got '$got'"
got=$(proto h1tls.localhost /echo/a) || fail "TLS request without the option"
[[ $got == "200 HTTP/1.1" ]] || fail "without http2Origin: got '$got'"
got=$(proto h2c.localhost /x) || fail "h2c request"
[[ $got == "200 HTTP/2.0" ]] || fail "http2Origin over http (h2c): got '$got'"
got=$(through DFW h2c.localhost /y) || fail "h2c body"
[[ $got == "h2c uri=/y" ]] || fail "h2c body: $got"
got=$(proto h1only.localhost /z) || fail "fallback request"
[[ $got == "200 HTTP/1.1" ]] || fail "an origin without h2 in ALPN: got '$got'"
got=$(proto h1only.localhost /z2) || fail "second fallback request"
[[ $got == "200 HTTP/1.1" ]] || fail "an origin without h2 in ALPN (again): got '$got'"
n=$(grep -c 'did not select h2' "$TEST_TMP/connector.log")
[[ $n == 1 ]] || fail "the ALPN fall-back should be logged once, was logged $n times"

# 50 at once: every one gets its own body, over a handful of origin connections.
pids=()
for i in $(seq 1 50); do
    through DFW h2tls.localhost "/echo/$i" >"$TEST_TMP/c.$i" 2>"$TEST_TMP/c.$i.err" &
    pids+=($!)
done
wait "${pids[@]}"  # these curls only: the test's servers are children too
conns=()
for i in $(seq 1 50); do
    body=$(cat "$TEST_TMP/c.$i")
    [[ $body == "uri=/echo/$i conn="* ]] || fail "concurrent request $i got '$body' $(cat "$TEST_TMP/c.$i.err")"
    conns+=("${body##*conn=}")
done
distinct=$(printf '%s\n' "${conns[@]}" | sort -u | wc -l)
((distinct <= 3)) || fail "50 concurrent requests used $distinct origin connections: not multiplexed"

# 20 MiB each way over HTTP/2.
want=$(sha256sum <"$ROOT/big.bin")
got=$(through DFW h2tls.localhost /big.bin | sha256sum) || fail "download"
[[ $got == "$want" ]] || fail "20 MiB download corrupted"
code=$(through DFW h2tls.localhost /uploads/up.bin -T "$TEST_TMP/up.bin" -o /dev/null \
    -w '%{http_code}') || fail "upload"
[[ $code == 201 || $code == 204 ]] || fail "upload answered $code"
[[ $(sha256sum <"$ROOT/uploads/up.bin") == "$(sha256sum <"$TEST_TMP/up.bin")" ]] ||
    fail "20 MiB upload corrupted"
echo "origin_h2: ok"
