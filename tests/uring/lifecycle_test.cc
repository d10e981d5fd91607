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

namespace {

struct Closer : net::ConnHandler {
    int* closed = nullptr;
    Error reason{};
    bool connected = false;
    void on_connect(Connection&, Status s) override { connected = bool(s); }
    void on_recv(Connection&, net::LentBuf) override {}
    void on_close(Connection&, Error r) override {
        reason = r;
        ++*closed;
    }
};

// Fills a listen(fd, 0) socket's accept queue so that further SYNs are dropped and a connect to
// it stays pending. Returns the filler sockets (the caller closes them).
std::vector<int> fill_backlog(int lfd, uint16_t port) {
    (void)lfd;
    std::vector<int> fillers;
    for (int i = 0; i < 8; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        fillers.push_back(fd);
        if (rc == 0) {
            continue;
        }
        pollfd p{fd, POLLOUT, 0};
        // Wait (bounded) for this one to complete; if it does not, the queue is full.
        if (::poll(&p, 1, 300) == 0) {
            break;
        }
    }
    return fillers;
}

}  // namespace

TEST_CASE("uring: connections closed with operations in flight" * doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    // A peer that accepts but never reads: sends stay in flight once its buffers fill.
    FdCollector sink;
    auto l = Listener::open(*r, SockAddr::loopback_v4(0), &sink);
    REQUIRE(l);
    uint16_t port = (*l)->port();

    int closed = 0;
    constexpr int kRounds = 5;
    constexpr int kConns = 20;
    std::vector<std::unique_ptr<Closer>> handlers;
    std::vector<reactor::Handle> dead;
    for (int round = 0; round < kRounds; ++round) {
        std::vector<Connection*> conns;
        for (int i = 0; i < kConns; ++i) {
            handlers.push_back(std::make_unique<Closer>());
            handlers.back()->closed = &closed;
            auto c = Connection::connect(*r, SockAddr::loopback_v4(port), Millis(5000),
                                         handlers.back().get());
            REQUIRE(c);
            conns.push_back(*c);
        }
        // Close a third while the connect is still pending (same turn).
        for (int i = 0; i < kConns; i += 3) {
            conns[size_t(i)]->close();
        }
        REQUIRE(run_until(*r, [&] {
            for (int i = 0; i < kConns; ++i) {
                if (i % 3 != 0 && conns[size_t(i)]->state() != Connection::State::Open) {
                    return false;
                }
            }
            return true;
        }));
        // Others: a big send in flight towards a peer that does not read, recv armed.
        std::vector<uint8_t> blob(1 << 20, 0x5a);
        for (int i = 0; i < kConns; ++i) {
            if (i % 3 != 0) {
                CHECK(conns[size_t(i)]->send(blob));
            }
        }
        r->run_once(Millis(0));
        for (int i = 0; i < kConns; ++i) {
            if (i % 3 != 0) {
                dead.push_back(conns[size_t(i)]->handle());
                conns[size_t(i)]->close();
            }
        }
        CHECK(run_until(*r, [&] { return closed == (round + 1) * kConns; }));
        for (int fd : sink.fds) {
            ::close(fd);
        }
        sink.fds.clear();
    }
    CHECK(run_until(*r, [&] { return r->live_objects() == 1; }));
    CHECK(r->buffers_out() == 0);
    CHECK(r->stats().stale_cqes == 0);  // inflight counting: no CQE ever outlived its object

    // A completion carrying a dead (slot, gen) is dropped, even if the slot was reused.
    EchoClient fresh;
    fresh.total = 1000;
    EchoServer echo;
    auto l2 = Listener::open(*r, SockAddr::loopback_v4(0), &echo);
    REQUIRE(l2);
    auto c = Connection::connect(*r, SockAddr::loopback_v4((*l2)->port()), Millis(5000), &fresh);
    REQUIRE(c);
    for (auto h : dead) {
        r->submit_untracked_nop(h);
    }
    CHECK(run_until(*r, [&] { return r->stats().stale_cqes == dead.size(); }));
    CHECK(run_until(*r, [&] { return fresh.closed; }));
    CHECK(fresh.received == 1000);
    CHECK(!fresh.mismatch);
    (*l)->close();
    (*l2)->close();
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

TEST_CASE("uring: connect timeout is reported as TimedOut" * doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    net::ListenOptions lo;
    lo.backlog = 0;
    lo.reuseport = false;
    auto lfd = net::listen_socket(SockAddr::loopback_v4(0), lo);
    REQUIRE(lfd);
    auto local = net::local_address(*lfd);
    REQUIRE(local);
    std::vector<int> fillers = fill_backlog(*lfd, local->port());

    int closed = 0;
    Closer h;
    h.closed = &closed;
    auto c = Connection::connect(*r, *local, Millis(100), &h);
    REQUIRE(c);
    CHECK(run_until(*r, [&] { return closed == 1; }));
    CHECK(!h.connected);
    CHECK(h.reason.code == Errc::TimedOut);
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));

    // Refused is not a timeout.
    int refused_port;
    {
        auto tmp = net::listen_socket(SockAddr::loopback_v4(0), lo);
        REQUIRE(tmp);
        refused_port = net::local_address(*tmp)->port();
        ::close(*tmp);
    }
    Closer h2;
    h2.closed = &closed;
    auto c2 = Connection::connect(*r, SockAddr::loopback_v4(uint16_t(refused_port)), Millis(5000),
                                  &h2);
    REQUIRE(c2);
    CHECK(run_until(*r, [&] { return closed == 2; }));
    CHECK(h2.reason.code == Errc::Syscall);
    CHECK(h2.reason.sys == ECONNREFUSED);
    for (int fd : fillers) {
        ::close(fd);
    }
    ::close(*lfd);
}

