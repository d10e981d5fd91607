#include <doctest/doctest.h>

#include <deque>

#include "cfd/edge/messages.h"
#include "cfd/edge/public_session.h"
#include "cfd/edge/raw_session.h"
#include "cfd/edge/relay.h"
#include "cfd/edge/routes.h"
#include "cfd/http1/parser.h"
#include "edge_test_util.h"
#include "public_doubles.h"

using namespace cfd;
using namespace cfd::edge;
using namespace cfd::edge::test;

namespace {


struct Rig {
    Owner owner;
    Connector conn;
    std::unique_ptr<TunnelConn> edge;
    Router router;
    Bus bus;
    bool relayed = false;
    Io io;
    std::unique_ptr<PublicSession> pub;

    explicit Rig(TunnelOptions o = {}, bool relay = false) : relayed(relay) {
        conn.set_request("acct", "secret", Uuid::random());
        edge = std::make_unique<TunnelConn>(server_ctx(), owner, t0(), o);
        REQUIRE(pump(*edge, conn));
        REQUIRE(owner.calls.size() == 1);
        rpc::ConnectionDetails d;
        d.uuid = Uuid::random();
        d.location_name = "DFW";
        edge->accept_registration(owner.calls[0], d);
        REQUIRE(pump(*edge, conn));
        REQUIRE(edge->registered());
        router.table.add("app.example.com", Uuid::random());
        router.conn = edge.get();
        bus.conn = edge.get();
        if (relayed) {
            router.relay = &bus.client;
        }
        pub = std::make_unique<PublicSession>(router, io);
    }
    // The session goes first: its destructor resets a stream still open, through the bus.
    ~Rig() { pub.reset(); }
    // Until the tunnel and the mailboxes are quiet.
    void run() {
        do {
            REQUIRE(pump(*edge, conn));
        } while (bus.deliver());
    }
    // One bounded round of both (for tests that interleave their own steps).
    void step(int rounds) {
        (void)pump(*edge, conn, rounds);
        (void)bus.deliver();
    }
};

// Parses every response in `out` (the test's client side).
struct Responses {
    std::vector<http1::ResponseHead> heads;
    std::vector<std::string> bodies;
    bool complete = true;
};
Responses parse_responses(std::string_view out, std::string_view method = "GET") {
    Responses r;
    http1::ResponseParser p;
    p.set_request_method(method);
    std::string body;
    for (;;) {
        auto s = p.feed(out);
        out.remove_prefix(p.consumed());
        if (s == http1::Step::HeadDone) {
            r.heads.push_back(p.head());
        } else if (s == http1::Step::Body) {
            body.append(p.body());
        } else if (s == http1::Step::MessageDone) {
            r.bodies.push_back(body);
            body.clear();
        } else if (s == http1::Step::NeedMore) {
            r.complete = out.empty() && r.bodies.size() == r.heads.size();
            break;
        } else {
            FAIL("bad response stream");
            break;
        }
    }
    return r;
}

}  // namespace

TEST_CASE("edge public: route table resolves exact names first, then one-label wildcards") {
    RouteTable t;
    Uuid a = Uuid::random(), b = Uuid::random();
    t.add("app.example.com", a);
    t.add("*.example.com", b);
    REQUIRE(t.resolve("APP.example.com:8080"));
    CHECK(*t.resolve("APP.example.com:8080") == a);
    CHECK(*t.resolve("x.example.com.") == b);
    CHECK(t.resolve("example.com") == nullptr);
    CHECK(t.resolve("a.b.example.com") == nullptr);
    CHECK(t.resolve("") == nullptr);
    CHECK(host_without_port("[::1]:80") == "::1");
}

