#include "cfd/connector/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "cfd/core/numbers.h"

namespace cfd::connector {

namespace {

// v2's fixed signature (spec §2.2).
constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r',
                                   '\n', 'Q',  'U',  'I',  'T',  '\n'};

struct Endpoint {
    int family = 0;
    unsigned char addr[16] = {};
    uint16_t port = 0;
    std::string text;  // the address as written
};

// "ip", "ip:port", "[ip6]:port" or "ip6".
bool parse_client(std::string_view s, Endpoint* e) {
    std::string_view host = s;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        size_t close = s.find(']');
        if (close == std::string_view::npos) {
            return false;
        }
        host = s.substr(1, close - 1);
        if (close + 1 < s.size()) {
            if (s[close + 1] != ':') {
                return false;
            }
            port = s.substr(close + 2);
        }
    } else if (s.find(':') == s.rfind(':') && s.find(':') != std::string_view::npos) {
        host = s.substr(0, s.find(':'));  // one colon: IPv4 with a port
        port = s.substr(s.find(':') + 1);
    }
    std::string h(host);
    if (inet_pton(AF_INET, h.c_str(), e->addr) == 1) {
        e->family = AF_INET;
    } else if (inet_pton(AF_INET6, h.c_str(), e->addr) == 1) {
        e->family = AF_INET6;
    } else {
        return false;
    }
    e->text = h;
    if (!port.empty()) {
        uint64_t p = 0;
        if (!parse_uint(port, 65535, &p)) {
            return false;
        }
        e->port = static_cast<uint16_t>(p);
    }
    return true;
}

bool endpoint_of(const net::SockAddr& a, Endpoint* e) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a.family() == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a.get());
        std::memcpy(e->addr, &in->sin_addr, 4);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    } else if (a.family() == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.get());
        std::memcpy(e->addr, &in6->sin6_addr, 16);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    } else {
        return false;
    }
    e->family = a.family();
    e->port = a.port();
    e->text = buf;
    return true;
}

void put16(std::string& out, uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

bool parse_proxy_protocol(std::string_view text, ProxyProtocol* out) {
    if (text.empty()) {
        *out = ProxyProtocol::None;
    } else if (text == "v1") {
        *out = ProxyProtocol::V1;
    } else if (text == "v2") {
        *out = ProxyProtocol::V2;
    } else {
        return false;
    }
    return true;
}

std::string proxy_protocol_header(ProxyProtocol v, std::string_view client,
                                  const net::SockAddr& origin) {
    Endpoint src, dst;
    bool known = parse_client(client, &src) && endpoint_of(origin, &dst) &&
                 src.family == dst.family;
    std::string out;
    if (v == ProxyProtocol::V1) {
        if (!known) {
            return "PROXY UNKNOWN\r\n";
        }
        out = src.family == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ";
        out += src.text + " " + dst.text + " " + std::to_string(src.port) + " " +
               std::to_string(dst.port) + "\r\n";
        return out;
    }
    if (v != ProxyProtocol::V2) {
        return out;
    }
    out.assign(kV2Signature, sizeof kV2Signature);
    if (!known) {
        out.push_back('\x20');  // version 2, LOCAL
        out.push_back('\x00');  // UNSPEC
        put16(out, 0);
        return out;
    }
    out.push_back('\x21');                                      // version 2, PROXY
    out.push_back(src.family == AF_INET ? '\x11' : '\x21');     // TCP over IPv4 / IPv6
    size_t n = src.family == AF_INET ? 4 : 16;
    put16(out, static_cast<uint16_t>(2 * n + 4));
    out.append(reinterpret_cast<const char*>(src.addr), n);
    out.append(reinterpret_cast<const char*>(dst.addr), n);
    put16(out, src.port);
    put16(out, dst.port);
    return out;
}

}  // namespace cfd::connector