namespace {
struct Order : reactor::TimerTarget {
    std::vector<uint64_t> fired;
    void on_timer(reactor::TimerId, uint64_t arg) override { fired.push_back(arg); }
};
}  // namespace

TEST_CASE("uring: reactor timers fire in order, cancelled ones never" *
          doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    Order o;
    REQUIRE(r->add_timer(Millis(30), &o, 3));
    REQUIRE(r->add_timer(Millis(10), &o, 1));
    auto cancelled = r->add_timer(Millis(15), &o, 99);
    REQUIRE(cancelled);
    REQUIRE(r->add_timer(Millis(20), &o, 2));
    REQUIRE(r->add_timer(Millis(40), &o, 4));
    CHECK(r->cancel_timer(*cancelled));
    // No completions arrive at all: the loop wakes for the deadlines alone.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (o.fired.size() < 4 && std::chrono::steady_clock::now() < deadline) {
        r->run_once();
    }
    CHECK(o.fired == std::vector<uint64_t>{1, 2, 3, 4});
    CHECK(r->live_timers() == 0);
}

TEST_CASE("net: address parsing") {
    auto a = SockAddr::parse("127.0.0.1:7844");
    REQUIRE(a);
    CHECK(a->family() == AF_INET);
    CHECK(a->port() == 7844);
    CHECK(a->str() == "127.0.0.1:7844");
    auto b = SockAddr::parse("[::1]:80");
    REQUIRE(b);
    CHECK(b->family() == AF_INET6);
    CHECK(b->str() == "[::1]:80");
    auto c = SockAddr::parse("localhost:80");
    REQUIRE(c);
    CHECK(c->port() == 80);
    auto d = SockAddr::parse(":8080");
    REQUIRE(d);
    CHECK(d->str() == "0.0.0.0:8080");
    CHECK(!SockAddr::parse("127.0.0.1"));
    CHECK(!SockAddr::parse("127.0.0.1:65536"));
    CHECK(!SockAddr::parse("127.0.0.1:-1"));
    CHECK(!SockAddr::parse("::1:80"));
    CHECK(!SockAddr::parse("[::1]80"));
    CHECK(!SockAddr::parse("[]:80"));
    CHECK(!SockAddr::parse("host.invalid:80"));
    CHECK(a->with_port(1).port() == 1);
}
