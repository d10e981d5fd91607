// The per-core worker on a real reactor and real sockets: a connector built from the in-memory
// pieces of edge_test_util.h speaks over TCP to the worker's TLS listener, the test thread plays
// the control thread (its own reactor, answering registrations), and a raw socket plays the
// public client.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "cfd/edge/messages.h"
#include "cfd/edge/worker.h"
#include "cfd/reactor/features.h"
#include "cfd/reactor/group.h"
#include "edge_test_util.h"

using namespace cfd;
using namespace cfd::edge;
using namespace cfd::edge::test;

namespace {

int dial(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

void send_all(int fd, std::string_view b) {
    while (!b.empty()) {
        ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
        REQUIRE(n > 0);
        b.remove_prefix(static_cast<size_t>(n));
    }
}

// Reads what is there now; false at EOF.
bool read_some(int fd, std::string& into) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            into.append(buf, static_cast<size_t>(n));
            continue;
        }
        return !(n == 0);
    }
}

struct Control : reactor::MessageHandler {
    reactor::ReactorGroup* group = nullptr;
    int registers = 0;
    int closed = 0;
    int unrouted = 0;
    Uuid last;
    bool refuse = false;
    void on_message(reactor::Reactor&, const reactor::Message& m) override {
        if (m.tag == kMsgRegister) {
            std::unique_ptr<RegisterMsg> msg(static_cast<RegisterMsg*>(m.ptr));
            registers++;
            CHECK(msg->peer_ip == "127.0.0.1");
            auto ans = std::make_unique<RegisterAnswerMsg>();
            ans->link = msg->link;
            ans->call = msg->call;
            ans->ok = !refuse;
            ans->details.uuid = Uuid::random();
            last = ans->details.uuid;
            ans->details.location_name = "DFW";
            ans->error.cause = "Unauthorized: Invalid tunnel secret";
            reactor::Message out;
            out.tag = kMsgRegisterAnswer;
            out.ptr = ans.release();
            REQUIRE(group->post(msg->core, out));
        } else if (m.tag == kMsgConnClosed) {
            closed++;
        } else if (m.tag == kMsgConnUnrouted) {
            unrouted++;
        }
    }
};

struct Rig {
    std::unique_ptr<reactor::Reactor> control;
    Control ctl;
    std::unique_ptr<reactor::ReactorGroup> group;
    std::unique_ptr<Worker> worker;
    std::vector<std::unique_ptr<Worker>> workers{4};
    Uuid tunnel = Uuid::random();
    Millis idle{60000};

    bool start(uint32_t threads = 1) {
        reactor::ReactorOptions ro;
        ro.log_features = false;
        auto c = reactor::Reactor::create(ro);
        if (!c) {
            return false;
        }
        control = std::move(*c);
        control->set_message_handler(&ctl);
        reactor::GroupOptions go;
        go.threads = threads;
        go.pin = false;
        go.reactor.log_features = false;
        go.reactor.buf_count = 256;
        group = std::make_unique<reactor::ReactorGroup>(go);
        ctl.group = group.get();
        WorkerConfig wc;
        wc.tls = &server_ctx();
        wc.tunnel_addr = net::SockAddr::loopback_v4(0);
        wc.http_addr = net::SockAddr::loopback_v4(0);
        wc.control = control.get();
        wc.public_idle_timeout = idle;
        auto st = group->start([&](reactor::Reactor& r) {
            auto w = Worker::start(r, wc);
            REQUIRE(w);
            workers[r.index()] = std::move(*w);
        });
        REQUIRE(st);
        worker = std::move(workers[0]);
        publish(0);
        return true;
    }
    // Routes, and which cores hold the connector's connections, as the control thread would.
    void publish(uint64_t mask, const Uuid& connector = {}) {
        for (uint32_t i = 0; i < group->size(); i++) {
            auto* table = new RouteTable();
            table->add("app.example.com", tunnel);
            if (mask != 0) {
                table->set_connectors(tunnel, {ConnectorRoute{connector, 0, mask}});
            }
            reactor::Message m;
            m.tag = kMsgRoutes;
            m.ptr = table;
            REQUIRE(group->post(i, m));
        }
    }
    ~Rig() {
        if (group) {
            group->stop();
        }
        worker.reset();
        workers.clear();
    }
};

