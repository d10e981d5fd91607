#include "cfd/http2/tunnel_headers.h"

#include "cfd/core/base64.h"

namespace cfd::http2 {

const char* stream_kind_name(StreamKind k) {
    switch (k) {
    case StreamKind::Http: return "http";
    case StreamKind::Websocket: return "websocket";
    case StreamKind::Tcp: return "tcp";
    case StreamKind::Control: return "control";
    case StreamKind::Configuration: return "configuration";
    }
    return "unknown";
}

StreamKind classify_stream(const Headers& request) {
    std::string_view upgrade = header_value(request, kUpgradeHeader);
    if (upgrade == kUpgradeConfiguration) {
        return StreamKind::Configuration;
    }
    if (upgrade == kUpgradeWebsocket) {
        return StreamKind::Websocket;
    }
    if (!header_value(request, kProxySrcHeader).empty()) {
        return StreamKind::Tcp;
    }
    if (upgrade == kUpgradeControlStream) {
        return StreamKind::Control;
    }
    return StreamKind::Http;
}

std::string serialize_user_headers(const std::vector<HeaderPair>& headers) {
    std::string out;
    for (const auto& [name, value] : headers) {
        if (!out.empty()) {
            out.push_back(';');
        }
        out += base64_encode(name, false);
        out.push_back(':');
        out += base64_encode(value, false);
    }
    return out;
}

Result<std::vector<HeaderPair>> parse_user_headers(std::string_view text) {
    std::vector<HeaderPair> out;
    while (!text.empty()) {
        size_t semi = text.find(';');
        std::string_view pair = text.substr(0, semi);
        text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
        size_t colon = pair.find(':');
        if (colon == std::string_view::npos) {
            return Err{Errc::Protocol, 0, "response header pair without ':'"};
        }
        auto name = base64_decode(pair.substr(0, colon));
        auto value = base64_decode(pair.substr(colon + 1));
        if (!name || !value || name->empty()) {
            return Err{Errc::Protocol, 0, "response header pair not base64"};
        }
        out.emplace_back(std::move(*name), std::move(*value));
    }
    return out;
}

bool is_control_header(std::string_view n) {
    return n.starts_with(":") || n.starts_with("cf-int-") || n.starts_with("cf-cloudflared-") ||
           n.starts_with("cf-proxy-");
}

}  // namespace cfd::http2
