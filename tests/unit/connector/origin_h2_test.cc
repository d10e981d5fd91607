// http2Origin, sans I/O: OriginH2 (the client side of an HTTP/2 origin connection) driven by a
// real server-role http2::Session playing the origin, alone and behind a Proxy whose tunnel is
// a real edge peer.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <set>

#include "cfd/connector/origin_h2.h"
#include "cfd/connector/proxy.h"
#include "edge_peer.h"
#include "origin_doubles.h"

using namespace cfd;
using namespace cfd::connector;
using namespace cfd::connector::test;

namespace {

// The origin: a server-role session that records requests and answers when told.
struct FakeOrigin : http2::Handler {
    struct Req {
        http2::Headers headers;
        std::string body;
        bool ended = false;
        bool closed = false;
        uint32_t code = 0;
        std::string resp;
        size_t resp_off = 0;
        bool resp_end = false;
    };
    std::unique_ptr<http2::Session> s;
    std::map<int32_t, Req> reqs;
    bool auto_consume = true;

    explicit FakeOrigin(http2::Settings st = {}) {
        auto r = http2::Session::create(http2::Role::Server, *this, st);
        REQUIRE(r);
        s = std::move(*r);
    }
    void on_request(int32_t id, http2::Headers&& h, bool end) override {
        reqs[id].headers = std::move(h);
        reqs[id].ended = end;
    }
    void on_response(int32_t, int, http2::Headers&&, bool) override {}
    void on_data(int32_t id, std::string_view b) override {
        reqs[id].body.append(b);
        if (auto_consume) {
            s->consume(id, b.size());
        }
    }
    void on_stream_end(int32_t id) override { reqs[id].ended = true; }
    void on_stream_close(int32_t id, uint32_t code) override {
        reqs[id].closed = true;
        reqs[id].code = code;
    }
    http2::BodyChunk on_body_ready(int32_t id, size_t max) override {
        Req& r = reqs[id];
        size_t n = std::min(max, r.resp.size() - r.resp_off);
        return {n, r.resp_end && n == r.resp.size() - r.resp_off};
    }
    void on_body_copy(int32_t id, std::span<char> dest) override {
        Req& r = reqs[id];
        std::memcpy(dest.data(), r.resp.data() + r.resp_off, dest.size());
        r.resp_off += dest.size();
    }
    void respond(int32_t id, int status, std::string body,
                 std::vector<http2::HeaderView> extra = {}) {
        reqs[id].resp = std::move(body);
        reqs[id].resp_end = true;
        REQUIRE(s->submit_response(id, status, extra, !reqs[id].resp.empty()));
    }
    void consume_all() {
        for (auto& [id, r] : reqs) {
            size_t n = s->unconsumed(id);
            if (n > 0) {
                s->consume(id, n);
            }
        }
    }
};

// Moves bytes both ways until neither side has any.
size_t shuttle(OriginH2& c, FakeOrigin& o) {
    size_t total = 0;
    for (int i = 0; i < 10000; i++) {
        std::string a;
        REQUIRE(c.produce(a, 1 << 20));
        if (!a.empty()) {
            REQUIRE(o.s->recv(a));
        }
        std::string b;
        REQUIRE(o.s->send(b, 1 << 20));
        if (!b.empty()) {
            REQUIRE(c.feed(b));
        }
        total += a.size() + b.size();
        if (a.empty() && b.empty()) {
            break;
        }
    }
    return total;
}

struct Rec {
    int status = 0;
    http2::Headers headers;
    std::string body;
    bool ended = false;
    bool closed = false;
    uint32_t code = 0xffffffff;
    bool refused = false;
    std::string req;  // request body waiting for the origin stream
    bool req_end = false;
    size_t taken = 0;
};

// The tunnel side of the streams: records events, feeds request bodies; consumes response
// bytes at once unless told not to.
struct TestSink : OriginH2Sink {
    std::map<int32_t, Rec> recs;
    std::map<int32_t, int32_t> h2ids;  // tunnel id -> origin stream id
    OriginH2* conn = nullptr;
    bool consume = true;

