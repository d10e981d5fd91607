// The glue end to end on a real reactor and real loopback sockets: an EdgeLink dials an in-test
// edge (the real TLS server, HTTP/2 client and RPC server of edge_peer.h, driven by a
// Connection), registers, and proxies requests to a tiny HTTP/1.1 origin listener through the
// per-core origin pool. Skipped where the kernel refuses io_uring.
#include <doctest/doctest.h>

#include <chrono>

#include "../../uring/uring_util.h"
#include "cfd/connector/edge_link.h"
#include "cfd/http1/parser.h"
#include "edge_peer.h"

using namespace cfd;
using namespace cfd::connector;
using namespace cfd::connector::test;
using cfd::test::make_reactor;
using cfd::test::run_until;
using cfd::test::uring_ok;

namespace {

std::string_view view(const net::LentBuf& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The edge: accepts connector connections, each driven by a fresh EdgePeer.
struct EdgeSide : net::AcceptHandler, net::ConnHandler {
    std::unique_ptr<EdgePeer> peer;
    net::Connection* conn = nullptr;
    int accepted = 0;
    int closed = 0;

    void on_accept(net::Listener& l, int fd) override {
        peer = std::make_unique<EdgePeer>();
        auto c = net::Connection::adopt(l.reactor(), fd, this);
        REQUIRE(c);
        conn = *c;
        accepted++;
    }
    void on_recv(net::Connection&, net::LentBuf b) override {
        peer->feed(view(b));
        kick();
    }
    void kick() {
        if (conn == nullptr) {
            return;
        }
        peer->pump();
        auto out = peer->tls->pending_output();
        if (!out.empty()) {
            REQUIRE(conn->send(std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(out.data()), out.size())));
            peer->tls->consume_output(out.size());
        }
    }
    void on_close(net::Connection&, Error) override {
        conn = nullptr;
        closed++;
    }
};

// A keep-alive HTTP/1.1 origin: answers every request with "origin saw <target>".
struct OriginSide : net::AcceptHandler {
    struct Conn : net::ConnHandler {
        OriginSide* side = nullptr;
        http1::RequestParser parser;
        std::string pending;
        void on_recv(net::Connection& c, net::LentBuf b) override {
            pending.append(view(b));
            std::string_view in = pending;
            for (;;) {
                auto st = parser.feed(in);
                in.remove_prefix(parser.consumed());
                if (st == http1::Step::NeedMore) {
                    break;
                }
                if (st == http1::Step::Body) {
                    side->body_bytes += parser.body().size();
                    continue;
                }
                if (st == http1::Step::MessageDone) {
                    std::string body = "origin saw " + parser.head().target;
                    std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                       "Content-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n" + body;
                    REQUIRE(c.send(std::span<const uint8_t>(
                        reinterpret_cast<const uint8_t*>(resp.data()), resp.size())));
                    side->requests++;
                    continue;
                }
                if (st == http1::Step::Error) {
                    c.close();
                    return;
                }
            }
            pending.erase(0, pending.size() - in.size());
        }
        void on_close(net::Connection&, Error) override { delete this; }
    };
    int accepted = 0;
    int requests = 0;
    uint64_t body_bytes = 0;
    void on_accept(net::Listener& l, int fd) override {
        auto* h = new Conn;
        h->side = this;
        auto c = net::Connection::adopt(l.reactor(), fd, h);
        if (!c) {
            delete h;
            return;
        }
        accepted++;
    }
};

struct World {
    std::unique_ptr<reactor::Reactor> r = make_reactor();
    EdgeSide edge;
    OriginSide origin;
    net::Listener* edge_l = nullptr;
    net::Listener* origin_l = nullptr;
    tls::Context ctx = client_ctx();
    std::unique_ptr<SingleRouter> router;
    std::unique_ptr<OriginPool> pool;
    ConnectorStats stats;
    std::unique_ptr<EdgeLink> link;

    explicit World(bool origin_up = true) {
        REQUIRE(r);
        auto e = net::Listener::open(*r, net::SockAddr::loopback_v4(0), &edge);
        REQUIRE(e);
        edge_l = *e;
        auto o = net::Listener::open(*r, net::SockAddr::loopback_v4(0), &origin);
        REQUIRE(o);
        origin_l = *o;
        uint16_t origin_port = origin_l->port();
        if (!origin_up) {
            origin_l->close();  // the port is free now: connections are refused
        }
        auto svc = parse_origin_url("http://127.0.0.1:" + std::to_string(origin_port));
        REQUIRE(svc);
        svc->connect_timeout = Millis(2000);
        router = std::make_unique<SingleRouter>(*svc);
        pool = std::make_unique<OriginPool>(*r);
        EdgeLinkConfig cfg;
        cfg.edge = net::SockAddr::loopback_v4(edge_l->port());
        cfg.backoff = net::BackoffPolicy{Millis(5), Millis(20)};
        link = std::make_unique<EdgeLink>(*r, *pool, ctx, *router, sample_identity(1), cfg,
                                          stats);
        link->start();
    }
    ~World() {
        link->stop();
        run_until(*r, [&] { return link->state() == EdgeLink::State::Stopped; });
        r->request_stop();
        r->run();
    }
    bool registered() {
        return run_until(*r, [&] { return stats.registered.load() == 1; });
    }
    int32_t get(std::string_view path) {
        std::vector<http2::HeaderView> hv{{":method", "GET"},
                                          {":scheme", "http"},
                                          {":authority", "app.example.com"},
                                          {":path", path}};
        int32_t id = edge.peer->request(hv);
        edge.kick();
        return id;
    }
    bool done(int32_t id) {
        return run_until(*r, [&] { return edge.peer->streams[id].closed; });
    }
};

}  // namespace

