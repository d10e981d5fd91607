#include <doctest/doctest.h>

#include "edge_test_util.h"

using namespace cfd;
using namespace cfd::edge;
using namespace cfd::edge::test;
using std::chrono::milliseconds;

namespace {

const Uuid kTunnel = Uuid::parse("610a53bd-ed0c-4afe-92b5-ca0238153410").value();

struct Link {
    EdgeOwner owner;
    Connector conn;
    TunnelOptions opts;
    std::unique_ptr<TunnelConn> edge;

    explicit Link(TunnelOptions o = {}) : opts(o) {
        conn.set_request("acct", std::string(32, '\x05'), kTunnel);
        edge = std::make_unique<TunnelConn>(server_ctx(), owner, t0(), opts);
    }

    // Handshake, control stream, registration call; the owner accepts.
    void register_ok() {
        REQUIRE(pump(*edge, conn));
        REQUIRE(owner.registers.size() == 1);
        CHECK(edge->state() == TunnelConn::State::Registering);
        rpc::ConnectionDetails d;
        d.uuid = Uuid::random();
        d.location_name = "DFW";
        edge->accept_registration(owner.registers[0].first, d);
        REQUIRE(pump(*edge, conn));
        REQUIRE(edge->registered());
    }

    int32_t open(std::string_view method, std::string_view path, const http1::Headers& h,
                 bool body) {
        StreamRequest r;
        r.method = method;
        r.authority = "app.example.com";
        r.path = path;
        r.headers = &h;
        r.has_body = body;
        auto sid = edge->open_stream(r);
        REQUIRE(sid);
        return *sid;
    }
};

const rpc::Registered* registered(const Connector& c) {
    for (const auto& e : c.rpc_events) {
        if (auto* r = std::get_if<rpc::Registered>(&e)) {
            return r;
        }
    }
    return nullptr;
}

}  // namespace

TEST_CASE("edge tunnel: TLS, control stream and registration reach the owner, then accepted") {
    Link l;
    REQUIRE(pump(*l.edge, l.conn));
    REQUIRE(l.owner.registers.size() == 1);
    const rpc::RegisterRequest& got = l.owner.registers[0].second;
    CHECK(got.tunnel_id == kTunnel);
    CHECK(got.auth.account_tag == "acct");
    CHECK(got.auth.tunnel_secret == std::string(32, '\x05'));
    CHECK(got.options.client.arch == "linux_amd64");
    CHECK(got.options.client.client_id == l.conn.reg.options.client.client_id);
    CHECK(!l.edge->open_stream(StreamRequest{"GET", "a", "/", nullptr, false}));  // not yet

    rpc::ConnectionDetails d;
    d.uuid = Uuid::random();
    d.location_name = "MCI";
    l.edge->accept_registration(l.owner.registers[0].first, d);
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(l.edge->registered());
    const rpc::Registered* r = registered(l.conn);
    REQUIRE(r != nullptr);
    CHECK(r->details.uuid == d.uuid);
    CHECK(r->details.location_name == "MCI");
    // A late second answer is ignored.
    l.edge->accept_registration(l.owner.registers[0].first, d);
    CHECK(l.edge->registered());
}

TEST_CASE("edge tunnel: a refused registration reaches the connector with its cause") {
    Link l;
    REQUIRE(pump(*l.edge, l.conn));
    REQUIRE(l.owner.registers.size() == 1);
    rpc::ConnectionError e;
    e.cause = "Unauthorized: Invalid tunnel secret";
    l.edge->refuse_registration(l.owner.registers[0].first, e);
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(!l.edge->registered());
    bool refused = false;
    for (const auto& ev : l.conn.rpc_events) {
        if (auto* r = std::get_if<rpc::Refused>(&ev)) {
            refused = true;
            CHECK(r->error.cause == "Unauthorized: Invalid tunnel secret");
            CHECK(!r->error.should_retry);
        }
    }
    CHECK(refused);
    // No answer from the connector after that: the deadline closes the link.
    l.edge->tick(t0() + l.opts.handshake_timeout + milliseconds(1));
    CHECK(l.edge->state() == TunnelConn::State::Closed);
}

