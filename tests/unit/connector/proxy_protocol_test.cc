#include <doctest/doctest.h>

#include "cfd/connector/proxy_protocol.h"

using namespace cfd;
using namespace cfd::connector;

TEST_CASE("proxy protocol: v1 lines for IPv4 and IPv6, UNKNOWN when the client is unreadable") {
    auto o4 = net::SockAddr::parse("127.0.0.1:22");
    auto o6 = net::SockAddr::parse("[::1]:2222");
    REQUIRE(o4);
    REQUIRE(o6);
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "203.0.113.7:50123", *o4) ==
          "PROXY TCP4 203.0.113.7 127.0.0.1 50123 22\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "203.0.113.7", *o4) ==
          "PROXY TCP4 203.0.113.7 127.0.0.1 0 22\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "[2001:db8::1]:443", *o6) ==
          "PROXY TCP6 2001:db8::1 ::1 443 2222\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "2001:db8::1", *o6) ==
          "PROXY TCP6 2001:db8::1 ::1 0 2222\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "", *o4) == "PROXY UNKNOWN\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "not an address", *o4) == "PROXY UNKNOWN\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "2001:db8::1", *o4) == "PROXY UNKNOWN\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::V1, "1.2.3.4:99999", *o4) == "PROXY UNKNOWN\r\n");
    CHECK(proxy_protocol_header(ProxyProtocol::None, "1.2.3.4", *o4).empty());
}

TEST_CASE("proxy protocol: v2 binary headers") {
    auto o4 = net::SockAddr::parse("10.0.0.2:5432");
    REQUIRE(o4);
    std::string h = proxy_protocol_header(ProxyProtocol::V2, "192.0.2.1:4000", *o4);
    const unsigned char want[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
                                  0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 192,  0,    2,    1,
                                  10,   0,    0,    2,    0x0f, 0xa0, 0x15, 0x38};
    CHECK(h == std::string(reinterpret_cast<const char*>(want), sizeof want));
    auto o6 = net::SockAddr::parse("[::1]:22");
    REQUIRE(o6);
    std::string h6 = proxy_protocol_header(ProxyProtocol::V2, "[2001:db8::1]:1", *o6);
    CHECK(h6.size() == 16 + 36);
    CHECK(static_cast<unsigned char>(h6[13]) == 0x21);  // TCP over IPv6
    std::string local = proxy_protocol_header(ProxyProtocol::V2, "", *o4);
    CHECK(local.size() == 16);
    CHECK(static_cast<unsigned char>(local[12]) == 0x20);  // LOCAL
}

TEST_CASE("proxy protocol: option values") {
    ProxyProtocol p = ProxyProtocol::V2;
    CHECK(parse_proxy_protocol("", &p));
    CHECK(p == ProxyProtocol::None);
    CHECK(parse_proxy_protocol("v1", &p));
    CHECK(p == ProxyProtocol::V1);
    CHECK(parse_proxy_protocol("v2", &p));
    CHECK(p == ProxyProtocol::V2);
    CHECK_FALSE(parse_proxy_protocol("v3", &p));
    CHECK_FALSE(parse_proxy_protocol("V1", &p));
}
