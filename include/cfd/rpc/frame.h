// Cap'n Proto's standard stream framing, byte-in: (segment count - 1) as a little-endian u32,
// each segment's size in words as a u32, zero padding to a word boundary, then the segments.
// The RPC rides in an HTTP/2 stream body, so a message may arrive split at any byte, and several
// may arrive in one chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::rpc {

struct FrameLimits {
    uint32_t max_segments = 64;
    size_t max_message_bytes = 1 << 20;  // header + segments
};

// One message, copied into word-aligned storage so that Cap'n Proto can read it in place.
struct Frame {
    std::vector<uint64_t> words;          // every segment, back to back
    std::vector<uint32_t> segment_words;  // each segment's size in words

    size_t size_bytes() const { return words.size() * 8; }
};

class FrameReader {
public:
    explicit FrameReader(FrameLimits limits = {});

    // Consumes bytes from the front of `in` until one message completes (returns true, the
    // message moved into `frame`) or `in` runs out (returns false, the partial message kept).
    // Errors (too many segments, too large) are final: a byte stream cannot be resynchronised.
    [[nodiscard]] Result<bool> read(std::string_view& in, Frame& frame);

    // Bytes of a partial message held; 0 between messages.
    size_t buffered() const { return header_got_ + body_got_; }
    bool failed() const { return failed_; }

private:
    [[nodiscard]] Status on_header_done();
    void reset();

    FrameLimits limits_;
    std::vector<uint8_t> header_;  // sized for max_segments once, never grows
    size_t header_need_ = 8;       // first the count and the first size, then the whole table
    size_t header_got_ = 0;
    bool in_body_ = false;
    Frame frame_;
    size_t body_got_ = 0;
    bool failed_ = false;
};

}  // namespace cfd::rpc
