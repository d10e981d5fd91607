// A small ClientHello reader of our own rather than wolfSSL_SNI_GetFromBuffer: that one wants
// the whole message in one record and cannot tell "incomplete" from "malformed" when a hello
// spans records, which a server peeking at the first recv must know.
#include "cfd/tls/client_hello.h"

namespace cfd::tls {

namespace {

constexpr uint8_t kRecordHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr uint16_t kExtServerName = 0;
constexpr uint8_t kNameTypeHostName = 0;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecordPayload = 16384;  // RFC 8446 §5.1: TLSPlaintext.length <= 2^14

// Bounds-checked big-endian reader; every getter fails instead of reading past the end.
class Reader {
public:
    explicit Reader(std::string_view s) : s_(s) {}
    size_t left() const { return s_.size() - pos_; }
    bool u8(size_t* v) { return uint(1, v); }
    bool u16(size_t* v) { return uint(2, v); }
    bool bytes(size_t n, std::string_view* out) {
        if (left() < n) {
            return false;
        }
        *out = s_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    bool skip(size_t n) {
        std::string_view unused;
        return bytes(n, &unused);
    }

private:
    bool uint(size_t width, size_t* v) {
        if (left() < width) {
            return false;
        }
        size_t x = 0;
        for (size_t i = 0; i < width; i++) {
            x = x << 8 | static_cast<uint8_t>(s_[pos_ + i]);
        }
        pos_ += width;
        *v = x;
        return true;
    }

    std::string_view s_;
    size_t pos_ = 0;
};

Error malformed(const char* what) { return Error{Errc::Protocol, 0, what}; }

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

Result<std::string> normalize_host(std::string_view raw) {
    if (!raw.empty() && raw.back() == '.') {
        raw.remove_suffix(1);
    }
    if (raw.empty() || raw.size() > kMaxHostName) {
        return malformed("tls sni length");
    }
    // Empty labels ("a..b", ".a", "a..") name nothing: no certificate or route could match.
    if (raw.front() == '.' || raw.back() == '.' || raw.find("..") != std::string_view::npos) {
        return malformed("tls sni empty label");
    }
    std::string name;
    name.reserve(raw.size());
    for (char c : raw) {
        if (!host_char(c)) {
            return malformed("tls sni character");
        }
        name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return name;
}

Result<SniPeek> parse_server_name(std::string_view ext) {
    Reader r(ext);
    size_t list_len = 0;
    if (!r.u16(&list_len) || list_len != r.left() || list_len == 0) {
        return malformed("tls sni list");
    }
    while (r.left() > 0) {
        size_t type = 0;
        size_t len = 0;
        std::string_view name;
        if (!r.u8(&type) || !r.u16(&len) || !r.bytes(len, &name)) {
            return malformed("tls sni entry");
        }
        if (type == kNameTypeHostName) {
            auto host = normalize_host(name);
            if (!host) {
                return host.error();
            }
            return SniPeek{SniPeek::Status::Found, std::move(*host)};
        }
    }
    return SniPeek{SniPeek::Status::Absent, {}};
}

// `body` is the complete ClientHello message after its 4-byte handshake header.
Result<SniPeek> parse_client_hello(std::string_view body) {
    Reader r(body);
    size_t len = 0;
    if (!r.skip(2 + 32)) {  // legacy_version, random
        return malformed("tls client hello");
    }
    if (!r.u8(&len) || len > 32 || !r.skip(len)) {  // legacy_session_id
        return malformed("tls client hello session id");
    }
    if (!r.u16(&len) || len < 2 || len % 2 != 0 || !r.skip(len)) {  // cipher_suites
        return malformed("tls client hello cipher suites");
    }
    if (!r.u8(&len) || len < 1 || !r.skip(len)) {  // legacy_compression_methods
        return malformed("tls client hello compression");
    }
    if (r.left() == 0) {
        return SniPeek{SniPeek::Status::Absent, {}};  // an old hello with no extensions
    }
    if (!r.u16(&len) || len != r.left()) {
        return malformed("tls client hello extensions");
    }
    while (r.left() > 0) {
        size_t type = 0;
        std::string_view data;
        if (!r.u16(&type) || !r.u16(&len) || !r.bytes(len, &data)) {
            return malformed("tls client hello extension");
        }
        if (type == kExtServerName) {
            return parse_server_name(data);
        }
    }
    return SniPeek{SniPeek::Status::Absent, {}};
}

}  // namespace

Result<SniPeek> peek_sni(std::string_view bytes) {
    // The hello may span several records: gather their payloads until the handshake header's
    // length is met. Bounded by kMaxClientHelloBytes of input.
    std::string hello;
    size_t off = 0;
    for (;;) {
        if (bytes.size() - off < kRecordHeader) {
            return SniPeek{};
        }
        auto at = [&](size_t i) { return static_cast<uint8_t>(bytes[off + i]); };
        if (at(0) != kRecordHandshake || at(1) != 3) {
            return malformed("tls: not a TLS handshake");
        }
        size_t len = size_t{at(3)} << 8 | at(4);
        // Zero-length handshake fragments are forbidden (RFC 8446 §5.1) and would let a peer
        // keep us waiting forever without sending anything useful.
        if (len == 0 || len > kMaxRecordPayload) {
            return malformed("tls record length");
        }
        if (off + kRecordHeader + len > kMaxClientHelloBytes) {
            return malformed("tls client hello too fragmented");
        }
        if (bytes.size() - off - kRecordHeader < len) {
            return SniPeek{};
        }
        hello.append(bytes.substr(off + kRecordHeader, len));
        off += kRecordHeader + len;
        if (hello.size() < 4) {
            continue;
        }
        if (static_cast<uint8_t>(hello[0]) != kHandshakeClientHello) {
            return malformed("tls: first message is not a ClientHello");
        }
        size_t msg_len = size_t{static_cast<uint8_t>(hello[1])} << 16 |
                         size_t{static_cast<uint8_t>(hello[2])} << 8 |
                         static_cast<uint8_t>(hello[3]);
        if (msg_len > kMaxClientHello) {
            return malformed("tls client hello too large");
        }
        if (hello.size() - 4 >= msg_len) {
            return parse_client_hello(std::string_view(hello).substr(4, msg_len));
        }
    }
}

}  // namespace cfd::tls
