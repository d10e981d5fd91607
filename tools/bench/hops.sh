# The benchmarks' peer and load helpers; source after tests/integration/lib/common.sh.
#
# The peer for a tunnel is two nginx reverse proxies in series with TLS between them:
#   client -> nginx A -> TLS -> nginx B -> origin
# hop_conf NAME LISTEN_DIRECTIVES UPSTREAM SCHEME starts one hop (one worker process, as our
# edge and connector each get one worker in the benchmarks); B's certificate is made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=hop-b \
    -addext "subjectAltName=DNS:localhost" \
    -keyout "$TEST_TMP/b.key" -out "$TEST_TMP/b.pem" >/dev/null 2>&1
hop_conf() {
    local dir="$TEST_TMP/nginx-$1"
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<NGINX
$([[ $(id -u) -eq 0 ]] && echo "user root;")
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;  # h2load does not reconnect after GOAWAY
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    upstream up { server $3; keepalive 64; }
    server {
        $2
        location / {
            proxy_pass $4://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_session_reuse on;
            proxy_ssl_protocols TLSv1.3;
        }
    }
}
NGINX
    start "nginx-$1" /usr/sbin/nginx -c "$dir/nginx.conf" -p "$dir"
}

# start_bench_origin: an nginx origin on $origin_port serving small.txt (100 bytes) and big.bin
# (1 MiB).
start_bench_origin() {
    local www="$TEST_TMP/www"
    mkdir -p "$www"
    head -c 100 /dev/urandom | base64 -w0 | head -c 100 >"$www/small.txt"
    head -c $((1 << 20)) /dev/urandom >"$www/big.bin"
    origin_port=$(free_port)
    start_nginx origin "$origin_port" "$www"
}

# rate URL HOST CONNS: wrk's requests/s, transfer MB/s and non-2xx count.
rate() {
    local out
    out=$(wrk -t 2 -c "$3" -d "${SECS}s" -H "Host: $2" "$1" 2>&1)
    local rps mbs non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    mbs=$(awk '/Transfer\/sec/ { v = $2; if (v ~ /GB/) m = 1024; else if (v ~ /MB/) m = 1; else if (v ~ /KB/) m = 1 / 1024; else m = 1 / 1048576; sub(/[A-Za-z]+$/, "", v); printf "%.1f", v * m }' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "${rps:-0} ${mbs:-0} ${non2xx:-0}"
}

# h2rate URL AUTHORITY CONNS STREAMS: h2load's requests/s, and the requests that failed or were
# not answered 2xx, over HTTP/2.
h2rate() {
    local out
    out=$(h2load -t 2 -c "$3" -m "$4" -D "$SECS" --warm-up-time=1 -H ":authority: $2" "$1" 2>&1)
    local rps bad
    rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) { v = $(i - 1); gsub(/,/, "", v); print v } }' <<<"$out")
    bad=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^failed/) f = $i }
        /^status codes:/ { n = $5 + $7 + $9; gsub(/,/, "", n) } END { print f + n }' <<<"$out")
    echo "${rps:-0} ${bad:-0}"
}
