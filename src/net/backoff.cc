#include "cfd/net/backoff.h"

#include <algorithm>
#include <chrono>

namespace cfd::net {

Millis backoff_delay(const BackoffPolicy& p, uint32_t attempt, uint64_t random) {
    if (p.base.count() <= 0 || p.cap.count() <= 0) {
        return Millis(0);
    }
    auto base = uint64_t(p.base.count());
    auto cap = uint64_t(p.cap.count());
    // base << attempt, saturating at cap without overflowing.
    uint64_t ceiling = base;
    for (uint32_t i = 0; i < attempt && ceiling < cap; ++i) {
        ceiling <<= 1;
    }
    ceiling = std::min(ceiling, cap);
    return Millis(int64_t(random % (ceiling + 1)));
}

Backoff::Backoff(BackoffPolicy p, uint64_t seed) : policy_(p) {
    if (seed == 0) {
        seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               reinterpret_cast<uintptr_t>(this);
    }
    state_ = seed;
}

uint64_t Backoff::draw() {
    // splitmix64: tiny, good enough to spread retries; not for secrets.
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

Millis Backoff::next() {
    Millis d = backoff_delay(policy_, attempt_, draw());
    if (attempt_ < 64) {
        ++attempt_;
    }
    return d;
}

}  // namespace cfd::net