// Moves bytes between the connector harness and its socket, and turns the control loop,
// until cond() or the deadline.
// The connector's registration call was accepted.
bool registered(const Connector& c) {
    for (const auto& e : c.rpc_events) {
        if (std::holds_alternative<rpc::Registered>(e)) {
            return true;
        }
    }
    return false;
}

template <class F> bool drive(Rig& rig, Connector& c, int fd, F cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return cond();
        }
        rig.control->run_once(Millis(5));
        if (fd < 0) {
            continue;
        }
        c.flush();
        std::string_view out = c.tls->pending_output();
        if (!out.empty()) {
            std::string copy(out);
            c.tls->consume_output(copy.size());
            send_all(fd, copy);
        }
        std::string in;
        bool open = read_some(fd, in);
        if (!in.empty()) {
            c.feed(in);
        }
        if (!open) {
            c.closed_by_edge = true;
        }
    }
    return true;
}

}  // namespace

TEST_CASE("edge worker: a connector registers over TCP+TLS and serves a public request" *
          doctest::skip(!reactor::uring_ok())) {
    Rig rig;
    REQUIRE(rig.start());
    Connector c;
    c.set_request("acct", "secret", rig.tunnel);
    int tfd = dial(rig.worker->tunnel_port());
    REQUIRE(drive(rig, c, tfd, [&] { return registered(c); }));
    CHECK(rig.ctl.registers == 1);

    c.on_request_hook = [&](int32_t id) {
        c.respond(id, 200, {{"Content-Type", "text/plain"}, {"X-Origin", "yes"}}, true);
        c.write(id, "hello through the tunnel", true);
    };
    int pfd = dial(rig.worker->http_port());
    send_all(pfd, "GET /path HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
                  "GET / HTTP/1.1\r\nHost: unknown.example.com\r\n\r\n");
    std::string resp;
    REQUIRE(drive(rig, c, tfd, [&] {
        read_some(pfd, resp);
        return resp.find("hello through the tunnel") != std::string::npos &&
               resp.find("404 Not Found") != std::string::npos;
    }));
    CHECK(resp.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(resp.find("X-Origin: yes\r\n") != std::string::npos);
    REQUIRE(c.requests.size() == 1);
    CHECK(http2::header_value(c.streams[c.requests[0]].request, ":path") == "/path");

    // The connector goes away: its row is released through the control thread, and the next
    // request for the tunnel is a 530.
    ::close(tfd);
    REQUIRE(drive(rig, c, -1, [&] { return rig.ctl.closed == 1; }));
    resp.clear();
    send_all(pfd, "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    REQUIRE(drive(rig, c, -1, [&] {
        read_some(pfd, resp);
        return resp.find("1033") != std::string::npos;
    }));
    CHECK(resp.rfind("HTTP/1.1 530", 0) == 0);
    ::close(pfd);
}

