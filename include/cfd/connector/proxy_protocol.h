// The PROXY protocol header (HAProxy's, v1 text and v2 binary) a tcp:// or ssh:// origin can
// be sent before the client's bytes (originRequest proxyProtocol = v1 | v2), so that it sees the
// public client's address instead of the connector's. The client's address comes from the
// edge: Cf-Cloudflared-Proxy-Src (raw TCP streams, "ip:port") or Cf-Connecting-IP (TCP over
// WebSocket, no port); the destination is the origin's own address.
#pragma once

#include <string>
#include <string_view>

#include "cfd/net/sock_addr.h"

namespace cfd::connector {

enum class ProxyProtocol : uint8_t { None, V1, V2 };

// "v1", "v2" or "" (none); false for anything else.
bool parse_proxy_protocol(std::string_view text, ProxyProtocol* out);

// The header for a connection from `client` ("203.0.113.7", "203.0.113.7:5000",
// "[2001:db8::1]:5000" or "2001:db8::1") to `origin`. A client address that cannot be read, or
// whose family differs from the origin's, gives v1's "UNKNOWN" / v2's LOCAL form (the origin
// then uses the connection's own addresses).
std::string proxy_protocol_header(ProxyProtocol v, std::string_view client,
                                  const net::SockAddr& origin);

}  // namespace cfd::connector
