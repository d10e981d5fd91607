#include "cfd/http1/hop_by_hop.h"

#include <vector>

namespace cfd::http1 {

bool is_hop_by_hop(std::string_view name) {
    static constexpr std::string_view kNames[] = {
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
    };
    for (std::string_view n : kNames) {
        if (iequals(name, n)) {
            return true;
        }
    }
    return false;
}

namespace {

// True when some Connection header lists `name` as one of its options.
bool named_in_connection(const Headers& headers, std::string_view name) {
    for (const Header& h : headers) {
        if (iequals(h.name, "connection") && has_token(h.value, name)) {
            return true;
        }
    }
    return false;
}

}  // namespace

void strip_hop_by_hop(Headers& headers) {
    bool any_connection = find_header(headers, "connection") != nullptr;
    // Judge every header against the untouched list first (the Connection headers are
    // dropped too), then compact in place.
    std::vector<bool> drop(headers.size());
    for (size_t i = 0; i < headers.size(); ++i) {
        drop[i] = is_hop_by_hop(headers[i].name) ||
                  (any_connection && named_in_connection(headers, headers[i].name));
    }
    size_t out = 0;
    for (size_t i = 0; i < headers.size(); ++i) {
        if (drop[i]) {
            continue;
        }
        if (out != i) {
            headers[out] = std::move(headers[i]);
        }
        ++out;
    }
    headers.resize(out);
}

}  // namespace cfd::http1
