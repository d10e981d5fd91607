// Completion tags: every SQE's user_data says which operation it was and which slab object it
// belongs to, with that object's generation, so that a CQE arriving after its object was freed
// (and the slot reused) is recognised and dropped instead of touching the new occupant.
#pragma once

#include <cstdint>

namespace cfd::reactor {

enum class OpKind : uint8_t {
    Nop = 0,
    Accept,
    Recv,
    Send,
    Connect,
    LinkTimeout,
    Cancel,
    Shutdown,
    // Reactor-internal operations: they carry generation 0 and no slab object.
    Doorbell,     // a MSG_RING from another reactor: "your mailbox has messages"
    MsgRingSent,  // our own MSG_RING SQE completed on the sending side
    EventRead,    // the reactor's eventfd (external posts, stop, MSG_RING fallback)
    Count,
};

const char* op_name(OpKind k);

// A slab address. Generation 0 never names a live object.
struct Handle {
    uint32_t slot = 0;
    uint32_t gen = 0;
    bool operator==(const Handle&) const = default;
};

constexpr uint32_t kGenMask = 0xffffff;

// 8 bits kind | 24 bits generation | 32 bits slot.
constexpr uint64_t make_tag(OpKind k, uint32_t gen, uint32_t slot) {
    return uint64_t(k) << 56 | uint64_t(gen & kGenMask) << 32 | slot;
}

struct Tag {
    OpKind kind;
    uint32_t gen;
    uint32_t slot;
};

constexpr Tag split_tag(uint64_t t) {
    return Tag{OpKind(t >> 56), uint32_t(t >> 32) & kGenMask, uint32_t(t)};
}

// Generations run 1..kGenMask and wrap past 0.
constexpr uint32_t next_gen(uint32_t g) { return (g & kGenMask) == kGenMask ? 1 : g + 1; }

}  // namespace cfd::reactor
