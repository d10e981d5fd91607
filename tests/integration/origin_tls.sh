#!/usr/bin/env bash
# Origins behind ingress rules, with real processes: an nginx serving HTTPS on TCP and on a unix
# socket (certificate from a throwaway CA made with openssl) and plain HTTP on TCP and on a unix
# socket; one edge, one connector with an ingress config, curl through the edge. Each check
# fails when the option it is about is ignored:
#   https:// verified with caPool (by originServerName, and by the URL's address) -> 200
#   no caPool (system pool does not know the CA) -> 502; noTLSVerify -> 200
# (The untrusted-CA check names the origin: for an address literal src/tls does not check the
# chain yet, see tests/unit/connector/origin_tls_test.cc.)
#   originServerName the certificate lacks -> 502, logged with the reason
#   tlsTimeout=1s against a server that never answers -> 502 well before the 10s default
#   unix: and unix+tls: (SNI = httpHostHeader, or the request's host) -> 200
#   httpHostHeader reaches the origin as Host; tcpKeepAlive shows on the origin socket;
#   keepAliveConnections=0 dials per request; keepAliveTimeout closes idle connections.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

PKI="$TEST_TMP/pki"
make_pki "$PKI" origin.test unixtls2.localhost 127.0.0.1

tls_port=$(free_port)
plain_port=$(free_port)
pool_port=$(free_port)
idle_port=$(free_port)
TLS_SOCK="$TEST_TMP/tls.sock"
PLAIN_SOCK="$TEST_TMP/plain.sock"
start_nginx_servers origin "unix_socket_open $TLS_SOCK && unix_socket_open $PLAIN_SOCK && \
    (exec 3<>/dev/tcp/127.0.0.1/$tls_port) && (exec 3<>/dev/tcp/127.0.0.1/$idle_port)" <<NGINX
    server {
        listen 127.0.0.1:$tls_port ssl;
        listen unix:$TLS_SOCK ssl;
        ssl_certificate $PKI/leaf.pem;
        ssl_certificate_key $PKI/leaf.key;
        location / { return 200 "tls host=\$host sni=\$ssl_server_name\n"; }
    }
    server {
        listen 127.0.0.1:$plain_port;
        listen 127.0.0.1:$pool_port;
        listen 127.0.0.1:$idle_port;
        listen unix:$PLAIN_SOCK;
        location / { return 200 "plain host=\$host conn=\$connection\n"; }
    }
NGINX

# A TCP server that accepts (the kernel completes the handshake) and never says a word.
slow_port=$(free_port)
start slow python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(16); time.sleep(600)' \
    "$slow_port"
wait_until 10 port_open "$slow_port" || fail "silent server did not start"

start_edge DFW 127.0.0.1
create_tunnel origins verified.localhost
hosts=(ip system insecure mismatch slow unix unixtls unixtls2 hostheader pool nopool idle)
for h in "${hosts[@]}"; do
    "$CFD_BIN" tunnel route dns origins "$h.localhost" >/dev/null 2>&1 || fail "route dns $h"
done

CFG="$TEST_TMP/connector.ini"
cat >"$CFG" <<INI
[ingress "verified"]
hostname = verified.localhost
service = https://127.0.0.1:$tls_port
caPool = $PKI/ca.pem
originServerName = origin.test
[ingress "ip"]
hostname = ip.localhost
service = https://127.0.0.1:$tls_port
caPool = $PKI/ca.pem
[ingress "system"]
hostname = system.localhost
service = https://127.0.0.1:$tls_port
originServerName = origin.test
[ingress "insecure"]
hostname = insecure.localhost
service = https://127.0.0.1:$tls_port
noTLSVerify = true
[ingress "mismatch"]
hostname = mismatch.localhost
service = https://127.0.0.1:$tls_port
caPool = $PKI/ca.pem
originServerName = wrong.test
[ingress "slow"]
hostname = slow.localhost
service = https://127.0.0.1:$slow_port
caPool = $PKI/ca.pem
tlsTimeout = 1s
[ingress "unix"]
hostname = unix.localhost
service = unix:$PLAIN_SOCK
[ingress "unixtls"]
hostname = unixtls.localhost
service = unix+tls:$TLS_SOCK
caPool = $PKI/ca.pem
httpHostHeader = origin.test
[ingress "unixtls2"]
hostname = unixtls2.localhost
service = unix+tls:$TLS_SOCK
caPool = $PKI/ca.pem
[ingress "hostheader"]
hostname = hostheader.localhost
service = http://127.0.0.1:$plain_port
httpHostHeader = internal.example
tcpKeepAlive = 7s
[ingress "pool"]
hostname = pool.localhost
service = http://127.0.0.1:$pool_port
[ingress "nopool"]
hostname = nopool.localhost
service = http://127.0.0.1:$pool_port
keepAliveConnections = 0
[ingress "idle"]
hostname = idle.localhost
service = http://127.0.0.1:$idle_port
keepAliveTimeout = 1s
[ingress "default"]
service = http_status:404
INI

