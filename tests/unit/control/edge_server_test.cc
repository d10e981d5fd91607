// The whole edge process (control::run_edge) in this test process: real listeners, the real
// store and registrar, a connector built from the real pieces registering with a tunnel's
// credentials created through the management API, a public request answered through it, and a
// SIGTERM that removes this edge's rows.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "../edge/edge_test_util.h"
#include "cfd/control/edge_server.h"
#include "cfd/core/base64.h"
#include "cfd/core/json.h"
#include "cfd/reactor/features.h"
#include "cfd/store/store.h"

using namespace cfd;
using namespace cfd::edge::test;

namespace {

using Clock = std::chrono::steady_clock;

uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    ::close(fd);
    return ntohs(a.sin_port);
}

int try_dial(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

int dial_until_up(uint16_t port) {
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
        int fd = try_dial(port);
        if (fd >= 0) {
            return fd;
        }
        std::this_thread::yield();
    }
    return -1;
}

void send_all(int fd, std::string_view b) {
    while (!b.empty()) {
        ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
        REQUIRE(n > 0);
        b.remove_prefix(static_cast<size_t>(n));
    }
}

// One request with Connection: close; the whole response (bounded wait: SO_RCVTIMEO).
std::string http(uint16_t port, const std::string& req) {
    int fd = dial_until_up(port);
    REQUIRE(fd >= 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    send_all(fd, req);
    std::string out;
    char buf[16384];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string body_of(const std::string& resp) {
    size_t p = resp.find("\r\n\r\n");
    return p == std::string::npos ? "" : resp.substr(p + 4);
}

}  // namespace

TEST_CASE("control: the edge process end to end: API, registration, a proxied request, SIGTERM" *
          doctest::skip(!reactor::uring_ok())) {
    char tmpl[] = "/tmp/cfd-edge-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    control::EdgeConfig cfg;
    cfg.location = "MCI";
    uint16_t tport = free_port(), hport = free_port(), aport = free_port(), mport = free_port();
    cfg.tunnel_listen = "127.0.0.1:" + std::to_string(tport);
    cfg.http_listen = "127.0.0.1:" + std::to_string(hport);
    cfg.api_listen = "127.0.0.1:" + std::to_string(aport);
    cfg.metrics = "127.0.0.1:" + std::to_string(mport);
    cfg.store = "sqlite:" + dir + "/edge.db";
    cfg.workers = 1;
    int rc = -1;
    std::thread edge([&] { rc = control::run_edge(cfg); });

    int probe = dial_until_up(aport);
    REQUIRE(probe >= 0);
    ::close(probe);
    struct stat st {};
    REQUIRE(::stat((dir + "/api-token").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(::stat((dir + "/ca.pem").c_str(), &st) == 0);
    CHECK(::stat((dir + "/edge.pem").c_str(), &st) == 0);
    REQUIRE(::stat((dir + "/edge.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0077) == 0);
    std::string token;
    std::ifstream(dir + "/api-token") >> token;
    std::string auth = "Authorization: Bearer " + token + "\r\n";

    CHECK(http(aport, "GET /v1/tunnels HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
              .rfind("HTTP/1.1 401", 0) == 0);
    std::string body = R"({"name":"e2e"})";
    std::string r = http(aport, "POST /v1/tunnels HTTP/1.1\r\nHost: a\r\n" + auth +
                                    "Content-Length: " + std::to_string(body.size()) +
                                    "\r\nConnection: close\r\n\r\n" + body);
    REQUIRE(r.rfind("HTTP/1.1 201", 0) == 0);
    auto t = json::parse(body_of(r));
    REQUIRE(t);
    body = R"({"hostname":"e2e.example.com","tunnel":"e2e"})";
    r = http(aport, "POST /v1/routes HTTP/1.1\r\nHost: a\r\n" + auth + "Content-Length: " +
                        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    REQUIRE(r.rfind("HTTP/1.1 201", 0) == 0);

    const std::string get =
        "GET /hello HTTP/1.1\r\nHost: e2e.example.com\r\nConnection: close\r\n\r\n";
    // The route snapshot reaches the worker asynchronously: 404 until it does, then 530.
    auto deadline = Clock::now() + std::chrono::seconds(20);
    do {
        r = http(hport, get);
    } while (r.rfind("HTTP/1.1 404", 0) == 0 && Clock::now() < deadline);
    CHECK(r.rfind("HTTP/1.1 530", 0) == 0);
    CHECK(r.find("1033") != std::string::npos);

    // A connector with the tunnel's credentials, trusting the generated CA.
    tls::ClientOptions co;
    std::ifstream caf(dir + "/ca.pem");
    co.ca_pem.assign(std::istreambuf_iterator<char>(caf), {});
    auto cctx = tls::Context::client(co);
    REQUIRE(cctx);
    Connector c;
    auto cs = tls::Session::client(*cctx);
    REQUIRE(cs);
    c.tls.emplace(std::move(*cs));
    auto secret = base64_decode(t->get_string("secret"));
    REQUIRE(secret);
    c.set_request(t->get_string("account_tag"), *secret, *Uuid::parse(t->get_string("id")));
    c.on_request_hook = [&](int32_t id) {
        c.respond(id, 200, {{"X-Served-By", "connector"}}, true);
        c.write(id, "hello from the origin", true);
    };
    int tfd = dial_until_up(tport);
    REQUIRE(tfd >= 0);
    std::atomic<bool> stop{false};
    // The connector's loop on its own thread: bytes between the socket and the harness.
    std::atomic<bool> registered{false};
    std::thread conn_thread([&] {
        while (!stop.load()) {
            c.flush();
            std::string_view out = c.tls->pending_output();
            if (!out.empty()) {
                std::string copy(out);
                c.tls->consume_output(copy.size());
                send_all(tfd, copy);
            }
            char buf[65536];
            pollfd pf{tfd, POLLIN, 0};
            (void)::poll(&pf, 1, 5);  // wait for bytes (or 5 ms, to flush and check `stop`)
            ssize_t n = ::recv(tfd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                c.feed(std::string_view(buf, static_cast<size_t>(n)));
            } else if (n == 0) {
                break;
            }
            for (const auto& e : c.rpc_events) {
                if (std::holds_alternative<rpc::Registered>(e)) {
                    registered = true;
                }
            }
        }
    });
    deadline = Clock::now() + std::chrono::seconds(20);
    while (!registered.load() && Clock::now() < deadline) {
        std::this_thread::yield();
    }
    REQUIRE(registered.load());
    // The control thread publishes the connection's core with the routes: retry until served.
    deadline = Clock::now() + std::chrono::seconds(20);
    do {
        r = http(hport, get);
    } while (r.rfind("HTTP/1.1 530", 0) == 0 && Clock::now() < deadline);
    CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(r.find("X-Served-By: connector") != std::string::npos);
    CHECK(r.find("hello from the origin") != std::string::npos);

    r = http(aport,
             "GET /v1/tunnels/e2e HTTP/1.1\r\nHost: a\r\n" + auth + "Connection: close\r\n\r\n");
    auto info = json::parse(body_of(r));
    REQUIRE(info);
    REQUIRE(info->get("connectors")->items().size() == 1);
    CHECK(info->get("connectors")->items()[0].get("edges")->get("MCI")->as_number() == 1);
    CHECK(info->get("connectors")->items()[0].get_string("origin_ip") == "127.0.0.1");

    // The --metrics listener: the counts of the requests above, summed over the cores.
    r = http(mport, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(r.find("\ncfdtunnel_edge_responses_total{code=\"200\"} 1\n") != std::string::npos);
    CHECK(r.find("\ncfdtunnel_edge_errors_total{cause=\"no_connector\"} ") != std::string::npos);
    CHECK(r.find(",tunnel=\"" + t->get_string("id") + "\"} 1\n") != std::string::npos);
    r = http(mport, "GET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(body_of(r) == R"({"status":200,"readyConnections":1,"location":"MCI"})");
    r = http(mport, "GET /healthcheck HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CHECK(body_of(r) == "OK\n");
    r = http(mport, "GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CHECK(r.rfind("HTTP/1.1 404", 0) == 0);

    ::kill(::getpid(), SIGTERM);
    edge.join();
    CHECK(rc == 0);
    stop = true;
    conn_thread.join();
    ::close(tfd);
    auto s = store::open_store(cfg.store);
    REQUIRE(s);
    auto tun = (*s)->find_tunnel("e2e");
    REQUIRE(tun);
    CHECK((*s)->list_connections(tun->id)->empty());
    std::system(("rm -rf " + dir).c_str());
}
