// Where a proxied request goes: the origin services the connector knows, and the seam through
// which a request is routed to one. `--url` alone makes a single catch-all route; ingress rules
// (cfd/connector/ingress.h, another file) plug in behind the same Router interface.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/connector/proxy_protocol.h"
#include "cfd/net/sock_addr.h"
#include "cfd/tls/context.h"

namespace cfd::connector {

struct OriginService {
    // Http: HTTP/1.1 to `addr` (TCP or a unix socket), in clear or over TLS (`use_tls`).
    // Tcp: tcp:// and ssh://, a byte stream to `addr`, reached by a WebSocket stream (cloudflared
    // access tcp: the frames' payloads are the bytes) or a raw TCP stream; never pooled. A
    // plain HTTP request for it is answered 502.
    // Unsupported: a rule whose service this connector cannot serve; its requests are answered
    // 502 by the connector, saying so.
    enum class Kind : uint8_t { Http, HttpStatus, HelloWorld, Tcp, Unsupported };
    Kind kind = Kind::Http;
    std::string url;             // as configured, for logs
    net::SockAddr addr;          // Http: resolved once, at start (TCP, or a unix socket)
    std::string host_header;     // Http: replaces :authority as Host when set
    uint16_t status = 0;         // HttpStatus
    Millis connect_timeout{30000};
    // TCP keep-alive probes on origin sockets after this much idleness (and between probes),
    // as Go's net.Dialer.KeepAlive in cloudflared: 0 means Go's default, 15s.
    Millis tcp_keep_alive{30000};
    // Keep-alive pool of this origin, per core.
    uint32_t max_idle = 100;
    Millis idle_timeout{90000};
    // Set by the pool: the key of this service's pool (stable for the process).
    uint32_t pool_key = 0;

    // TLS toward the origin (https://, unix+tls:).
    bool use_tls = false;
    // The client context (trust anchors, verification on or off), shared by every rule with
    // the same caPool and noTLSVerify; owned by the router, set when it is built. Required
    // when use_tls.
    const tls::Context* tls_ctx = nullptr;
    // SNI and the name the certificate must carry. Empty with sni_from_host: then it is the
    // Host the request is sent with (unix+tls without originServerName or httpHostHeader, as
    // cloudflared's transport takes it from the request; or matchSNItoHost).
    std::string server_name;
    bool sni_from_host = false;
    Millis tls_timeout{10000};  // bounds the handshake, after the TCP connect
    // disableChunkedEncoding: a request body of unknown length is sent without
    // Transfer-Encoding: chunked (cloudflared's WSGI workaround). Honoured by the proxy.
    bool disable_chunked_encoding = false;
    // http2Origin: HTTP requests (not WebSockets) go as HTTP/2 streams, many at once on one
    // connection per core (more when one is full): over TLS, ALPN offers "h2" then "http/1.1"
    // (an origin that picks http/1.1 or nothing is served HTTP/1.1 on that connection); in
    // clear, HTTP/2 with prior knowledge (h2c).
    bool http2 = false;
    // Tcp: a PROXY protocol header with the public client's address goes first.
    ProxyProtocol proxy_protocol = ProxyProtocol::None;
};

// Turns TCP keep-alive on for an origin socket: SO_KEEPALIVE, and TCP_KEEPIDLE and
// TCP_KEEPINTVL both `every` (rounded up to whole seconds; 0 is Go's default 15s), as Go's
// dialer does for cloudflared. Not for unix sockets.
[[nodiscard]] Status set_tcp_keep_alive(int fd, Millis every);

// "http://host[:port]" (names resolved now: call at start, never on a reactor),
// "tcp://host:port", "ssh://host[:port]" (port 22 by default), "http_status:NNN",
// "hello_world" (also "hello-world"). Others: Errc::Unsupported/Invalid.
[[nodiscard]] Result<OriginService> parse_origin_url(std::string_view url);

class Router {
public:
    virtual ~Router() = default;
    // The service for a request, or nullptr (answered 502 by the proxy). `host` is :authority.
    virtual const OriginService* route(std::string_view host, std::string_view path) const = 0;
};

// Every request goes to one service (`--url`).
class SingleRouter final : public Router {
public:
    explicit SingleRouter(OriginService svc) : svc_(std::move(svc)) {}
    const OriginService* route(std::string_view, std::string_view) const override {
        return &svc_;
    }
    const OriginService& service() const { return svc_; }

private:
    OriginService svc_;
};

}  // namespace cfd::connector
