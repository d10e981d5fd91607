#include "cfd/connector/rule_router.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace cfd::connector {

Result<OriginService, std::string> origin_service_of(const Service& svc, const OriginRequest& o,
                                                     uint32_t pool_key) {
    OriginService out;
    out.url = svc.text();
    out.pool_key = pool_key;
    out.connect_timeout = o.connect_timeout;
    out.idle_timeout = o.keep_alive_timeout;
    out.max_idle = o.keep_alive_connections < 0 ? 0u : uint32_t(o.keep_alive_connections);
    out.host_header = o.http_host_header;
    switch (svc.kind) {
    case Service::Kind::HttpStatus:
        out.kind = OriginService::Kind::HttpStatus;
        out.status = static_cast<uint16_t>(svc.status);
        return out;
    case Service::Kind::HelloWorld:
        out.kind = OriginService::Kind::HelloWorld;
        return out;
    case Service::Kind::Http: {
        bool v6 = svc.host.find(':') != std::string::npos;
        std::string hp = (v6 ? "[" + svc.host + "]" : svc.host) + ":" + std::to_string(svc.port);
        auto a = net::SockAddr::parse(hp);
        if (!a) {
            return "cannot resolve " + hp + ": " + a.error().message();
        }
        out.kind = OriginService::Kind::Http;
        out.addr = *a;
        return out;
    }
    case Service::Kind::Unix: {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        if (svc.path.size() >= sizeof(un.sun_path)) {
            return "unix socket path too long: " + svc.path;
        }
        std::memcpy(un.sun_path, svc.path.data(), svc.path.size());
        out.kind = OriginService::Kind::Http;
        out.addr = net::SockAddr::from(reinterpret_cast<const sockaddr*>(&un),
                                       static_cast<socklen_t>(sizeof(un)));
        return out;
    }
    case Service::Kind::Https:
    case Service::Kind::UnixTls:
    case Service::Kind::Tcp:
    case Service::Kind::Ssh:
        out.kind = OriginService::Kind::Unsupported;
        return out;
    }
    return std::string("unknown service kind");
}

Result<std::unique_ptr<RuleRouter>, std::string> RuleRouter::create(Ingress ingress) {
    std::unique_ptr<RuleRouter> r(new RuleRouter(std::move(ingress)));
    for (size_t i = 0; i < r->ingress_.size(); i++) {
        const Rule& rule = r->ingress_.rule(i);
        auto s = origin_service_of(rule.service, rule.origin, static_cast<uint32_t>(i));
        if (!s) {
            return "ingress rule \"" + rule.name + "\": " + s.error();
        }
        r->services_.push_back(std::move(*s));
    }
    return r;
}

const OriginService* RuleRouter::route(std::string_view host, std::string_view path) const {
    if (services_.empty()) {
        return nullptr;
    }
    return &services_[ingress_.match(host, path)];
}

}  // namespace cfd::connector
