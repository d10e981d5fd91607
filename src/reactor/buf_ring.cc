#include "cfd/reactor/buf_ring.h"

#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>

namespace cfd::reactor {

BufRing::~BufRing() { destroy(); }

Status BufRing::init(io_uring* ring, uint16_t group, uint32_t count, uint32_t chunk_bytes) {
    if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || chunk_bytes == 0) {
        return Err{Errc::Invalid, 0, "buffer ring size"};
    }
    ring_ = ring;
    group_ = group;
    count_ = count;
    chunk_ = chunk_bytes;
    ring_bytes_ = sizeof(io_uring_buf) * count;
    void* r = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (r == MAP_FAILED) {
        return Err{Errc::Syscall, errno, "mmap buffer ring"};
    }
    br_ = static_cast<io_uring_buf_ring*>(r);
    mem_bytes_ = size_t(count) * chunk_bytes;
    // Populated up front: the kernel then never takes a page fault on the receive path.
    void* m = ::mmap(nullptr, mem_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        destroy();
        return Err{Errc::Syscall, e, "mmap buffers"};
    }
    mem_ = static_cast<uint8_t*>(m);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = count;
    reg.bgid = group;
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc != 0) {
        destroy();
        return Err{Errc::Syscall, -rc, "io_uring_register_buf_ring"};
    }
    registered_ = true;
    io_uring_buf_ring_init(br_);
    int mask = io_uring_buf_ring_mask(count);
    for (uint32_t i = 0; i < count; ++i) {
        io_uring_buf_ring_add(br_, chunk(uint16_t(i)), chunk_, uint16_t(i), mask, int(i));
    }
    io_uring_buf_ring_advance(br_, int(count));
    return {};
}

void BufRing::destroy() {
    if (registered_) {
        (void)io_uring_unregister_buf_ring(ring_, group_);
        registered_ = false;
    }
    if (mem_ != nullptr) {
        ::munmap(mem_, mem_bytes_);
        mem_ = nullptr;
    }
    if (br_ != nullptr) {
        ::munmap(br_, ring_bytes_);
        br_ = nullptr;
    }
}

void BufRing::give_back(uint16_t bid) {
    CFD_ASSERT(out_ > 0);
    --out_;
    io_uring_buf_ring_add(br_, chunk(bid), chunk_, bid, io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(br_, 1);
}

}  // namespace cfd::reactor
