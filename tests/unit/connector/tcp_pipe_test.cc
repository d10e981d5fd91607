// tcp:// and ssh:// rules through the Proxy, in memory: the edge (real TLS + HTTP/2 client)
// opens WebSocket streams (cloudflared's TCP over WebSocket, as `cfdtunnel access tcp` makes
// them) and raw TCP streams; the origin is a byte stream played by the test.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "cfd/connector/proxy.h"
#include "cfd/ws/frame.h"
#include "cfd/ws/handshake.h"
#include "edge_peer.h"
#include "origin_doubles.h"

using namespace cfd;
using namespace cfd::connector;
using namespace cfd::connector::test;

namespace {



// Hostname -> service, as ingress rules would route.
struct HostRouter : Router {
    std::map<std::string, OriginService, std::less<>> by_host;
    const OriginService* route(std::string_view host, std::string_view) const override {
        auto it = by_host.find(host);
        return it == by_host.end() ? nullptr : &it->second;
    }
};

struct PipeFixture {
    tls::Context ctx = client_ctx();
    HostRouter router;
    TestDialer dialer;
    std::map<int32_t, TestLink> links;
    std::unique_ptr<Proxy> proxy;
    EdgePeer edge;
    std::unique_ptr<TunnelSession> conn;

    explicit PipeFixture(ProxyLimits limits = {}) {
        router.by_host.emplace("ssh.example.com", parse_origin_url("ssh://127.0.0.1:2222").value());
        router.by_host.emplace("db.example.com", parse_origin_url("tcp://127.0.0.1:5432").value());
        router.by_host.emplace("web.example.com", parse_origin_url("http://127.0.0.1:8080").value());
        proxy = std::make_unique<Proxy>(router, dialer, limits);
        auto s = TunnelSession::create(ctx, "h2.cftunnel.com", sample_identity(), proxy.get());
        REQUIRE(s);
        conn = std::move(*s);
        proxy->attach(conn.get());
        REQUIRE(pump(*conn, edge));
        REQUIRE(conn->registered());
    }
    ~PipeFixture() {
        proxy.reset();  // releases links before they go
        for (const auto& [id, l] : links) {
            CHECK_FALSE(l.reusable);  // a byte stream never goes back to a pool
        }
    }
    bool run() { return pump(*conn, edge); }
    void connect(int32_t id) { proxy->origin_ready(id, &links[id]); }

    int32_t websocket(std::string_view host, std::string_view key = "dGhlIHNhbXBsZSBub25jZQ==") {
        return edge.request({{":method", "GET"},
                             {":scheme", "http"},
                             {":authority", host},
                             {":path", "/"},
                             {http2::kUpgradeHeader, http2::kUpgradeWebsocket},
                             {"sec-websocket-key", key},
                             {"sec-websocket-version", "13"}},
                            {}, false);
    }
    int32_t raw_tcp(std::string_view authority) {
        return edge.request({{":method", "CONNECT"},
                             {":authority", authority},
                             {http2::kProxySrcHeader, "198.51.100.7:50123"}},
                            {}, false);
    }
};

// What the client side of the WebSocket reads from the stream's body.
struct ClientView {
    std::string data;
    std::vector<std::string> pongs;
    int closes = 0;
    uint16_t close_code = 0;
    bool error = false;
};
ClientView read_frames(std::string_view body) {
    ws::Decoder d(ws::Role::Client);
    ClientView v;
    for (;;) {
        ws::Event e = d.next(body, v.data);
        if (e == ws::Event::NeedMore) {
            break;
        }
        if (e == ws::Event::Pong) {
            v.pongs.emplace_back(d.control());
        } else if (e == ws::Event::Close) {
            v.closes++;
            v.close_code = d.close_code();
        } else if (e == ws::Event::Error) {
            v.error = true;
            break;
        }
    }
    return v;
}



}  // namespace

