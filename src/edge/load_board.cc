#include "cfd/edge/load_board.h"

namespace cfd::edge {

LoadBoard::LoadBoard(uint32_t slots)
    : size_(slots), slots_(std::make_unique<std::atomic<int32_t>[]>(slots)) {
    free_.reserve(slots);
    for (uint32_t i = slots; i > 0; i--) {
        free_.push_back(i - 1);
    }
    for (uint32_t i = 0; i < slots; i++) {
        slots_[i].store(0, std::memory_order_relaxed);
    }
}

std::optional<uint32_t> LoadBoard::acquire() {
    if (free_.empty()) {
        return std::nullopt;
    }
    uint32_t s = free_.back();
    free_.pop_back();
    slots_[s].store(0, std::memory_order_relaxed);
    return s;
}

void LoadBoard::release(uint32_t slot) {
    if (slot < size_) {
        free_.push_back(slot);
    }
}

}  // namespace cfd::edge