    void h2_response(int32_t id, int status, http2::Headers&& h, bool end) override {
        recs[id].status = status;
        recs[id].headers = std::move(h);
        recs[id].ended = end;
    }
    void h2_data(int32_t id, std::string_view b) override {
        recs[id].body.append(b);
        if (consume) {
            conn->consume(h2ids[id], b.size());
        }
    }
    void h2_end(int32_t id) override { recs[id].ended = true; }
    void h2_closed(int32_t id, uint32_t code, bool refused) override {
        recs[id].closed = true;
        recs[id].code = code;
        recs[id].refused = refused;
    }
    http2::BodyChunk h2_body_ready(int32_t id, size_t max) override {
        Rec& r = recs[id];
        size_t n = std::min(max, r.req.size());
        return {n, r.req_end && n == r.req.size()};
    }
    void h2_body_copy(int32_t id, std::span<char> dest) override {
        Rec& r = recs[id];
        std::memcpy(dest.data(), r.req.data(), dest.size());
        r.req.erase(0, dest.size());
        r.taken += dest.size();
    }
};

struct NullOwner : OriginH2::Owner {
    int calls = 0;
    void h2_output_ready() override { calls++; }
};

std::vector<http2::HeaderView> request(std::string_view method, std::string_view path) {
    return {{":method", method},
            {":scheme", "http"},
            {":authority", "app.example.com"},
            {":path", path}};
}

// One OriginH2, the origin at its other end and the tunnel-side sink of its streams.
struct H2Pair {
    NullOwner owner;
    std::unique_ptr<OriginH2> c;
    FakeOrigin origin;
    TestSink sink;

    explicit H2Pair(http2::Settings origin_settings = {}) : origin(origin_settings) {
        auto r = OriginH2::create(&owner);
        REQUIRE(r);
        c = std::move(*r);
        sink.conn = c.get();
    }
    // Opens tunnel stream `t` on the connection: its origin stream id.
    int32_t open(int32_t t, std::string_view method, std::string_view path, bool end = false) {
        auto id = c->open(sink, t, request(method, path), end);
        REQUIRE(id);
        sink.h2ids[t] = *id;
        return *id;
    }
    void shuttle() { ::shuttle(*c, origin); }
};

}  // namespace

TEST_CASE("origin h2: requests are multiplexed on one connection") {
    H2Pair p;
    for (int32_t t : {1, 3, 5}) {
        p.open(t, "GET", "/p" + std::to_string(t));
    }
    CHECK(p.owner.calls >= 3);  // each open() asks the glue for a write
    CHECK(p.c->streams() == 3);
    p.shuttle();
    REQUIRE(p.origin.reqs.size() == 3);
    // All three are at the origin before any is answered: they share the connection.
    for (auto& [id, r] : p.origin.reqs) {
        CHECK(r.ended);
        CHECK(http2::header_value(r.headers, ":authority") == "app.example.com");
    }
    for (auto& [t, h2id] : p.sink.h2ids) {
        p.origin.respond(h2id, 200, "body of " + std::to_string(t), {{"x-t", "v"}});
    }
    p.shuttle();
    for (int32_t t : {1, 3, 5}) {
        Rec& r = p.sink.recs[t];
        CHECK(r.status == 200);
        CHECK(r.body == "body of " + std::to_string(t));
        CHECK(http2::header_value(r.headers, "x-t") == "v");
        CHECK(r.ended);
        CHECK(r.closed);
        CHECK(r.code == http2::kNoError);
        CHECK_FALSE(r.refused);
    }
    CHECK(p.c->streams() == 0);
    CHECK(p.c->accepting());
}