TEST_CASE("edge public: keep-alive GETs through the tunnel, chunked and sized responses") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        int n = 0;
        r.conn.on_request_hook = [&](int32_t id) {
            if (n++ == 0) {
                r.conn.respond(id, 200, {{"Content-Type", "text/plain"}, {"Connection", "close"}},
                               true);
                r.conn.write(id, "first body", true);
            } else {
                r.conn.respond(id, 404, {{"Content-Length", "6"}}, true);
                r.conn.write(id, "second", true);
            }
        };
        // Two pipelined requests in one read.
        r.pub->feed("GET /one HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
                    "GET /two HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
        for (int i = 0; i < 4; i++) {
            r.run();
        }
        Responses res = parse_responses(r.io.out);
        REQUIRE(res.heads.size() == 2);
        CHECK(res.heads[0].status == 200);
        CHECK(res.heads[0].body == http1::BodyKind::Chunked);
        CHECK(*http1::find_header(res.heads[0].headers, "content-type") == "text/plain");
        // The origin's hop-by-hop headers are not the client's connection's.
        CHECK(res.heads[0].keep_alive);
        CHECK(res.bodies[0] == "first body");
        CHECK(res.heads[1].status == 404);
        CHECK(res.heads[1].body == http1::BodyKind::Length);
        CHECK(res.bodies[1] == "second");
        CHECK(res.complete);
        CHECK(r.pub->exchanges() == 2);
        CHECK(!r.io.closed_after_flush);
        CHECK(r.conn.requests.size() == 2);
        CHECK(http2::header_value(r.conn.streams[r.conn.requests[1]].request, ":path") == "/two");
        CHECK(r.edge->open_streams() == 0);
        // Idle: its buffers go; the next request on the connection is served as before.
        REQUIRE(r.pub->idle());
        r.pub->trim();
        r.io.out.clear();
        r.pub->feed("GET /three HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
        for (int i = 0; i < 4; i++) {
            r.run();
        }
        Responses after = parse_responses(r.io.out);
        REQUIRE(after.heads.size() == 1);
        CHECK(after.bodies[0] == "second");
        CHECK(r.pub->exchanges() == 3);
    }
}

TEST_CASE("edge public: the edge's own answers: 404, 530 (1033), 400, 431") {
    Rig r;
    r.pub->feed("GET / HTTP/1.1\r\nHost: nowhere.example.org\r\n\r\n");
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 404);
    CHECK(!r.io.closed_after_flush);

    r.io.out.clear();
    r.router.conn = nullptr;
    r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 530);
    CHECK(res.bodies[0].find("1033") != std::string::npos);

    Io io2;
    PublicSession bad(r.router, io2);
    bad.feed("GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n");
    res = parse_responses(io2.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 400);
    CHECK(io2.closed_after_flush);
    CHECK(bad.closing());

    Io io3;
    PublicSession big(r.router, io3);
    big.feed("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(40000, 'x') + "\r\n\r\n");
    res = parse_responses(io3.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 431);

    Io io4;
    PublicSession nohost(r.router, io4);
    nohost.feed("GET / HTTP/1.0\r\n\r\n");
    res = parse_responses(io4.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 400);
}

TEST_CASE("edge public: a stream reset before the response is a 502") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.conn.on_request_hook = [&](int32_t id) {
            REQUIRE(r.conn.h2->rst_stream(id, http2::kInternalError));
        };
        r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
        r.run();
        Responses res = parse_responses(r.io.out);
        REQUIRE(res.heads.size() == 1);
        CHECK(res.heads[0].status == 502);
        CHECK(r.io.closed_after_flush);
    }
}

TEST_CASE("edge public: a reset after the head aborts the client connection") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.conn.on_request_hook = [&](int32_t id) {
            r.conn.respond(id, 200, {{"Content-Length", "100"}}, true);
            r.conn.write(id, "partial", false);
        };
        r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
        r.run();
        REQUIRE(r.conn.requests.size() == 1);
        REQUIRE(r.conn.h2->rst_stream(r.conn.requests[0], http2::kInternalError));
        r.run();
        CHECK(r.io.aborted);
    }
}

