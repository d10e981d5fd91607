#!/usr/bin/env bash
# Two edge locations sharing one store, a connector, a real nginx origin: curl reaches the origin
# through each location; tunnel info shows one connector with 2xDFW, 2xMCI; the credentials file
# is 0400; unknown host 404, no connector 530 (error 1033), origin down 502.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
echo "hello from the origin" >"$TEST_TMP/www/index.html"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"
ORIGIN_PID=$LAST_PID

start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel demo demo.localhost
[[ $(stat -c %a "$CRED") == 400 ]] || fail "credentials file mode is $(stat -c %a "$CRED")"

code=$(through DFW demo.localhost / -o "$TEST_TMP/530.html" -w '%{http_code}')
[[ $code == 530 ]] || fail "no connector gave $code, not 530"
grep -q 1033 "$TEST_TMP/530.html" || fail "the 530 page does not name error 1033"

start_connector connector "http://127.0.0.1:$origin_port"
wait_registered connector 4
grep -q 'location=DFW' "$TEST_TMP/connector.log" || fail "no connection to DFW"
grep -q 'location=MCI' "$TEST_TMP/connector.log" || fail "no connection to MCI"

for loc in DFW MCI; do
    body=$(through "$loc" demo.localhost /) || fail "curl through $loc failed"
    [[ $body == "hello from the origin" ]] || fail "through $loc got: $body"
done

"$CFD_BIN" tunnel info demo >"$TEST_TMP/info.out" || fail "tunnel info"
grep -q '2xDFW, 2xMCI' "$TEST_TMP/info.out" || fail "info: $(cat "$TEST_TMP/info.out")"
[[ $(grep -c linux_ "$TEST_TMP/info.out") == 1 ]] || fail "not one connector: $(cat "$TEST_TMP/info.out")"
"$CFD_BIN" tunnel info -o json demo | grep -q '"connectors":\[{' || fail "info -o json"
"$CFD_BIN" tunnel list | grep -q '^[0-9a-f-]* *demo .*2xDFW, 2xMCI' || fail "list: $("$CFD_BIN" tunnel list)"

code=$(through DFW nobody.localhost / -o /dev/null -w '%{http_code}')
[[ $code == 404 ]] || fail "unknown host gave $code"
code=$(printf 'GARBAGE\r\n\r\n' | timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/${EDGE_HTTP[DFW]}; cat >&3; head -c 12 <&3" | cut -c10-12)
[[ $code == 400 ]] || fail "malformed request gave '$code'"

# The origin goes away: the connector answers 502 itself.
kill -TERM "$ORIGIN_PID"
wait_until 10 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$origin_port) 2>/dev/null" || fail "nginx still up"
code=$(through MCI demo.localhost / -o /dev/null -w '%{http_code}')
[[ $code == 502 ]] || fail "origin down gave $code"

# delete refuses while connectors are live
if "$CFD_BIN" tunnel delete demo 2>"$TEST_TMP/delete.err"; then
    fail "delete of a tunnel with live connectors succeeded"
fi
grep -q "live connections" "$TEST_TMP/delete.err" || fail "delete said: $(cat "$TEST_TMP/delete.err")"
