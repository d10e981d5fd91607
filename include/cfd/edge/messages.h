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
#include "cfd/tls/server_contexts.h"

namespace cfd::edge {

enum MsgTag : uint32_t {
    kMsgRegister = 1,    // worker -> control: ptr = RegisterMsg
    kMsgRegisterAnswer,  // control -> worker: ptr = RegisterAnswerMsg
    kMsgConnClosed,      // worker -> control: a, b = the connection UUID's halves
    kMsgRoutes,          // control -> worker: ptr = RouteTable (the worker keeps it)
    kMsgConnUnrouted,    // worker -> control: a, b = connection UUID, c = core (draining)
    kMsgCloseConn,       // control -> worker: a, b = connection UUID (replaced by a new one)
    kMsgDrain,           // control -> worker: stop accepting, finish public requests
    kMsgDrained,         // worker -> control: a = core; no public request is left there
    // The cross-core relay (cfd/edge/relay.h); `a` is the stream id on the opening core.
    kMsgRelayOpen,      // A -> B: ptr = the request
    kMsgRelayBody,      // A -> B: ptr = body bytes (may be empty), b = 1 when the body ends
    kMsgRelayConsume,   // A -> B: b = response bytes the client took
    kMsgRelayReset,     // A -> B: b = the code
    kMsgRelayResponse,  // B -> A: ptr = the response head
    kMsgRelayData,      // B -> A: ptr = response body bytes
    kMsgRelayEnd,       // B -> A: the response body is complete
    kMsgRelayClose,     // B -> A: b = the code; the stream's last event
    kMsgRelayCredit,    // B -> A: b = request-body bytes the tunnel took
    // control -> worker: ptr = CertsMsg, the HTTPS certificates reloaded (SIGHUP)
    kMsgCerts,
};
// kMsgConnClosed carries the worker's core in `c`; kMsgRegister's answer tells the control
// thread which core holds the connection, so it can publish per-tunnel core masks.

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
    uint32_t load_slot = UINT32_MAX;  // ok: the connector's LoadBoard slot
};

// The HTTPS listener's certificates: each worker takes a reference; the set is freed when the
// last one lets go (sessions keep their own reference to their wolfSSL context).
struct CertsMsg {
    std::shared_ptr<const tls::ServerContexts> certs;
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
