// Shared by the libFuzzer targets: an input reader that takes control bytes from the front of
// the fuzzer's data, and the invariant check that turns a broken invariant into a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cfd/core/assert.h"
#include "cfd/core/log.h"

// A broken invariant is a crash: libFuzzer keeps the input and ASan prints the stack.
#define FUZZ_REQUIRE(c)                                                                            \
    do {                                                                                           \
        if (!(c)) [[unlikely]] {                                                                   \
            std::fprintf(stderr, "fuzz invariant failed: %s at %s:%d\n", #c, __FILE__, __LINE__);  \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

namespace cfd::fuzz {

// Control bytes first, then the payload. Reading past the end yields zeros, so that every input
// is valid and short inputs still reach the code under test.
class Input {
public:
    Input(const uint8_t* data, size_t size) : p_(reinterpret_cast<const char*>(data)), n_(size) {}

    uint8_t byte() {
        if (n_ == 0) {
            return 0;
        }
        --n_;
        return static_cast<uint8_t>(*p_++);
    }
    uint16_t u16() { return static_cast<uint16_t>(byte() | byte() << 8); }

    // What is left, as the payload.
    std::string_view rest() const { return {p_, n_}; }

private:
    const char* p_;
    size_t n_;
};

// A cut position in [0, n] taken from `seed`: targets feed the bytes before and after it
// separately, so that every token boundary gets split somewhere.
inline size_t cut(uint16_t seed, size_t n) {
    return n == 0 ? 0 : seed % (n + 1);
}

// Every target: logging off (a fuzzer must not spend its time writing warnings), and no
// CFD_BUG may be reported while a fuzzer runs: a "bug we survive" is still a bug.
inline void quiet_logs() {
    log::set_level(log::Level::Fatal);
}
inline void require_no_bug() {
    FUZZ_REQUIRE(bugs_reported() == 0);
}

}  // namespace cfd::fuzz