TEST_CASE("edge public: chunked upload and download of MiBs, flow-controlled both ways") {
    TunnelOptions o;
    o.h2.stream_window = 65535;
    o.stream_send_buffer = 16384;
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(o, relayed);
        constexpr uint64_t kUp = 2 << 20;
        constexpr uint64_t kDown = 2 << 20;
        r.conn.on_end_hook = [&](int32_t id) {
            r.conn.respond(id, 200, {}, true);
            auto& s = r.conn.streams[id];
            s.gen_seed = 3;
            s.gen_left = kDown;
            s.out_end = true;
            REQUIRE(r.conn.h2->resume_data(id));
        };
        r.pub->feed(
            "POST /up HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
        uint64_t sent = 0;
        size_t max_out = 0;
        // The connector reads nothing at first: the client must be paused, its bytes held bounded.
        r.conn.auto_consume = false;
        int paused = 0;
        for (int round = 0; round < 200000; round++) {
            // The client writes while the session wants input.
            if (sent < kUp && r.pub->wants_input()) {
                std::string chunk;
                size_t n = static_cast<size_t>(std::min<uint64_t>(8000, kUp - sent));
                std::string data(n, '\0');
                for (size_t i = 0; i < n; i++) {
                    data[i] = gen_byte(5, sent + i);
                }
                http1::write_chunk(chunk, data);
                sent += n;
                if (sent == kUp) {
                    REQUIRE(http1::write_last_chunk(chunk));
                }
                r.pub->feed(chunk);
            } else if (sent < kUp) {
                paused++;
                CHECK(sent < (1 << 20));  // windows + buffers, not the whole body
                if (!r.conn.auto_consume) {
                    r.conn.auto_consume = true;
                    r.conn.consume_all(r.conn.requests.at(0));
                }
            }
            r.step(20);
            // The client reads slowly: every other round it is "not writable".
            max_out = std::max(max_out, r.io.out.size());
            r.io.is_writable = round % 2 == 0;
            if (r.io.is_writable) {
                r.pub->on_writable();
            }
            if (r.edge->open_streams() == 0 && sent == kUp) {
                break;
            }
        }
        r.io.is_writable = true;
        r.pub->on_writable();
        r.run();
        CHECK(paused > 0);  // the tunnel pushed back on the client
        auto& up = r.conn.streams.at(r.conn.requests.at(0));
        CHECK(up.body_bytes == kUp);
        Fnv want;
        for (uint64_t i = 0; i < kUp; i++) {
            char c = gen_byte(5, i);
            want.add(std::string_view(&c, 1));
        }
        CHECK(up.hash.h == want.h);
        http1::ResponseParser p;
        std::string_view out = r.io.out;
        Fnv got;
        uint64_t got_n = 0;
        bool done = false;
        for (;;) {
            auto s = p.feed(out);
            out.remove_prefix(p.consumed());
            if (s == http1::Step::Body) {
                got.add(p.body());
                got_n += p.body().size();
            } else if (s == http1::Step::MessageDone) {
                done = true;
                break;
            } else if (s == http1::Step::NeedMore || s == http1::Step::Error) {
                break;
            }
        }
        CHECK(done);
        CHECK(got_n == kDown);
        CHECK(got.h == gen_hash(3, kDown));
        // Across cores: one stream window down, one relay window up, never the whole body.
        CHECK(r.bus.max_bytes <= 65535 + (64 << 10));
    }
}

TEST_CASE("edge public: a client leaving mid-request resets the stream") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.pub->feed("POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 100\r\n\r\nabc");
        r.run();
        REQUIRE(r.conn.requests.size() == 1);
        r.pub->feed_eof();
        r.run();
        CHECK(r.io.aborted);
        CHECK(r.conn.streams[r.conn.requests[0]].closed);
        CHECK(r.conn.streams[r.conn.requests[0]].close_code == http2::kCancel);
        CHECK(r.edge->open_streams() == 0);
    }
}

