// Messages between the edge's reactors (workers) and its control thread. They ride in
// reactor::Message; a `ptr` is owned by the receiver, which deletes it (no closures cross
// threads, and nothing here is shared: every payload is a copy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cfd/core/uuid.h"
#include "cfd/edge/routes.h"
#include "cfd/reactor/mailbox.h"
#include "cfd/rpc/server.h"
#include "cfd/rpc/types.h"

namespace cfd::edge {

enum MsgTag : uint32_t {
    kMsgRegister = 1,    // worker -> control: ptr = RegisterMsg
    kMsgRegisterAnswer,  // control -> worker: ptr = RegisterAnswerMsg
    kMsgConnClosed,      // worker -> control: a, b = the connection UUID's halves
    kMsgRoutes,          // control -> worker: ptr = RouteTable (the worker keeps it)
    kMsgHandoff,         // worker -> worker: ptr = HandoffMsg
    kMsgConnUnrouted,    // worker -> control: a, b = connection UUID, c = core (draining)
    kMsgCloseConn,       // control -> worker: a, b = connection UUID (replaced by a new one)
};
// kMsgConnClosed carries the worker's core in `c`; kMsgRegister's answer tells the control
// thread which core holds the connection, so it can publish per-tunnel core masks.

// A public client connection moving to the core that holds its tunnel's connections: a dup of
// its socket and the bytes received from the start of the current request on.
struct HandoffMsg {
    int fd = -1;
    std::string bytes;
};

struct RegisterMsg {
    uint32_t core = 0;
    uint64_t link = 0;  // the worker's id for the tunnel connection
    rpc::CallId call = 0;
    rpc::RegisterRequest request;
    std::string peer_ip;
};

struct RegisterAnswerMsg {
    uint64_t link = 0;
    rpc::CallId call = 0;
    bool ok = false;
    rpc::ConnectionDetails details;
    rpc::ConnectionError error;
};

inline void uuid_to_words(const Uuid& u, uint64_t* a, uint64_t* b) {
    uint64_t x = 0, y = 0;
    for (int i = 0; i < 8; i++) {
        x = x << 8 | u.bytes[static_cast<size_t>(i)];
        y = y << 8 | u.bytes[static_cast<size_t>(i + 8)];
    }
    *a = x;
    *b = y;
}

inline Uuid uuid_from_words(uint64_t a, uint64_t b) {
    Uuid u;
    for (int i = 7; i >= 0; i--) {
        u.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(a);
        u.bytes[static_cast<size_t>(i + 8)] = static_cast<uint8_t>(b);
        a >>= 8;
        b >>= 8;
    }
    return u;
}

}  // namespace cfd::edge
