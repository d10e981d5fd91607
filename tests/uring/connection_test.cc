#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "echo_handlers.h"
#include "uring_util.h"

using namespace cfd;
using namespace cfd::test;
using cfd::net::Connection;
using cfd::net::Listener;
using cfd::net::SockAddr;

TEST_CASE("uring: TCP echo of many connections on one reactor" * doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    EchoServer server;
    auto l = Listener::open(*r, SockAddr::loopback_v4(0), &server);
    REQUIRE(l);
    uint16_t port = (*l)->port();
    REQUIRE(port != 0);

    constexpr int kConns = 32;
    constexpr uint64_t kBytes = 512 * 1024;
    std::vector<std::unique_ptr<EchoClient>> clients;
    for (int i = 0; i < kConns; ++i) {
        auto cl = std::make_unique<EchoClient>();
        cl->seed = uint64_t(i);
        cl->total = kBytes + uint64_t(i) * 777;  // uneven sizes: partial chunks everywhere
        auto c = Connection::connect(*r, SockAddr::loopback_v4(port), Millis(5000), cl.get());
        REQUIRE(c);
        clients.push_back(std::move(cl));
    }
    bool done = run_until(*r, [&] {
        for (auto& c : clients) {
            if (!c->closed) {
                return false;
            }
        }
        return server.closed == kConns;
    });
    CHECK(done);
    uint64_t echoed = 0;
    for (auto& c : clients) {
        CHECK(c->connected);
        CHECK(!c->mismatch);
        CHECK(c->received == c->total);
        CHECK(c->reason.code == Errc::Ok);
        echoed += c->received;
    }
    CHECK(echoed == uint64_t(kConns) * kBytes + 777ull * (kConns - 1) * kConns / 2);
    CHECK(server.accepted == kConns);
    // Everything is back: no connection left, no buffer on loan.
    CHECK(run_until(*r, [&] { return r->live_objects() == 1; }));
    CHECK(r->buffers_out() == 0);
    CHECK(r->stats().stale_cqes == 0);
    (*l)->close();
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

TEST_CASE("uring: IPv6 loopback echo" * doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    auto any6 = SockAddr::parse("[::1]:0");
    REQUIRE(any6);
    EchoServer server;
    auto l = Listener::open(*r, *any6, &server);
    if (!l) {
        MESSAGE("no IPv6 loopback here: " << l.error().message());
        return;
    }
    EchoClient cl;
    cl.total = 100000;
    auto c = Connection::connect(*r, any6->with_port((*l)->port()), Millis(5000), &cl);
    REQUIRE(c);
    CHECK(run_until(*r, [&] { return cl.closed; }));
    CHECK(cl.received == cl.total);
    CHECK(!cl.mismatch);
    (*l)->close();
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

namespace {

// Produces pattern bytes as long as the connection is writable; counts pauses and resumes.
struct Producer : net::ConnHandler {
    uint64_t total = 0;
    uint64_t produced = 0;
    int resumes = 0;
    size_t max_queued = 0;
    bool closed = false;
    void pump(Connection& c) {
        uint8_t buf[8192];
        while (produced < total && c.writable()) {
            size_t n = std::min<uint64_t>(sizeof(buf), total - produced);
            fill_pattern(7, produced, buf, n);
            if (!c.send({buf, n})) {
                break;
            }
            produced += n;
            max_queued = std::max(max_queued, c.queued());
        }
    }
    void on_resume(Connection& c) override {
        ++resumes;
        pump(c);
    }
    void on_recv(Connection&, net::LentBuf) override {}
    void on_close(Connection&, Error) override { closed = true; }
};

}  // namespace

TEST_CASE("uring: a slow reader pauses the writer, memory stays bounded" *
          doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    FdCollector acc;
    auto l = Listener::open(*r, SockAddr::loopback_v4(0), &acc);
    REQUIRE(l);
    int peer = raw_connect((*l)->port());
    REQUIRE(peer >= 0);
    set_small_buffers(peer, 64 * 1024);
    REQUIRE(run_until(*r, [&] { return !acc.fds.empty(); }));
    set_small_buffers(acc.fds[0], 64 * 1024);

    net::ConnOptions o;
    o.out_cap = 256 * 1024;
    o.high_water = 128 * 1024;
    o.low_water = 32 * 1024;
    Producer p;
    p.total = 32ull << 20;
    auto c = Connection::adopt(*r, acc.fds[0], &p, o);
    REQUIRE(c);
    p.pump(**c);

    // The peer reads nothing: the queue fills to the high watermark and the producer stops.
    // Wait until it is paused and stays stuck (the socket buffers are full too).
    uint64_t last = ~0ull;
    int still = 0;
    REQUIRE(run_until(*r, [&] {
        if ((*c)->writable()) {
            still = 0;
            return false;
        }
        still = p.produced == last ? still + 1 : 0;
        last = p.produced;
        return still >= 50;
    }));
    // Bounded: out_cap plus what the two small socket buffers hold, far below the total.
    CHECK(p.produced <= o.out_cap + (4u << 20));
    CHECK(p.produced < p.total);
    CHECK(p.max_queued <= o.out_cap);
    CHECK((*c)->queued() <= o.out_cap);
    // A send beyond the cap is refused, never queued.
    std::vector<uint8_t> big(o.out_cap + 1);
    auto refused = (*c)->send(big);
    REQUIRE(!refused);
    CHECK(refused.error().code == Errc::Busy);

    // Now the reader reads: the producer resumes and every byte arrives in order.
    set_nonblocking(peer);
    uint64_t got = 0;
    bool bad = false;
    std::vector<uint8_t> buf(65536);
    bool all = run_until(*r, [&] {
        for (;;) {
            ssize_t n = ::read(peer, buf.data(), buf.size());
            if (n <= 0) {
                break;
            }
            for (ssize_t i = 0; i < n; ++i) {
                bad = bad || buf[size_t(i)] != pattern(7, got + uint64_t(i));
            }
            got += uint64_t(n);
        }
        return got == p.total;
    });
    CHECK(all);
    CHECK(!bad);
    CHECK(p.resumes > 0);
    CHECK(p.max_queued <= o.out_cap);
    (*c)->close();
    CHECK(run_until(*r, [&] { return p.closed; }));
    ::close(peer);
    (*l)->close();
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

namespace {

// Keeps every chunk it receives until told to let go; copies bytes out afterwards.
struct Holder : net::ConnHandler {
    bool hold = true;
    std::vector<net::LentBuf> held;
    std::vector<uint8_t> data;
    bool eof = false;
    bool closed = false;
    void on_recv(Connection&, net::LentBuf b) override {
        data.insert(data.end(), b.data(), b.data() + b.size());
        if (hold) {
            held.push_back(std::move(b));
        }
    }
    void on_eof(Connection&) override { eof = true; }
    void on_close(Connection&, Error) override { closed = true; }
};

}  // namespace

TEST_CASE("uring: ENOBUFS pauses recv until buffers come back, no byte lost" *
          doctest::skip(!uring_ok())) {
    reactor::ReactorOptions ro;
    ro.buf_count = 4;
    ro.buf_chunk = 4096;
    auto r = make_reactor(ro);
    REQUIRE(r);
    FdCollector acc;
    auto l = Listener::open(*r, SockAddr::loopback_v4(0), &acc);
    REQUIRE(l);
    int peer = raw_connect((*l)->port());
    REQUIRE(peer >= 0);
    REQUIRE(run_until(*r, [&] { return !acc.fds.empty(); }));
    Holder h;
    net::ConnOptions o;
    o.buf_quota = 1000;  // so that the ring, not the quota, runs dry
    auto c = Connection::adopt(*r, acc.fds[0], &h, o);
    REQUIRE(c);

    std::vector<uint8_t> msg(256 * 1024);
    fill_pattern(3, 0, msg.data(), msg.size());
    // The socket buffers absorb what the ring cannot: write from a helper thread? No: the
    // kernel buffers on loopback hold 256 KiB comfortably, so a blocking write returns.
    set_small_buffers(peer, 1 << 20);
    REQUIRE(::write(peer, msg.data(), msg.size()) == ssize_t(msg.size()));
    ::shutdown(peer, SHUT_WR);

    REQUIRE(run_until(*r, [&] { return ((*c)->blocked() & Connection::NoBufs) != 0; }));
    CHECK(h.held.size() == 4);
    CHECK(r->buffers_out() == 4);
    CHECK(r->stats().enobufs_waits >= 1);
    h.hold = false;
    h.held.clear();  // the loans come back: recv re-arms
    CHECK(run_until(*r, [&] { return h.eof; }));
    CHECK(h.data == msg);
    CHECK(r->buffers_out() == 0);
    (*c)->close();
    CHECK(run_until(*r, [&] { return h.closed; }));
    ::close(peer);
    (*l)->close();
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

TEST_CASE("uring: the per-connection buffer quota pauses recv and resumes" *
          doctest::skip(!uring_ok())) {
    reactor::ReactorOptions ro;
    ro.buf_count = 64;
    ro.buf_chunk = 4096;
    auto r = make_reactor(ro);
    REQUIRE(r);
    FdCollector acc;
    auto l = Listener::open(*r, SockAddr::loopback_v4(0), &acc);
    REQUIRE(l);
    int peer = raw_connect((*l)->port());
    REQUIRE(peer >= 0);
    REQUIRE(run_until(*r, [&] { return !acc.fds.empty(); }));
    Holder h;
    net::ConnOptions o;
    o.buf_quota = 4;
    auto c = Connection::adopt(*r, acc.fds[0], &h, o);
    REQUIRE(c);
    std::vector<uint8_t> msg(200 * 1024);
    fill_pattern(4, 0, msg.data(), msg.size());
    set_small_buffers(peer, 1 << 20);
    REQUIRE(::write(peer, msg.data(), msg.size()) == ssize_t(msg.size()));
    ::shutdown(peer, SHUT_WR);
    REQUIRE(run_until(*r, [&] { return ((*c)->blocked() & Connection::BufQuota) != 0; }));
    // Paused: the holder keeps about its quota (CQEs already posted may add a few), not 64.
    for (int i = 0; i < 10; ++i) {
        r->run_once(Millis(1));
    }
    CHECK(h.held.size() >= 4);
    CHECK(h.held.size() < 64);
    CHECK(r->buffers_out() == h.held.size());
    h.hold = false;
    h.held.clear();
    CHECK(run_until(*r, [&] { return h.eof; }));
    CHECK(h.data == msg);
    (*c)->close();
    CHECK(run_until(*r, [&] { return h.closed; }));
    ::close(peer);
    (*l)->close();
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

TEST_CASE("uring: connect to a Unix domain socket" * doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    std::string path = "/tmp/cfd-uring-test-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    auto addr = SockAddr::unix_path(path);
    REQUIRE(addr);
    CHECK(addr->str() == "unix:" + path);
    CHECK(!SockAddr::unix_path(""));
    CHECK(!SockAddr::unix_path(std::string(200, 'x')));
    int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::bind(lfd, addr->get(), addr->len()) == 0);
    REQUIRE(::listen(lfd, 4) == 0);

    EchoClient cl;
    cl.total = 10000;
    auto c = Connection::connect(*r, *addr, Millis(5000), &cl);
    REQUIRE(c);
    REQUIRE(run_until(*r, [&] { return cl.connected; }));
    int peer = ::accept(lfd, nullptr, nullptr);  // connected already: does not block
    REQUIRE(peer >= 0);
    set_nonblocking(peer);
    std::vector<uint8_t> buf(cl.total);
    size_t got = 0;
    // Echo by hand from this thread while the reactor turns.
    CHECK(run_until(*r, [&] {
        ssize_t n = ::read(peer, buf.data() + got, buf.size() - got);
        if (n > 0) {
            REQUIRE(::write(peer, buf.data() + got, size_t(n)) == n);
            got += size_t(n);
        }
        return cl.closed;
    }));
    CHECK(cl.received == cl.total);
    CHECK(!cl.mismatch);
    ::close(peer);
    ::close(lfd);
    ::unlink(path.c_str());
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}
