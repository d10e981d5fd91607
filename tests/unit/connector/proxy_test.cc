// Proxy in memory: the edge (real TLS + HTTP/2 client + RPC server) opens streams on a
// TunnelSession; the proxy turns them into HTTP/1.1 for an origin played by the test through
// OriginLink, whose bytes the test parses with the real HTTP/1.1 parser.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "cfd/connector/proxy.h"
#include "cfd/http1/parser.h"
#include "edge_peer.h"
#include "origin_doubles.h"

using namespace cfd;
using namespace cfd::connector;
using namespace cfd::connector::test;

namespace {



struct ProxyFixture {
    tls::Context ctx = client_ctx();
    SingleRouter router;
    TestDialer dialer;
    std::map<int32_t, TestLink> links;  // outlive the proxy, which releases them when it goes
    std::set<int32_t> connected;
    Proxy proxy;
    EdgePeer edge;
    std::unique_ptr<TunnelSession> conn;

    explicit ProxyFixture(std::string_view url = "http://127.0.0.1:8080", ProxyLimits limits = {})
        : ProxyFixture(parse_origin_url(url).value(), limits) {}
    explicit ProxyFixture(OriginService svc, ProxyLimits limits = {})
        : router(std::move(svc)), proxy(router, dialer, limits) {
        auto s = TunnelSession::create(ctx, "h2.cftunnel.com", sample_identity(), &proxy);
        REQUIRE(s);
        conn = std::move(*s);
        proxy.attach(conn.get());
        REQUIRE(pump(*conn, edge));
        REQUIRE(conn->registered());
    }
    bool run() { return pump(*conn, edge); }
    // Connects every dial made so far to a fresh TestLink.
    void connect_all() {
        for (int32_t id : dialer.dials) {
            if (connected.insert(id).second) {
                proxy.origin_ready(id, &links[id]);
            }
        }
    }
    std::vector<http2::HeaderView> get(std::string_view path = "/x") {
        return {{":method", "GET"},
                {":scheme", "http"},
                {":authority", "app.example.com"},
                {":path", path},
                {"accept", "*/*"}};
    }
};

http1::RequestHead parse_request(const std::string& bytes, std::string* body = nullptr) {
    http1::RequestParser p;
    std::string_view in = bytes;
    http1::RequestHead head;
    for (int i = 0; i < 1000000; i++) {
        auto st = p.feed(in);
        in.remove_prefix(p.consumed());
        if (st == http1::Step::HeadDone) {
            head = p.head();
        } else if (st == http1::Step::Body) {
            if (body != nullptr) {
                body->append(p.body());
            }
        } else if (st == http1::Step::MessageDone || st == http1::Step::NeedMore ||
                   st == http1::Step::Upgrade) {
            break;
        } else {
            FAIL("origin could not parse the request: " << http1::step_name(st));
        }
    }
    return head;
}



}  // namespace

TEST_CASE("proxy: GET goes to the origin as HTTP/1.1 and the response comes back") {
    ProxyFixture f;
    int32_t id = f.edge.request(f.get("/x?y=1"));
    REQUIRE(f.run());
    REQUIRE(f.dialer.dials == std::vector<int32_t>{id});
    f.connect_all();
    REQUIRE(f.run());
    TestLink& link = f.links[id];
    auto head = parse_request(link.received);
    CHECK(head.method == "GET");
    CHECK(head.target == "/x?y=1");
    CHECK(head.authority == "app.example.com");
    REQUIRE(http1::find_header(head.headers, "accept") != nullptr);
    CHECK(*http1::find_header(head.headers, "accept") == "*/*");
    CHECK(head.body == http1::BodyKind::None);

    f.proxy.origin_data(id, "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Thing: a b\r\n"
                            "Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhel");
    f.proxy.origin_data(id, "lo");
    REQUIRE(f.run());
    EdgeStream& s = f.edge.streams[id];
    CHECK(s.status == 201);
    CHECK(s.body == "hello");
    CHECK(s.ended);
    CHECK(http2::header_value(s.headers, http2::kResponseMeta) == http2::kMetaOrigin);
    CHECK(http2::header_value(s.headers, "content-length") == "5");
    auto user = user_headers(s);
    CHECK(user["Content-Type"] == "text/plain");
    CHECK(user["X-Thing"] == "a b");
    CHECK(user["Content-Length"] == "5");
    CHECK(user.count("Connection") == 0);
    CHECK(link.released);
    CHECK(link.reusable);
    CHECK(f.proxy.streams() == 0);
}

