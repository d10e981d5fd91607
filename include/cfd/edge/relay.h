// The cross-core relay of proxied streams (DESIGN.md §3). A public request accepted on core A
// whose tunnel has its chosen connection on core B travels as messages through the bounded
// A->B and B->A mailboxes; no socket and no session changes core.
//
//   core A: PublicSession -> RelayClient (a StreamTarget) --open/body/consume/reset--> core B
//   core B: RelayServer -> a StreamSink per stream -> TunnelConn::open_stream() and friends
//           <--response/data/end/close/credit-- back to A, where RelayClient feeds the session
//
// Flow control is the same as on one core, carried across:
//   request body:  A sends at most `body_window` bytes ahead of what B's TunnelConn took; B
//                  returns credit as write_body() takes bytes;
//   response body: B copies each DATA chunk to A and consumes it on the HTTP/2 stream only when
//                  A's client took it (a consume message), so at most one stream window of a
//                  stream is ever in the mailboxes and the A side's buffers.
// Every stream A opens ends with exactly one close event at A (or A's reset, after which no
// event comes), as a TunnelConn's streams do. A relayed stream never relays again: B serves it
// from its own connections or refuses it (kRefusedStream) before any response byte.
//
// Sans I/O: messages leave through RelayHost::relay_post(), which must deliver them in order
// (the worker queues them while a mailbox is full), and arrive through on_message().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cfd/edge/public_session.h"
#include "cfd/edge/stream_target.h"
#include "cfd/reactor/mailbox.h"

namespace cfd::edge {

class RelayHost {
public:
    virtual ~RelayHost() = default;
    // Delivers `m` to core `to`, in order with the earlier ones; owns `m.ptr` from now on (frees
    // it with discard_relay_message() when it can never be delivered).
    virtual void relay_post(uint32_t to, const reactor::Message& m) = 0;
    // B side: a registered connection on this core for the public host `authority`, of
    // `connector` when given (the least busy), or nullptr. Never another relay.
    virtual StreamTarget* local_target(std::string_view authority, const Uuid* connector) = 0;
};

struct RelayOptions {
    size_t body_window = 64 << 10;  // request-body bytes in flight per stream, A to B
    size_t max_streams = 10000;     // relayed streams open at once from one core to another
};

// True for the relay's message tags; `to_client` tells which side they are for.
bool is_relay_message(uint32_t tag);
bool is_relay_reply(uint32_t tag);
// Frees the payload of a relay message that will never be delivered (shutdown).
void discard_relay_message(const reactor::Message& m);
// Body bytes a relay message carries (request or response body), for accounting.
size_t relay_payload_bytes(const reactor::Message& m);

// Core A's side toward one other core: the StreamTarget of every stream relayed there.
class RelayClient final : public StreamTarget {
public:
    RelayClient(RelayHost& host, uint32_t core, const RelayOptions& opts = {});
    RelayClient(const RelayClient&) = delete;
    RelayClient& operator=(const RelayClient&) = delete;

    // StreamTarget
    [[nodiscard]] Result<int32_t> open_stream(const StreamRequest& req,
                                              void* user = nullptr) override;
    size_t write_body(int32_t sid, std::string_view bytes, bool end) override;
    void consume(int32_t sid, size_t n) override;
    void reset_stream(int32_t sid, uint32_t code = http2::kCancel) override;
    void* stream_user(int32_t sid) const override;
    void set_stream_user(int32_t sid, void* user) override;

    // A reply from core `core()` (is_relay_reply(m.tag)).
    void on_message(const reactor::Message& m);
    uint32_t core() const { return core_; }
    size_t open_streams() const { return streams_.size(); }

private:
    struct Stream {
        void* user = nullptr;
        size_t credit = 0;  // body bytes B will take now
        bool wants_room = false;
    };
    void post(uint32_t tag, int32_t sid, uint64_t b = 0, void* ptr = nullptr);

    RelayHost& host_;
    uint32_t core_;
    RelayOptions opts_;
    int32_t next_sid_ = 1;
    std::unordered_map<int32_t, Stream> streams_;
};

// Core B's side: the streams other cores opened on this core's tunnel connections.
class RelayServer {
public:
    explicit RelayServer(RelayHost& host);
    ~RelayServer();
    RelayServer(const RelayServer&) = delete;
    RelayServer& operator=(const RelayServer&) = delete;

    // A request from another core (is_relay_message(m.tag) && !is_relay_reply(m.tag)).
    void on_message(const reactor::Message& m);
    size_t open_streams() const { return streams_.size(); }

private:
    class Remote;
    friend class Remote;
    static uint64_t key(uint32_t from, int32_t sid) {
        return uint64_t{from} << 32 | static_cast<uint32_t>(sid);
    }
    void open(uint32_t from, int32_t sid, void* payload);
    void closed(Remote& r);
    Remote* find(uint32_t from, int32_t sid);

    RelayHost& host_;
    std::unordered_map<uint64_t, std::unique_ptr<Remote>> streams_;
    // Closed in one of their own events: freed on the next message, not under the caller.
    std::vector<std::unique_ptr<Remote>> dead_;
};

}  // namespace cfd::edge