TEST_CASE("edge worker: a refused registration never routes" *
          doctest::skip(!reactor::uring_ok())) {
    Rig rig;
    REQUIRE(rig.start());
    rig.ctl.refuse = true;
    Connector c;
    c.set_request("acct", "wrong", rig.tunnel);
    int tfd = dial(rig.worker->tunnel_port());
    REQUIRE(drive(rig, c, tfd, [&] {
        for (const auto& e : c.rpc_events) {
            if (auto* r = std::get_if<rpc::Refused>(&e)) {
                return r->error.cause.rfind("Unauthorized:", 0) == 0;
            }
        }
        return false;
    }));
    int pfd = dial(rig.worker->http_port());
    send_all(pfd, "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    std::string resp;
    REQUIRE(drive(rig, c, tfd, [&] {
        read_some(pfd, resp);
        return resp.find("1033") != std::string::npos;
    }));
    CHECK(rig.ctl.closed == 0);  // no row was written, none is removed
    ::close(pfd);
    ::close(tfd);
}

TEST_CASE("edge worker: a client on a core without the tunnel's connection is relayed" *
          doctest::skip(!reactor::uring_ok())) {
    Rig rig;
    REQUIRE(rig.start(2));
    Connector c;
    c.set_request("acct", "secret", rig.tunnel);
    int tfd = dial(rig.worker->tunnel_port());  // core 0
    REQUIRE(drive(rig, c, tfd, [&] { return registered(c); }));
    rig.publish(1, c.reg.options.client.client_id);  // core 0 holds it
    int n = 0;
    c.on_request_hook = [&](int32_t id) {
        n++;
        c.respond(id, 200, {}, true);
        c.write(id, "served by core 0", true);
    };
    // Core 1's listener: the request arrives split, the head in two reads.
    int pfd = dial(rig.workers[1]->http_port());
    send_all(pfd, "POST /x HTTP/1.1\r\nHost: app.exa");
    std::string resp;
    REQUIRE(drive(rig, c, tfd, [&] { return rig.control->stats().loop_turns > 3; }));
    send_all(pfd, "mple.com\r\nContent-Length: 5\r\n\r\nhello"
                  "GET /again HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    REQUIRE(drive(rig, c, tfd, [&] {
        read_some(pfd, resp);
        size_t first = resp.find("served by core 0");
        return first != std::string::npos &&
               resp.find("served by core 0", first + 1) != std::string::npos;
    }));
    CHECK(n == 2);
    REQUIRE(c.requests.size() == 2);
    CHECK(c.streams[c.requests[0]].body == "hello");
    CHECK(http2::header_value(c.streams[c.requests[1]].request, ":path") == "/again");
    // 8 MiB down through the relay, on the same client connection (it never left core 1).
    constexpr uint64_t kDown = 8 << 20;
    c.on_request_hook = [&](int32_t id) {
        c.respond(id, 200, {{"Content-Length", std::to_string(kDown)}}, true);
        auto& st = c.streams[id];
        st.gen_seed = 9;
        st.gen_left = kDown;
        st.out_end = true;
        REQUIRE(c.h2->resume_data(id));
    };
    resp.clear();
    send_all(pfd, "GET /big HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    REQUIRE(drive(rig, c, tfd, [&] {
        read_some(pfd, resp);
        size_t h = resp.find("\r\n\r\n");
        return h != std::string::npos && resp.size() - h - 4 >= kDown;
    }));
    size_t h = resp.find("\r\n\r\n");
    CHECK(resp.size() - h - 4 == kDown);
    Fnv got;
    got.add(std::string_view(resp).substr(h + 4));
    CHECK(got.h == gen_hash(9, kDown));
    ::close(pfd);
    ::close(tfd);
}

TEST_CASE("edge worker: a silent client, or one stuck inside its head, is closed when idle" *
          doctest::skip(!reactor::uring_ok())) {
    Rig rig;
    rig.idle = Millis(300);
    REQUIRE(rig.start());
    Connector c;
    int silent = dial(rig.worker->http_port());
    int slow = dial(rig.worker->http_port());
    send_all(slow, "GET / HTTP/1.1\r\nHost: app.exa");
    bool silent_closed = false, slow_closed = false;
    std::string junk;
    REQUIRE(drive(rig, c, -1, [&] {
        silent_closed = silent_closed || !read_some(silent, junk);
        slow_closed = slow_closed || !read_some(slow, junk);
        return silent_closed && slow_closed;
    }));
    CHECK(junk.empty());
    ::close(silent);
    ::close(slow);
}

TEST_CASE("edge worker: the control thread closes a connection its connector replaced" *
          doctest::skip(!reactor::uring_ok())) {
    Rig rig;
    REQUIRE(rig.start());
    Connector c;
    c.set_request("acct", "secret", rig.tunnel);
    int tfd = dial(rig.worker->tunnel_port());
    REQUIRE(drive(rig, c, tfd, [&] { return registered(c); }));
    reactor::Message m;
    m.tag = kMsgCloseConn;
    uuid_to_words(rig.ctl.last, &m.a, &m.b);
    REQUIRE(rig.group->post(0, m));
    REQUIRE(drive(rig, c, tfd, [&] { return c.closed_by_edge && rig.ctl.closed == 1; }));
    CHECK(rig.ctl.unrouted == 1);
    ::close(tfd);
}
