// Which plain-HTTP requests the edge answers with a redirect to HTTPS (--https-redirect), and
// where to. Host patterns: an exact name, "*.domain" (one label under it, as routes match) or
// "*" (every host); compared without port, case or trailing dot.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::edge {

class HttpsRedirect {
public:
    HttpsRedirect() = default;
    // Errc::Invalid for an empty or malformed pattern. `https_port` 443 is left out of the
    // locations.
    [[nodiscard]] static Result<HttpsRedirect> create(const std::vector<std::string>& hosts,
                                                      uint16_t https_port);

    bool empty() const { return !all_ && exact_.empty() && wildcard_.empty(); }
    // `authority` as the request gave it (Host, maybe with a port).
    bool applies(std::string_view authority) const;
    // "https://host[:port]/path?query": the request's host without its port, the HTTPS port.
    std::string location(std::string_view authority, std::string_view target) const;
    // 301 for GET and HEAD, 308 otherwise (keeps the method and the body).
    static uint16_t status_for(std::string_view method);

private:
    bool all_ = false;
    uint16_t port_ = 443;
    std::unordered_set<std::string> exact_;
    std::unordered_set<std::string> wildcard_;  // parent domains of "*.x"
};

}  // namespace cfd::edge
