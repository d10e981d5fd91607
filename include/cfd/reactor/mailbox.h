// Cross-core messages. One bounded single-producer single-consumer queue per ordered pair of
// reactors (N*N of them), lock-free: the producer owns `tail_`, the consumer owns `head_`, each
// publishes its index with release and reads the other's with acquire. A full queue refuses the
// push (Busy): the producer retries on a later loop turn, it never blocks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace cfd::reactor {

// A small fixed-size message: no closures cross cores. `ptr` ownership is the sender's and
// receiver's business (by convention the receiver hands it back or frees it per `tag`).
struct Message {
    uint32_t tag = 0;
    uint32_t from = 0;  // filled in by the sender's reactor
    uint64_t a = 0;
    uint64_t b = 0;
    uint64_t c = 0;
    void* ptr = nullptr;
};

template <class T>
class SpscQueue {
public:
    // `capacity` is rounded up to a power of two.
    explicit SpscQueue(size_t capacity) {
        size_t c = 1;
        while (c < capacity) {
            c <<= 1;
        }
        cap_ = c;
        mask_ = c - 1;
        slots_ = std::make_unique<T[]>(c);
    }
    SpscQueue(const SpscQueue&) = delete;
    SpscQueue& operator=(const SpscQueue&) = delete;

    // Producer side. False when full.
    bool push(const T& v) {
        size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_cache_ == cap_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (t - head_cache_ == cap_) {
                return false;
            }
        }
        slots_[t & mask_] = v;
        tail_.store(t + 1, std::memory_order_release);
        return true;
    }

    // Consumer side. False when empty.
    bool pop(T* out) {
        size_t h = head_.load(std::memory_order_relaxed);
        if (h == tail_cache_) {
            tail_cache_ = tail_.load(std::memory_order_acquire);
            if (h == tail_cache_) {
                return false;
            }
        }
        *out = slots_[h & mask_];
        head_.store(h + 1, std::memory_order_release);
        return true;
    }

    // Either side; approximate while the other side runs.
    bool empty() const {
        return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
    }
    size_t capacity() const { return cap_; }

private:
    size_t cap_ = 0;
    size_t mask_ = 0;
    std::unique_ptr<T[]> slots_;
    // Each index on its own cache line, next to the owning side's cache of the other index.
    alignas(64) std::atomic<size_t> head_{0};
    size_t tail_cache_ = 0;  // consumer's last view of tail_
    alignas(64) std::atomic<size_t> tail_{0};
    size_t head_cache_ = 0;  // producer's last view of head_
};

}  // namespace cfd::reactor