# One connection, one reactor: one origin pool, so reuse is observable.
start_config_connector connector "$CFG" --ha-connections 1
wait_registered connector 1

# expect HOST CODE [BODY-SUBSTRING]
expect() {
    local host=$1 want=$2 needle=${3:-} code
    code=$(through DFW "$host" / -o "$TEST_TMP/body" -w '%{http_code}') || fail "curl $host"
    [[ $code == "$want" ]] || fail "$host gave $code, not $want: $(cat "$TEST_TMP/body")"
    if [[ -n $needle ]]; then
        grep -qF -- "$needle" "$TEST_TMP/body" || fail "$host: body lacks '$needle': $(cat "$TEST_TMP/body")"
    fi
}

expect verified.localhost 200 "tls host=verified.localhost sni=origin.test"
expect ip.localhost 200 "tls host=ip.localhost sni="
expect system.localhost 502 "unable to reach the origin service"
grep -q 'TLS handshake failed.*serverName=origin.test' "$TEST_TMP/connector.log" ||
    fail "the failed verification was not logged: $(tail -5 "$TEST_TMP/connector.log")"
expect insecure.localhost 200 "tls host=insecure.localhost"
expect mismatch.localhost 502 "unable to reach the origin service"
grep -q 'TLS handshake failed.*serverName=wrong.test' "$TEST_TMP/connector.log" ||
    fail "the name mismatch was not logged: $(tail -5 "$TEST_TMP/connector.log")"

start_s=$(date +%s%N)
expect slow.localhost 502 "unable to reach the origin service"
elapsed_ms=$((($(date +%s%N) - start_s) / 1000000))
((elapsed_ms < 6000)) || fail "tlsTimeout=1s answered after ${elapsed_ms}ms"
grep -q 'TLS handshake timed out.*tlsTimeout=1s' "$TEST_TMP/connector.log" ||
    fail "the handshake timeout was not logged"

expect unix.localhost 200 "plain host=unix.localhost"
expect unixtls.localhost 200 "tls host=origin.test sni=origin.test"
expect unixtls2.localhost 200 "tls host=unixtls2.localhost sni=unixtls2.localhost"
# twice: a unix+tls connection named after one request's host is not pooled for another
expect unixtls2.localhost 200 "sni=unixtls2.localhost"
expect unixtls.localhost 200 "sni=origin.test"

expect hostheader.localhost 200 "plain host=internal.example"
# tcpKeepAlive=7s: the idle pooled connection to that origin carries a keep-alive timer of
# at most 7s (the default would show about 30s).
ss -tnoH state established "( dport = :$plain_port )" >"$TEST_TMP/ss.out"
# (ss prints the time left as e.g. "6.988ms" or "29sec" depending on its version: the number
# is in seconds either way.)
left=$(grep -oE 'timer:\(keepalive,[0-9.]+' "$TEST_TMP/ss.out" | head -1 | cut -d, -f2)
[[ -n $left ]] && awk -v t="$left" 'BEGIN { exit !(t > 0 && t <= 7) }' ||
    fail "no 7s keep-alive timer on the origin socket: $(cat "$TEST_TMP/ss.out")"

conn_of() { through DFW "$1" / | sed -n 's/.*conn=\([0-9]*\).*/\1/p'; }
a=$(conn_of pool.localhost)
b=$(conn_of pool.localhost)
[[ -n $a && $a == "$b" ]] || fail "default keepAliveConnections did not reuse: $a then $b"
a=$(conn_of nopool.localhost)
b=$(conn_of nopool.localhost)
[[ -n $a && $a != "$b" ]] || fail "keepAliveConnections=0 reused a connection: $a then $b"

expect idle.localhost 200 "plain host=idle.localhost"
established_to() { [[ -n $(ss -tnH state established "( dport = :$1 )") ]]; }
established_to "$idle_port" || fail "no pooled connection to the idle origin right after a request"
wait_until 5 bash -c "[[ -z \$(ss -tnH state established '( dport = :$idle_port )') ]]" ||
    fail "keepAliveTimeout=1s: the idle connection is still open"

echo "origin_tls: ok"
