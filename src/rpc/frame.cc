#include "cfd/rpc/frame.h"

#include <algorithm>
#include <cstring>

namespace cfd::rpc {
namespace {

// A hard ceiling whatever the caller asks for: the segment table is held in a fixed buffer.
constexpr uint32_t kMaxSegmentsCeiling = 512;

uint32_t load_le32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// 4 bytes of count, 4 per segment size, padded to 8.
size_t header_bytes(uint64_t segments) { return size_t((4 + 4 * segments + 7) / 8 * 8); }

}  // namespace

FrameReader::FrameReader(FrameLimits limits) : limits_(limits) {
    limits_.max_segments = std::clamp<uint32_t>(limits_.max_segments, 1, kMaxSegmentsCeiling);
    header_.resize(header_bytes(limits_.max_segments));
}

void FrameReader::reset() {
    header_need_ = 8;
    header_got_ = 0;
    in_body_ = false;
    body_got_ = 0;
    frame_ = Frame{};
}

Status FrameReader::on_header_done() {
    uint64_t segments = uint64_t(load_le32(header_.data())) + 1;
    if (segments > limits_.max_segments) {
        return Err{Errc::Protocol, 0, "rpc frame: too many segments"};
    }
    size_t need = header_bytes(segments);
    if (header_got_ < need) {
        header_need_ = need;  // the rest of the segment table follows
        return {};
    }
    uint64_t total_words = 0;
    for (uint64_t i = 0; i < segments; ++i) {
        total_words += load_le32(header_.data() + 4 + 4 * i);
    }
    // Checked before allocating: the sizes are the peer's word, the memory is ours.
    if (total_words * 8 + need > limits_.max_message_bytes) {
        return Err{Errc::Protocol, 0, "rpc frame: message too large"};
    }
    frame_.segment_words.resize(segments);
    for (uint64_t i = 0; i < segments; ++i) {
        frame_.segment_words[i] = load_le32(header_.data() + 4 + 4 * i);
    }
    frame_.words.assign(total_words, 0);
    in_body_ = true;
    return {};
}

Result<bool> FrameReader::read(std::string_view& in, Frame& frame) {
    if (failed_) {
        return Err{Errc::Protocol, 0, "rpc frame: stream already failed"};
    }
    while (!in_body_) {
        if (in.empty()) {
            return false;
        }
        size_t n = std::min(in.size(), header_need_ - header_got_);
        std::memcpy(header_.data() + header_got_, in.data(), n);
        header_got_ += n;
        in.remove_prefix(n);
        if (header_got_ < header_need_) {
            return false;
        }
        if (auto st = on_header_done(); !st) {
            failed_ = true;
            return st.error();
        }
    }
    size_t body_bytes = frame_.size_bytes();
    size_t n = std::min(in.size(), body_bytes - body_got_);
    if (n > 0) {
        std::memcpy(reinterpret_cast<char*>(frame_.words.data()) + body_got_, in.data(), n);
        body_got_ += n;
        in.remove_prefix(n);
    }
    if (body_got_ < body_bytes) {
        return false;
    }
    frame = std::move(frame_);
    reset();
    return true;
}

}  // namespace cfd::rpc
