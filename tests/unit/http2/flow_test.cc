// Flow control: windows reopen only when the owner consume()s, so a slow reader stops the
// sender and nothing grows.
#include <doctest/doctest.h>

#include "h2_peer.h"

using namespace cfd::http2;
using namespace cfd::http2::test;

namespace {

Settings small_windows() {
    Settings s;
    s.stream_window = 16 << 10;
    s.connection_window = 16 << 10;  // raised to HTTP/2's floor, 65535
    return s;
}

constexpr size_t kFrameOverhead = 9;
constexpr size_t kMaxFrame = 16384;

}  // namespace

TEST_CASE("http2: 16 MiB up and 16 MiB down under 16 KiB windows arrive intact") {
    constexpr uint64_t kSize = 16 << 20;
    Peer client(Role::Client, small_windows());
    Peer server(Role::Server, small_windows());
    client.high_watermark = 32 << 10;
    server.high_watermark = 32 << 10;
    server.on_request_hook = [&](int32_t id) {
        REQUIRE(server.session->submit_response(id, 200, {}, true));
        server.generate(id, 2, kSize);
    };
    int32_t id = client.request(post_request(), true);
    client.generate(id, 1, kSize);
    REQUIRE(pump(client, server));

    StreamRec& up = server.streams[id];
    StreamRec& down = client.streams[id];
    CHECK(up.body_bytes == kSize);
    CHECK(up.hash.h == gen_hash(1, kSize));
    CHECK(up.ended);
    CHECK(down.status == 200);
    CHECK(down.body_bytes == kSize);
    CHECK(down.hash.h == gen_hash(2, kSize));
    CHECK(down.ended);
    CHECK(down.close_code == kNoError);
    // The receiver never held more than a stream window; the sender never produced more than
    // one frame past its watermark.
    CHECK(up.max_unconsumed <= 16 << 10);
    CHECK(down.max_unconsumed <= 16 << 10);
    CHECK(client.max_send_chunk <= client.high_watermark + kMaxFrame + kFrameOverhead);
    CHECK(server.max_send_chunk <= server.high_watermark + kMaxFrame + kFrameOverhead);
}

TEST_CASE("http2: a receiver that stops consuming stops the sender, and restarts it") {
    constexpr uint64_t kSize = 1 << 20;
    Peer client(Role::Client, small_windows());
    Peer server(Role::Server, small_windows());
    server.auto_consume = false;
    // Until the client has the server's SETTINGS, HTTP/2's default 65535-byte stream window
    // applies; the 16 KiB window binds from then on.
    REQUIRE(pump(client, server));
    int32_t id = client.request(post_request(), true);
    client.generate(id, 7, kSize);
    REQUIRE(pump(client, server));

    StreamRec& up = server.streams[id];
    // Stalled: one stream window arrived, the rest waits at the sender, not in a buffer.
    CHECK(up.body_bytes == 16 << 10);
    CHECK(server.session->unconsumed(id) == 16 << 10);
    CHECK(client.session->send_window(id) == 0);
    CHECK(client.streams[id].gen_left == kSize - (16 << 10));
    std::string out;
    auto n = client.session->send(out);
    REQUIRE(n);
    CHECK(*n == 0);
    CHECK(!client.session->want_write());

    // Still stalled after more pumping: nothing leaks through without consume().
    REQUIRE(pump(client, server));
    CHECK(up.body_bytes == 16 << 10);

    // Consuming half the window is enough to reopen it.
    server.session->consume(id, 8 << 10);
    up.pending_consume -= 8 << 10;
    REQUIRE(pump(client, server));
    CHECK(up.body_bytes == 24 << 10);

    int rounds = 0;
    while (!up.ended && rounds++ < 1000) {
        server.consume_all(id);
        REQUIRE(pump(client, server));
    }
    CHECK(up.ended);
    CHECK(up.body_bytes == kSize);
    CHECK(up.hash.h == gen_hash(7, kSize));
    CHECK(up.max_unconsumed <= 16 << 10);
}

