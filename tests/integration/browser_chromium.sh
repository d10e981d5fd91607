#!/usr/bin/env bash
# A real browser through the edge: headless Chromium (Debian's) loads a page over HTTPS from
# the edge, which reaches the origin through the tunnel. The page's script reports the
# protocol Chromium used for it (Navigation Timing's nextHopProtocol): it must be h2. The page
# also fetches a second resource, which must arrive intact. Chromium trusts the edge's
# certificate by its public key only (--ignore-certificate-errors-spki-list), never blindly.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

command -v chromium >/dev/null || { echo "SKIP: chromium is not installed"; exit 77; }

PKI="$TEST_TMP/pki"
make_pki "$PKI" app.example.test
SPKI=$(openssl x509 -in "$PKI/leaf.pem" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64)

SITE="$TEST_TMP/site"
mkdir -p "$SITE"
cat >"$SITE/index.html" <<'HTML'
<!doctype html>
<html><head><title>cfdtunnel</title></head><body><p id="out">loading</p>
<script>
const nav = performance.getEntriesByType("navigation")[0];
fetch("/data.txt").then(r => r.text()).then(t => {
  document.getElementById("out").textContent =
    "protocol=" + nav.nextHopProtocol + " data=" + t.trim().length + ":" + t.trim().slice(0, 8);
}).catch(e => { document.getElementById("out").textContent = "error=" + e; });
</script></body></html>
HTML
head -c 30000 /dev/zero | tr '\0' 'x' >"$SITE/data.txt"

origin_port=$(free_port)
start origin python3 -m http.server --bind 127.0.0.1 --directory "$SITE" "$origin_port"
wait_until 10 port_open "$origin_port" || fail "origin did not start"

HTTPS=$(free_port)
start_edge DFW 127.0.0.1 --https-listen "127.0.0.1:$HTTPS" --tls-cert "$PKI/leaf.pem" \
    --tls-key "$PKI/leaf.key"
create_tunnel site app.example.test
start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 4

run_chromium() {
    timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --user-data-dir="$TEST_TMP/chromium" --no-first-run --disable-extensions \
        --host-resolver-rules="MAP app.example.test 127.0.0.1" \
        --ignore-certificate-errors-spki-list="$SPKI" \
        --virtual-time-budget=10000 --dump-dom "$1" 2>"$TEST_TMP/chromium.err"
}
dom=$(run_chromium "https://app.example.test:$HTTPS/index.html") ||
    fail "chromium failed: $(tail -5 "$TEST_TMP/chromium.err")"
out=$(grep -o 'id="out">[^<]*' <<<"$dom" | sed 's/id="out">//')
[[ $out == "protocol=h2 data=30000:xxxxxxxx" ]] || fail "chromium saw '$out' (want h2 and the 30000-byte resource)"
echo "ok: chromium loaded the page over HTTPS with $out"
