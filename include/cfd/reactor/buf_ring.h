// Provided buffer rings: the kernel picks a free chunk for each multishot recv completion.
// liburing 2.3 has no io_uring_setup_buf_ring, so BufRing maps the ring memory itself and
// registers it with io_uring_register_buf_ring.
//
// A chunk the kernel filled is LENT to the connection's owner as a LentBuf. The owner gives it
// back (release(), or by dropping the LentBuf) when the bytes are consumed: after TLS decrypted
// them or after they were forwarded. Only the owning reactor's thread may release a LentBuf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "cfd/core/result.h"
#include "cfd/reactor/op.h"

struct io_uring;
struct io_uring_buf_ring;

namespace cfd::reactor {

class Reactor;

class BufRing {
public:
    BufRing() = default;
    BufRing(const BufRing&) = delete;
    BufRing& operator=(const BufRing&) = delete;
    ~BufRing();

    // `count` must be a power of two no larger than 32768; every chunk starts with the kernel.
    [[nodiscard]] Status init(io_uring* ring, uint16_t group, uint32_t count, uint32_t chunk);
    void destroy();

    uint8_t* chunk(uint16_t bid) const { return mem_ + size_t(bid) * chunk_; }
    uint32_t chunk_size() const { return chunk_; }
    uint32_t count() const { return count_; }
    uint16_t group() const { return group_; }
    // Chunks the kernel handed to us that are not back in the ring yet.
    uint32_t out() const { return out_; }

    void taken() { ++out_; }
    // Hands chunk `bid` back to the kernel (one io_uring_buf_ring_add + advance).
    void give_back(uint16_t bid);

private:
    io_uring* ring_ = nullptr;
    io_uring_buf_ring* br_ = nullptr;
    size_t ring_bytes_ = 0;
    uint8_t* mem_ = nullptr;
    size_t mem_bytes_ = 0;
    uint32_t count_ = 0;
    uint32_t chunk_ = 0;
    uint32_t out_ = 0;
    uint16_t group_ = 0;
    bool registered_ = false;
};

// A received chunk on loan from the reactor's buffer ring. Move-only; returns itself when
// destroyed. `owner` is the slab object that received it, told when its loan comes back.
class LentBuf {
public:
    LentBuf() = default;
    LentBuf(const LentBuf&) = delete;
    LentBuf& operator=(const LentBuf&) = delete;
    LentBuf(LentBuf&& o) noexcept { take(o); }
    LentBuf& operator=(LentBuf&& o) noexcept {
        if (this != &o) {
            release();
            take(o);
        }
        return *this;
    }
    ~LentBuf() { release(); }

    explicit operator bool() const { return reactor_ != nullptr; }
    const uint8_t* data() const { return base_ + off_; }
    size_t size() const { return len_ - off_; }
    std::span<const uint8_t> bytes() const { return {data(), size()}; }
    // Marks the first n bytes as used (partial consumption); n <= size().
    void consume(size_t n) {
        CFD_ASSERT(n <= size());
        off_ += uint32_t(n);
    }
    Handle owner() const { return owner_; }
    void release();

private:
    friend class Reactor;
    LentBuf(Reactor* r, uint8_t* base, uint32_t len, uint16_t bid, Handle owner)
        : reactor_(r), base_(base), len_(len), bid_(bid), owner_(owner) {}
    void take(LentBuf& o) {
        reactor_ = o.reactor_;
        base_ = o.base_;
        len_ = o.len_;
        off_ = o.off_;
        bid_ = o.bid_;
        owner_ = o.owner_;
        o.reactor_ = nullptr;
    }

    Reactor* reactor_ = nullptr;
    uint8_t* base_ = nullptr;
    uint32_t len_ = 0;
    uint32_t off_ = 0;
    uint16_t bid_ = 0;
    Handle owner_{};
};

}  // namespace cfd::reactor