TEST_CASE(
    "edge public: an early answer to an unfinished upload ends the stream and the connection") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.conn.on_request_hook = [&](int32_t id) {
            r.conn.respond(id, 413, {{"Content-Length", "4"}}, true);
            r.conn.write(id, "big!", true);
        };
        r.pub->feed("POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 100000\r\n\r\nab");
        r.run();
        Responses res = parse_responses(r.io.out);
        REQUIRE(res.heads.size() == 1);
        CHECK(res.heads[0].status == 413);
        CHECK(res.bodies[0] == "big!");
        CHECK(r.io.closed_after_flush);
        CHECK(r.edge->open_streams() == 0);  // not left half-open on the tunnel
    }
}

TEST_CASE("edge public: an HTTP/1.0 client gets a body delimited by the close") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.conn.on_request_hook = [&](int32_t id) {
            r.conn.respond(id, 200, {}, true);
            r.conn.write(id, "one", false);
        };
        r.pub->feed("GET / HTTP/1.0\r\nHost: app.example.com\r\n\r\n");
        r.run();
        REQUIRE(r.conn.requests.size() == 1);
        r.conn.write(r.conn.requests[0], "two", true);
        r.run();
        CHECK(r.io.out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CHECK(r.io.out.find("Transfer-Encoding") == std::string::npos);
        CHECK(r.io.out.substr(r.io.out.size() - 6) == "onetwo");
        CHECK(r.io.closed_after_flush);
    }
}

TEST_CASE("edge public: a request fed one byte at a time, and random garbage, never crash") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.conn.on_end_hook = [&](int32_t id) {
            r.conn.respond(id, 200, {{"Content-Length", "2"}}, true);
            r.conn.write(id, "ok", true);
        };
        std::string req = "POST /a HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked"
                          "\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for (char ch : req) {
            r.pub->feed(std::string_view(&ch, 1));
            r.run();
        }
        Responses res = parse_responses(r.io.out);
        REQUIRE(res.heads.size() == 1);
        CHECK(res.bodies[0] == "ok");
        CHECK(r.conn.streams[r.conn.requests.at(0)].body == "abc");

        uint64_t x = 0x2545f4914f6cdd1dull;
        for (int round = 0; round < 200; round++) {
            Io io;
            PublicSession s(r.router, io);
            std::string junk = round % 2 ? "GET / HTTP/1.1\r\nHost: app.example.com\r\n" : "";
            for (int i = 0; i < 300; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                junk.push_back(static_cast<char>(x));
            }
            s.feed(junk);
            s.feed_eof();
            r.run();
            // Either an error status went out, or the connection is ending: never silence + open.
            CHECK((s.closing() || !io.out.empty()));
        }
        CHECK(r.edge->registered());
    }
}

TEST_CASE("edge relay: a core that lost the connection refuses the stream: 502, nothing hangs") {
    Rig r({}, true);
    r.bus.conn = nullptr;  // core 1 no longer holds a registered connection
    r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    r.run();
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 502);
    CHECK(r.conn.requests.empty());
    CHECK(r.bus.client.open_streams() == 0);
    CHECK(r.bus.server.open_streams() == 0);
}

TEST_CASE("edge relay: streams end on both cores, whichever side ends them") {
    Rig r({}, true);
    r.conn.on_end_hook = [&](int32_t id) {
        r.conn.respond(id, 200, {{"Content-Length", "2"}}, true);
        r.conn.write(id, "ok", true);
    };
    for (int i = 0; i < 20; i++) {
        r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
        r.run();
    }
    CHECK(parse_responses(r.io.out).bodies.size() == 20);
    CHECK(r.bus.client.open_streams() == 0);
    CHECK(r.bus.server.open_streams() == 0);
    CHECK(r.edge->open_streams() == 0);
    // The client leaves in the middle of an upload: the reset crosses, the tunnel stream ends.
    r.conn.on_end_hook = nullptr;
    r.pub->feed("POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 9\r\n\r\nab");
    r.run();
    CHECK(r.bus.server.open_streams() == 1);
    r.pub.reset();
    r.run();
    CHECK(r.bus.client.open_streams() == 0);
    CHECK(r.bus.server.open_streams() == 0);
    CHECK(r.edge->open_streams() == 0);
}

