// TunnelSession against an edge made of the real TLS, HTTP/2 and RPC pieces, in memory.
#include <doctest/doctest.h>

#include "cfd/connector/tunnel_session.h"
#include "cfd/core/version.h"
#include "edge_peer.h"

using namespace cfd;
using namespace cfd::connector;
using namespace cfd::connector::test;

namespace {

// Records the proxied streams; answers each with 204 at once.
struct RecordingSink : StreamSink {
    TunnelSession* session = nullptr;
    std::vector<std::pair<int32_t, http2::StreamKind>> opened;
    std::vector<int32_t> closed;
    void on_stream_open(int32_t id, http2::StreamKind kind, http2::Headers&&, bool) override {
        opened.emplace_back(id, kind);
        REQUIRE(session->h2().submit_response(id, 204, {}, false));
    }
    void on_stream_data(int32_t id, std::string_view b) override {
        session->h2().consume(id, b.size());
    }
    void on_stream_end(int32_t) override {}
    void on_stream_close(int32_t id, uint32_t) override { closed.push_back(id); }
    http2::BodyChunk on_body_ready(int32_t, size_t) override { return {0, true}; }
    void on_body_copy(int32_t, std::span<char>) override { FAIL("no body"); }
};

struct Fixture {
    tls::Context ctx = client_ctx();
    RecordingSink sink;
    EdgePeer edge;
    std::unique_ptr<TunnelSession> conn;

    explicit Fixture(uint8_t index = 0, std::string_view name = "h2.cftunnel.com") {
        auto s = TunnelSession::create(ctx, name, sample_identity(index), &sink);
        REQUIRE(s);
        conn = std::move(*s);
        sink.session = conn.get();
    }
};

template <class T>
std::vector<T> events_of(TunnelSession& s) {
    std::vector<T> out;
    for (auto& ev : s.take_events()) {
        if (auto* e = std::get_if<T>(&ev)) {
            out.push_back(*e);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("tunnel session: registers on the control stream and reports the edge's answer") {
    Fixture f(2);
    REQUIRE(pump(*f.conn, f.edge));
    CHECK(f.conn->state() == TunnelSession::State::Serving);
    REQUIRE(f.edge.registrations.size() == 1);
    const rpc::RegisterRequest& req = f.edge.registrations[0];
    CHECK(req.auth.account_tag == "5ab4e9dfbd435d24068829fda0077963");
    CHECK(req.auth.tunnel_secret == std::string("\x01\x02secret\xff\x00", 10));
    CHECK(req.tunnel_id.str() == "610a53bd-ed0c-4afe-92b5-ca0238153410");
    CHECK(req.conn_index == 2);
    CHECK(req.options.client.client_id.str() == "71490dec-190f-4652-a70a-cd001fe6fdcf");
    CHECK(req.options.client.version == kVersion);
    CHECK(req.options.client.arch == build_arch());
    CHECK(req.options.client.arch.rfind("linux_", 0) == 0);
    CHECK(req.options.origin_local_ip == std::string("\x7f\x00\x00\x01", 4));
    // The control stream's response is a 200 that never ends.
    CHECK(f.edge.streams[f.edge.control_id].status == 200);
    CHECK(!f.edge.streams[f.edge.control_id].ended);

    auto regs = events_of<event::Registered>(*f.conn);
    REQUIRE(regs.size() == 1);
    CHECK(regs[0].connection.str() == "0f0e0d0c-0b0a-4908-8706-050403020100");
    CHECK(regs[0].location == "DFW");
    CHECK(f.conn->registered());
    CHECK(f.edge.rpc_errors == 0);
}

TEST_CASE("tunnel session: a refused registration carries the cause and no retry") {
    Fixture f;
    f.edge.accept.reset();
    REQUIRE(pump(*f.conn, f.edge));
    auto refused = events_of<event::Refused>(*f.conn);
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].cause.rfind("Unauthorized:", 0) == 0);
    CHECK(!refused[0].should_retry);
    CHECK(!f.conn->registered());
}

TEST_CASE("tunnel session: unregister reaches the edge and comes back as an event") {
    Fixture f;
    REQUIRE(pump(*f.conn, f.edge));
    REQUIRE(events_of<event::Registered>(*f.conn).size() == 1);
    REQUIRE(f.conn->unregister());
    REQUIRE(pump(*f.conn, f.edge));
    CHECK(f.edge.unregistrations == 1);
    CHECK(events_of<event::Unregistered>(*f.conn).size() == 1);
    CHECK(!f.conn->registered());
}

TEST_CASE("tunnel session: other streams go to the sink with their kind") {
    Fixture f;
    REQUIRE(pump(*f.conn, f.edge));
    std::vector<http2::HeaderView> get{{":method", "GET"},
                                       {":scheme", "http"},
                                       {":authority", "app.example.com"},
                                       {":path", "/x"}};
    int32_t a = f.edge.request(get);
    auto ws = get;
    ws.push_back({http2::kUpgradeHeader, "websocket"});
    int32_t b = f.edge.request(ws);
    REQUIRE(pump(*f.conn, f.edge));
    REQUIRE(f.sink.opened.size() == 2);
    CHECK(f.sink.opened[0] == std::make_pair(a, http2::StreamKind::Http));
    CHECK(f.sink.opened[1] == std::make_pair(b, http2::StreamKind::Websocket));
    CHECK(f.edge.streams[a].status == 204);
    CHECK(f.edge.streams[a].closed);
    CHECK(f.sink.closed.size() == 2);
    CHECK(f.conn->proxied_streams() == 0);
}

TEST_CASE("tunnel session: a certificate for another name fails the handshake") {
    Fixture f(0, "other.example.com");
    REQUIRE(pump(*f.conn, f.edge));
    CHECK(f.conn->state() == TunnelSession::State::Closed);
    CHECK(f.conn->over());
    CHECK(!f.conn->detail().empty());
    CHECK(f.edge.registrations.empty());
    CHECK(f.edge.handshake_failed);
}

TEST_CASE("tunnel session: garbage after the handshake ends the session without a crash") {
    Fixture f;
    REQUIRE(pump(*f.conn, f.edge));
    // Plaintext garbage where TLS records belong.
    CHECK(!f.conn->feed(std::string(300, '\x17')));
    CHECK(f.conn->state() == TunnelSession::State::Closed);
    CHECK(f.conn->over());
}

TEST_CASE("tunnel session: a second control stream is reset, the first keeps working") {
    Fixture f;
    REQUIRE(pump(*f.conn, f.edge));
    std::vector<http2::HeaderView> hv{{":method", "GET"},
                                      {":scheme", "https"},
                                      {":authority", "h2.cftunnel.com"},
                                      {":path", "/"},
                                      {http2::kUpgradeHeader, "control-stream"}};
    int32_t id = f.edge.request(hv, {}, false);
    REQUIRE(pump(*f.conn, f.edge));
    CHECK(f.edge.streams[id].closed);
    CHECK(f.edge.streams[id].close_code == http2::kProtocolError);
    CHECK(f.sink.opened.empty());
    REQUIRE(f.conn->unregister());
    REQUIRE(pump(*f.conn, f.edge));
    CHECK(f.edge.unregistrations == 1);
}
