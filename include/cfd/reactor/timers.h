// Per-reactor timers: a binary min-heap of (deadline, sequence) over a slab of timer slots.
// Cancelling bumps the slot's generation; the heap entry becomes stale and is skipped (and the
// heap is compacted when stale entries outnumber live ones, so add/cancel churn stays bounded).
// Equal deadlines fire in the order they were added. Single-threaded: the owning reactor only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::reactor {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct TimerId {
    uint32_t slot = 0;
    uint32_t gen = 0;  // 0: no timer
    explicit operator bool() const { return gen != 0; }
    bool operator==(const TimerId&) const = default;
};

class TimerTarget {
public:
    virtual ~TimerTarget() = default;
    virtual void on_timer(TimerId id, uint64_t arg) = 0;
};

class TimerQueue {
public:
    explicit TimerQueue(size_t max_timers = 1 << 20) : max_timers_(max_timers) {}

    // Busy when max_timers are already pending. The target must outlive the timer or cancel it.
    [[nodiscard]] Result<TimerId> add(TimePoint when, TimerTarget* target, uint64_t arg);
    // False when the timer already fired or was cancelled (harmless).
    bool cancel(TimerId id);

    std::optional<TimePoint> next_deadline();

    struct Fired {
        TimerId id;
        TimerTarget* target = nullptr;
        uint64_t arg = 0;
    };
    // Removes and returns the earliest timer due at `now`, if any.
    bool pop_due(TimePoint now, Fired* out);

    size_t live() const { return live_; }
    size_t heap_size() const { return heap_.size(); }

private:
    struct Slot {
        uint32_t gen = 1;
        bool armed = false;
        TimerTarget* target = nullptr;
        uint64_t arg = 0;
    };
    struct Entry {
        TimePoint when;
        uint64_t seq;
        uint32_t slot;
        uint32_t gen;
    };
    bool stale(const Entry& e) const;
    void drop_stale_top();
    void compact();

    size_t max_timers_;
    std::vector<Slot> slots_;
    std::vector<uint32_t> free_;
    std::vector<Entry> heap_;
    uint64_t seq_ = 0;
    size_t live_ = 0;
};

}  // namespace cfd::reactor
