// Private to src/tls: a grow-only byte queue. Bytes are appended at the back and consumed from
// the front; capacity is kept when it empties, so a busy session reuses one allocation.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace cfd::tls {

class ByteBuffer {
public:
    size_t size() const { return end_ - begin_; }
    bool empty() const { return end_ == begin_; }
    const char* data() const { return buf_.get() + begin_; }
    std::string_view view() const { return {data(), size()}; }

    void append(const char* p, size_t n) {
        if (n == 0) {
            return;
        }
        reserve_back(n);
        std::memcpy(buf_.get() + end_, p, n);
        end_ += n;
    }

    void consume(size_t n) {
        begin_ += n < size() ? n : size();
        if (begin_ == end_) {
            begin_ = end_ = 0;
        }
    }

    // Gives the memory back when nothing is queued (an idle connection should not keep the
    // capacity a burst left behind).
    void release_if_empty() {
        if (empty()) {
            buf_.reset();
            cap_ = begin_ = end_ = 0;
        }
    }
    size_t capacity() const { return cap_; }

    // Copies up to `cap` bytes to `out` and consumes them.
    size_t take(char* out, size_t cap) {
        size_t n = cap < size() ? cap : size();
        std::memcpy(out, data(), n);
        consume(n);
        return n;
    }

private:
    void reserve_back(size_t n) {
        if (cap_ - end_ >= n) {
            return;
        }
        size_t live = size();
        if (cap_ - live >= n && begin_ > 0) {
            // Room at the front: slide the live bytes down instead of growing.
            std::memmove(buf_.get(), data(), live);
            begin_ = 0;
            end_ = live;
            return;
        }
        size_t cap = cap_ == 0 ? 4096 : cap_;
        while (cap < live + n) {
            cap *= 2;
        }
        std::unique_ptr<char[]> grown(new char[cap]);
        if (live > 0) {
            std::memcpy(grown.get(), data(), live);
        }
        buf_ = std::move(grown);
        cap_ = cap;
        begin_ = 0;
        end_ = live;
    }

    std::unique_ptr<char[]> buf_;
    size_t cap_ = 0;
    size_t begin_ = 0;
    size_t end_ = 0;
};

}  // namespace cfd::tls
