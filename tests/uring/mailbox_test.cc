#include <doctest/doctest.h>

#include <sys/time.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "cfd/reactor/group.h"
#include "echo_handlers.h"
#include "uring_util.h"

using namespace cfd;
using namespace cfd::test;
using cfd::reactor::Message;
using cfd::reactor::Reactor;
using cfd::reactor::ReactorGroup;

namespace {

// Signals the test thread when every reactor reported done.
struct Done {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;
    void arrive() {
        std::lock_guard<std::mutex> lock(mu);
        ++count;
        cv.notify_all();
    }
    bool wait_for(int n, std::chrono::seconds limit) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, limit, [&] { return count >= n; });
    }
};

constexpr uint32_t kData = 1;
constexpr uint32_t kExternal = 2;

// Sends `to_send` numbered messages to the peer core, retrying on the next loop turn when the
// pair queue is full, and checks that the peer's messages arrive once each, in order.
struct Pump : reactor::TurnHook, reactor::MessageHandler {
    uint32_t peer = 0;
    uint64_t to_send = 0;
    uint64_t sent = 0;
    uint64_t received = 0;
    uint64_t expected = 0;
    uint64_t busy = 0;
    uint64_t external = 0;
    uint64_t external_expected = 0;
    bool order_ok = true;
    bool reported = false;
    Done* done = nullptr;

    bool on_turn(Reactor& r) override {
        while (sent < to_send) {
            Message m;
            m.tag = kData;
            m.a = sent;
            m.b = ~sent;
            Status s = r.post(peer, m);
            if (!s) {
                if (s.error().code == Errc::Busy) {
                    ++busy;
                    return true;  // full: try again next turn, without blocking
                }
                return false;
            }
            ++sent;
        }
        check_done();
        return false;
    }
    void on_message(Reactor&, const Message& m) override {
        if (m.tag == kExternal) {
            order_ok = order_ok && m.a == external_expected;
            external_expected = m.a + 1;
            ++external;
        } else {
            order_ok = order_ok && m.from == peer && m.a == expected && m.b == ~m.a;
            expected = m.a + 1;
            ++received;
        }
        check_done();
    }
    void check_done() {
        if (!reported && sent == to_send && received == to_send && external == external_want) {
            reported = true;
            done->arrive();
        }
    }
    uint64_t external_want = 0;
};

}  // namespace

namespace {

void mailbox_under_load(uint64_t kMessages, bool use_msg_ring) {
    constexpr uint64_t kExternalMessages = 1000;
    reactor::GroupOptions go;
    go.threads = 2;
    go.queue_capacity = 64;
    go.reactor.buf_count = 16;
    go.reactor.log_features = false;
    go.reactor.use_msg_ring = use_msg_ring;
    ReactorGroup g(go);
    Done done;
    std::vector<std::unique_ptr<Pump>> pumps;
    for (uint32_t i = 0; i < 2; ++i) {
        pumps.push_back(std::make_unique<Pump>());
        pumps[i]->peer = 1 - i;
        pumps[i]->to_send = kMessages;
        pumps[i]->done = &done;
        pumps[i]->external_want = i == 1 ? kExternalMessages : 0;
    }
    REQUIRE(g.start([&](Reactor& r) {
        Pump& p = *pumps[r.index()];
        r.set_message_handler(&p);
        r.add_turn_hook(&p);
    }));
    // The control thread posts too: through the external queue, with its own ordering.
    for (uint64_t i = 0; i < kExternalMessages;) {
        Message m;
        m.tag = kExternal;
        m.a = i;
        Status s = g.post(1, m);
        if (s) {
            ++i;
        } else {
            REQUIRE(s.error().code == Errc::Busy);
            std::this_thread::yield();
        }
    }
    bool finished = done.wait_for(2, std::chrono::seconds(120));
    g.stop();
    CHECK(finished);
    for (auto& p : pumps) {
        CHECK(p->order_ok);
        CHECK(p->sent == kMessages);
        CHECK(p->received == kMessages);
    }
    CHECK(pumps[1]->external == kExternalMessages);
    // With a 64-slot queue and millions of messages the producers must have met a full queue.
    CHECK(pumps[0]->busy + pumps[1]->busy > 0);
    CHECK(!g.post(0, Message{}));  // stopped: refused, not queued
}

}  // namespace

TEST_CASE("uring: cross-core mailbox under load, exactly once and in order" *
          doctest::skip(!uring_ok())) {
    mailbox_under_load(1000000, true);
}

TEST_CASE("uring: cross-core mailbox with the eventfd doorbell (no MSG_RING)" *
          doctest::skip(!uring_ok())) {
    mailbox_under_load(200000, false);
}

namespace {

constexpr uint32_t kListenOn = 10;

// Per core: an echo server; core 0 picks the port and tells the others over the mailbox.
struct Core : reactor::MessageHandler {
    EchoServer server;
    Done* ready = nullptr;
    net::Listener* listener = nullptr;
    void open(Reactor& r, uint16_t port) {
        auto l = net::Listener::open(r, net::SockAddr::loopback_v4(port), &server);
        REQUIRE(l);
        listener = *l;
        ready->arrive();
    }
    void on_message(Reactor& r, const Message& m) override {
        if (m.tag == kListenOn) {
            open(r, uint16_t(m.a));
        }
    }
};

}  // namespace

TEST_CASE("uring: SO_REUSEPORT listener per core, echo, clean stop" *
          doctest::skip(!uring_ok())) {
    reactor::GroupOptions go;
    go.threads = 2;
    go.reactor.buf_count = 64;
    go.reactor.log_features = false;
    ReactorGroup g(go);
    Done ready;
    std::vector<std::unique_ptr<Core>> cores;
    for (int i = 0; i < 2; ++i) {
        cores.push_back(std::make_unique<Core>());
        cores.back()->ready = &ready;
    }
    REQUIRE(g.start([&](Reactor& r) {
        Core& c = *cores[r.index()];
        r.set_message_handler(&c);
        if (r.index() == 0) {
            c.open(r, 0);
            Message m;
            m.tag = kListenOn;
            m.a = c.listener->port();
            for (uint32_t k = 1; k < 2; ++k) {
                CHECK(r.post(k, m));
            }
        }
    }));
    REQUIRE(ready.wait_for(2, std::chrono::seconds(20)));
    // Core 0's port was written before its message was posted; the message orders the read.
    uint16_t port = cores[0]->listener->port();

    constexpr int kClients = 40;
    std::vector<int> fds;
    for (int i = 0; i < kClients; ++i) {
        int fd = raw_connect(port);
        REQUIRE(fd >= 0);
        timeval tv{20, 0};  // a deadline, not a synchronisation: the echo comes back at once
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char msg[16];
        int n = std::snprintf(msg, sizeof(msg), "ping %d", i);
        REQUIRE(::write(fd, msg, size_t(n)) == n);
        char back[16] = {};
        ssize_t got = 0;
        while (got < n) {
            ssize_t k = ::read(fd, back + got, size_t(n - got));
            REQUIRE(k > 0);
            got += k;
        }
        CHECK(std::string(back, size_t(n)) == std::string(msg, size_t(n)));
        fds.push_back(fd);
    }
    g.stop();  // every loop closes its connections and listeners, then the threads end
    for (int fd : fds) {
        char c;
        CHECK(::read(fd, &c, 1) == 0);  // EOF: the server side was closed by the stop
        ::close(fd);
    }
    CHECK(cores[0]->server.accepted + cores[1]->server.accepted == kClients);
    CHECK(cores[0]->server.closed + cores[1]->server.closed == kClients);
}
