// Where a proxied request goes: the origin services the connector knows, and the seam through
// which a request is routed to one. `--url` alone makes a single catch-all route; ingress rules
// (cfd/connector/ingress.h, another file) plug in behind the same Router interface.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/net/sock_addr.h"

namespace cfd::connector {

struct OriginService {
    // Unsupported: a rule whose service this connector cannot serve yet (https://, tcp://,
    // ssh://); its requests are answered 502 by the connector, saying so.
    enum class Kind : uint8_t { Http, HttpStatus, HelloWorld, Unsupported };
    Kind kind = Kind::Http;
    std::string url;             // as configured, for logs
    net::SockAddr addr;          // Http: resolved once, at start (TCP, or a unix socket)
    std::string host_header;     // Http: replaces :authority as Host when set
    uint16_t status = 0;         // HttpStatus
    Millis connect_timeout{30000};
    // Keep-alive pool of this origin, per core.
    uint32_t max_idle = 100;
    Millis idle_timeout{90000};
    // Set by the pool: the key of this service's pool (stable for the process).
    uint32_t pool_key = 0;
};

// "http://host[:port]" (names resolved now: call at start, never on a reactor),
// "http_status:NNN", "hello_world" (also "hello-world"). Others: Errc::Unsupported/Invalid.
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
