// Vocabulary of the HTTP/2 layer: header fields, RFC 9113 error codes, roles.
// Nothing here depends on nghttp2: only src/http2 includes it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cfd::http2 {

enum class Role : uint8_t { Client, Server };

// A received header field, copied out of nghttp2's buffers once. Names are lower case (HTTP/2
// requires it and nghttp2 checks it); pseudo-headers (":method", ":status"...) come first.
struct Header {
    std::string name;
    std::string value;

    bool is_pseudo() const { return !name.empty() && name[0] == ':'; }
};
using Headers = std::vector<Header>;

// A header field to send. The views only need to live until the submit_*() call returns:
// nghttp2 copies them. Names are lower-cased on the way out, and connection-specific fields
// (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, te other than
// "trailers") are dropped, as HTTP/2 forbids them; a request converted from HTTP/1.1 can be
// passed as it is.
struct HeaderView {
    std::string_view name;
    std::string_view value;
};
using HeaderSpan = std::span<const HeaderView>;

// The first field named `name` (lower case), or nullptr.
const Header* find_header(const Headers& headers, std::string_view name);
// The value of the first field named `name`, "" when absent.
std::string_view header_value(const Headers& headers, std::string_view name);
// Views over received fields, to forward them with submit_*(); they borrow from `headers`.
std::vector<HeaderView> to_views(const Headers& headers);

// RFC 9113 §7 error codes, as carried by RST_STREAM and GOAWAY. A peer may send any 32-bit
// value, so handlers receive a plain uint32_t and compare against these.
inline constexpr uint32_t kNoError = 0x0;
inline constexpr uint32_t kProtocolError = 0x1;
inline constexpr uint32_t kInternalError = 0x2;
inline constexpr uint32_t kFlowControlError = 0x3;
inline constexpr uint32_t kSettingsTimeout = 0x4;
inline constexpr uint32_t kStreamClosed = 0x5;
inline constexpr uint32_t kFrameSizeError = 0x6;
inline constexpr uint32_t kRefusedStream = 0x7;
inline constexpr uint32_t kCancel = 0x8;
inline constexpr uint32_t kCompressionError = 0x9;
inline constexpr uint32_t kConnectError = 0xa;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;
inline constexpr uint32_t kInadequateSecurity = 0xc;
inline constexpr uint32_t kHttp11Required = 0xd;

// "PROTOCOL_ERROR" style name for logs; "UNKNOWN" for codes outside the table.
const char* error_code_name(uint32_t code);

}  // namespace cfd::http2