TEST_CASE("origin h2: bodies both ways move only as far as the windows allow") {
    http2::Settings st;
    st.stream_window = 65535;
    st.connection_window = 65535;
    H2Pair p(st);
    p.origin.auto_consume = false;
    p.sink.consume = false;
    std::string up = pattern(300 << 10, 1);
    std::string down = pattern(1 << 20, 2);
    p.sink.recs[1].req = up;
    p.sink.recs[1].req_end = true;
    int32_t id = p.open(1, "POST", "/up", true);
    p.shuttle();
    // The origin consumed nothing: only its window's worth left the sink.
    CHECK(p.sink.recs[1].taken == 65535);
    CHECK(p.origin.reqs[id].body.size() == 65535);
    for (int i = 0; i < 100 && !p.origin.reqs[id].ended; i++) {
        p.origin.consume_all();
        p.shuttle();
    }
    CHECK(p.origin.reqs[id].ended);
    CHECK(p.origin.reqs[id].body == up);

    p.origin.respond(id, 200, down);
    p.sink.recs[1].taken = 0;  // from here: response bytes the tunnel took
    p.shuttle();
    // The tunnel took nothing yet: at most one stream window is held by the sink.
    CHECK(p.sink.recs[1].body.size() == size_t(OriginH2::kStreamWindow));
    for (int i = 0; i < 100 && !p.sink.recs[1].ended; i++) {
        size_t held = p.sink.recs[1].body.size();
        p.c->consume(id, held - p.sink.recs[1].taken);
        p.sink.recs[1].taken = held;
        p.shuttle();
    }
    CHECK(p.sink.recs[1].ended);
    CHECK(p.sink.recs[1].body == down);
}

TEST_CASE("origin h2: GOAWAY refuses the streams the origin did not process") {
    H2Pair p;
    int32_t first = p.open(1, "GET", "/a");
    p.shuttle();
    REQUIRE(p.origin.reqs.size() == 1);
    // A second request leaves while the origin's GOAWAY (last stream: the first) is on its way.
    p.open(3, "GET", "/b");
    std::string to_origin;
    REQUIRE(p.c->produce(to_origin));
    REQUIRE(p.origin.s->goaway(http2::kNoError));
    std::string from_origin;
    REQUIRE(p.origin.s->send(from_origin));
    REQUIRE(p.c->feed(from_origin));
    CHECK(p.sink.recs[3].closed);
    CHECK(p.sink.recs[3].refused);
    CHECK(p.sink.recs[3].code == http2::kRefusedStream);
    CHECK_FALSE(p.c->accepting());
    CHECK_FALSE(p.c->open(p.sink, 5, request("GET", "/c"), false));
    // The first still completes.
    (void)p.origin.s->recv(to_origin);
    p.origin.respond(first, 204, "");
    p.shuttle();
    CHECK(p.sink.recs[1].status == 204);
    CHECK(p.sink.recs[1].closed);
    CHECK_FALSE(p.sink.recs[1].refused);
    CHECK(p.c->over());
}

TEST_CASE("origin h2: a cancelled stream is reset and its sink hears nothing more") {
    H2Pair p;
    int32_t id = p.open(1, "GET", "/a");
    p.shuttle();
    p.c->cancel(id);
    p.origin.respond(id, 200, "late");
    p.shuttle();
    CHECK(p.origin.reqs[id].closed);
    CHECK(p.origin.reqs[id].code == http2::kCancel);
    CHECK(p.sink.recs[1].status == 0);
    CHECK_FALSE(p.sink.recs[1].closed);
    CHECK(p.c->streams() == 0);
}

TEST_CASE("origin h2: a lost connection closes every stream, not refused") {
    H2Pair p;
    p.open(1, "GET", "/a");
    p.open(3, "GET", "/b");
    p.shuttle();
    p.c->lost();
    CHECK(p.sink.recs[1].closed);
    CHECK(p.sink.recs[3].closed);
    CHECK_FALSE(p.sink.recs[1].refused);
    CHECK(p.c->streams() == 0);
    CHECK_FALSE(p.c->accepting());
}

// --- behind a Proxy -------------------------------------------------------------------------

