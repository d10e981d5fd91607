# Shared helpers for integration tests. Source it: `. "$(dirname "$0")/lib/common.sh"`.
# Every process a test starts is recorded by PID and killed on exit; nothing sleeps to
# synchronize: wait_until polls a condition against a deadline.
set -euo pipefail

CFD_BIN=${CFD_BIN:-$PWD/build/cfdtunnel}
TEST_TMP=$(mktemp -d /tmp/cfd-it-XXXXXX)
chmod 0755 "$TEST_TMP"  # nginx's workers (www-data) read origin files from here
STARTED_PIDS=()
EXIT_HOOKS=()

# on_exit CMD: runs CMD (with eval) when the test ends, before its processes are stopped.
on_exit() {
    EXIT_HOOKS+=("$1")
}

cleanup() {
    local status=$? pid hook
    for hook in "${EXIT_HOOKS[@]}"; do
        eval "$hook" || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        # Bounded wait, then force.
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # A sanitizer report from any process (leaks are reported at exit) fails the test.
    if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TEST_TMP"/*.log \
        >/dev/null 2>&1; then
        grep -h -A12 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TEST_TMP"/*.log |
            head -60 >&2
        status=1
    fi
    rm -rf "$TEST_TMP"
    exit "$status"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# start NAME CMD...: runs CMD in the background, output in $TEST_TMP/NAME.log; sets LAST_PID.
start() {
    local name=$1
    shift
    "$@" >"$TEST_TMP/$name.log" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

# wait_until SECONDS CMD...: polls CMD every 50 ms until it succeeds or the deadline passes.
wait_until() {
    local deadline=$(($(date +%s%N) + $1 * 1000000000))
    shift
    until "$@" >/dev/null 2>&1; do
        if (($(date +%s%N) > deadline)); then
            return 1
        fi
        sleep 0.05
    done
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() {
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# rss_kb PID: resident set size in KiB (VmHWM is the peak).
peak_rss_kb() {
    awk '/VmHWM/ {print $2}' "/proc/$1/status"
}

# start_nginx NAME PORT ROOT: a real nginx origin on 127.0.0.1:PORT serving ROOT, in the
# foreground under this test (recorded PID). PUT /uploads/NAME stores the body as
# ROOT/uploads/NAME (WebDAV), so uploads through the tunnel can be checksummed.
start_nginx() {
    local name=$1 port=$2 root=$3
    start_nginx_servers "$name" "port_open $port" <<NGINX
    server {
        listen 127.0.0.1:$port;
        root $root;
        location /uploads/ {
            dav_methods PUT;
            create_full_put_path on;
        }
    }
NGINX
}

# make_pki DIR NAME...: with openssl, a throwaway CA (DIR/ca.pem) and a server certificate
# signed by it (DIR/leaf.pem, DIR/leaf.key) for NAMEs: addresses become iPAddress names, the
# rest dNSName. Nothing else trusts the CA, so an origin using it fails verification unless
# the client is given DIR/ca.pem.
make_pki() {
    local dir=$1
    shift
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=cfdtunnel test origin CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
        >"$dir/openssl.log" 2>&1 || fail "openssl CA: $(cat "$dir/openssl.log")"
    make_leaf "$dir" leaf "$@"
}

# make_leaf DIR NAME [SAN...]: DIR/NAME.pem and DIR/NAME.key, a certificate for the SANs
# (DNS names, or IP addresses) signed by the CA make_pki made in DIR. `leaf` is make_pki's.
make_leaf() {
    local dir=$1 stem=$2 san="" n
    shift 2
    for n in "$@"; do
        if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
    done
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=${1:-$stem}" \
        -keyout "$dir/$stem.key" -out "$dir/$stem.csr" >>"$dir/openssl.log" 2>&1 ||
        fail "openssl CSR: $(cat "$dir/openssl.log")"
    if [[ -n $san ]]; then
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "${san%,}" >"$dir/$stem.ext"
    else
        printf 'extendedKeyUsage=serverAuth\n' >"$dir/$stem.ext"
    fi
    openssl x509 -req -in "$dir/$stem.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/$stem.ext" -out "$dir/$stem.pem" \
        >>"$dir/openssl.log" 2>&1 || fail "openssl leaf: $(cat "$dir/openssl.log")"
    chmod 0644 "$dir"/*.pem "$dir"/*.key
}

# start_nginx_servers NAME READY_CMD: a real nginx whose server blocks are read from stdin
# (listen on TCP, TLS or unix sockets as the test needs); waits until READY_CMD (shell code,
# eval-ed here) succeeds. As root (CI), workers stay root so they can write the test's folders.
start_nginx_servers() {
    local name=$1 ready=$2
    local dir="$TEST_TMP/nginx-$name"
    mkdir -p "$dir/tmp"
    local user_line=""
    [[ $(id -u) -eq 0 ]] && user_line="user root;"
    {
        cat <<NGINX
$user_line
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    client_max_body_size 0;
NGINX
        cat
        echo "}"
    } >"$dir/nginx.conf"
    start "nginx-$name" /usr/sbin/nginx -c "$dir/nginx.conf" -p "$dir"
    wait_until 10 eval "$ready" || fail "nginx $name did not start: $(cat "$dir/error.log")"
}

# unix_socket_open PATH: something accepts connections on the unix socket PATH.
unix_socket_open() {
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$1"
}