TEST_CASE("edge tunnel: a GET travels with :authority and user headers, response decoded") {
    Link l;
    l.register_ok();
    http1::Headers h = {{"Host", "app.example.com"},
                        {"User-Agent", "curl/8"},
                        {"Connection", "keep-alive, X-Drop"},
                        {"X-Drop", "1"},
                        {"Cf-Cloudflared-Proxy-Connection-Upgrade", "control-stream"},
                        {"Accept", "*/*"}};
    int32_t sid = l.open("GET", "/a?b=1", h, false);
    l.conn.on_request_hook = [&](int32_t id) {
        l.conn.respond(id, 201, {{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}}, true);
        l.conn.write(id, "hello", true);
    };
    REQUIRE(pump(*l.edge, l.conn));
    REQUIRE(l.conn.requests.size() == 1);
    const http2::Headers& rq = l.conn.streams[l.conn.requests[0]].request;
    CHECK(http2::header_value(rq, ":method") == "GET");
    CHECK(http2::header_value(rq, ":scheme") == "http");
    CHECK(http2::header_value(rq, ":authority") == "app.example.com");
    CHECK(http2::header_value(rq, ":path") == "/a?b=1");
    CHECK(http2::header_value(rq, "user-agent") == "curl/8");
    CHECK(http2::header_value(rq, "accept") == "*/*");
    CHECK(http2::find_header(rq, "x-drop") == nullptr);
    CHECK(http2::find_header(rq, "connection") == nullptr);
    CHECK(http2::find_header(rq, "host") == nullptr);
    // A client cannot turn its request into a control stream.
    CHECK(http2::classify_stream(rq) == http2::StreamKind::Http);

    EdgeStream& s = l.owner.streams[sid];
    CHECK(s.got_response);
    CHECK(s.status == 201);
    REQUIRE(s.headers.size() == 2);
    CHECK(s.headers[0] == http2::HeaderPair{"Content-Type", "text/plain"});
    CHECK(s.headers[1] == http2::HeaderPair{"Set-Cookie", "a=1"});
    CHECK(s.body == "hello");
    CHECK(s.ended);
    CHECK(s.closed);
    CHECK(s.close_code == http2::kNoError);
    CHECK(l.edge->open_streams() == 0);
}

TEST_CASE("edge tunnel: large bodies both ways under small windows, bounded buffers") {
    TunnelOptions o;
    o.h2.stream_window = 65535;
    o.h2.connection_window = 65535;
    o.stream_send_buffer = 16384;
    Link l(o);
    l.register_ok();
    constexpr uint64_t kUp = 3 << 20;
    constexpr uint64_t kDown = 3 << 20;
    http1::Headers h = {{"Content-Type", "application/octet-stream"}};
    int32_t sid = l.open("POST", "/upload", h, true);
    uint64_t up_pos = 0;
    auto push_up = [&](TunnelConn& t, int32_t id) {
        while (up_pos < kUp) {
            char buf[10000];
            size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof buf, kUp - up_pos));
            for (size_t i = 0; i < n; i++) {
                buf[i] = gen_byte(7, up_pos + i);
            }
            size_t took = t.write_body(id, std::string_view(buf, n), up_pos + n == kUp);
            CHECK(t.body_room(id) <= o.stream_send_buffer);
            up_pos += took;
            if (took < n) {
                return;
            }
        }
    };
    l.owner.on_room_hook = push_up;
    push_up(*l.edge, sid);
    CHECK(up_pos < kUp);  // the buffer filled: the rest waits for on_body_room
    l.conn.on_end_hook = [&](int32_t id) {
        l.conn.respond(id, 200, {{"X-Up", "done"}}, true);
        auto& s = l.conn.streams[id];
        s.gen_seed = 9;
        s.gen_left = kDown;
        s.out_end = true;
        REQUIRE(l.conn.h2->resume_data(id));
    };
    l.owner.auto_consume = false;
    for (int round = 0; round < 100000 && !l.owner.streams[sid].closed; round++) {
        (void)pump(*l.edge, l.conn, 50);  // may still be moving: the loop goes on
        EdgeStream& s = l.owner.streams[sid];
        // The connector cannot send past the window the owner has not consumed.
        CHECK(s.pending_consume <= 65535);
        if (s.pending_consume > 0) {
            l.edge->consume(sid, s.pending_consume);
            s.pending_consume = 0;
        }
    }
    auto& up = l.conn.streams[l.conn.requests.at(0)];
    CHECK(up.body_bytes == kUp);
    CHECK(up.hash.h == gen_hash(7, kUp));
    EdgeStream& s = l.owner.streams[sid];
    CHECK(s.status == 200);
    CHECK(s.body_bytes == kDown);
    CHECK(s.hash.h == gen_hash(9, kDown));
    CHECK(s.ended);
    CHECK(s.closed);
    CHECK(s.room_events > 0);
}

TEST_CASE("edge tunnel: PINGs are acknowledged; a silent connector is declared dead") {
    Link l;
    l.register_ok();
    TimePoint t = t0() + l.opts.ping_interval + milliseconds(1);
    l.edge->tick(t);
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(l.edge->pings_acked() == 1);
    CHECK(l.edge->registered());
    // The connector stops reading: the next PING is never acknowledged.
    l.conn.answer_pings = false;
    t += l.opts.ping_interval + milliseconds(1);
    l.edge->tick(t);
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(l.edge->registered());
    t += l.opts.ping_timeout;
    l.edge->tick(t);
    CHECK(l.edge->state() == TunnelConn::State::Closed);
    CHECK(l.edge->close_reason().find("PING") != std::string::npos);
}

