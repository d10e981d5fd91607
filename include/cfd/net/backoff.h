// Reconnect delays: exponential backoff with full jitter (AWS's "full jitter": a uniform draw in
// [0, min(cap, base * 2^attempt)]), so that many connectors losing the same edge at once do not
// come back in lockstep.
#pragma once

#include <cstdint>

#include "cfd/core/duration.h"

namespace cfd::net {

struct BackoffPolicy {
    Millis base{1000};
    Millis cap{32000};
};

// The delay before attempt number `attempt` (0 for the first retry), drawn with `random`
// (any 64-bit value, uniformly distributed). Pure: the same inputs give the same delay.
Millis backoff_delay(const BackoffPolicy& p, uint32_t attempt, uint64_t random);

// Stateful helper for one dialer: counts attempts and draws from its own generator.
class Backoff {
public:
    explicit Backoff(BackoffPolicy p = {}, uint64_t seed = 0);
    Millis next();  // delay before the next attempt; counts it
    void reset() { attempt_ = 0; }  // after a connection succeeded
    uint32_t attempts() const { return attempt_; }

private:
    uint64_t draw();
    BackoffPolicy policy_;
    uint64_t state_;
    uint32_t attempt_ = 0;
};

}  // namespace cfd::net
