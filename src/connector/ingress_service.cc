// Parsing a rule's `service`, with cloudflared's rules (ingress/ingress.go validateIngress).
#include <cctype>
#include <charconv>

#include "cfd/connector/ingress.h"
#include "cfd/core/numbers.h"

namespace cfd::connector {

namespace {

using Kind = Service::Kind;

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

bool host_name_ok(std::string_view h) {
    for (char c : h) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
            return false;
        }
    }
    return true;
}

bool ipv6_ok(std::string_view h) {
    for (char c : h) {
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
            return false;
        }
    }
    return h.find(':') != std::string_view::npos;
}

// scheme://host[:port][/]
Result<Service, std::string> parse_url(std::string_view text, std::string_view scheme,
                                       std::string_view rest) {
    Service s;
    std::string sch = lower(scheme);
    if (sch == "http") {
        s.kind = Kind::Http;
        s.port = 80;
    } else if (sch == "https") {
        s.kind = Kind::Https;
        s.port = 443;
    } else if (sch == "ssh") {
        s.kind = Kind::Ssh;
        s.port = 22;
    } else if (sch == "tcp") {
        s.kind = Kind::Tcp;
    } else {
        return "unknown scheme '" + std::string(scheme) + "'";
    }
    size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);
    if (authority.find('@') != std::string_view::npos) {
        return "'" + std::string(text) + "': user info is not allowed in a service URL";
    }
    std::string_view host;
    std::string_view port;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            return "'" + std::string(text) + "': missing ] after the IPv6 address";
        }
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return "'" + std::string(text) + "': unexpected text after the IPv6 address";
            }
            has_port = true;
            port = after.substr(1);
        }
        if (!ipv6_ok(host)) {
            return "'" + std::string(text) + "': bad IPv6 address";
        }
    } else {
        size_t colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            has_port = true;
            port = authority.substr(colon + 1);
        }
        if (!host_name_ok(host)) {
            return "'" + std::string(text) + "': bad host name";
        }
    }
    if (host.empty()) {
        return "'" + std::string(text) + "': missing host (expected " + sch + "://host:port)";
    }
    if (has_port) {
        uint64_t p = 0;
        if (!parse_uint(port, 65535, &p) || p == 0) {
            return "'" + std::string(text) + "': bad port '" + std::string(port) + "'";
        }
        s.port = static_cast<uint16_t>(p);
    } else if (s.kind == Kind::Tcp) {
        return "'" + std::string(text) + "': missing port (expected tcp://host:port)";
    }
    if (!tail.empty() && tail.front() != '/') {
        return "'" + std::string(text) + "': a service URL cannot have a query or fragment";
    }
    if (tail.size() > 1) {
        return "'" + std::string(text) +
               "': a service URL cannot have a path; the request's own path is sent to the origin";
    }
    s.host = lower(host);
    return s;
}

}  // namespace

Result<Service, std::string> parse_service(std::string_view text) {
    Service s;
    if (text == "hello_world" || text == "hello-world" || text == "helloworld") {
        s.kind = Kind::HelloWorld;
        return s;
    }
    if (text.starts_with("http_status:")) {
        uint64_t code = 0;
        if (!parse_uint(text.substr(12), 999, &code) || code < 100 || code > 599) {
            return "'" + std::string(text) + "': the status must be a number from 100 to 599";
        }
        s.kind = Kind::HttpStatus;
        s.status = static_cast<int>(code);
        return s;
    }
    struct Prefix {
        std::string_view text;
        Kind kind;
    };
    for (const Prefix& pre : {Prefix{"unix:", Kind::Unix}, Prefix{"unix+tls:", Kind::UnixTls}}) {
        std::string_view p = pre.text;
        Kind kind = pre.kind;
        if (text.starts_with(p)) {
            s.kind = kind;
            s.path = std::string(text.substr(p.size()));
            if (s.path.empty()) {
                return "'" + std::string(text) + "': missing socket path";
            }
            if (s.path.find('\0') != std::string::npos) {
                return std::string("NUL byte in socket path");
            }
            return s;
        }
    }
    size_t sep = text.find("://");
    if (sep == std::string_view::npos || sep == 0) {
        size_t colon = text.find(':');
        if (colon != std::string_view::npos && colon > 0) {
            return "unknown scheme '" + std::string(text.substr(0, colon)) + "'";
        }
        return "'" + std::string(text) +
               "' is not a service: expected http://, https://, unix:, unix+tls:, tcp://, "
               "ssh://, http_status:NNN or hello_world";
    }
    return parse_url(text, text.substr(0, sep), text.substr(sep + 3));
}

std::string Service::text() const {
    auto url = [&](const char* scheme, uint16_t default_port) {
        std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        std::string out = std::string(scheme) + "://" + h;
        if (port != default_port) {
            out += ":" + std::to_string(port);
        }
        return out;
    };
    switch (kind) {
    case Kind::Http: return url("http", 80);
    case Kind::Https: return url("https", 443);
    case Kind::Tcp: return url("tcp", 0);
    case Kind::Ssh: return url("ssh", 22);
    case Kind::Unix: return "unix:" + path;
    case Kind::UnixTls: return "unix+tls:" + path;
    case Kind::HttpStatus: return "http_status:" + std::to_string(status);
    case Kind::HelloWorld: return "hello_world";
    }
    return "?";
}

}  // namespace cfd::connector