TEST_CASE("proxy: Host comes from the rule's override when set") {
    OriginService svc = parse_origin_url("http://127.0.0.1:9").value();
    svc.host_header = "internal.local";
    ProxyFixture f;
    SingleRouter r(svc);
    // A second proxy on the same connection is not possible; check the head through a fresh
    // fixture whose router has the override.
    TestDialer d;
    TestLink link;  // outlives the proxy, which releases it when it goes
    Proxy p(r, d);
    EdgePeer edge;
    auto s = TunnelSession::create(f.ctx, "h2.cftunnel.com", sample_identity(), &p);
    REQUIRE(s);
    p.attach(s->get());
    REQUIRE(pump(**s, edge));
    int32_t id = edge.request(f.get());
    REQUIRE(pump(**s, edge));
    REQUIRE(d.dials.size() == 1);
    p.origin_ready(id, &link);
    auto head = parse_request(link.received);
    CHECK(head.authority == "internal.local");
    // cloudflared tells the origin the name the client asked for.
    const std::string* fwd = http1::find_header(head.headers, "x-forwarded-host");
    REQUIRE(fwd != nullptr);
    CHECK(*fwd == "app.example.com");
}

TEST_CASE("proxy: origin unreachable is a 502 from cloudflared with a short body") {
    ProxyFixture f;
    int32_t id = f.edge.request(f.get());
    REQUIRE(f.run());
    f.proxy.origin_failed(id, Error{Errc::Syscall, ECONNREFUSED, "connect"});
    REQUIRE(f.run());
    EdgeStream& s = f.edge.streams[id];
    CHECK(s.status == 502);
    CHECK(http2::header_value(s.headers, http2::kResponseMeta) == http2::kMetaCloudflared);
    CHECK(s.body.find("origin") != std::string::npos);
    CHECK(s.ended);
    CHECK(f.proxy.stats().errors == 1);
}

TEST_CASE("proxy: http_status and hello_world answer without an origin") {
    {
        ProxyFixture f("http_status:418");
        int32_t id = f.edge.request(f.get());
        REQUIRE(f.run());
        CHECK(f.dialer.dials.empty());
        CHECK(f.edge.streams[id].status == 418);
        CHECK(http2::header_value(f.edge.streams[id].headers, http2::kResponseMeta) ==
              http2::kMetaOrigin);
        CHECK(f.edge.streams[id].body.empty());
        CHECK(f.edge.streams[id].ended);
    }
    {
        ProxyFixture f("hello_world");
        int32_t id = f.edge.request(f.get());
        REQUIRE(f.run());
        CHECK(f.edge.streams[id].status == 200);
        CHECK(f.edge.streams[id].body == hello_world_page());
        CHECK(user_headers(f.edge.streams[id])["Content-Type"].find("text/html") == 0);
    }
}

TEST_CASE("proxy: a request body is consumed only as fast as the origin takes it") {
    ProxyFixture f;
    std::vector<http2::HeaderView> post{{":method", "POST"},
                                        {":scheme", "http"},
                                        {":authority", "app.example.com"},
                                        {":path", "/upload"}};
    const std::string body = pattern(3 << 20, 1);  // three times the stream window
    int32_t id = f.edge.request(post, body, true);
    REQUIRE(f.run());
    TestLink& link = f.links[id];
    link.room_left = 0;  // the origin takes nothing
    f.connect_all();
    REQUIRE(f.run());
    // The edge is stopped by the window: at most one window of body is in flight.
    EdgeStream& es = f.edge.streams[id];
    CHECK(es.out_off < body.size());
    CHECK(es.out_off <= size_t(1 << 20) + 65535);
    // Now the origin reads in slices.
    CHECK(link.received.empty());
    for (int i = 0; i < 10000 && link.received.size() < body.size(); i++) {
        link.room_left = 100000;
        f.proxy.origin_writable(id);
        REQUIRE(f.run());
        // Never more body in flight than one stream window past what the origin took.
        CHECK(es.out_off <= link.received.size() + size_t(1 << 20) + 65535);
    }
    link.room_left = 1 << 30;
    f.proxy.origin_writable(id);
    REQUIRE(f.run());
    std::string got;
    auto head = parse_request(link.received, &got);
    CHECK(head.method == "POST");
    CHECK(head.body == http1::BodyKind::Chunked);
    CHECK(got.size() == body.size());
    CHECK(got == body);
}