TEST_CASE("http2: the connection window bounds what all streams together may hold") {
    Settings s;
    s.stream_window = 32 << 10;
    s.connection_window = 65535;
    Peer client(Role::Client, s);
    Peer server(Role::Server, s);
    server.auto_consume = false;
    std::vector<int32_t> ids;
    for (int i = 0; i < 8; i++) {
        ids.push_back(client.request(post_request(), true));
        client.generate(ids.back(), static_cast<uint64_t>(i), 64 << 10);
    }
    REQUIRE(pump(client, server));
    uint64_t total = 0;
    for (int32_t id : ids) {
        CHECK(server.streams[id].body_bytes <= 32 << 10);
        total += server.streams[id].body_bytes;
    }
    CHECK(total == 65535);
    int rounds = 0;
    bool done = false;
    while (!done && rounds++ < 1000) {
        done = true;
        for (int32_t id : ids) {
            server.consume_all(id);
            done = done && server.streams[id].ended;
        }
        REQUIRE(pump(client, server));
    }
    for (size_t i = 0; i < ids.size(); i++) {
        CHECK(server.streams[ids[i]].hash.h == gen_hash(i, 64 << 10));
    }
}

TEST_CASE("http2: bytes of a closed stream are released, so the connection window recovers") {
    Settings s;
    s.stream_window = 65535;
    s.connection_window = 65535;
    Peer client(Role::Client, s);
    Peer server(Role::Server, s);
    server.auto_consume = false;
    int32_t a = client.request(post_request(), true);
    client.generate(a, 1, 1 << 20);
    REQUIRE(pump(client, server));
    CHECK(server.streams[a].body_bytes == 65535);  // the whole connection window is held by a

    // The owner drops stream a without consuming: the session gives the bytes back.
    REQUIRE(server.session->rst_stream(a, kCancel));
    REQUIRE(pump(client, server));
    CHECK(client.streams[a].close_code == kCancel);

    server.auto_consume = true;
    int32_t b = client.request(post_request(), true);
    client.generate(b, 2, 256 << 10);
    REQUIRE(pump(client, server));
    CHECK(server.streams[b].body_bytes == 256 << 10);
    CHECK(server.streams[b].ended);
    CHECK(server.streams[b].hash.h == gen_hash(2, 256 << 10));
    // A late consume() for the closed stream changes nothing.
    server.session->consume(a, 100);
}

TEST_CASE("http2: a deferred body is sent when resumed") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request(post_request(), true);
    REQUIRE(pump(client, server));
    CHECK(server.requests.size() == 1);
    CHECK(server.streams[id].body.empty());
    CHECK(!server.streams[id].ended);
    CHECK(client.streams[id].body_asks >= 1);
    // The source said "nothing yet": the session does not poll it.
    size_t asks = client.streams[id].body_asks;
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].body_asks == asks);
    CHECK(!client.session->want_write());

    client.write(id, "late bytes");
    REQUIRE(pump(client, server));
    CHECK(server.streams[id].body == "late bytes");
    CHECK(!server.streams[id].ended);
    client.write(id, "", true);
    REQUIRE(pump(client, server));
    CHECK(server.streams[id].ended);
    CHECK(server.streams[id].body == "late bytes");
}

TEST_CASE("http2: output stops at the caller's high watermark and resumes on the next send") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request(post_request(), true);
    client.generate(id, 3, 200 << 10);
    REQUIRE(pump(client, server));  // settings exchanged, all sent
    int32_t id2 = client.request(post_request(), true);
    client.generate(id2, 4, 200 << 10);
    std::string out;
    auto n = client.session->send(out, 4096);
    REQUIRE(n);
    CHECK(out.size() >= 4096);
    CHECK(out.size() <= 4096 + kMaxFrame + kFrameOverhead);
    // A full buffer produces nothing more until the caller drains it.
    auto again = client.session->send(out, 4096);
    REQUIRE(again);
    CHECK(*again == 0);
    CHECK(client.session->want_write());
    REQUIRE(server.session->recv(out));
    REQUIRE(pump(client, server));
    CHECK(server.streams[id2].hash.h == gen_hash(4, 200 << 10));
    CHECK(server.streams[id].hash.h == gen_hash(3, 200 << 10));
}