namespace {

struct H2Dialer : OriginDialer {
    std::vector<int32_t> dials;     // HTTP/1.1
    std::vector<int32_t> h2_dials;  // HTTP/2
    std::vector<std::string> hosts;
    std::set<int32_t> cancelled;
    void dial(const OriginService&, int32_t id) override { dials.push_back(id); }
    void dial_h2(const OriginService&, int32_t id, std::string_view host) override {
        h2_dials.push_back(id);
        hosts.emplace_back(host);
    }
    void cancel(int32_t id) override { cancelled.insert(id); }
};

struct H2Fixture {
    tls::Context ctx = client_ctx();
    SingleRouter router;
    H2Dialer dialer;
    NullOwner owner;
    std::unique_ptr<OriginH2> conn;
    FakeOrigin origin;
    std::map<int32_t, TestLink> links;
    Proxy proxy;
    EdgePeer edge;
    std::unique_ptr<TunnelSession> tunnel;

    static OriginService h2_service() {
        OriginService svc = parse_origin_url("http://127.0.0.1:8080").value();
        svc.http2 = true;
        return svc;
    }
    H2Fixture() : router(h2_service()), proxy(router, dialer) {
        auto c = OriginH2::create(&owner);
        REQUIRE(c);
        conn = std::move(*c);
        auto s = TunnelSession::create(ctx, "h2.cftunnel.com", sample_identity(), &proxy);
        REQUIRE(s);
        tunnel = std::move(*s);
        proxy.attach(tunnel.get());
        REQUIRE(pump(*tunnel, edge));
        REQUIRE(tunnel->registered());
    }
    // Both hops until quiet.
    void run() {
        for (int i = 0; i < 200; i++) {
            INFO("tunnel: " << tunnel->detail());
            REQUIRE(pump(*tunnel, edge));
            if (shuttle(*conn, origin) == 0) {
                REQUIRE(pump(*tunnel, edge));
                if (shuttle(*conn, origin) == 0) {
                    return;
                }
            }
        }
    }
};

}  // namespace

TEST_CASE("proxy h2: requests share one origin connection; responses keep the tunnel's form") {
    H2Fixture f;
    std::vector<int32_t> ids;
    for (int i = 0; i < 3; i++) {
        std::string path = "/r" + std::to_string(i);  // the views below borrow it
        auto hv = request("GET", path);
        hv.push_back({"accept", "*/*"});
        hv.push_back({"connection", "keep-alive"});
        ids.push_back(f.edge.request(hv));
    }
    REQUIRE(pump(*f.tunnel, f.edge));
    REQUIRE(f.dialer.h2_dials.size() == 3);
    CHECK(f.dialer.dials.empty());
    CHECK(f.dialer.hosts[0] == "app.example.com");
    for (int32_t id : ids) {
        f.proxy.origin_h2_ready(id, *f.conn);
    }
    f.run();
    REQUIRE(f.origin.reqs.size() == 3);
    CHECK(f.conn->streams() == 3);
    for (auto& [h2id, r] : f.origin.reqs) {
        CHECK(http2::header_value(r.headers, ":authority") == "app.example.com");
        CHECK(http2::header_value(r.headers, ":scheme") == "http");
        CHECK(http2::header_value(r.headers, "accept") == "*/*");
        CHECK(http2::find_header(r.headers, "connection") == nullptr);
        std::string body = "hello " + std::to_string(h2id);
        std::string length = std::to_string(body.size());
        f.origin.respond(h2id, 201, body,
                         {{"content-type", "text/plain"}, {"content-length", length}});
    }
    f.run();
    for (int32_t id : ids) {
        EdgeStream& s = f.edge.streams[id];
        CHECK(s.status == 201);
        CHECK(s.body.rfind("hello ", 0) == 0);
        CHECK(s.ended);
        CHECK(http2::header_value(s.headers, http2::kResponseMeta) == http2::kMetaOrigin);
        CHECK_FALSE(http2::header_value(s.headers, "content-length").empty());
        auto user = user_headers(s);
        CHECK(user["content-type"] == "text/plain");
    }
    CHECK(f.proxy.streams() == 0);
}

