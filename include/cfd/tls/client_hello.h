// Reads the server name (SNI) out of the first bytes a client sent, before any TLS state
// exists, so that the server can pick its certificate (its Context) first. Pure parsing: it
// copies nothing it is not asked for and never reads past `bytes`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/result.h"

namespace cfd::tls {

// Longest ClientHello handshake message we reassemble. Real ones are a few KiB, post-quantum
// key shares included; anything larger is refused rather than buffered.
inline constexpr size_t kMaxClientHello = 32 * 1024;
// peek_sni decides within this many bytes (headers of a hello cut into many records included),
// so this is all a server ever buffers before choosing its certificate.
inline constexpr size_t kMaxClientHelloBytes = 64 * 1024;
// RFC 1035: a host name is at most 255 octets.
inline constexpr size_t kMaxHostName = 255;

struct SniPeek {
    enum class Status : uint8_t {
        NeedMore,  // the ClientHello is not complete yet: call again with more bytes
        Found,     // `name` holds the host name, lower case, trailing dot removed
        Absent,    // a complete ClientHello without a host_name
    };
    Status status = Status::NeedMore;
    std::string name;
};

// `bytes` is everything received so far on the connection. Errc::Protocol when they are not a
// TLS ClientHello (another protocol, SSLv2, bad lengths, a malformed or oversized SNI).
[[nodiscard]] Result<SniPeek> peek_sni(std::string_view bytes);

}  // namespace cfd::tls