TEST_CASE("tcp pipe: TCP over WebSocket to an ssh:// rule, both ways, closed by the client") {
    PipeFixture f;
    ws::Encoder client(ws::Role::Client);
    int32_t id = f.websocket("ssh.example.com");
    // The client speaks first, before the origin is even connected: the bytes wait.
    std::string frames;
    client.frame(frames, ws::Opcode::Binary, "SSH-2.0-client\r\n");
    f.edge.write(id, frames, false);
    REQUIRE(f.run());
    REQUIRE(f.dialer.dials == std::vector<int32_t>{id});
    CHECK(f.dialer.urls[0] == "ssh://127.0.0.1:2222");
    CHECK(f.edge.streams[id].status == 0);  // no answer before the origin is there

    f.connect(id);
    REQUIRE(f.run());
    EdgeStream& es = f.edge.streams[id];
    CHECK(es.status == 200);  // the WebSocket's 101, as the tunnel carries it
    CHECK(http2::header_value(es.headers, http2::kResponseMeta) == http2::kMetaOrigin);
    auto user = user_headers(es);
    CHECK(user["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(user["Upgrade"] == "websocket");
    TestLink& link = f.links[id];
    CHECK(link.received == "SSH-2.0-client\r\n");  // unmasked, unframed

    // Origin bytes come back as unmasked binary frames.
    f.proxy->origin_data(id, "SSH-2.0-OpenSSH_9.2\r\n");
    f.proxy->origin_data(id, std::string("\x00\x01\x02", 3));
    REQUIRE(f.run());
    ClientView v = read_frames(es.body);
    CHECK_FALSE(v.error);
    CHECK(v.data == std::string("SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02", 24));

    // A ping split across two DATA frames is answered; a fragmented message passes.
    frames.clear();
    client.frame(frames, ws::Opcode::Ping, "still there?");
    client.frame(frames, ws::Opcode::Binary, "abc", false);
    client.frame(frames, ws::Opcode::Continuation, "def", true);
    f.edge.write(id, std::string_view(frames).substr(0, 5), false);
    REQUIRE(f.run());
    f.edge.write(id, std::string_view(frames).substr(5), false);
    REQUIRE(f.run());
    CHECK(link.received == "SSH-2.0-client\r\nabcdef");
    v = read_frames(es.body);
    REQUIRE(v.pongs.size() == 1);
    CHECK(v.pongs[0] == "still there?");

    // The client closes: our Close (1000), the end of the stream, the origin let go.
    frames.clear();
    client.frame(frames, ws::Opcode::Binary, "last");
    client.close(frames, ws::kCloseNormal);
    f.edge.write(id, frames, true);
    REQUIRE(f.run());
    CHECK(link.received == "SSH-2.0-client\r\nabcdeflast");
    v = read_frames(es.body);
    CHECK(v.closes == 1);
    CHECK(v.close_code == ws::kCloseNormal);
    CHECK(es.ended);
    CHECK(link.released);
    CHECK(f.proxy->streams() == 0);
    CHECK(f.proxy->stats().responses(200) == 1);
}

TEST_CASE("tcp pipe: the origin's EOF ends the WebSocket with a Close 1000 after its bytes") {
    PipeFixture f;
    int32_t id = f.websocket("db.example.com");
    REQUIRE(f.run());
    f.connect(id);
    REQUIRE(f.run());
    f.proxy->origin_data(id, "bye now");
    f.proxy->origin_eof(id);
    REQUIRE(f.run());
    EdgeStream& es = f.edge.streams[id];
    ClientView v = read_frames(es.body);
    CHECK(v.data == "bye now");
    CHECK(v.closes == 1);
    CHECK(v.close_code == ws::kCloseNormal);
    CHECK(es.ended);
    CHECK(f.links[id].released);
    // The client's late bytes are consumed and dropped: the window does not stall.
    std::string late;
    ws::Encoder(ws::Role::Client).frame(late, ws::Opcode::Binary, pattern(100000, 3));
    f.edge.write(id, late, true);
    REQUIRE(f.run());
    CHECK(f.links[id].received.empty());
    CHECK(es.closed);
}

TEST_CASE("tcp pipe: an unreachable origin is a 502 from cloudflared, before any 200") {
    PipeFixture f;
    int32_t ws_id = f.websocket("ssh.example.com");
    int32_t raw_id = f.raw_tcp("db.example.com:5432");
    REQUIRE(f.run());
    REQUIRE(f.dialer.dials.size() == 2);
    f.proxy->origin_failed(ws_id, Error{Errc::Syscall, 111, "connect"});
    f.proxy->origin_failed(raw_id, Error{Errc::Syscall, 111, "connect"});
    REQUIRE(f.run());
    for (int32_t id : {ws_id, raw_id}) {
        EdgeStream& es = f.edge.streams[id];
        CHECK(es.status == 502);
        CHECK(http2::header_value(es.headers, http2::kResponseMeta) == http2::kMetaCloudflared);
        CHECK(es.body.find("unable to reach the origin") != std::string::npos);
    }
}

TEST_CASE("tcp pipe: a raw TCP stream is routed by its authority's host, bytes pass as they are") {
    PipeFixture f;
    int32_t id = f.raw_tcp("ssh.example.com:22");
    f.edge.write(id, "hello origin", false);
    REQUIRE(f.run());
    REQUIRE(f.dialer.dials == std::vector<int32_t>{id});
    CHECK(f.dialer.urls[0] == "ssh://127.0.0.1:2222");  // the rule's target, not the :22 asked
    f.connect(id);
    REQUIRE(f.run());
    EdgeStream& es = f.edge.streams[id];
    CHECK(es.status == 200);
    TestLink& link = f.links[id];
    CHECK(link.received == "hello origin");
    f.proxy->origin_data(id, "hello edge");
    REQUIRE(f.run());
    CHECK(es.body == "hello edge");
    // The edge's side ends: the origin gets a FIN, and its answer still comes back.
    f.edge.write(id, "!", true);
    REQUIRE(f.run());
    CHECK(link.received == "hello origin!");
    CHECK(link.shut);
    CHECK_FALSE(link.released);
    f.proxy->origin_data(id, " and goodbye");
    f.proxy->origin_eof(id);
    REQUIRE(f.run());
    CHECK(es.body == "hello edge and goodbye");
    CHECK(es.ended);
    CHECK(es.closed);
    CHECK(link.released);
    CHECK(f.proxy->streams() == 0);
}

TEST_CASE("tcp pipe: raw TCP never reaches an address the rules do not name") {
    PipeFixture f;
    int32_t http_rule = f.raw_tcp("web.example.com:8080");  // an http:// rule
    int32_t unknown = f.raw_tcp("10.0.0.1:22");             // no rule at all
    int32_t no_port = f.raw_tcp("[::1:22");  // no host to route by
    // And a plain HTTP request for a tcp:// rule.
    int32_t plain = f.edge.request(
        {{":method", "GET"}, {":scheme", "http"}, {":authority", "db.example.com"}, {":path", "/"}});
    REQUIRE(f.run());
    CHECK(f.dialer.dials.empty());
    for (int32_t id : {http_rule, unknown, no_port, plain}) {
        EdgeStream& es = f.edge.streams[id];
        CHECK(es.status == 502);
        CHECK(http2::header_value(es.headers, http2::kResponseMeta) == http2::kMetaCloudflared);
    }
    CHECK(f.edge.streams[plain].body.find("access tcp") != std::string::npos);
}

TEST_CASE("tcp pipe: a client frame that breaks the protocol gets a Close 1002") {
    PipeFixture f;
    int32_t id = f.websocket("ssh.example.com");
    REQUIRE(f.run());
    f.connect(id);
    REQUIRE(f.run());
    std::string bad;
    ws::encode_frame(bad, ws::Opcode::Binary, "unmasked", true, nullptr);
    f.edge.write(id, bad, false);
    REQUIRE(f.run());
    EdgeStream& es = f.edge.streams[id];
    ClientView v = read_frames(es.body);
    CHECK(v.closes == 1);
    CHECK(v.close_code == ws::kCloseProtocolError);
    CHECK(es.ended);
    CHECK(f.links[id].received.empty());
    CHECK(f.links[id].released);
}

TEST_CASE("tcp pipe: flow control both ways, end to end") {
    ProxyLimits limits;
    limits.response_buffer = 64 << 10;
    PipeFixture f(limits);
    int32_t id = f.websocket("ssh.example.com");
    REQUIRE(f.run());
    TestLink& link = f.links[id];
    link.room_left = 0;  // the origin takes nothing yet
    f.connect(id);
    REQUIRE(f.run());

    // Client -> origin: 3 MiB in 16 KiB frames; only a window's worth gets in.
    const std::string up = pattern(3 << 20, 1);
    std::string frames;
    ws::Encoder client(ws::Role::Client);
    for (size_t off = 0; off < up.size(); off += 16384) {
        client.frame(frames, ws::Opcode::Binary, std::string_view(up).substr(off, 16384));
    }
    f.edge.write(id, frames, false);
    REQUIRE(f.run());
    EdgeStream& es = f.edge.streams[id];
    CHECK(es.out_off < frames.size());
    CHECK(es.out_off <= size_t(1 << 20) + 65535);
    CHECK(link.received.empty());
    for (int i = 0; i < 10000 && link.received.size() < up.size(); i++) {
        link.room_left = 100000;
        f.proxy->origin_writable(id);
        REQUIRE(f.run());
        CHECK(es.out_off <= link.received.size() + size_t(1 << 20) + 65535 + 4096);
    }
    CHECK(link.received == up);

    // Origin -> client: origin reads pause while the stream's buffer is full.
    const std::string down = pattern(2 << 20, 2);
    size_t off = 0;
    int rounds = 0;
    while (off < down.size() && rounds++ < 100000) {
        if (link.paused) {
            REQUIRE(f.run());
            continue;
        }
        size_t n = std::min<size_t>(16384, down.size() - off);
        f.proxy->origin_data(id, std::string_view(down).substr(off, n));
        off += n;
    }
    REQUIRE(f.run());
    CHECK(link.pauses > 0);
    ClientView v = read_frames(es.body);
    CHECK_FALSE(v.error);
    CHECK(v.data.size() == down.size());
    CHECK(v.data == down);
}

TEST_CASE("tcp pipe: a client that pings, sends and closes while the origin is dialed") {
    PipeFixture f;
    int32_t id = f.websocket("ssh.example.com");
    std::string frames;
    ws::Encoder client(ws::Role::Client);
    client.frame(frames, ws::Opcode::Ping, "p");
    client.frame(frames, ws::Opcode::Binary, "only this");
    client.close(frames, ws::kCloseGoingAway);
    f.edge.write(id, frames, false);
    REQUIRE(f.run());
    CHECK(f.edge.streams[id].status == 0);
    f.connect(id);
    REQUIRE(f.run());
    EdgeStream& es = f.edge.streams[id];
    CHECK(es.status == 200);
    ClientView v = read_frames(es.body);
    REQUIRE(v.pongs.size() == 1);
    CHECK(v.pongs[0] == "p");
    CHECK(v.closes == 1);
    CHECK(v.close_code == ws::kCloseNormal);
    CHECK(es.ended);
    // What came before the Close still reached the origin, which is then let go.
    CHECK(f.links[id].received == "only this");
    CHECK(f.links[id].released);
}

TEST_CASE("tcp pipe: an origin lost mid-stream ends the WebSocket with a Close 1011") {
    PipeFixture f;
    int32_t id = f.websocket("db.example.com");
    REQUIRE(f.run());
    f.connect(id);
    REQUIRE(f.run());
    f.proxy->origin_data(id, "partial");
    f.proxy->origin_closed(id, Error{Errc::Syscall, 104, "recv"});
    REQUIRE(f.run());
    EdgeStream& es = f.edge.streams[id];
    ClientView v = read_frames(es.body);
    CHECK(v.data == "partial");
    CHECK(v.closes == 1);
    CHECK(v.close_code == ws::kCloseInternalError);
    CHECK(es.ended);
    CHECK(f.proxy->streams() <= 1);  // closed once the edge ends its side too
}

TEST_CASE("tcp pipe: proxyProtocol sends the client's address first, then its bytes") {
    PipeFixture f;
    f.router.by_host["ssh.example.com"].proxy_protocol = ProxyProtocol::V1;
    int32_t id = f.raw_tcp("ssh.example.com:22");  // Cf-Cloudflared-Proxy-Src 198.51.100.7:50123
    f.edge.write(id, "SSH-2.0-client\r\n", false);
    REQUIRE(f.run());
    f.connect(id);
    REQUIRE(f.run());
    CHECK(f.edge.streams[id].status == 200);
    CHECK(f.links[id].received ==
          "PROXY TCP4 198.51.100.7 127.0.0.1 50123 2222\r\nSSH-2.0-client\r\n");
    // Every client byte was consumed on the stream once the origin took it (the header is not
    // counted as the client's).
    f.edge.write(id, std::string(300000, 'x'), false);
    REQUIRE(f.run());
    CHECK(f.links[id].received.size() == 46 + 16 + 300000);
}
