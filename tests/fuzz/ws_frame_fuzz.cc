// cfd::ws::Decoder on arbitrary bytes, in both roles and with small limits, checking what a
// tunnel of WebSocket frames relies on:
//   - the same bytes split at two different points decode to the same events (runs of Data
//     counted once: payload streams out as it arrives), payload bytes, control payloads and
//     close/error codes (the decoder keeps its state across calls);
//   - payload appended never exceeds the input given (the input bounds memory);
//   - after Error, every call returns Error; after Close, input is ignored;
//   - a frame sequence our encoder wrote (client-masked, random split) decodes to its payloads.
//
// Input: [role][limits][split a][split b][bytes...]
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cfd/ws/frame.h"
#include "fuzz_util.h"

namespace {

using namespace cfd;

struct Trace {
    std::vector<int> events;
    std::string data;
    std::string controls;
    std::vector<uint16_t> codes;
};

// Feeds `bytes` in two pieces, cut at `cut`.
Trace decode(ws::Role role, ws::DecoderLimits lim, std::string_view bytes, size_t cut) {
    ws::Decoder d(role, lim);
    Trace t;
    bool failed = false;
    for (std::string_view piece : {bytes.substr(0, cut), bytes.substr(cut)}) {
        std::string_view in = piece;
        for (int guard = 0; guard < 100000; guard++) {
            size_t before = t.data.size();
            size_t had = in.size();
            ws::Event e = d.next(in, t.data);
            FUZZ_REQUIRE(t.data.size() - before <= had);  // payload never outgrows its input
            FUZZ_REQUIRE(in.size() <= had);
            if (failed) {
                FUZZ_REQUIRE(e == ws::Event::Error);  // errors are final
                break;
            }
            if (e == ws::Event::NeedMore) {
                break;
            }
            // Payload streams out as it arrives, so how many Data events a message takes
            // depends on the split: consecutive ones count as one.
            if (e != ws::Event::Data || t.events.empty() ||
                t.events.back() != static_cast<int>(ws::Event::Data)) {
                t.events.push_back(static_cast<int>(e));
            }
            if (e == ws::Event::Ping || e == ws::Event::Pong || e == ws::Event::Close) {
                t.controls.append(d.control());
                t.controls.push_back('|');
            }
            if (e == ws::Event::Close) {
                t.codes.push_back(d.close_code());
            }
            if (e == ws::Event::Error) {
                t.codes.push_back(d.error_code());
                failed = true;
            }
        }
    }
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    log::set_level(log::Level::Fatal);
    fuzz::Input in(data, size);
    ws::Role role = in.byte() & 1 ? ws::Role::Client : ws::Role::Server;
    uint8_t l = in.byte();
    ws::DecoderLimits lim;
    lim.max_frame = (l & 0x0f) == 0 ? lim.max_frame : uint64_t{1} << (l & 0x0f);
    lim.max_message = (l >> 4) == 0 ? 0 : uint64_t{1} << (l >> 4);
    size_t cut_a = in.u16();
    size_t cut_b = in.u16();
    std::string_view bytes = in.rest();
    cut_a = bytes.empty() ? 0 : cut_a % (bytes.size() + 1);
    cut_b = bytes.empty() ? 0 : cut_b % (bytes.size() + 1);

    Trace a = decode(role, lim, bytes, cut_a);
    Trace b = decode(role, lim, bytes, cut_b);
    FUZZ_REQUIRE(a.events == b.events);
    FUZZ_REQUIRE(a.data == b.data);
    FUZZ_REQUIRE(a.controls == b.controls);
    FUZZ_REQUIRE(a.codes == b.codes);

    // Round trip: the input's bytes as payloads of client frames (masked), cut at cut_a.
    std::string frames;
    std::array<uint8_t, 4> mask{static_cast<uint8_t>(cut_a), static_cast<uint8_t>(cut_b), 0x5a,
                                0xa5};
    std::string_view p1 = bytes.substr(0, cut_a), p2 = bytes.substr(cut_a);
    ws::encode_frame(frames, ws::Opcode::Binary, p1, false, &mask);
    ws::encode_frame(frames, ws::Opcode::Continuation, p2, true, &mask);
    Trace rt = decode(ws::Role::Server, {}, frames, cut_b % (frames.size() + 1));
    FUZZ_REQUIRE(rt.data == bytes);
    for (int e : rt.events) {
        FUZZ_REQUIRE(e == static_cast<int>(ws::Event::Data));
    }
    return 0;
}
