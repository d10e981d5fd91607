// One public request's tunnel stream, as both public sessions drive it (PublicSession for
// HTTP/1.1, PublicH2Session for HTTP/2): the stream it went down, the request body on its way
// there, and the retry rules, so that the two front ends cannot drift apart on them.
//
// Retry (DESIGN.md §5): a stream refused, reset or lost before any response byte is opened
// again on another connector (the router avoids the ones tried), at most kMaxAttempts streams
// in all: always when no request-body byte went to the tunnel; otherwise when the body so far
// is still held (up to kMaxReplay bytes are kept) and either the method is idempotent or the
// stream was refused (REFUSED_STREAM: never processed, RFC 9113 §8.7).
//
// Response bytes are the session's business; the Upstream only keeps the count of those the
// client was given while it was not writable (took()), so that the tunnel's window reopens
// once it is (settle()), or when the stream is let go (detach()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/uuid.h"
#include "cfd/edge/stream_target.h"

namespace cfd::edge {

class PublicRouter;
class StreamSink;
struct RouteResult;

// The body of the edge's 530 answer (Cloudflare's error 1033) for a tunnel with no connector.
std::string no_connector_page(std::string_view host);

class Upstream {
public:
    static constexpr size_t kMaxAttempts = 3;
    static constexpr size_t kMaxReplay = 64 << 10;

    // Methods a retry may send twice even after body bytes went out (RFC 9110 §9.2.2).
    static bool idempotent_method(std::string_view method);

    // A new request: forgets everything about the last one. Call only once detached.
    void start(bool idempotent);

    // Opens the request's stream on `r` (Kind::Ok), or on other connectors while streams are
    // refused at once, within kMaxAttempts. The stream's events go to `sink`. False: none took
    // it (no stream is open then).
    [[nodiscard]] bool open(PublicRouter& router, const RouteResult& r, const StreamRequest& req,
                            StreamSink* sink);
    // The stream ended (`code`, after lost()) before any response byte: true when another
    // stream now carries the request, its body again from the first byte (push_body() sends
    // it). Calls router.on_retry() then.
    [[nodiscard]] bool retry(PublicRouter& router, uint32_t code, const StreamRequest& req,
                             StreamSink* sink);

    // Body bytes from the client, and its end; they wait in the Upstream until push_body().
    void add_body(std::string_view bytes) { body_pending_.append(bytes); }
    void end_body() { end_pending_ = true; }
    // Writes what is pending down the stream. True when nothing is left pending; false when the
    // stream took only part (its room event comes later). Without a stream the pending body is
    // dropped (the request was answered otherwise).
    bool push_body();
    // Forgets the body still pending (the request is over).
    void drop_body();

    // The client was given `n` response-body bytes of the stream. When `now` (the client is
    // writable) and nothing is owed from before, the tunnel's window reopens at once; otherwise
    // they are owed until settle() or detach().
    void took(size_t n, bool now);
    // Reopens the window for every byte owed (the client drained its queue).
    void settle();

    // Lets go of the stream: no event for it reaches the sink any more, the window owed is
    // reopened, and the stream is reset (CANCEL) unless `complete` (both of its ends are done).
    void detach(bool complete);
    // The stream closed on its own (its last event was delivered): nothing to reset or consume.
    void lost();

    bool attached() const { return tunnel_ != nullptr; }
    bool is(const StreamTarget& t, int32_t sid) const { return tunnel_ == &t && sid_ == sid; }
    StreamTarget* target() const { return tunnel_; }
    int32_t sid() const { return sid_; }
    // Body bytes waiting for the stream (a replay included).
    size_t pending() const { return body_pending_.size(); }
    bool end_pending() const { return end_pending_; }
    bool end_written() const { return end_written_; }

private:
    StreamTarget* tunnel_ = nullptr;
    int32_t sid_ = -1;
    uint64_t epoch_ = 0;         // bumped whenever the stream changes (opened, let go, lost)
    Uuid connector_;             // whose connection carries the stream
    size_t attempts_ = 0;        // streams tried for this request
    std::vector<Uuid> tried_;    // connectors whose stream failed
    bool idempotent_ = false;
    std::string body_pending_;   // body bytes the stream has not taken yet
    bool end_pending_ = false;   // the body's end is still to be written
    uint64_t body_written_ = 0;  // body bytes the current stream took
    bool end_written_ = false;   // ... and the body's end
    std::string replay_;         // those bytes, while replayable_
    bool replayable_ = true;
    uint64_t unconsumed_ = 0;    // response bytes given to the client, window not reopened yet
};

}  // namespace cfd::edge
