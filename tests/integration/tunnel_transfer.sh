#!/usr/bin/env bash
# A 100 MiB download and a 100 MiB upload through edge + connector arrive intact (checksums),
# and neither process's memory grows with the size of what it carried.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
head -c $((100 << 20)) /dev/urandom >"$TEST_TMP/www/big.bin"
want=$(sha256sum <"$TEST_TMP/www/big.bin" | cut -d' ' -f1)
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1
create_tunnel big big.localhost
start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 2
edge_pid=${EDGE_PID[DFW]}

got=$(through DFW big.localhost /big.bin | sha256sum | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "download differs: $got vs $want"

code=$(through DFW big.localhost /uploads/up.bin -T "$TEST_TMP/www/big.bin" -o /dev/null -w '%{http_code}')
[[ $code == 201 || $code == 204 ]] || fail "upload answered $code"
got=$(sha256sum <"$TEST_TMP/www/uploads/up.bin" | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "upload differs"

# A slow reader: 20 MiB at 2 MiB/s while the origin could send at once; memory stays bounded.
got=$(through DFW big.localhost /big.bin --limit-rate 4M -r 0-$(((20 << 20) - 1)) | wc -c)
[[ $got == $((20 << 20)) ]] || fail "ranged slow download got $got bytes"

edge_kb=$(peak_rss_kb "$edge_pid")
conn_kb=$(peak_rss_kb "$CONNECTOR_PID")
echo "peak RSS: edge ${edge_kb} KiB, connector ${conn_kb} KiB"
if [[ ${CFD_SANITIZED:-0} == 1 ]]; then
    exit 0  # ASan's quarantine keeps freed memory: the bounds hold for release builds only
fi
# Each carried 220 MiB; a bound well under that proves the bodies were streamed, not buffered.
# Both usually peak near 50-70 MiB (two reactors' pre-filled 16 MiB buffer rings included).
# The connector's bound has headroom: on a loaded machine chunks the kernel had already
# received when the proxy paused its origin still get copied (seen once at 167 MiB; see the
# issue notes).
((edge_kb < 96 * 1024)) || fail "edge peak RSS ${edge_kb} KiB"
((conn_kb < 176 * 1024)) || fail "connector peak RSS ${conn_kb} KiB"
