#include "cfd/core/base64.h"

#include <cstdint>

namespace cfd {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decode_char(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}
}  // namespace

std::string base64_encode(std::string_view in, bool pad) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(in[k])); };
    for (; i + 3 <= in.size(); i += 3) {
        uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
        out.push_back(kAlphabet[v >> 18]);
        out.push_back(kAlphabet[v >> 12 & 63]);
        out.push_back(kAlphabet[v >> 6 & 63]);
        out.push_back(kAlphabet[v & 63]);
    }
    size_t rest = in.size() - i;
    if (rest == 1) {
        uint32_t v = byte(i) << 16;
        out.push_back(kAlphabet[v >> 18]);
        out.push_back(kAlphabet[v >> 12 & 63]);
        if (pad) {
            out += "==";
        }
    } else if (rest == 2) {
        uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
        out.push_back(kAlphabet[v >> 18]);
        out.push_back(kAlphabet[v >> 12 & 63]);
        out.push_back(kAlphabet[v >> 6 & 63]);
        if (pad) {
            out.push_back('=');
        }
    }
    return out;
}

Result<std::string> base64_decode(std::string_view in) {
    while (!in.empty() && in.back() == '=') {
        in.remove_suffix(1);
    }
    if (in.size() % 4 == 1) {
        return Err{Errc::Invalid, 0, "base64 length"};
    }
    std::string out;
    out.reserve(in.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = decode_char(c);
        if (v < 0) {
            return Err{Errc::Invalid, 0, "base64 character"};
        }
        acc = acc << 6 | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>(acc >> bits & 0xff));
        }
    }
    return out;
}

}  // namespace cfd