TEST_CASE("edge tunnel: open streams end with an error when the link dies") {
    Link l;
    l.register_ok();
    http1::Headers h;
    int32_t sid = l.open("GET", "/", h, false);
    REQUIRE(pump(*l.edge, l.conn));
    l.edge->feed_eof();
    l.edge->flush();
    CHECK(l.edge->state() == TunnelConn::State::Closed);
    CHECK(l.owner.streams[sid].closed);
    CHECK(l.owner.streams[sid].close_code != http2::kNoError);
    CHECK(l.edge->open_streams() == 0);
}

TEST_CASE("edge tunnel: a stream reset by the connector before its response") {
    Link l;
    l.register_ok();
    http1::Headers h;
    int32_t sid = l.open("GET", "/", h, false);
    l.conn.on_request_hook = [&](int32_t id) {
        REQUIRE(l.conn.h2->rst_stream(id, http2::kRefusedStream));
    };
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(!l.owner.streams[sid].got_response);
    CHECK(l.owner.streams[sid].closed);
    CHECK(l.owner.streams[sid].close_code == http2::kRefusedStream);
    CHECK(l.edge->registered());
}

TEST_CASE("edge tunnel: unregisterConnection stops new streams") {
    Link l;
    l.register_ok();
    REQUIRE(l.conn.rpc.unregister_connection(l.conn.rpc_out));
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(l.owner.unregisters == 1);
    CHECK(l.edge->state() == TunnelConn::State::Unregistered);
    CHECK(!l.edge->open_stream(StreamRequest{"GET", "a", "/", nullptr, false}));
    bool done = false;
    for (const auto& e : l.conn.rpc_events) {
        done = done || std::holds_alternative<rpc::Unregistered>(e);
    }
    CHECK(done);
}

TEST_CASE("edge tunnel: an unregistered connection closes once its streams are done") {
    Link l;
    l.register_ok();
    http1::Headers h;
    int32_t sid = l.open("GET", "/", h, false);
    REQUIRE(pump(*l.edge, l.conn));
    REQUIRE(l.conn.rpc.unregister_connection(l.conn.rpc_out));
    REQUIRE(pump(*l.edge, l.conn));
    REQUIRE(l.edge->state() == TunnelConn::State::Unregistered);
    TimePoint t = t0() + std::chrono::seconds(2);
    l.edge->tick(t);
    CHECK(l.edge->state() == TunnelConn::State::Unregistered);  // a stream is in flight
    l.conn.respond(l.conn.requests.at(0), 200, {}, true);
    l.conn.write(l.conn.requests.at(0), "last", true);
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(l.owner.streams[sid].body == "last");
    CHECK(l.owner.streams[sid].close_code == http2::kNoError);
    l.edge->tick(t + std::chrono::seconds(1));
    CHECK(l.edge->state() == TunnelConn::State::Closed);
    REQUIRE(pump(*l.edge, l.conn));
    CHECK(l.conn.closed_by_edge);  // close_notify reached the connector
}

TEST_CASE("edge tunnel: garbage instead of a ClientHello closes without a crash") {
    EdgeOwner owner;
    TunnelConn t(server_ctx(), owner, t0());
    std::string junk(5000, '\x16');
    for (size_t i = 0; i < junk.size(); i++) {
        junk[i] = static_cast<char>(i * 131 + 7);
    }
    t.feed(junk);
    t.flush();
    CHECK(t.state() == TunnelConn::State::Closed);
    CHECK(owner.registers.empty());
    // Garbage after TLS: an HTTP/2 preface violation closes too.
    Connector c;
    c.set_request("a", "s", kTunnel);
    TunnelConn t2(server_ctx(), owner, t0());
    REQUIRE(pump(t2, c));
    REQUIRE(c.tls->write("this is not http/2 at all, not even a frame header ............"));
    std::string bytes(c.tls->pending_output());
    c.tls->consume_output(bytes.size());
    t2.feed(bytes);
    CHECK(t2.state() == TunnelConn::State::Closed);
}

TEST_CASE("edge tunnel: no ClientHello before the deadline closes the connection") {
    EdgeOwner owner;
    TunnelOptions o;
    TunnelConn t(server_ctx(), owner, t0(), o);
    t.tick(t0() + o.handshake_timeout - milliseconds(1));
    CHECK(t.state() == TunnelConn::State::Handshake);
    t.tick(t0() + o.handshake_timeout);
    CHECK(t.state() == TunnelConn::State::Closed);
    CHECK(t.finished());
}
