#!/usr/bin/env bash
# Connection records of dead connectors (DESIGN.md story 8, `tunnel cleanup`): three replicas of
# one tunnel at two locations; `tunnel list` counts 6xDFW, 6xMCI. Replica A is SIGKILLed: its
# rows go (the edges see its sockets close), `tunnel info` no longer lists it, list shows
# 4xDFW, 4xMCI, the tunnel keeps serving, and a cleanup of A finds nothing left (removed=0).
# Replica B dies the way a host that drops off the network does: frozen with SIGSTOP, no FIN
# reaches the edges, so its rows stay (until the PING deadline, 10s). `tunnel cleanup
# --connector-id B cleanup` removes its 4 rows at once: info no longer lists B and still lists
# C with 2xDFW, 2xMCI; list shows 2xDFW, 2xMCI; B is then SIGKILLed and its rows do not come
# back. A cleanup naming an unknown tunnel fails with a clear message.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"
. "$(dirname "$0")/lib/ha.sh"

mkdir -p "$TEST_TMP/www"
echo "served" >"$TEST_TMP/www/index.html"
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1
start_edge MCI 127.0.0.2
create_tunnel cleanup cleanup.localhost
declare -A CPID ID
for r in A B C; do
    start_connector "conn$r" "http://127.0.0.1:$origin_port"
    CPID[$r]=$CONNECTOR_PID
done
for r in A B C; do
    wait_registered "conn$r" 4
    ID[$r]=$(connector_id "conn$r")
done

info() { "$CFD_BIN" tunnel info cleanup >"$TEST_TMP/info.out" 2>&1; }
# list_shows SUMMARY: `tunnel list` shows the tunnel with these connection counts.
list_shows() {
    "$CFD_BIN" tunnel list >"$TEST_TMP/list.out" 2>&1 &&
        grep -q "^[0-9a-f-]* *cleanup .* $1 *\$" "$TEST_TMP/list.out"
}
listed() { info && grep -q "^$1 " "$TEST_TMP/info.out"; }

wait_until 10 list_shows '6xDFW, 6xMCI' || fail "tunnel list: $(cat "$TEST_TMP/list.out")"
for r in A B C; do
    listed "${ID[$r]}" || fail "info does not list $r: $(cat "$TEST_TMP/info.out")"
done

# A crashes: its sockets close, the edges drop its rows themselves.
kill -KILL "${CPID[A]}"
wait_until 10 bash -c "! '$CFD_BIN' tunnel info cleanup | grep -q '^${ID[A]} '" ||
    fail "info still lists the killed connector A: $(info; cat "$TEST_TMP/info.out")"
wait_until 5 list_shows '4xDFW, 4xMCI' || fail "tunnel list after A died: $(cat "$TEST_TMP/list.out")"
for loc in DFW MCI; do
    [[ $(through "$loc" cleanup.localhost /) == served ]] || fail "$loc stopped serving after A died"
done

# Nothing of A is left for a cleanup to remove; it is not an error.
"$CFD_BIN" tunnel cleanup --connector-id "${ID[A]}" cleanup >"$TEST_TMP/cleanupA.out" 2>&1 ||
    fail "tunnel cleanup of the dead A failed: $(cat "$TEST_TMP/cleanupA.out")"
grep -q 'Cleaned up connections.*removed=0' "$TEST_TMP/cleanupA.out" ||
    fail "cleanup of A: $(cat "$TEST_TMP/cleanupA.out")"

# B drops off the network: frozen, its TCP connections stay open and nothing answers on them
# (a SIGKILL would close its sockets, so it is killed only after the cleanup).
kill -STOP "${CPID[B]}"
info
grep -q "^${ID[B]} .*2xDFW, 2xMCI\$" "$TEST_TMP/info.out" ||
    fail "B's rows are gone before the cleanup (the test needs them): $(cat "$TEST_TMP/info.out")"
"$CFD_BIN" tunnel cleanup --connector-id "${ID[B]}" cleanup >"$TEST_TMP/cleanup.out" 2>&1 ||
    fail "tunnel cleanup --connector-id failed: $(cat "$TEST_TMP/cleanup.out")"
cat "$TEST_TMP/cleanup.out"
grep -q 'Cleaned up connections.*removed=4' "$TEST_TMP/cleanup.out" ||
    fail "cleanup did not report 4 removed rows: $(cat "$TEST_TMP/cleanup.out")"
info
grep -q "^${ID[B]} " "$TEST_TMP/info.out" && fail "info still lists B after the cleanup: $(cat "$TEST_TMP/info.out")"
grep -q "^${ID[C]} .*2xDFW, 2xMCI\$" "$TEST_TMP/info.out" ||
    fail "the cleanup of B touched C: $(cat "$TEST_TMP/info.out")"
[[ $(grep -c '^[0-9a-f]\{8\}-.* linux_' "$TEST_TMP/info.out") == 1 ]] ||
    fail "info lists other connectors than C: $(cat "$TEST_TMP/info.out")"
list_shows '2xDFW, 2xMCI' || fail "tunnel list after the cleanup: $(cat "$TEST_TMP/list.out")"
kill -KILL "${CPID[B]}"
kill -CONT "${CPID[B]}" 2>/dev/null || true

# The survivor serves, and the killed B's connections closing does not bring its rows back.
for loc in DFW MCI; do
    for _ in 1 2 3; do
        [[ $(through "$loc" cleanup.localhost /) == served ]] || fail "$loc does not serve after the cleanup"
    done
done
info
grep -q "^${ID[B]} " "$TEST_TMP/info.out" && fail "B is listed again: $(cat "$TEST_TMP/info.out")"
list_shows '2xDFW, 2xMCI' || fail "tunnel list at the end: $(cat "$TEST_TMP/list.out")"

# A cleanup of a tunnel that does not exist says so.
if "$CFD_BIN" tunnel cleanup nosuchtunnel >"$TEST_TMP/bad.out" 2>&1; then
    fail "cleanup of an unknown tunnel succeeded"
fi
grep -q "no tunnel named or with ID 'nosuchtunnel'" "$TEST_TMP/bad.out" ||
    fail "cleanup of an unknown tunnel said: $(cat "$TEST_TMP/bad.out")"
