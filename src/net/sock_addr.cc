#include "cfd/net/sock_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <charconv>
#include <cstring>

namespace cfd::net {

namespace {

Result<uint16_t> parse_port(std::string_view s) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > 65535) {
        return Err{Errc::Invalid, 0, "address: bad port"};
    }
    return uint16_t(v);
}

}  // namespace

Result<SockAddr> SockAddr::parse(std::string_view host_port) {
    std::string_view host;
    std::string_view port_text;
    if (!host_port.empty() && host_port.front() == '[') {
        size_t close = host_port.find(']');
        if (close == std::string_view::npos || close + 1 >= host_port.size() ||
            host_port[close + 1] != ':') {
            return Err{Errc::Invalid, 0, "address: expected [v6]:port"};
        }
        host = host_port.substr(1, close - 1);
        port_text = host_port.substr(close + 2);
        if (host.empty()) {
            return Err{Errc::Invalid, 0, "address: empty IPv6 host"};
        }
    } else {
        size_t colon = host_port.rfind(':');
        if (colon == std::string_view::npos) {
            return Err{Errc::Invalid, 0, "address: expected host:port"};
        }
        host = host_port.substr(0, colon);
        port_text = host_port.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return Err{Errc::Invalid, 0, "address: IPv6 needs brackets"};
        }
    }
    auto port = parse_port(port_text);
    if (!port) {
        return port.error();
    }
    if (host.size() > 253) {
        return Err{Errc::Invalid, 0, "address: host too long"};
    }
    std::string h(host);
    SockAddr a;
    if (h.empty() || h == "*") {
        h = "0.0.0.0";
    }
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss_);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss_);
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(*port);
        a.len_ = sizeof(sockaddr_in);
        return a;
    }
    if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(*port);
        a.len_ = sizeof(sockaddr_in6);
        return a;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(h.c_str(), nullptr, &hints, &res);
    if (rc != 0 || res == nullptr) {
        return Err{Errc::NotFound, rc, "address: cannot resolve host"};
    }
    // Prefer IPv4 when a name has both (loopback services usually listen on 127.0.0.1).
    const addrinfo* pick = res;
    for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    a = from(pick->ai_addr, pick->ai_addrlen);
    ::freeaddrinfo(res);
    return a.with_port(*port);
}

SockAddr SockAddr::from(const sockaddr* sa, socklen_t len) {
    SockAddr a;
    if (len > sizeof(a.ss_)) {
        len = sizeof(a.ss_);
    }
    std::memcpy(&a.ss_, sa, len);
    a.len_ = len;
    return a;
}

SockAddr SockAddr::loopback_v4(uint16_t port) {
    SockAddr a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss_);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.len_ = sizeof(sockaddr_in);
    return a;
}

Result<SockAddr> SockAddr::unix_path(std::string_view path) {
    SockAddr a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.ss_);
    if (path.empty() || path.size() >= sizeof(un->sun_path)) {
        return Err{Errc::Invalid, 0, "address: bad unix socket path"};
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    a.len_ = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
}

uint16_t SockAddr::port() const {
    if (family() == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
    }
    if (family() == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
    }
    return 0;
}

SockAddr SockAddr::with_port(uint16_t port) const {
    SockAddr a = *this;
    if (family() == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&a.ss_)->sin_port = htons(port);
    } else if (family() == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&a.ss_)->sin6_port = htons(port);
    }
    return a;
}

std::string SockAddr::str() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf,
                    sizeof(buf));
        return std::string(buf) + ":" + std::to_string(port());
    }
    if (family() == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf,
                    sizeof(buf));
        return "[" + std::string(buf) + "]:" + std::to_string(port());
    }
    if (family() == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(&ss_);
        size_t max = len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path)
                                                           : 0;
        return "unix:" + std::string(un->sun_path, strnlen(un->sun_path, max));
    }
    return "?";
}

Result<SockAddr> local_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return Err{Errc::Syscall, errno, "getsockname"};
    }
    return SockAddr::from(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace cfd::net
