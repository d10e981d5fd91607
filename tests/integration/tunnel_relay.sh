#!/usr/bin/env bash
# The cross-core relay (DESIGN.md §3): an edge with two reactors and a connector with a single
# tunnel connection, so that every public connection the kernel gives to the other reactor is
# served through the mailboxes. Many short requests, a large download and a large upload, all
# intact; the edge's metrics show that streams were relayed.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/tunnel.sh"

mkdir -p "$TEST_TMP/www"
echo "hello across cores" >"$TEST_TMP/www/index.html"
head -c $((40 << 20)) /dev/urandom >"$TEST_TMP/www/big.bin"
want=$(sha256sum <"$TEST_TMP/www/big.bin" | cut -d' ' -f1)
origin_port=$(free_port)
start_nginx origin "$origin_port" "$TEST_TMP/www"

start_edge DFW 127.0.0.1  # --workers 2
create_tunnel relay relay.localhost
start_connector connector "http://127.0.0.1:$origin_port" --ha-connections 1
wait_registered connector 1

# Each curl is a new connection: SO_REUSEPORT spreads them over both reactors, and one of them
# holds no tunnel connection. 40 connections all on one reactor would happen once in 2^39.
for i in $(seq 1 40); do
    body=$(through DFW relay.localhost /) || fail "request $i failed"
    [[ $body == "hello across cores" ]] || fail "request $i got: $body"
done
sent=$(edge_metric DFW 'cfdtunnel_edge_relayed_streams_total{side="sent"}')
received=$(edge_metric DFW 'cfdtunnel_edge_relayed_streams_total{side="received"}')
echo "relayed streams: sent $sent, received $received"
((sent > 0)) || fail "no stream was relayed to the core holding the connection"
((received == sent)) || fail "relayed: sent $sent, received $received"

# Large bodies both ways on several connections at once: some cross, some do not.
pids=()
for i in 1 2 3 4; do
    (through DFW relay.localhost /big.bin | sha256sum | cut -d' ' -f1 >"$TEST_TMP/down.$i") &
    pids+=($!)
done
for i in 1 2; do
    (through DFW relay.localhost "/uploads/up.$i" -T "$TEST_TMP/www/big.bin" -o /dev/null \
        -w '%{http_code}' >"$TEST_TMP/up.$i") &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "a transfer failed"
done
for i in 1 2 3 4; do
    [[ $(cat "$TEST_TMP/down.$i") == "$want" ]] || fail "download $i differs"
done
for i in 1 2; do
    code=$(cat "$TEST_TMP/up.$i")
    [[ $code == 201 || $code == 204 ]] || fail "upload $i answered $code"
    [[ $(sha256sum <"$TEST_TMP/www/uploads/up.$i" | cut -d' ' -f1) == "$want" ]] ||
        fail "upload $i differs"
done
echo "relayed streams after the transfers: $(edge_metric DFW 'cfdtunnel_edge_relayed_streams_total{side="sent"}')"
