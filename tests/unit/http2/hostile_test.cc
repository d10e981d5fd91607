// Bad input from the network: every case ends in a clear error or a reset, never a crash, a hang
// or unbounded memory.
#include <doctest/doctest.h>

#include <random>

#include "h2_peer.h"

using namespace cfd::http2;
using namespace cfd::http2::test;

namespace {

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kSettings = 0x4, kPing = 0x6, kGoaway = 0x7,
                  kContinuation = 0x9;
constexpr uint8_t kEndHeaders = 0x4;

// Everything the session has to send, as frames.
std::vector<Frame> drain(Peer& p) {
    std::string out;
    auto n = p.session->send(out);
    REQUIRE(n);
    return parse_frames(out);
}

// "x-a: b" as an HPACK literal without indexing, new name.
const std::string kHpackField = std::string("\x00\x03x-a\x01"
                                            "b",
                                            7);

}  // namespace

TEST_CASE("http2: garbage instead of the client preface is an error and a GOAWAY") {
    Peer server(Role::Server);
    auto r = server.session->recv("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    REQUIRE(!r);
    CHECK(r.error().code == cfd::Errc::Protocol);
    CHECK(!r.error().message().empty());
    std::vector<Frame> frames = drain(server);
    const Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    REQUIRE(g->payload.size() >= 8);
    CHECK(be32(std::string_view(g->payload).substr(4)) == kProtocolError);
    CHECK(!server.session->want_read());
    CHECK(!server.session->want_write());
    // Nothing more is accepted.
    auto again = server.session->recv(kClientMagic);
    REQUIRE(!again);
    CHECK(again.error().code == cfd::Errc::Closed);
}

TEST_CASE("http2: a server that does not start with SETTINGS is refused by the client") {
    Peer client(Role::Client);
    std::string out;
    REQUIRE(client.session->send(out));  // magic + SETTINGS
    // nghttp2 answers this connection error itself: recv() succeeds, the GOAWAY is queued and
    // the session is over once it is sent.
    (void)client.session->recv("HTTP/1.1 400 Bad Request\r\n\r\n");
    out.clear();
    REQUIRE(client.session->send(out));
    CHECK(find_frame(parse_frames(out), kGoaway) != nullptr);
    CHECK(!client.session->want_read());
    CHECK(!client.session->want_write());
}

TEST_CASE("http2: random bytes after a valid preface end in a GOAWAY, never a crash") {
    for (uint32_t seed = 1; seed <= 50; seed++) {
        Peer server(Role::Server);
        std::mt19937 rng(seed);
        std::string in(kClientMagic);
        in += frame(kSettings, 0, 0, "");
        bool over = false;
        // A random frame header may announce a short frame of an unknown type, which is legal
        // and skipped; so feed until something breaks the protocol (a frame is at most 16 KiB).
        for (int round = 0; round < 16 && !over; round++) {
            std::string junk(4096, '\0');
            for (char& c : junk) {
                c = static_cast<char>(rng());
            }
            in += junk;
            auto r = server.session->recv(in);
            in.clear();
            std::vector<Frame> frames = drain(server);
            over = !r || find_frame(frames, kGoaway) != nullptr;
        }
        CHECK_MESSAGE(over, "seed " << seed);
        CHECK(!server.session->want_read());
    }
}

TEST_CASE("http2: a CONTINUATION flood is refused") {
    Settings s;
    s.max_continuations = 8;
    Peer server(Role::Server, s);
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    // :method GET, :scheme https, :path / (static table) and a field, without END_HEADERS.
    in += frame(kHeaders, 0, 1, std::string("\x82\x87\x84", 3) + kHpackField);
    for (int i = 0; i < 32; i++) {
        in += frame(kContinuation, 0, 1, kHpackField);
    }
    auto r = server.session->recv(in);
    REQUIRE(!r);
    CHECK(r.error().code == cfd::Errc::Protocol);
    CHECK(server.requests.empty());
    std::vector<Frame> frames = drain(server);
    const Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    CHECK(be32(std::string_view(g->payload).substr(4)) != kNoError);
}

TEST_CASE("http2: a few CONTINUATION frames within the limit are fine") {
    Peer server(Role::Server);
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    in += frame(kHeaders, 0, 1, std::string("\x82\x87\x84", 3));
    in += frame(kContinuation, 0, 1,
                std::string("\x01\x0f"
                            "app.example.com",
                            17));
    in += frame(kContinuation, kEndHeaders | 0, 1, kHpackField);
    REQUIRE(server.session->recv(in));
    REQUIRE(server.requests.size() == 1);
    CHECK(header_value(server.streams[1].headers, ":authority") == "app.example.com");
    CHECK(header_value(server.streams[1].headers, "x-a") == "b");
}

TEST_CASE("http2: a flood of RST_STREAMs hits the reset rate limit") {
    Settings s;
    s.reset_burst = 10;
    s.reset_rate = 0;  // no refill, so the outcome does not depend on the clock
    Peer client(Role::Client);
    Peer server(Role::Server, s);
    REQUIRE(pump(client, server));
    for (int i = 0; i < 40 && client.goaways.empty(); i++) {
        int32_t id = client.request(post_request(), true);
        REQUIRE(pump(client, server));
        REQUIRE(client.session->rst_stream(id, kCancel));
        REQUIRE(pump(client, server));
    }
    // nghttp2 answers an empty bucket with GOAWAY(INTERNAL_ERROR): burst 10, so the 11th reset.
    REQUIRE(client.goaways.size() == 1);
    CHECK(client.goaways[0].second == kInternalError);
    CHECK(server.requests.size() == 11);
}

TEST_CASE("http2: the same resets under the default limit are served") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    for (int i = 0; i < 40; i++) {
        int32_t id = client.request(post_request(), true);
        REQUIRE(pump(client, server));
        REQUIRE(client.session->rst_stream(id, kCancel));
        REQUIRE(pump(client, server));
    }
    CHECK(client.goaways.empty());
    CHECK(server.requests.size() == 40);
}