namespace {

struct PairRig {
    Replica a, b;
    PairRouter router;
    Io io;
    std::unique_ptr<PublicSession> pub;
    PairRig() {
        router.table.add("app.example.com", Uuid::random());
        router.r[0] = &a;
        router.r[1] = &b;
        pub = std::make_unique<PublicSession>(router, io);
        b.conn.on_end_hook = [this](int32_t id) {
            b.conn.respond(id, 200, {{"Content-Length", "6"}}, true);
            b.conn.write(id, "from b", true);
        };
    }
    ~PairRig() { pub.reset(); }
    void run() {
        for (int i = 0; i < 8; i++) {
            REQUIRE(pump(*a.edge, a.conn));
            REQUIRE(pump(*b.edge, b.conn));
        }
    }
};

}  // namespace

TEST_CASE("edge retry: a stream refused before its response is served by another connector") {
    PairRig r;
    r.a.conn.on_request_hook = [&](int32_t id) {
        REQUIRE(r.a.conn.h2->rst_stream(id, http2::kRefusedStream));
    };
    r.pub->feed("GET /x HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    r.run();
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 200);
    CHECK(res.bodies[0] == "from b");
    CHECK(r.a.conn.requests.size() == 1);
    CHECK(r.b.conn.requests.size() == 1);
    CHECK(r.router.retries == 1);
    CHECK(r.pub->retries() == 1);
    CHECK(!r.io.closed_after_flush);  // kept alive: the client never saw the failure
}

TEST_CASE("edge retry: a connection lost before the response; a PUT body goes again whole") {
    PairRig r;
    r.a.conn.on_end_hook = [&](int32_t) { r.a.edge->close("link lost"); };
    r.pub->feed("PUT /doc HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 11\r\n\r\n"
                "hello world");
    r.run();
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 200);
    REQUIRE(r.b.conn.requests.size() == 1);
    CHECK(r.b.conn.streams[r.b.conn.requests[0]].body == "hello world");
    CHECK(r.pub->retries() == 1);
}

TEST_CASE("edge retry: a POST whose body went to the tunnel is not sent twice: 502") {
    PairRig r;
    r.a.conn.on_end_hook = [&](int32_t id) {
        REQUIRE(r.a.conn.h2->rst_stream(id, http2::kInternalError));
    };
    r.pub->feed("POST /pay HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\n\r\nabc");
    r.run();
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 502);
    CHECK(r.b.conn.requests.empty());
    CHECK(r.pub->retries() == 0);
}

TEST_CASE("edge retry: after the response began, a lost link aborts the client; no retry") {
    PairRig r;
    r.a.conn.on_request_hook = [&](int32_t id) {
        r.a.conn.respond(id, 200, {{"Content-Length", "100"}}, true);
        r.a.conn.write(id, "part", false);
    };
    r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    r.run();
    REQUIRE(r.io.out.find("part") != std::string::npos);
    r.a.edge->close("link lost");
    r.a.edge->flush();
    CHECK(r.io.aborted);
    CHECK(r.b.conn.requests.empty());
}

TEST_CASE("edge retry: at most kMaxAttempts streams, then 502") {
    PairRig r;
    r.b.conn.on_end_hook = nullptr;
    for (Replica* x : {&r.a, &r.b}) {
        x->conn.on_request_hook = [x](int32_t id) {
            REQUIRE(x->conn.h2->rst_stream(id, http2::kRefusedStream));
        };
    }
    r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    r.run();
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 502);
    CHECK(r.a.conn.requests.size() + r.b.conn.requests.size() == PublicSession::kMaxAttempts);
}

