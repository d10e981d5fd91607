// In-flight streams per connector, shared by every reactor of one edge process, for balancing
// (DESIGN.md §5: power-of-two-choices on in-flight streams per connector). A connector's
// connections may sit on several cores; each core adds and subtracts on the connector's slot as
// its streams open and close, and any core reads the slots when it picks a connector. Relaxed
// atomics: a slightly stale count only makes a choice slightly worse, never wrong.
//
// Slots are handed out and taken back by the control thread only, when a connector's first
// connection registers and its last one closes (all its streams have then closed, so the count
// is back at 0 for the next owner).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace cfd::edge {

class LoadBoard {
public:
    explicit LoadBoard(uint32_t slots = 1 << 16);
    LoadBoard(const LoadBoard&) = delete;
    LoadBoard& operator=(const LoadBoard&) = delete;

    // Control thread.
    std::optional<uint32_t> acquire();
    void release(uint32_t slot);

    // Any thread.
    std::atomic<int32_t>* counter(uint32_t slot) { return &slots_[slot]; }
    int32_t load(uint32_t slot) const { return slots_[slot].load(std::memory_order_relaxed); }
    uint32_t size() const { return size_; }

private:
    uint32_t size_;
    std::unique_ptr<std::atomic<int32_t>[]> slots_;
    std::vector<uint32_t> free_;  // control thread only
};

}  // namespace cfd::edge
