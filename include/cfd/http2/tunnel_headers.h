// Cloudflare Tunnel's conventions on top of HTTP/2 (DESIGN.md §2), shared by edge and connector:
// what kind of stream a request opens, and how a response's origin headers travel.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/http2/types.h"

namespace cfd::http2 {

inline constexpr std::string_view kUpgradeHeader = "cf-cloudflared-proxy-connection-upgrade";
inline constexpr std::string_view kUpgradeControlStream = "control-stream";
inline constexpr std::string_view kUpgradeWebsocket = "websocket";
inline constexpr std::string_view kUpgradeConfiguration = "update-configuration";
inline constexpr std::string_view kProxySrcHeader = "cf-cloudflared-proxy-src";
inline constexpr std::string_view kResponseHeaders = "cf-cloudflared-response-headers";
inline constexpr std::string_view kResponseMeta = "cf-cloudflared-response-meta";
inline constexpr std::string_view kMetaOrigin = R"({"src":"origin"})";
inline constexpr std::string_view kMetaCloudflared = R"({"src":"cloudflared"})";

enum class StreamKind : uint8_t { Http, Websocket, Tcp, Control, Configuration };
const char* stream_kind_name(StreamKind k);

// cloudflared's order: configuration, websocket, TCP (non-empty proxy-src), control, HTTP.
StreamKind classify_stream(const Headers& request);

// A header name/value pair as the origin wrote it (any case).
using HeaderPair = std::pair<std::string, std::string>;

// "base64(name):base64(value)" pairs joined by ';' (base64 without padding), as cloudflared's
// SerializeHeaders writes cf-cloudflared-response-headers.
std::string serialize_user_headers(const std::vector<HeaderPair>& headers);
// The inverse; refuses malformed pairs. An empty string is no headers.
Result<std::vector<HeaderPair>> parse_user_headers(std::string_view text);

// Headers of the tunnel protocol itself, never forwarded as user headers: pseudo-headers and
// the cf-int-, cf-cloudflared- and cf-proxy- families.
bool is_control_header(std::string_view lower_name);

}  // namespace cfd::http2
