#!/usr/bin/env bash
# `cfdtunnel tunnel ingress validate` and `tunnel ingress rule URL` on the connector's config:
# a good file is listed rule by rule and OK; a file whose last rule is not a catch-all is
# refused (exit 2) with a message naming the file, line and rule; `rule` names the rule that
# would serve each URL, query and port ignored, wildcard and path rules included.
. "$(dirname "$0")/lib/common.sh"

cat >"$TEST_TMP/good.ini" <<'INI'
[connector]
ha-connections = 2
[ingress "api"]
hostname = app.localhost
path = ^/api/
service = http://127.0.0.1:8000
[ingress "web"]
hostname = *.localhost
service = http://localhost:8080
[ingress "default"]
service = http_status:404
INI
out=$("$CFD_BIN" tunnel ingress validate --config "$TEST_TMP/good.ini") || fail "validate: $out"
grep -q '^rule 2 "web" (.*good.ini:8)' <<<"$out" || fail "validate listing: $out"
[[ $(tail -1 <<<"$out") == OK ]] || fail "validate did not say OK: $out"

matched() { "$CFD_BIN" tunnel ingress rule --config "$TEST_TMP/good.ini" "$1" | sed -n 's/^Matched rule #\([0-9]\).*/\1/p'; }
[[ $(matched 'https://app.localhost/api/v1?x=1') == 1 ]] || fail "the api path did not match rule 1"
[[ $(matched 'http://app.localhost:8443/other') == 2 ]] || fail "app.localhost/other did not match rule 2"
[[ $(matched 'https://www.localhost/') == 2 ]] || fail "the wildcard did not match rule 2"
[[ $(matched 'https://example.com/api/') == 3 ]] || fail "the catch-all did not catch"

printf '[ingress "api"]\nhostname = app.localhost\nservice = http://127.0.0.1:8000\n' >"$TEST_TMP/bad.ini"
rc=0
"$CFD_BIN" tunnel ingress validate --config "$TEST_TMP/bad.ini" 2>"$TEST_TMP/bad.err" || rc=$?
((rc == 2)) || fail "a config without a catch-all exited $rc, not 2"
grep -q 'bad.ini:2: ingress rule "api" is last but not a catch-all' "$TEST_TMP/bad.err" ||
    fail "the refusal does not name the rule: $(cat "$TEST_TMP/bad.err")"

printf '[ingress "ssh"]\nhostname = ssh.localhost\nservice = ssh://127.0.0.1:22\nproxyProtocol = v3\n[ingress "d"]\nservice = http_status:404\n' >"$TEST_TMP/pp.ini"
rc=0
"$CFD_BIN" tunnel ingress validate --config "$TEST_TMP/pp.ini" 2>"$TEST_TMP/pp.err" || rc=$?
((rc == 2)) || fail "proxyProtocol = v3 exited $rc, not 2"
grep -q "pp.ini:4.*proxyProtocol.*expected v1, v2" "$TEST_TMP/pp.err" ||
    fail "proxyProtocol message: $(cat "$TEST_TMP/pp.err")"

out=$("$CFD_BIN" tunnel ingress validate --url localhost:8080) || fail "validate --url: $out"
grep -q 'service: http://localhost:8080' <<<"$out" || fail "validate --url: $out"
echo PASS
