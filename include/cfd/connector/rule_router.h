// Routes requests by the ingress rules of cfd/connector/ingress.h: each rule's service becomes an
// OriginService once, at start (names resolved then, never on a reactor), and route() is the
// rules' first match. Immutable after create(): every core reads it without locks.
#pragma once

#include <memory>
#include <string>
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

private:
    explicit RuleRouter(Ingress ingress) : ingress_(std::move(ingress)) {}
    Ingress ingress_;
    std::vector<OriginService> services_;  // one per rule, same order
};

// The OriginService for one ingress service and its origin options (exposed for tests).
[[nodiscard]] Result<OriginService, std::string> origin_service_of(const Service& svc,
                                                                   const OriginRequest& o,
                                                                   uint32_t pool_key);

}  // namespace cfd::connector
