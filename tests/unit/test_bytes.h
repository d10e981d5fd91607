// Deterministic test bodies and a cheap hash, shared by the tests that move large bodies
// (http2, edge, connector).
#pragma once

#include <cstdint>
#include <string_view>

namespace cfd::test {

// The byte at offset `i` of generated body `seed`: cheap, and not periodic over a window.
inline char gen_byte(uint64_t seed, uint64_t i) {
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    return static_cast<char>(x >> 56 ^ i >> 13);
}

struct Fnv {
    uint64_t h = 0xcbf29ce484222325ull;
    void add(std::string_view s) {
        for (unsigned char c : s) {
            h = (h ^ c) * 0x100000001b3ull;
        }
    }
};

inline uint64_t gen_hash(uint64_t seed, uint64_t n) {
    Fnv f;
    for (uint64_t i = 0; i < n; i++) {
        char c = gen_byte(seed, i);
        f.add(std::string_view(&c, 1));
    }
    return f.h;
}

}  // namespace cfd::test
