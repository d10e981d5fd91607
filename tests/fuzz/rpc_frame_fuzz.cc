// cfd::rpc::FrameReader (Cap'n Proto stream framing) on arbitrary bytes. The same bytes go to
// two readers, one all at once and one in three pieces; both must yield the same messages and
// fail at the same point, whatever the split. Checks: a message's segment table matches its
// words, it respects the limits, a partial message never holds more than the limit, errors
// are final, and `in` only ever shrinks from the front.
//
// Input: [split a u16][split b u16][limits][bytes...]
//   limits bit 0: small limits (max_segments 1..8 from bits 1-3, max_message_bytes 64..1024
//   from bits 4-7); otherwise the defaults
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "cfd/rpc/frame.h"
#include "fuzz_util.h"

namespace {

using cfd::rpc::Frame;
using cfd::rpc::FrameLimits;
using cfd::rpc::FrameReader;

struct Outcome {
    std::vector<Frame> frames;
    bool failed = false;
};

void check_frame(const Frame& f, const FrameLimits& l) {
    FUZZ_REQUIRE(!f.segment_words.empty());
    FUZZ_REQUIRE(f.segment_words.size() <= l.max_segments);
    uint64_t total = 0;
    for (uint32_t w : f.segment_words) {
        total += w;
    }
    FUZZ_REQUIRE(total == f.words.size());
    size_t header = (4 + 4 * f.segment_words.size() + 7) / 8 * 8;
    FUZZ_REQUIRE(f.size_bytes() + header <= l.max_message_bytes);
}

// Feeds `in` to `r`, appending what it yields to `o`.
void feed(FrameReader& r, std::string_view in, const FrameLimits& l, Outcome& o) {
    while (!o.failed) {
        const char* end = in.data() + in.size();
        Frame f;
        auto got = r.read(in, f);
        FUZZ_REQUIRE(in.data() + in.size() == end);  // consumed from the front only
        if (!got) {
            FUZZ_REQUIRE(got.error().code == cfd::Errc::Protocol);
            FUZZ_REQUIRE(r.failed());
            // Final: a failed stream cannot be resynchronised.
            std::string_view more("\0\0\0\0\0\0\0\0", 8);
            FUZZ_REQUIRE(!r.read(more, f));
            o.failed = true;
            return;
        }
        if (!*got) {
            FUZZ_REQUIRE(in.empty());
            FUZZ_REQUIRE(r.buffered() <= l.max_message_bytes);
            return;
        }
        check_frame(f, l);
        o.frames.push_back(std::move(f));
        if (in.empty()) {
            FUZZ_REQUIRE(r.buffered() == 0);
            return;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input in(data, size);
    uint16_t a = in.u16();
    uint16_t b = in.u16();
    uint8_t lim = in.byte();
    std::string_view bytes = in.rest();

    FrameLimits limits;
    if ((lim & 1) != 0) {
        limits.max_segments = 1 + ((lim >> 1) & 7u);
        limits.max_message_bytes = 64 * (1 + size_t(lim >> 4));
    }

    Outcome whole;
    FrameReader r1(limits);
    feed(r1, bytes, limits, whole);

    size_t c1 = cfd::fuzz::cut(a, bytes.size());
    size_t c2 = cfd::fuzz::cut(b, bytes.size());
    if (c1 > c2) {
        std::swap(c1, c2);
    }
    Outcome split;
    FrameReader r2(limits);
    feed(r2, bytes.substr(0, c1), limits, split);
    feed(r2, bytes.substr(c1, c2 - c1), limits, split);
    feed(r2, bytes.substr(c2), limits, split);

    FUZZ_REQUIRE(whole.failed == split.failed);
    FUZZ_REQUIRE(whole.frames.size() == split.frames.size());
    for (size_t i = 0; i < whole.frames.size(); ++i) {
        FUZZ_REQUIRE(whole.frames[i].segment_words == split.frames[i].segment_words);
        FUZZ_REQUIRE(whole.frames[i].words == split.frames[i].words);
    }
    if (!whole.failed) {
        FUZZ_REQUIRE(r1.buffered() == r2.buffered());
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
