#include "cfd/edge/https_redirect.h"

#include "cfd/edge/routes.h"

namespace cfd::edge {

Result<HttpsRedirect> HttpsRedirect::create(const std::vector<std::string>& hosts,
                                            uint16_t https_port) {
    HttpsRedirect r;
    r.port_ = https_port;
    for (const std::string& h : hosts) {
        if (h == "*") {
            r.all_ = true;
            continue;
        }
        bool wildcard = h.size() > 2 && h.compare(0, 2, "*.") == 0;
        std::string name = host_without_port(wildcard ? std::string_view(h).substr(2) : h);
        if (name.empty() || name.find_first_of("*/ ") != std::string::npos) {
            return Err{Errc::Invalid, 0, "https-redirect: not a host name"};
        }
        (wildcard ? r.wildcard_ : r.exact_).insert(std::move(name));
    }
    return r;
}

bool HttpsRedirect::applies(std::string_view authority) const {
    if (all_) {
        return true;
    }
    std::string h = host_without_port(authority);
    if (h.empty()) {
        return false;
    }
    if (exact_.count(h) != 0) {
        return true;
    }
    size_t dot = h.find('.');
    return dot != std::string::npos && dot > 0 && wildcard_.count(h.substr(dot + 1)) != 0;
}

std::string HttpsRedirect::location(std::string_view authority, std::string_view target) const {
    std::string host = host_without_port(authority);
    std::string out = "https://";
    if (host.find(':') != std::string::npos) {
        out += "[" + host + "]";  // an IPv6 literal
    } else {
        out += host;
    }
    if (port_ != 443) {
        out += ":" + std::to_string(port_);
    }
    if (target.empty() || target[0] != '/') {
        out += "/";  // asterisk or absolute forms: the root
    } else {
        out += target;
    }
    return out;
}

uint16_t HttpsRedirect::status_for(std::string_view method) {
    return method == "GET" || method == "HEAD" ? 301 : 308;
}

}  // namespace cfd::edge