TEST_CASE("http2: an oversized header block resets the stream; the connection goes on") {
    Settings s;
    s.max_header_list_bytes = 4096;
    Peer client(Role::Client);
    Peer server(Role::Server, s);
    std::string big(8000, 'v');
    std::vector<HeaderView> h = post_request();
    h.push_back({"x-big", big});
    int32_t id = client.request(h, true);
    client.write(id, "body that nobody reads", true);
    REQUIRE(pump(client, server));
    CHECK(server.requests.empty());
    CHECK(client.streams[id].closed);
    CHECK(client.streams[id].close_code == kInternalError);
    CHECK(server.session->stream_count() == 0);
    CHECK(server.recv_errors == 0);

    // The same connection still serves a normal request.
    server.on_request_hook = [&](int32_t sid) {
        REQUIRE(server.session->submit_response(sid, 200, {}, false));
    };
    int32_t ok = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    CHECK(client.streams[ok].status == 200);
}

TEST_CASE("http2: a header block with too many fields resets the stream") {
    Settings s;
    s.max_header_fields = 50;
    Peer client(Role::Client);
    Peer server(Role::Server, s);
    std::vector<std::string> names;
    for (int i = 0; i < 100; i++) {
        names.push_back("x-f" + std::to_string(i));
    }
    std::vector<HeaderView> h = get_request();
    for (const std::string& n : names) {
        h.push_back({n, ""});
    }
    int32_t id = client.request(h, false);
    REQUIRE(pump(client, server));
    CHECK(server.requests.empty());
    CHECK(client.streams[id].closed);
    CHECK(client.streams[id].close_code == kInternalError);
}

TEST_CASE("http2: an oversized response header block resets the stream at the client") {
    Settings s;
    s.max_header_list_bytes = 2048;
    Peer client(Role::Client, s);
    Peer server(Role::Server);
    int32_t id = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    std::string big(4000, 'v');
    REQUIRE(
        server.session->submit_response(id, 200, std::vector<HeaderView>{{"x-big", big}}, false));
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].status == 0);
    CHECK(client.streams[id].closed);
    CHECK(client.streams[id].close_code == kInternalError);
    CHECK(client.session->stream_count() == 0);
}

TEST_CASE("http2: a PING flood that never reads the ACKs is cut off") {
    Settings s;
    s.max_outbound_ack = 50;
    Peer server(Role::Server, s);
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    for (int i = 0; i < 200; i++) {
        in += frame(kPing, 0, 0, std::string(8, static_cast<char>(i)));
    }
    auto r = server.session->recv(in);
    REQUIRE(!r);
    CHECK(!server.session->want_read());
}

TEST_CASE("http2: DATA on a stream that was never opened is a connection error") {
    Peer server(Role::Server);
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    in += frame(kData, 0, 5, "unexpected");
    auto r = server.session->recv(in);
    std::vector<Frame> frames = drain(server);
    const Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    CHECK(be32(std::string_view(g->payload).substr(4)) == kProtocolError);
    CHECK(!server.session->want_read());
    (void)r;
}

namespace {

// A client that opens 12 streams at once against a server allowing 10.
std::vector<Frame> open_too_many(Peer& server, bool ack_settings) {
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    if (ack_settings) {
        in += frame(kSettings, 0x1, 0, "");
    }
    std::string block = std::string("\x83\x87\x84\x01\x0f"
                                    "app.example.com",
                                    20);  // POST
    for (uint32_t id = 1; id <= 23; id += 2) {
        in += frame(kHeaders, kEndHeaders, id, block);
    }
    REQUIRE(server.session->recv(in));
    return drain(server);
}

}  // namespace

TEST_CASE("http2: streams beyond the limit are refused before our SETTINGS are acknowledged") {
    Settings s;
    s.max_concurrent_streams = 10;
    Peer server(Role::Server, s);
    std::vector<Frame> frames = open_too_many(server, false);
    CHECK(server.requests.size() == 10);
    CHECK(server.session->stream_count() == 10);
    int refused = 0;
    for (const Frame& f : frames) {
        if (f.type == 0x3 && be32(f.payload) == kRefusedStream) {
            refused++;
        }
    }
    CHECK(refused == 2);
    CHECK(server.session->want_read());
}

