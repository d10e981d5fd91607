#!/usr/bin/env bash
# A connector with a wrong secret is refused ("Unauthorized"), and neither log shows the secret;
# the one-command form `tunnel create --name --url --hostname` creates, routes and runs.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
echo "one-liner origin" >"$TEST_TMP/www/index.html"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"
start_edge DFW 127.0.0.1

create_tunnel real real.localhost
wrong_secret=$(head -c 32 /dev/urandom | base64 -w0)
python3 - "$CRED" "$TEST_TMP/wrong.json" "$wrong_secret" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["TunnelSecret"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"))
PY
CRED="$TEST_TMP/wrong.json"
start_connector wrong "http://127.0.0.1:$origin_port"
wait_until 30 grep -q 'Unauthorized' "$TEST_TMP/wrong.log" ||
    fail "wrong secret not refused: $(tail -5 "$TEST_TMP/wrong.log")"
[[ $(registered wrong) == 0 ]] || fail "a connector with a wrong secret registered"
real_secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["TunnelSecret"])' "$TEST_TMP/real.json")
for f in "$TEST_TMP"/*.log; do
    if grep -qF -e "$wrong_secret" -e "$real_secret" "$f"; then
        fail "a secret appears in $(basename "$f")"
    fi
done
grep -q "Refused tunnel connection" "$TEST_TMP/edge-DFW.log" || fail "the edge did not log the refusal"

# The one-command form runs the connector in the foreground.
start oneliner "$CFD_BIN" tunnel create --name quick --url "http://127.0.0.1:$origin_port" \
    --hostname quick.localhost --credentials-file "$TEST_TMP/quick.json" \
    --edge "127.0.0.1:${EDGE_TUNNEL[DFW]}" --cacert "$STORE/ca.pem" --ha-connections 2
wait_registered oneliner 2
[[ $(stat -c %a "$TEST_TMP/quick.json") == 400 ]] || fail "one-liner credentials mode"
body=$(through DFW quick.localhost /) || fail "the one-liner's tunnel does not serve"
[[ $body == "one-liner origin" ]] || fail "one-liner answered: $body"