TEST_CASE("edge link: registers over loopback and proxies requests to a pooled origin" *
          doctest::skip(!uring_ok())) {
    World w;
    REQUIRE(w.registered());
    REQUIRE(w.edge.peer->registrations.size() == 1);
    CHECK(w.edge.peer->registrations[0].conn_index == 1);
    // The origin IP is this socket's local address: loopback.
    CHECK(w.edge.peer->registrations[0].options.origin_local_ip == std::string("\x7f\0\0\x01", 4));

    int32_t a = w.get("/first");
    REQUIRE(w.done(a));
    CHECK(w.edge.peer->streams[a].status == 200);
    CHECK(w.edge.peer->streams[a].body == "origin saw /first");
    CHECK(http2::header_value(w.edge.peer->streams[a].headers, http2::kResponseMeta) ==
          http2::kMetaOrigin);

    int32_t b = w.get("/second");
    REQUIRE(w.done(b));
    CHECK(w.edge.peer->streams[b].body == "origin saw /second");
    // Keep-alive: the second request reused the first origin connection.
    CHECK(w.origin.accepted == 1);
    CHECK(w.origin.requests == 2);
    CHECK(w.pool->reuses() == 1);
    CHECK(w.pool->idle(0) == 1);
}

TEST_CASE("edge link: an unreachable origin is a 502 from cloudflared" *
          doctest::skip(!uring_ok())) {
    World w(false);
    REQUIRE(w.registered());
    int32_t a = w.get("/");
    REQUIRE(w.done(a));
    CHECK(w.edge.peer->streams[a].status == 502);
    CHECK(http2::header_value(w.edge.peer->streams[a].headers, http2::kResponseMeta) ==
          http2::kMetaCloudflared);
}

TEST_CASE("edge link: a lost edge connection reconnects and registers again" *
          doctest::skip(!uring_ok())) {
    World w;
    REQUIRE(w.registered());
    REQUIRE(w.edge.conn != nullptr);
    w.edge.conn->close();
    REQUIRE(run_until(*w.r, [&] { return w.edge.accepted == 2 && w.stats.registered == 1; }));
    CHECK(w.stats.ever_registered == 2);
    // The new connection serves.
    int32_t a = w.get("/again");
    REQUIRE(w.done(a));
    CHECK(w.edge.peer->streams[a].body == "origin saw /again");
}

TEST_CASE("edge link: drain unregisters, closes and does not reconnect" *
          doctest::skip(!uring_ok())) {
    World w;
    REQUIRE(w.registered());
    w.link->drain();
    REQUIRE(run_until(*w.r, [&] { return w.link->state() == EdgeLink::State::Stopped; }));
    CHECK(w.edge.peer->unregistrations == 1);
    CHECK(w.stats.unregistered == 1);
    CHECK(w.stats.registered == 0);
    CHECK(w.stats.closed_for_good == 1);
    CHECK(w.edge.accepted == 1);
}

TEST_CASE("edge link: a permanent refusal is counted and retried only after the cap" *
          doctest::skip(!uring_ok())) {
    World w;
    // The first connection's peer is made in on_accept; refuse from the start by swapping the
    // policy as soon as it exists.
    REQUIRE(run_until(*w.r, [&] { return w.edge.peer != nullptr; }));
    w.edge.peer->accept.reset();
    REQUIRE(run_until(*w.r, [&] { return w.stats.permanent_refusals == 1; }));
    CHECK(w.stats.registered == 0);
    REQUIRE(run_until(*w.r, [&] { return w.link->state() == EdgeLink::State::Waiting; }));
}

TEST_CASE("edge link: drain lets a stream in flight finish before closing" *
          doctest::skip(!uring_ok())) {
    World w;
    REQUIRE(w.registered());
    std::vector<http2::HeaderView> post{{":method", "POST"},
                                        {":scheme", "http"},
                                        {":authority", "app.example.com"},
                                        {":path", "/slow"}};
    int32_t id = w.edge.peer->request(post, "part one, ", false);
    w.edge.kick();
    REQUIRE(run_until(*w.r, [&] { return w.origin.body_bytes == 10; }));
    w.link->drain();
    REQUIRE(run_until(*w.r, [&] { return w.edge.peer->unregistrations == 1; }));
    CHECK(w.link->state() == EdgeLink::State::Draining);
    w.edge.peer->write(id, "part two", true);
    w.edge.kick();
    REQUIRE(run_until(*w.r, [&] { return w.link->state() == EdgeLink::State::Stopped; }));
    CHECK(w.edge.peer->streams[id].status == 200);
    CHECK(w.edge.peer->streams[id].body == "origin saw /slow");
    CHECK(w.edge.peer->streams[id].close_code == http2::kNoError);
    CHECK(w.origin.body_bytes == 18);
}
