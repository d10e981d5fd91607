# Shared helpers for integration tests. Source it: `. "$(dirname "$0")/lib/common.sh"`.
# Every process a test starts is recorded by PID and killed on exit; nothing sleeps to
# synchronize: wait_until polls a condition against a deadline.
set -euo pipefail

CFD_BIN=${CFD_BIN:-$PWD/build/cfdtunnel}
TEST_TMP=$(mktemp -d /tmp/cfd-it-XXXXXX)
STARTED_PIDS=()

cleanup() {
    local pid
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
    rm -rf "$TEST_TMP"
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

# rss_kb PID: resident set size in KiB (VmHWM is the peak).
peak_rss_kb() {
    awk '/VmHWM/ {print $2}' "/proc/$1/status"
}
