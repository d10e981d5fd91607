// A listening TCP socket on a reactor: SO_REUSEPORT so that every reactor opens its own socket
// on the same address and the kernel spreads connections; one multishot accept; TCP_NODELAY on
// every accepted socket before the owner sees it.
#pragma once

#include <cstdint>

#include "cfd/core/result.h"
#include "cfd/net/sock_addr.h"
#include "cfd/reactor/reactor.h"

namespace cfd::net {

class Listener;

class AcceptHandler {
public:
    virtual ~AcceptHandler() = default;
    // A new connected socket; the owner takes it (e.g. Connection::adopt) or closes it.
    virtual void on_accept(Listener& l, int fd) = 0;
    // The listener is gone (after close() or reactor stop); the last call.
    virtual void on_listener_closed(Listener& l) { (void)l; }
};

struct ListenOptions {
    int backlog = 4096;
    bool reuseport = true;
    bool v6only = false;
};

class Listener final : public reactor::IoObject, public reactor::TimerTarget {
public:
    // Binds and listens. For port 0, port() tells the port the kernel chose; other reactors
    // then open addr.with_port(port()) to share it.
    [[nodiscard]] static Result<Listener*> open(reactor::Reactor& r, const SockAddr& addr,
                                                AcceptHandler* h, const ListenOptions& o = {});

    uint16_t port() const { return local_.port(); }
    const SockAddr& local() const { return local_; }
    uint64_t accepted() const { return accepted_; }
    void close();

    Listener(int fd, AcceptHandler* h, const SockAddr& local);
    ~Listener() override;

private:
    void on_cqe(reactor::OpKind kind, int32_t res, uint32_t flags) override;
    void on_reactor_stop() override { close(); }
    void on_timer(reactor::TimerId id, uint64_t arg) override;
    void arm();

    int fd_;
    AcceptHandler* handler_;
    SockAddr local_;
    bool armed_ = false;
    bool closing_ = false;
    reactor::TimerId retry_{};
    uint64_t accepted_ = 0;
};

// A listening socket (bind + listen) without a reactor, also used by the tests.
[[nodiscard]] Result<int> listen_socket(const SockAddr& addr, const ListenOptions& o);

}  // namespace cfd::net