TEST_CASE("proxy h2: a request body goes up and a large response comes down intact") {
    H2Fixture f;
    std::string up = pattern(700 << 10, 3);
    std::string down = pattern(3 << 20, 4);
    auto hv = request("POST", "/upload");
    std::string length = std::to_string(up.size());
    hv.push_back({"content-length", length});
    int32_t id = f.edge.request(hv, {}, false);
    f.edge.write(id, up, true);
    REQUIRE(pump(*f.tunnel, f.edge));
    REQUIRE(f.dialer.h2_dials.size() == 1);
    f.proxy.origin_h2_ready(id, *f.conn);
    f.run();
    REQUIRE(f.origin.reqs.size() == 1);
    auto& [h2id, r] = *f.origin.reqs.begin();
    CHECK(r.ended);
    CHECK(r.body == up);
    CHECK(http2::header_value(r.headers, "content-length") == std::to_string(up.size()));
    f.origin.respond(h2id, 200, down);
    f.run();
    EdgeStream& s = f.edge.streams[id];
    CHECK(s.status == 200);
    CHECK(s.ended);
    CHECK(s.body == down);
}

TEST_CASE("proxy h2: a refused stream is sent once more; a second refusal is a 502") {
    H2Fixture f;
    int32_t id = f.edge.request(request("GET", "/again"));
    REQUIRE(pump(*f.tunnel, f.edge));
    f.proxy.origin_h2_ready(id, *f.conn);
    f.run();
    REQUIRE(f.origin.reqs.size() == 1);
    REQUIRE(f.origin.s->rst_stream(f.origin.reqs.begin()->first, http2::kRefusedStream));
    f.run();
    REQUIRE(f.dialer.h2_dials.size() == 2);  // retried: a new dial for the same stream
    CHECK(f.dialer.h2_dials[1] == id);
    CHECK(f.edge.streams[id].status == 0);
    f.proxy.origin_h2_ready(id, *f.conn);
    f.run();
    REQUIRE(f.origin.reqs.size() == 2);
    REQUIRE(f.origin.s->rst_stream(f.origin.reqs.rbegin()->first, http2::kRefusedStream));
    f.run();
    CHECK(f.dialer.h2_dials.size() == 2);
    EdgeStream& s = f.edge.streams[id];
    CHECK(s.status == 502);
    CHECK(http2::header_value(s.headers, http2::kResponseMeta) == http2::kMetaCloudflared);
}

TEST_CASE("proxy h2: an origin that did not pick h2 gets HTTP/1.1 on that connection") {
    H2Fixture f;
    auto hv = request("POST", "/form");
    int32_t id = f.edge.request(hv, {}, false);
    f.edge.write(id, "a=1&b=2", true);
    REQUIRE(pump(*f.tunnel, f.edge));
    REQUIRE(f.dialer.h2_dials.size() == 1);
    TestLink& link = f.links[id];
    f.proxy.origin_ready(id, &link);  // the dialer's answer: a plain link
    REQUIRE(pump(*f.tunnel, f.edge));
    CHECK(link.received.rfind("POST /form HTTP/1.1\r\n", 0) == 0);
    CHECK(link.received.find("Transfer-Encoding: chunked") != std::string::npos);
    CHECK(link.received.find("a=1&b=2") != std::string::npos);
    CHECK(link.received.find("\r\n0\r\n\r\n") != std::string::npos);
    f.proxy.origin_data(id, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    REQUIRE(pump(*f.tunnel, f.edge));
    CHECK(f.edge.streams[id].status == 200);
    CHECK(f.edge.streams[id].body == "ok");
    CHECK(link.released);
}

TEST_CASE("proxy h2: a WebSocket stream stays HTTP/1.1 on an http2Origin rule") {
    H2Fixture f;
    auto hv = request("GET", "/ws");
    hv.push_back({http2::kUpgradeHeader, http2::kUpgradeWebsocket});
    hv.push_back({"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="});
    int32_t id = f.edge.request(hv, {}, false);
    REQUIRE(pump(*f.tunnel, f.edge));
    CHECK(f.dialer.h2_dials.empty());
    REQUIRE(f.dialer.dials.size() == 1);
    CHECK(f.dialer.dials[0] == id);
}