TEST_CASE("edge wait: a request for an expected tunnel waits for its connection, then is served") {
    Rig r;
    WaitRouter wr(r.router);
    r.conn.on_end_hook = [&](int32_t id) {
        r.conn.respond(id, 200, {{"Content-Length", "2"}}, true);
        r.conn.write(id, "ok", true);
    };
    Io io;
    PublicSession s(wr, io);
    s.feed("PUT /w HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 5\r\n\r\nhello");
    r.run();
    CHECK(s.waiting());
    CHECK(io.out.empty());
    s.route_again(false);  // routes changed, still nothing: it waits on
    CHECK(s.waiting());
    wr.arrived = true;
    s.route_again(false);
    r.run();
    CHECK(!s.waiting());
    Responses res = parse_responses(io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 200);
    REQUIRE(r.conn.requests.size() == 1);
    CHECK(r.conn.streams[r.conn.requests[0]].body == "hello");  // the held body followed
}

TEST_CASE("edge wait: when the wait is over without a connection, 530") {
    Rig r;
    struct WaitRouter : PublicRouter {
        RouteTable* table = nullptr;
        RouteResult route(std::string_view host, std::span<const Uuid>) override {
            return table->resolve(host) ? RouteResult{RouteResult::Kind::Wait, nullptr, {}}
                                        : RouteResult{};
        }
    } wr;
    wr.table = &r.router.table;
    Io io;
    PublicSession s(wr, io);
    s.feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    CHECK(s.waiting());
    s.route_again(true);
    Responses res = parse_responses(io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 530);
    CHECK(!s.waiting());
}

TEST_CASE("edge retry: a POST refused by its stream (never processed) goes again, body and all") {
    PairRig r;
    r.a.conn.on_end_hook = [&](int32_t id) {
        REQUIRE(r.a.conn.h2->rst_stream(id, http2::kRefusedStream));
    };
    r.pub->feed("POST /pay HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\n\r\nabc");
    r.run();
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 200);
    REQUIRE(r.b.conn.requests.size() == 1);
    CHECK(r.b.conn.streams[r.b.conn.requests[0]].body == "abc");
    CHECK(r.pub->retries() == 1);
}

