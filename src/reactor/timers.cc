#include "cfd/reactor/timers.h"

#include <algorithm>

namespace cfd::reactor {

namespace {
// Heap comparator for std::push_heap & co: a max-heap on "later" is a min-heap on deadline.
struct Later {
    template <class E>
    bool operator()(const E& a, const E& b) const {
        return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
};
}  // namespace

Result<TimerId> TimerQueue::add(TimePoint when, TimerTarget* target, uint64_t arg) {
    if (live_ >= max_timers_) {
        return Err{Errc::Busy, 0, "timer queue full"};
    }
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        slot = uint32_t(slots_.size());
        slots_.emplace_back();
    }
    Slot& s = slots_[slot];
    s.armed = true;
    s.target = target;
    s.arg = arg;
    heap_.push_back(Entry{when, seq_++, slot, s.gen});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    ++live_;
    if (heap_.size() > 2 * live_ + 64) {
        compact();
    }
    return TimerId{slot, s.gen};
}

bool TimerQueue::cancel(TimerId id) {
    if (id.slot >= slots_.size()) {
        return false;
    }
    Slot& s = slots_[id.slot];
    if (!s.armed || s.gen != id.gen) {
        return false;
    }
    s.armed = false;
    s.target = nullptr;
    s.gen = s.gen == UINT32_MAX ? 1 : s.gen + 1;
    free_.push_back(id.slot);
    --live_;
    if (heap_.size() > 2 * live_ + 64) {
        compact();
    }
    return true;
}

bool TimerQueue::stale(const Entry& e) const {
    const Slot& s = slots_[e.slot];
    return !s.armed || s.gen != e.gen;
}

void TimerQueue::drop_stale_top() {
    while (!heap_.empty() && stale(heap_.front())) {
        std::pop_heap(heap_.begin(), heap_.end(), Later{});
        heap_.pop_back();
    }
}

void TimerQueue::compact() {
    std::erase_if(heap_, [this](const Entry& e) { return stale(e); });
    std::make_heap(heap_.begin(), heap_.end(), Later{});
}

std::optional<TimePoint> TimerQueue::next_deadline() {
    drop_stale_top();
    if (heap_.empty()) {
        return std::nullopt;
    }
    return heap_.front().when;
}

bool TimerQueue::pop_due(TimePoint now, Fired* out) {
    drop_stale_top();
    if (heap_.empty() || heap_.front().when > now) {
        return false;
    }
    Entry e = heap_.front();
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
    Slot& s = slots_[e.slot];
    out->id = TimerId{e.slot, e.gen};
    out->target = s.target;
    out->arg = s.arg;
    s.armed = false;
    s.target = nullptr;
    s.gen = s.gen == UINT32_MAX ? 1 : s.gen + 1;
    free_.push_back(e.slot);
    --live_;
    return true;
}

}  // namespace cfd::reactor