TEST_CASE("http2: streams beyond an acknowledged limit are a connection error") {
    Settings s;
    s.max_concurrent_streams = 10;
    Peer server(Role::Server, s);
    std::vector<Frame> frames = open_too_many(server, true);
    CHECK(server.requests.size() == 10);
    const Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    CHECK(be32(std::string_view(g->payload).substr(4)) == kProtocolError);
    CHECK(!server.session->want_read());
}

TEST_CASE("http2: DATA beyond the advertised window is a flow-control error") {
    Settings s;
    s.stream_window = 16 << 10;
    Peer server(Role::Server, s);
    server.auto_consume = false;
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    in += frame(kSettings, 0x1, 0, "");
    in += frame(kHeaders, kEndHeaders, 1,
                std::string("\x83\x87\x84\x01\x0f"
                            "app.example.com",
                            20));
    for (int i = 0; i < 6; i++) {
        in += frame(kData, 0, 1, std::string(16000, 'a'));
    }
    (void)server.session->recv(in);
    // The owner never holds more than a window (at most HTTP/2's initial 65535) per stream.
    CHECK(server.streams[1].body_bytes <= 65535);
    CHECK(server.session->unconsumed(1) <= 65535);
    uint32_t code = 0;
    for (const Frame& f : drain(server)) {
        if (f.type == 0x3) {
            code = be32(f.payload);
        } else if (f.type == kGoaway) {
            code = be32(std::string_view(f.payload).substr(4));
        }
    }
    CHECK(code == kFlowControlError);
}

TEST_CASE("http2: an HPACK literal longer than any field allowed is a compression error") {
    Peer server(Role::Server);
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    // Literal without indexing, new name, name length 1000000 (HPACK integer, 7-bit prefix).
    std::string block("\x82\x87\x84\x00", 4);
    uint32_t len = 1000000 - 127;
    block.push_back('\x7f');
    while (len >= 128) {
        block.push_back(static_cast<char>(0x80 | (len & 0x7f)));
        len >>= 7;
    }
    block.push_back(static_cast<char>(len));
    block += std::string(100, 'n');
    in += frame(kHeaders, kEndHeaders, 1, block);
    (void)server.session->recv(in);
    CHECK(server.requests.empty());
    std::vector<Frame> frames = drain(server);
    const Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    CHECK(be32(std::string_view(g->payload).substr(4)) == kCompressionError);
    CHECK(!server.session->want_read());
}

TEST_CASE("http2: a flood of empty DATA frames is cut off") {
    Settings s;
    s.max_empty_data_frames = 20;
    Peer server(Role::Server, s);
    std::string in(kClientMagic);
    in += frame(kSettings, 0, 0, "");
    in += frame(kHeaders, kEndHeaders, 1,
                std::string("\x83\x87\x84\x01\x0f"
                            "app.example.com",
                            20));
    for (int i = 0; i < 19; i++) {
        in += frame(kData, 0, 1, "");
    }
    in += frame(kData, 0, 1, "x");  // a real byte resets the count
    for (int i = 0; i < 20; i++) {
        in += frame(kData, 0, 1, "");
    }
    REQUIRE(server.session->recv(in));
    CHECK(server.streams[1].body == "x");
    auto r = server.session->recv(frame(kData, 0, 1, ""));
    REQUIRE(!r);
    CHECK(r.error().code == cfd::Errc::Protocol);
    std::vector<Frame> frames = drain(server);
    const Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    CHECK(be32(std::string_view(g->payload).substr(4)) == kEnhanceYourCalm);
    CHECK(server.session->stats().goaway_sent);
    CHECK(server.session->stats().goaway_sent_code == kEnhanceYourCalm);
    CHECK(!server.session->want_read());
}

TEST_CASE("http2: stats count what happened on the connection") {
    Settings s;
    s.max_header_list_bytes = 1024;
    Peer client(Role::Client);
    Peer server(Role::Server, s);
    int32_t a = client.request(post_request(), true);
    REQUIRE(pump(client, server));
    REQUIRE(client.session->rst_stream(a, kCancel));
    std::string big(2000, 'v');
    std::vector<HeaderView> h = get_request();
    h.push_back({"x-big", big});
    client.request(h, false);
    REQUIRE(pump(client, server));
    const SessionStats& st = server.session->stats();
    CHECK(st.streams_opened == 2);
    CHECK(st.resets_received == 1);
    CHECK(st.headers_refused == 1);
    CHECK(st.bytes_in == client.bytes_sent);
    CHECK(st.bytes_out == server.bytes_sent);
    CHECK(client.session->stats().streams_opened == 2);
    CHECK(!st.goaway_sent);
    REQUIRE(server.session->terminate(kNoError));
    REQUIRE(pump(client, server));
    CHECK(server.session->stats().goaway_sent);
    CHECK(client.session->stats().goaway_received);
    CHECK(client.session->stats().goaway_received_code == kNoError);
}
