// A small, bounded HTTP/1.1 server for read-only endpoints (readiness, health, Prometheus
// metrics): GET only, tiny requests, short answers. The connector and the edge serve /ready,
// /healthcheck and /metrics with it from their control threads.
//
//   HttpExchange   sans-I/O: request bytes in, response bytes out, for one client connection.
//   HttpServer     the reactor glue: a listener, at most max_connections clients, each closed
//                  after idle_timeout without a request; answers come from an HttpRoutes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/http1/parser.h"
#include "cfd/net/connection.h"
#include "cfd/net/listener.h"
#include "cfd/net/sock_addr.h"
#include "cfd/reactor/reactor.h"

namespace cfd::control {

struct HttpReply {
    int status = 200;
    std::string content_type;  // empty with an empty body
    std::string body;
};

// What a GET answers. Called on the server's reactor thread; must not block.
class HttpRoutes {
public:
    virtual ~HttpRoutes() = default;
    // `path` is the request target without its query string.
    virtual HttpReply get(std::string_view path) = 0;
};

struct HttpServerLimits {
    // A probe or a scraper sends a few hundred bytes of head: anything bigger is refused (431).
    size_t max_header_bytes = 8 * 1024;
    size_t max_headers = 32;
    size_t max_target_bytes = 2 * 1024;
    // Body bytes a GET may carry (discarded); more closes the connection with 413.
    size_t max_body_bytes = 4 * 1024;
    // Clients at once; more are closed as soon as they are accepted.
    uint32_t max_connections = 64;
    // A connection that sent no request for this long is closed.
    Millis idle_timeout{10000};
    // SO_REUSEPORT on the listener: a process taking over (the edge's drain and handover) may
    // bind the address while this one still serves it. Off: an address in use is an error.
    bool reuse_port = false;
};

// One client connection's requests and answers, without sockets. Pipelined requests are answered
// in order. After closing() turns true, nothing more is read; flush the output, then close.
class HttpExchange {
public:
    HttpExchange(HttpRoutes& routes, const HttpServerLimits& limits);

    // Appends the answers to the complete requests in `in` to `out`.
    void feed(std::string_view in, std::string& out);
    bool closing() const { return closing_; }
    uint64_t requests() const { return requests_; }

private:
    void answer(std::string& out, const HttpReply& r, bool keep);
    void refuse(std::string& out, int status, std::string_view text);

    HttpRoutes& routes_;
    HttpServerLimits limits_;
    http1::RequestParser parser_;
    std::string in_;        // bytes not yet parsed (an incomplete head)
    size_t body_bytes_ = 0; // of the current request
    bool closing_ = false;
    uint64_t requests_ = 0;
};

class HttpServer final : private net::AcceptHandler, private reactor::TimerTarget {
public:
    // Binds `addr` (without l.reuse_port, an address in use is an error, Errc::Syscall with
    // sys == EADDRINUSE) on reactor `r`, which must be the calling thread's. The server must
    // outlive the reactor's run(): its listener and connections call back into it until then.
    [[nodiscard]] static Result<std::unique_ptr<HttpServer>> open(reactor::Reactor& r,
                                                                  const net::SockAddr& addr,
                                                                  HttpRoutes& routes,
                                                                  const HttpServerLimits& l = {});
    ~HttpServer() override;
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    const net::SockAddr& local() const { return local_; }
    size_t clients() const { return clients_.size(); }
    uint64_t refused() const { return refused_; }
    // Stops accepting and closes every client; the reactor finishes the closes.
    void close();

private:
    class Client;
    HttpServer(reactor::Reactor& r, HttpRoutes& routes, const HttpServerLimits& l);

    // net::AcceptHandler
    void on_accept(net::Listener& l, int fd) override;
    void on_listener_closed(net::Listener& l) override;
    // reactor::TimerTarget: the idle sweep.
    void on_timer(reactor::TimerId id, uint64_t arg) override;
    void client_closed(Client* c);
    void arm_sweep();

    reactor::Reactor& r_;
    HttpRoutes& routes_;
    HttpServerLimits limits_;
    net::Listener* listener_ = nullptr;
    net::SockAddr local_;
    std::unordered_map<Client*, std::unique_ptr<Client>> clients_;
    // Clients whose connection closed; freed at the next sweep, outside their own callback.
    std::vector<std::unique_ptr<Client>> dead_;
    reactor::TimerId sweep_{};
    uint64_t refused_ = 0;
    bool closed_ = false;
};

}  // namespace cfd::control
