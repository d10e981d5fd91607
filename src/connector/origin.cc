#include "cfd/connector/origin.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace cfd::connector {

namespace {

bool starts_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(0, p.size()) == p;
}

// Go's net.Dialer uses this when KeepAlive is 0.
constexpr Millis kGoDefaultKeepAlive{15000};

}  // namespace

Status set_tcp_keep_alive(int fd, Millis every) {
    if (every.count() <= 0) {
        every = kGoDefaultKeepAlive;
    }
    int secs = static_cast<int>(std::min<int64_t>((every.count() + 999) / 1000, 32767));
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != 0) {
        return Err{Errc::Syscall, errno, "setsockopt SO_KEEPALIVE"};
    }
    if (::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs)) != 0) {
        return Err{Errc::Syscall, errno, "setsockopt TCP_KEEPIDLE"};
    }
    if (::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof(secs)) != 0) {
        return Err{Errc::Syscall, errno, "setsockopt TCP_KEEPINTVL"};
    }
    return {};
}

Result<OriginService> parse_origin_url(std::string_view url) {
    OriginService svc;
    svc.url = std::string(url);
    if (url == "hello_world" || url == "hello-world") {
        svc.kind = OriginService::Kind::HelloWorld;
        return svc;
    }
    if (starts_with(url, "http_status:")) {
        std::string_view code = url.substr(12);
        unsigned v = 0;
        auto [p, ec] = std::from_chars(code.data(), code.data() + code.size(), v);
        if (ec != std::errc() || p != code.data() + code.size() || v < 100 || v > 999) {
            return Err{Errc::Invalid, 0, "http_status: wants a status code 100..999"};
        }
        svc.kind = OriginService::Kind::HttpStatus;
        svc.status = static_cast<uint16_t>(v);
        return svc;
    }
    // tcp:// and ssh:// (cloudflared's `--url ssh://localhost:22`): a byte stream, no pool.
    bool tcp = starts_with(url, "tcp://");
    bool ssh = starts_with(url, "ssh://");
    if (!tcp && !ssh && !starts_with(url, "http://")) {
        return Err{Errc::Unsupported, 0,
                   "origin URL: only http://, tcp://, ssh://, http_status: and hello_world"};
    }
    std::string_view rest = url.substr(tcp || ssh ? 6 : 7);
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (authority.empty()) {
        return Err{Errc::Invalid, 0, "origin URL: no host"};
    }
    std::string host_port(authority);
    // No port: HTTP's 80. A bracketed IPv6 literal ends with ']' when it has no port.
    size_t colon = authority.rfind(':');
    size_t bracket = authority.rfind(']');
    if (colon == std::string_view::npos ||
        (bracket != std::string_view::npos && colon < bracket)) {
        if (tcp) {
            return Err{Errc::Invalid, 0, "origin URL: tcp:// needs a port"};
        }
        host_port += ssh ? ":22" : ":80";
    }
    auto addr = net::SockAddr::parse(host_port);
    if (!addr) {
        return addr.error();
    }
    if (tcp || ssh) {
        svc.kind = OriginService::Kind::Tcp;
        svc.addr = *addr;
        svc.max_idle = 0;
        return svc;
    }
    svc.kind = OriginService::Kind::Http;
    svc.addr = *addr;
    return svc;
}

}  // namespace cfd::connector
