#include "cfd/connector/rule_router.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cfd/core/log.h"

namespace cfd::connector {

namespace {

Result<net::SockAddr, std::string> tcp_addr(const Service& svc) {
    bool v6 = svc.host.find(':') != std::string::npos;
    std::string hp = (v6 ? "[" + svc.host + "]" : svc.host) + ":" + std::to_string(svc.port);
    auto a = net::SockAddr::parse(hp);
    if (!a) {
        return "cannot resolve " + hp + ": " + a.error().message();
    }
    return *a;
}

Result<net::SockAddr, std::string> unix_addr(const Service& svc) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (svc.path.size() >= sizeof(un.sun_path)) {
        return "unix socket path too long: " + svc.path;
    }
    std::memcpy(un.sun_path, svc.path.data(), svc.path.size());
    return net::SockAddr::from(reinterpret_cast<const sockaddr*>(&un),
                               static_cast<socklen_t>(sizeof(un)));
}

// The TLS half of origin_service_of: which name the origin's certificate is checked against.
// cloudflared: originServerName when set; else Go's transport takes the request URL's host,
// which is the service's host for https:// and the request's own host for unix+tls: (its URL
// keeps the public hostname). httpHostHeader, when set, is what that request carries as Host,
// so unix+tls without originServerName verifies it. matchSNItoHost: the request's Host always.
void set_tls(OriginService* out, const Service& svc, const OriginRequest& o) {
    out->use_tls = true;
    out->tls_timeout = o.tls_timeout;
    if (o.match_sni_to_host) {
        out->sni_from_host = true;  // wins over originServerName, as in cloudflared
    } else if (!o.origin_server_name.empty()) {
        out->server_name = o.origin_server_name;
    } else if (svc.kind == Service::Kind::Https) {
        out->server_name = svc.host;
    } else if (!o.http_host_header.empty()) {
        out->server_name = o.http_host_header;
    } else {
        out->sni_from_host = true;
    }
}

}  // namespace

Result<OriginService, std::string> origin_service_of(const Service& svc, const OriginRequest& o,
                                                     uint32_t pool_key) {
    OriginService out;
    out.url = svc.text();
    out.pool_key = pool_key;
    out.connect_timeout = o.connect_timeout;
    out.tcp_keep_alive = o.tcp_keep_alive;
    out.idle_timeout = o.keep_alive_timeout;
    out.max_idle = o.keep_alive_connections < 0 ? 0u : uint32_t(o.keep_alive_connections);
    out.host_header = o.http_host_header;
    out.disable_chunked_encoding = o.disable_chunked_encoding;
    out.http2 = o.http2_origin;
    (void)parse_proxy_protocol(o.proxy_protocol, &out.proxy_protocol);  // checked when read
    switch (svc.kind) {
    case Service::Kind::HttpStatus:
        out.kind = OriginService::Kind::HttpStatus;
        out.status = static_cast<uint16_t>(svc.status);
        return out;
    case Service::Kind::HelloWorld:
        out.kind = OriginService::Kind::HelloWorld;
        return out;
    case Service::Kind::Http:
    case Service::Kind::Https: {
        auto a = tcp_addr(svc);
        if (!a) {
            return a.error();
        }
        out.kind = OriginService::Kind::Http;
        out.addr = *a;
        if (svc.kind == Service::Kind::Https) {
            set_tls(&out, svc, o);
        }
        return out;
    }
    case Service::Kind::Unix:
    case Service::Kind::UnixTls: {
        auto a = unix_addr(svc);
        if (!a) {
            return a.error();
        }
        out.kind = OriginService::Kind::Http;
        out.addr = *a;
        if (svc.kind == Service::Kind::UnixTls) {
            set_tls(&out, svc, o);
        }
        return out;
    }
    case Service::Kind::Tcp:
    case Service::Kind::Ssh: {
        auto a = tcp_addr(svc);
        if (!a) {
            return a.error();
        }
        out.kind = OriginService::Kind::Tcp;
        out.addr = *a;
        out.max_idle = 0;  // a byte stream is never handed to another stream
        return out;
    }
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
        if (s->use_tls) {
            const OriginRequest& o = rule.origin;
            // noTLSVerify makes the CA pool irrelevant: one insecure context serves them all.
            // http2Origin offers "h2" in ALPN: a context of its own.
            std::tuple<std::string, bool, bool> key{
                o.no_tls_verify ? std::string() : o.ca_pool, o.no_tls_verify, s->http2};
            const std::string& ca_pool = std::get<0>(key);
            auto it = r->contexts_.find(key);
            if (it == r->contexts_.end()) {
                if (!ca_pool.empty() && ::access(ca_pool.c_str(), R_OK) != 0) {
                    return "ingress rule \"" + rule.name + "\": caPool " + ca_pool + ": " +
                           std::strerror(errno);
                }
                tls::ClientOptions co;
                co.ca_file = ca_pool;  // empty: the system pool
                co.insecure_skip_verify = std::get<1>(key);
                if (std::get<2>(key)) {
                    // h2 first, and http/1.1 so that an origin without h2 can still pick one:
                    // nginx (and OpenSSL servers generally) answer an offer they share
                    // nothing with by a fatal no_application_protocol alert. Go's transport,
                    // thus cloudflared's, offers the same pair.
                    co.alpn = {"h2", "http/1.1"};
                }
                auto ctx = tls::Context::client(co);
                if (!ctx) {
                    return "ingress rule \"" + rule.name + "\": " +
                           (ca_pool.empty() ? std::string(tls::kSystemCaFile) : ca_pool) + ": " +
                           tls::describe(ctx.error());
                }
                it = r->contexts_
                         .emplace(key, std::make_unique<tls::Context>(std::move(*ctx)))
                         .first;
            }
            s->tls_ctx = it->second.get();
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
