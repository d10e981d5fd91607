#include "cfd/core/uuid.h"

#include "cfd/core/text.h"

#include <sys/random.h>

#include <cerrno>

namespace cfd {

void random_bytes(void* out, size_t n) {
    auto* p = static_cast<uint8_t*>(out);
    while (n > 0) {
        ssize_t r = ::getrandom(p, n, 0);
        if (r < 0) {
            CFD_CHECK(errno == EINTR);  // getrandom cannot fail otherwise after boot
            continue;
        }
        p += r;
        n -= static_cast<size_t>(r);
    }
}

Uuid Uuid::random() {
    Uuid u;
    random_bytes(u.bytes.data(), u.bytes.size());
    u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0f) | 0x40);
    u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80);
    return u;
}

Result<Uuid> Uuid::parse(std::string_view s) {
    bool dashed = s.size() == 36;
    if (!dashed && s.size() != 32) {
        return Err{Errc::Invalid, 0, "uuid length"};
    }
    Uuid u;
    size_t out = 0;
    for (size_t i = 0; i < s.size();) {
        if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-') {
                return Err{Errc::Invalid, 0, "uuid dash"};
            }
            ++i;
            continue;
        }
        int hi = hex_digit(s[i]);
        int lo = i + 1 < s.size() ? hex_digit(s[i + 1]) : -1;
        if (hi < 0 || lo < 0) {
            return Err{Errc::Invalid, 0, "uuid hex"};
        }
        u.bytes[out++] = static_cast<uint8_t>(hi << 4 | lo);
        i += 2;
    }
    return u;
}

Result<Uuid> Uuid::from_bytes(std::string_view raw) {
    if (raw.size() != 16) {
        return Err{Errc::Invalid, 0, "uuid bytes"};
    }
    Uuid u;
    for (size_t i = 0; i < 16; ++i) {
        u.bytes[i] = static_cast<uint8_t>(raw[i]);
    }
    return u;
}

std::string Uuid::str() const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            s.push_back('-');
        }
        s.push_back(kHex[bytes[i] >> 4]);
        s.push_back(kHex[bytes[i] & 15]);
    }
    return s;
}

bool Uuid::is_nil() const {
    for (uint8_t b : bytes) {
        if (b != 0) {
            return false;
        }
    }
    return true;
}

}  // namespace cfd
