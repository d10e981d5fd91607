// Socket addresses: "127.0.0.1:7844", "[::1]:80", "localhost:80" (names resolved once, at start:
// getaddrinfo blocks, so never call parse() with a name on a reactor's data path).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/result.h"

namespace cfd::net {

class SockAddr {
public:
    SockAddr() = default;
    // "host:port" with an IPv4 literal, a bracketed IPv6 literal or a name; ":port" or
    // "*:port" means every IPv4 address. Port 0 asks the kernel for a free port.
    [[nodiscard]] static Result<SockAddr> parse(std::string_view host_port);
    static SockAddr from(const sockaddr* sa, socklen_t len);
    static SockAddr loopback_v4(uint16_t port);
    // A Unix domain socket path (the `unix:` origin service). Invalid when empty or longer
    // than sun_path holds.
    [[nodiscard]] static Result<SockAddr> unix_path(std::string_view path);

    int family() const { return ss_.ss_family; }
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss_); }
    socklen_t len() const { return len_; }
    uint16_t port() const;
    SockAddr with_port(uint16_t port) const;
    std::string str() const;  // "127.0.0.1:7844", "[::1]:80", "unix:/run/x.sock"

private:
    sockaddr_storage ss_{};
    socklen_t len_ = 0;
};

// The local address a socket is bound to.
[[nodiscard]] Result<SockAddr> local_address(int fd);

}  // namespace cfd::net
