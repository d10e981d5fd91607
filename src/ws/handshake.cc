#include "cfd/ws/handshake.h"

#include <cstring>

#include "cfd/core/base64.h"
#include "cfd/core/uuid.h"
#include "cfd/http1/writer.h"

namespace cfd::ws {

namespace {

uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

void sha1_block(uint32_t h[5], const uint8_t* p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 |
               uint32_t(p[4 * i + 2]) << 8 | uint32_t(p[4 * i + 3]);
    }
    for (int i = 16; i < 80; i++) {
        w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f;
        uint32_t k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

}  // namespace

std::array<uint8_t, 20> sha1(std::string_view data) {
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const auto* p = reinterpret_cast<const uint8_t*>(data.data());
    size_t n = data.size();
    size_t full = n / 64;
    for (size_t i = 0; i < full; i++) {
        sha1_block(h, p + 64 * i);
    }
    // The tail, the 0x80 terminator and the 64-bit bit length: one or two more blocks.
    uint8_t tail[128] = {};
    size_t rest = n - 64 * full;
    std::memcpy(tail, p + 64 * full, rest);
    tail[rest] = 0x80;
    size_t blocks = rest + 1 + 8 <= 64 ? 1 : 2;
    uint64_t bits = uint64_t(n) * 8;
    for (int i = 0; i < 8; i++) {
        tail[blocks * 64 - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
    }
    for (size_t i = 0; i < blocks; i++) {
        sha1_block(h, tail + 64 * i);
    }
    std::array<uint8_t, 20> out;
    for (int i = 0; i < 5; i++) {
        out[4 * i] = static_cast<uint8_t>(h[i] >> 24);
        out[4 * i + 1] = static_cast<uint8_t>(h[i] >> 16);
        out[4 * i + 2] = static_cast<uint8_t>(h[i] >> 8);
        out[4 * i + 3] = static_cast<uint8_t>(h[i]);
    }
    return out;
}

std::string accept_key(std::string_view client_key) {
    std::string in(client_key);
    in.append(kGuid);
    auto d = sha1(in);
    return base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

std::string new_client_key() {
    char raw[16];
    random_bytes(raw, sizeof(raw));
    return base64_encode(std::string_view(raw, sizeof(raw)));
}

Status write_client_request(std::string& out, std::string_view host, std::string_view path,
                            std::string_view key) {
    http1::Headers h{{"Upgrade", "websocket"},
                     {"Connection", "Upgrade"},
                     {"Sec-WebSocket-Key", std::string(key)},
                     {"Sec-WebSocket-Version", "13"},
                     {"User-Agent", "cfdtunnel"}};
    return http1::write_request_head(out, "GET", path, host, h, http1::Framing::none());
}

Status check_server_response(const http1::ResponseHead& head, std::string_view key,
                             const char** why) {
    auto bad = [&](const char* w) {
        *why = w;
        return Err{Errc::Protocol, 0, "websocket handshake"};
    };
    if (head.status != 101) {
        return bad("the server did not switch protocols (status is not 101)");
    }
    const std::string* up = http1::find_header(head.headers, "upgrade");
    if (up == nullptr || !http1::iequals(*up, "websocket")) {
        return bad("the 101 lacks Upgrade: websocket");
    }
    const std::string* conn = http1::find_header(head.headers, "connection");
    if (conn == nullptr || !http1::has_token(*conn, "upgrade")) {
        return bad("the 101 lacks Connection: upgrade");
    }
    const std::string* acc = http1::find_header(head.headers, "sec-websocket-accept");
    if (acc == nullptr || *acc != accept_key(key)) {
        return bad("Sec-WebSocket-Accept does not match the key sent");
    }
    return {};
}

}  // namespace cfd::ws