TEST_CASE("edge websocket: the upgrade goes down the tunnel marked, 200 becomes 101, bytes flow") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.conn.on_request_hook = [&](int32_t id) {
            r.conn.respond(id, 200, {{"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}},
                           true);
            r.conn.write(id, "server-frame", false);
        };
        r.pub->feed("GET /chat HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\nclient-frame-1");
        r.run();
        REQUIRE(r.conn.requests.size() == 1);
        auto& st = r.conn.streams[r.conn.requests[0]];
        CHECK(http2::header_value(st.request, http2::kUpgradeHeader) == "websocket");
        CHECK(http2::header_value(st.request, "sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ==");
        CHECK(r.io.out.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
        CHECK(r.io.out.find("Upgrade: websocket\r\n") != std::string::npos);
        CHECK(r.io.out.find("Connection: Upgrade\r\n") != std::string::npos);
        CHECK(r.io.out.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
              std::string::npos);
        CHECK(r.io.out.find("Transfer-Encoding") == std::string::npos);
        CHECK(r.io.out.substr(r.io.out.size() - 12) == "server-frame");
        CHECK(st.body == "client-frame-1");
        // More both ways, then the client leaves: the stream's body ends; the origin's end
        // closes the connection.
        r.pub->feed("client-frame-2");
        r.conn.write(r.conn.requests[0], "server-frame-2", false);
        r.run();
        CHECK(st.body == "client-frame-1client-frame-2");
        CHECK(r.io.out.substr(r.io.out.size() - 14) == "server-frame-2");
        r.pub->feed_eof();
        r.run();
        CHECK(st.ended);
        CHECK(!r.io.closed_after_flush);
        r.conn.write(r.conn.requests[0], "", true);
        r.run();
        CHECK(r.io.closed_after_flush);
        CHECK(!r.io.aborted);
        CHECK(r.edge->open_streams() == 0);
    }
}

TEST_CASE("edge websocket: a refused upgrade is an ordinary answer; other upgrades are 501") {
    Rig r;
    r.conn.on_request_hook = [&](int32_t id) {
        r.conn.respond(id, 403, {{"Content-Length", "2"}}, true);
        r.conn.write(id, "no", true);
    };
    r.pub->feed("GET /chat HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n\r\n");
    r.run();
    Responses res = parse_responses(r.io.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 403);
    CHECK(res.bodies[0] == "no");
    CHECK(r.io.closed_after_flush);

    Io io2;
    PublicSession h2c(r.router, io2);
    h2c.feed("GET / HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n");
    res = parse_responses(io2.out);
    REQUIRE(res.heads.size() == 1);
    CHECK(res.heads[0].status == 501);
}

TEST_CASE("edge public: the client's address goes on as Cf-Connecting-IP and X-Forwarded-*") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        r.pub->set_client("203.0.113.7", "http");
        r.conn.on_end_hook = [&](int32_t id) {
            r.conn.respond(id, 204, {}, false);
        };
        // A client claiming an address of its own: believed only as a hop of the chain.
        r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 10.0.0.1\r\n"
                    "Cf-Connecting-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n");
        r.run();
        REQUIRE(r.conn.requests.size() == 1);
        const auto& h = r.conn.streams[r.conn.requests[0]].request;
        CHECK(http2::header_value(h, "x-forwarded-for") == "10.0.0.1, 203.0.113.7");
        CHECK(http2::header_value(h, "cf-connecting-ip") == "203.0.113.7");
        CHECK(http2::header_value(h, "x-forwarded-proto") == "http");
        int ips = 0;
        for (const auto& f : h) {
            ips += f.name == "cf-connecting-ip" ? 1 : 0;
        }
        CHECK(ips == 1);
    }
}

TEST_CASE("edge raw tcp: a listener's client becomes a raw TCP stream; bytes flow both ways") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r({}, relayed);
        Io io;
        RawSession raw(r.router, io, "app.example.com:2222", "198.51.100.7:50123");
        raw.feed("early");  // before the origin connected: held
        raw.start();
        r.run();
        REQUIRE(r.conn.requests.size() == 1);
        int32_t id = r.conn.requests[0];
        auto& st = r.conn.streams[id];
        CHECK(http2::header_value(st.request, http2::kProxySrcHeader) == "198.51.100.7:50123");
        CHECK(http2::header_value(st.request, ":authority") == "app.example.com:2222");
        CHECK(st.body.empty());
        r.conn.respond(id, 200, {}, true);
        r.run();
        CHECK(st.body == "early");
        raw.feed(" and more");
        r.conn.write(id, "from origin", false);
        r.run();
        CHECK(st.body == "early and more");
        CHECK(io.out == "from origin");
        raw.feed_eof();
        r.run();
        CHECK(st.ended);
        r.conn.write(id, "!", true);
        r.run();
        CHECK(io.out == "from origin!");
        CHECK(io.closed_after_flush);
        CHECK(!io.aborted);
    }
}

TEST_CASE("edge raw tcp: no rule or an unreachable origin closes the client at once") {
    Rig r;
    r.conn.on_request_hook = [&](int32_t id) {
        r.conn.respond(id, 502, {{"Content-Length", "0"}}, false);
    };
    Io io;
    RawSession raw(r.router, io, "app.example.com:2222", "198.51.100.7:50123");
    raw.start();
    r.run();
    CHECK(io.aborted);
    CHECK(io.out.empty());
    Io io2;
    RawSession nowhere(r.router, io2, "unknown.example.org:22", "198.51.100.7:50124");
    nowhere.start();
    CHECK(io2.aborted);
}
