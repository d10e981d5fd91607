// Routes requests by the ingress rules of cfd/connector/ingress.h: each rule's service becomes an
// OriginService once, at start (names resolved then, never on a reactor), and route() is the
// rules' first match. Immutable after create(): every core reads it without locks.
//
// TLS origins (https://, unix+tls:) get their client contexts here too, once: one per distinct
// (caPool, noTLSVerify, http2Origin), shared by every core (a context is only read once built; each
// connection makes its own session from it).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cfd/connector/ingress.h"
#include "cfd/connector/origin.h"

namespace cfd::connector {

class RuleRouter final : public Router {
public:
    // Errors name the rule whose service could not be resolved.
    [[nodiscard]] static Result<std::unique_ptr<RuleRouter>, std::string> create(Ingress ingress);

    const OriginService* route(std::string_view host, std::string_view path) const override;
    const Ingress& ingress() const { return ingress_; }
    const OriginService& service(size_t rule) const { return services_[rule]; }
    // How many TLS client contexts the rules needed (one per distinct caPool/noTLSVerify, and
    // http2Origin, whose context offers ALPN "h2").
    size_t tls_contexts() const { return contexts_.size(); }

private:
    explicit RuleRouter(Ingress ingress) : ingress_(std::move(ingress)) {}
    Ingress ingress_;
    std::vector<OriginService> services_;  // one per rule, same order
    // (caPool, noTLSVerify, http2Origin) -> context; services_ point into it (unique_ptr:
    // stable addresses).
    std::map<std::tuple<std::string, bool, bool>, std::unique_ptr<tls::Context>> contexts_;
};

// The OriginService for one ingress service and its origin options (exposed for tests). A TLS
// service comes back with use_tls set and no context: create() attaches it.
[[nodiscard]] Result<OriginService, std::string> origin_service_of(const Service& svc,
                                                                   const OriginRequest& o,
                                                                   uint32_t pool_key);

}  // namespace cfd::connector