TEST_CASE("proxy: a declared content-length travels as is and an overlong body is refused") {
    ProxyFixture f;
    std::vector<http2::HeaderView> post{{":method", "PUT"},
                                        {":scheme", "http"},
                                        {":authority", "app.example.com"},
                                        {":path", "/a"},
                                        {"content-length", "4"}};
    int32_t ok = f.edge.request(post, "abcd", true);
    int32_t bad = f.edge.request(post, "abcdefgh", true);
    REQUIRE(f.run());
    f.connect_all();
    REQUIRE(f.run());
    std::string got;
    auto head = parse_request(f.links[ok].received, &got);
    CHECK(head.body == http1::BodyKind::Length);
    CHECK(head.content_length == 4);
    CHECK(got == "abcd");
    // The longer body never reaches the origin past its declared length.
    CHECK(f.links[bad].received.find("efgh") == std::string::npos);
    // nghttp2 or the proxy stops it: either way it never gets a 2xx.
    CHECK(f.edge.streams[bad].closed);
    CHECK(f.edge.streams[bad].status != 200);
}

TEST_CASE("proxy: a large response pauses origin reads and arrives intact") {
    ProxyLimits limits;
    limits.response_buffer = 64 << 10;
    ProxyFixture f("http://127.0.0.1:8080", limits);
    int32_t id = f.edge.request(f.get());
    REQUIRE(f.run());
    f.connect_all();
    TestLink& link = f.links[id];
    const std::string body = pattern(2 << 20, 2);
    f.proxy.origin_data(id, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\n\r\n");
    size_t off = 0;
    int rounds = 0;
    while (off < body.size() && rounds++ < 100000) {
        if (link.paused) {
            // The origin is told to stop; only HTTP/2 sending resumes it.
            REQUIRE(f.run());
            continue;
        }
        size_t n = std::min<size_t>(16384, body.size() - off);
        f.proxy.origin_data(id, std::string_view(body).substr(off, n));
        off += n;
    }
    REQUIRE(f.run());
    CHECK(link.pauses > 0);
    CHECK(f.edge.streams[id].body.size() == body.size());
    CHECK(f.edge.streams[id].body == body);
    CHECK(f.edge.streams[id].ended);
    CHECK(link.released);
}

TEST_CASE("proxy: an origin lost after the head resets the stream") {
    ProxyFixture f;
    int32_t id = f.edge.request(f.get());
    REQUIRE(f.run());
    f.connect_all();
    f.proxy.origin_data(id, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    REQUIRE(f.run());
    f.proxy.origin_closed(id, Error{Errc::Closed, 0, "recv"});
    REQUIRE(f.run());
    EdgeStream& s = f.edge.streams[id];
    CHECK(s.status == 200);
    CHECK(s.closed);
    CHECK(s.close_code == http2::kInternalError);
}

TEST_CASE("proxy: malformed origin bytes are a 502, never a crash") {
    ProxyFixture f;
    int32_t id = f.edge.request(f.get());
    REQUIRE(f.run());
    f.connect_all();
    f.proxy.origin_data(id, std::string("HTTP/1.1 2\x00\x01 nonsense\r\n\r\n", 25));
    REQUIRE(f.run());
    CHECK(f.edge.streams[id].status == 502);
    CHECK(f.links[id].released);
    CHECK(!f.links[id].reusable);
}

TEST_CASE("proxy: a body that runs until EOF ends the stream at the origin's close") {
    ProxyFixture f;
    int32_t id = f.edge.request(f.get());
    REQUIRE(f.run());
    f.connect_all();
    f.proxy.origin_data(id, "HTTP/1.0 200 OK\r\n\r\nall of it");
    f.proxy.origin_eof(id);
    REQUIRE(f.run());
    CHECK(f.edge.streams[id].body == "all of it");
    CHECK(f.edge.streams[id].ended);
    CHECK(!f.links[id].reusable);
}

TEST_CASE("proxy: a WebSocket's 101 travels as 200 and bytes flow both ways") {
    ProxyFixture f;
    auto hv = f.get("/ws");
    hv.push_back({http2::kUpgradeHeader, "websocket"});
    hv.push_back({"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="});
    int32_t id = f.edge.request(hv, {}, false);
    REQUIRE(f.run());
    f.connect_all();
    REQUIRE(f.run());
    auto head = parse_request(f.links[id].received);
    CHECK(head.upgrade);
    CHECK(head.upgrade_protocol == "websocket");
    f.links[id].received.clear();
    f.proxy.origin_data(id, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\nfrom-origin");
    REQUIRE(f.run());
    EdgeStream& s = f.edge.streams[id];
    CHECK(s.status == 200);
    CHECK(s.body == "from-origin");
    CHECK(user_headers(s)["Upgrade"] == "websocket");
    f.edge.write(id, "from-client", false);
    REQUIRE(f.run());
    CHECK(f.links[id].received == "from-client");
    f.proxy.origin_eof(id);
    REQUIRE(f.run());
    CHECK(s.ended);
}

TEST_CASE("proxy: a stream reset by the edge releases its origin connection") {
    ProxyFixture f;
    int32_t a = f.edge.request(f.get());
    int32_t b = f.edge.request(f.get());
    REQUIRE(f.run());
    f.proxy.origin_ready(a, &f.links[a]);
    REQUIRE(f.edge.h2->rst_stream(a, http2::kCancel));
    REQUIRE(f.edge.h2->rst_stream(b, http2::kCancel));
    REQUIRE(f.run());
    CHECK(f.links[a].released);
    CHECK(!f.links[a].reusable);
    CHECK(f.dialer.cancelled.count(b) == 1);
    CHECK(f.proxy.streams() == 0);
}

TEST_CASE("proxy: an interim 100 Continue is skipped and Expect is not forwarded") {
    ProxyFixture f;
    std::vector<http2::HeaderView> post{{":method", "POST"},
                                        {":scheme", "http"},
                                        {":authority", "app.example.com"},
                                        {":path", "/up"},
                                        {"expect", "100-continue"},
                                        {"content-length", "2"}};
    int32_t id = f.edge.request(post, "hi", true);
    REQUIRE(f.run());
    f.connect_all();
    REQUIRE(f.run());
    std::string got;
    auto head = parse_request(f.links[id].received, &got);
    CHECK(http1::find_header(head.headers, "expect") == nullptr);
    CHECK(got == "hi");
    f.proxy.origin_data(id, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                            "\r\nok");
    REQUIRE(f.run());
    CHECK(f.edge.streams[id].status == 200);
    CHECK(f.edge.streams[id].body == "ok");
    CHECK(f.links[id].reusable);
}

TEST_CASE("proxy: a pooled connection closed before any answer is retried once, fresh") {
    ProxyFixture f;
    int32_t id = f.edge.request(f.get("/retry"));
    REQUIRE(f.run());
    REQUIRE(f.dialer.dials.size() == 1);
    TestLink stale;
    f.proxy.origin_ready(id, &stale, true);
    REQUIRE(f.run());
    CHECK(parse_request(stale.received).target == "/retry");
    f.proxy.origin_eof(id);  // the origin's keep-alive ran out under us
    CHECK(stale.released);
    CHECK(!stale.reusable);
    REQUIRE(f.dialer.dials.size() == 2);
    TestLink fresh;
    f.proxy.origin_ready(id, &fresh, false);
    REQUIRE(f.run());
    CHECK(parse_request(fresh.received).target == "/retry");
    // A fresh connection failing the same way is not retried again: 502.
    f.proxy.origin_eof(id);
    REQUIRE(f.run());
    CHECK(f.dialer.dials.size() == 2);
    CHECK(f.edge.streams[id].status == 502);
}

TEST_CASE("proxy: stats count requests, statuses, errors and streams in flight") {
    ProxyFixture f;
    int32_t a = f.edge.request(f.get("/a"));
    int32_t b = f.edge.request(f.get("/b"));
    REQUIRE(f.run());
    CHECK(f.proxy.stats().requests == 2);
    CHECK(f.proxy.stats().concurrent == 2);
    f.connect_all();
    REQUIRE(f.run());
    f.proxy.origin_data(a, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    REQUIRE(f.run());
    CHECK(f.edge.streams[a].ended);
    CHECK(f.proxy.stats().concurrent == 1);
    f.proxy.origin_closed(b, Error{Errc::Closed, 0, "reset"});
    REQUIRE(f.run());
    CHECK(f.edge.streams[b].status == 502);
    const ProxyStats& st = f.proxy.stats();
    CHECK(st.responses(200) == 1);
    CHECK(st.responses(502) == 1);
    CHECK(st.responses(404) == 0);
    CHECK(st.responses(42) == 0);  // outside 100..599: never counted, never out of bounds
    CHECK(st.errors == 1);
    CHECK(st.origin_ok == 1);
    CHECK(st.concurrent == 0);
}

TEST_CASE("proxy: a shared ProxyStats outlives the proxies that count into it") {
    ProxyStats shared;
    ProxyLimits limits;
    limits.stats = &shared;
    {
        ProxyFixture f("http_status:204", limits);
        f.edge.request(f.get());
        REQUIRE(f.run());
        CHECK(&f.proxy.stats() == &shared);
        CHECK(shared.concurrent == 0);
    }
    {
        // A stream still waiting for its origin when the proxy goes (the link was lost): it is
        // no longer in flight.
        ProxyFixture f("http://127.0.0.1:8080", limits);
        f.edge.request(f.get());
        REQUIRE(f.run());
        CHECK(shared.concurrent == 1);
    }
    CHECK(shared.concurrent == 0);
    CHECK(shared.requests == 2);
    CHECK(shared.responses(204) == 1);
    {
        ProxyFixture f("http_status:204", limits);
        f.edge.request(f.get());
        REQUIRE(f.run());
    }
    CHECK(shared.requests == 3);
    CHECK(shared.responses(204) == 2);
}

TEST_CASE("proxy: disableChunkedEncoding sends a body of unknown length with its Content-Length") {
    OriginService svc = parse_origin_url("http://127.0.0.1:8080").value();
    svc.disable_chunked_encoding = true;
    ProxyLimits limits;
    limits.max_request_queue = 1 << 20;
    ProxyFixture f(svc, limits);
    std::vector<http2::HeaderView> post{{":method", "POST"},
                                        {":scheme", "http"},
                                        {":authority", "app.example.com"},
                                        {":path", "/wsgi"}};
    const std::string body = pattern(300000, 2);  // more than a stream window's first 64 KiB
    // The body's end comes later: until then nothing goes out.
    int32_t id = f.edge.request(post, body.substr(0, 1000), false);
    REQUIRE(f.run());
    CHECK(f.dialer.dials.empty());
    f.edge.write(id, body.substr(1000), true);
    REQUIRE(f.run());
    REQUIRE(f.dialer.dials.size() == 1);
    f.connect_all();
    REQUIRE(f.run());
    std::string got;
    auto head = parse_request(f.links[id].received, &got);
    CHECK(head.method == "POST");
    CHECK(head.body == http1::BodyKind::Length);
    CHECK(head.content_length == body.size());
    CHECK(!http1::find_header(head.headers, "transfer-encoding"));
    CHECK(got == body);

    // Over the bound: the connector answers 413 itself and the origin is never dialed.
    int32_t big = f.edge.request(post, pattern((1 << 20) + 1, 3), true);
    REQUIRE(f.run());
    CHECK(f.dialer.dials.size() == 1);
    CHECK(f.edge.streams[big].status == 413);
}
