# SSH through a tunnel, shared by the `cfdtunnel access` tests: a real sshd on a free loopback
# port, the client options to log in to it, the TLS WebSocket stand-in (lib/ws_standin.py) and
# an edge + connector with an ssh:// rule. Source after common.sh and tunnel.sh.

SSHD=/usr/sbin/sshd
if [[ ! -x $SSHD ]] || ! command -v ssh >/dev/null || ! command -v scp >/dev/null ||
    ! command -v ssh-keygen >/dev/null; then
    echo "SKIP: needs openssh-server and openssh-client (make deps installs them)"
    exit 77
fi

SSH_DIR="$TEST_TMP/ssh"
SSH_USER=$(id -un)
SSH_OPTS=()

# start_sshd: sshd on a free loopback port (SSHD_PORT), everything in the test's folder, and
# SSH_OPTS to log in with a fresh key and no host-key checks.
start_sshd() {
    mkdir -p "$SSH_DIR"
    chmod 0700 "$SSH_DIR"
    ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/host_key" || fail "ssh-keygen host key"
    ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/client_key" || fail "ssh-keygen client key"
    cp "$SSH_DIR/client_key.pub" "$SSH_DIR/authorized_keys"
    chmod 0600 "$SSH_DIR/authorized_keys"
    # sshd refuses to start without its privilege-separation directory.
    [[ -d /run/sshd ]] || mkdir -p /run/sshd
    SSHD_PORT=$(free_port)
    cat >"$SSH_DIR/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SSHD_PORT
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
    wait_until 10 port_open "$SSHD_PORT" || fail "sshd did not start: $(cat "$TEST_TMP/sshd.log")"
    SSH_OPTS=(-F /dev/null -i "$SSH_DIR/client_key" -o IdentitiesOnly=yes -o BatchMode=yes
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
        -o ConnectTimeout=30 -o ServerAliveInterval=5 -o ServerAliveCountMax=6)
}

# check_rss PID WHAT: the access client's peak RSS stays small (its queues are bounded: a few
# MiB per connection). Not under ASan, whose quarantine keeps freed memory.
check_rss() {
    check_rss_kb "$(peak_rss_kb "$1")" "$2"
}

# check_rss_kb KIB WHAT [LIMIT_MIB]: the same for a peak RSS measured otherwise (limit 64 MiB).
check_rss_kb() {
    echo "$2: peak RSS $1 KiB"
    [[ ${CFD_SANITIZED:-0} == 1 ]] || (($1 < ${3:-64} * 1024)) ||
        fail "$2: peak RSS $1 KiB, buffers are not bounded"
}

# start_ws_standin HOSTNAME [TARGET_PORT [NAME]]: lib/ws_standin.py over TLS in front of
# 127.0.0.1:TARGET_PORT (default sshd), with a certificate for HOSTNAME from a throwaway CA
# ($TEST_TMP/pki/ca.pem, made once); sets STANDIN_PORT.
start_ws_standin() {
    [[ -s $TEST_TMP/pki/ca.pem ]] || make_pki "$TEST_TMP/pki" "$1"
    STANDIN_PORT=$(free_port)
    start "${3:-standin}" python3 "$(dirname "${BASH_SOURCE[0]}")/ws_standin.py" \
        "$STANDIN_PORT" "${2:-$SSHD_PORT}" "$TEST_TMP/pki/leaf.pem" "$TEST_TMP/pki/leaf.key" "$1"
    wait_until 10 port_open "$STANDIN_PORT" ||
        fail "stand-in did not start: $(cat "$TEST_TMP/${3:-standin}.log")"
}

# start_ssh_tunnel HOSTNAME OTHER: edge DFW, a tunnel, and a connector whose rule for HOSTNAME is
# ssh:// to sshd; OTHER is routed to the tunnel too, but its rule is http_status:404 (not a TCP
# service). Sets CONNECTOR_PID.
start_ssh_tunnel() {
    start_edge DFW 127.0.0.1
    create_tunnel sshtun "$1"
    "$CFD_BIN" tunnel route dns sshtun "$2" >/dev/null 2>&1 || fail "route dns $2"
    cat >"$TEST_TMP/connector.ini" <<INI
[ingress "ssh"]
hostname = $1
service = ssh://127.0.0.1:$SSHD_PORT
[ingress "default"]
service = http_status:404
INI
    start connector "$CFD_BIN" tunnel run --credentials-file "$CRED" \
        --config "$TEST_TMP/connector.ini" --cacert "$STORE/ca.pem" \
        --edge "127.0.0.1:${EDGE_TUNNEL[DFW]}" --ha-connections 1 --metrics "127.0.0.1:$(free_port)"
    CONNECTOR_PID=$LAST_PID
    wait_registered connector 1
}
