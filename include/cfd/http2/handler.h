// The events of an HTTP/2 session, implemented by its owner (the edge's tunnel or public
// connection, the connector's tunnel connection). One virtual interface per session rather than
// a std::function per stream: a stream costs no allocation here and the state stays visible.
//
// Events are delivered from inside Session::recv() and Session::send(). A handler may call back
// into the session (submit_response(), consume(), rst_stream()...) but must not destroy it there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "cfd/http2/types.h"

namespace cfd::http2 {

// What an outgoing body has ready now: `bytes` (at most the max asked for) and whether the body
// ends after them. {0, false} means "nothing yet": the stream's DATA is deferred until the owner
// calls Session::resume_data().
struct BodyChunk {
    size_t bytes = 0;
    bool end = false;
};

class Handler {
public:
    virtual ~Handler() = default;

    // Server role: a request's header block opened `stream_id`. `end_stream` means no body
    // follows (on_stream_end() is delivered right after as well).
    virtual void on_request(int32_t stream_id, Headers&& headers, bool end_stream) = 0;

    // Client role: the final response header block (informational 1xx blocks are dropped).
    virtual void on_response(int32_t stream_id, int status, Headers&& headers, bool end_stream) = 0;

    // Trailing header block; the peer's END_STREAM follows (on_stream_end()).
    virtual void on_trailers(int32_t stream_id, Headers&& trailers) {
        (void)stream_id;
        (void)trailers;
    }

    // Body bytes, borrowed for the duration of the call. The stream's and the connection's
    // receive windows reopen only when the owner calls Session::consume() for them, once the
    // next hop has taken the bytes.
    virtual void on_data(int32_t stream_id, std::string_view bytes) = 0;

    // The peer ended its side of the stream (END_STREAM): its body is complete.
    virtual void on_stream_end(int32_t stream_id) = 0;

    // The stream is gone: both sides ended (error_code kNoError), or it was reset by either side
    // (RST_STREAM's code), or refused before it was sent (kRefusedStream: safe to retry). The
    // last event of a stream; its user data is dropped after it.
    virtual void on_stream_close(int32_t stream_id, uint32_t error_code) = 0;

    // The session asks how much of `stream_id`'s outgoing body is ready, at most `max_bytes`.
    // The bytes promised must stay available until on_body_copy() takes them.
    virtual BodyChunk on_body_ready(int32_t stream_id, size_t max_bytes) = 0;

    // Copy exactly dest.size() bytes (what on_body_ready() promised) into `dest`, which is the
    // caller's output buffer: the body is copied once, from the owner's buffer to the wire.
    virtual void on_body_copy(int32_t stream_id, std::span<char> dest) = 0;

    // The ACK of our PING carrying `opaque`. The owner keeps the clock.
    virtual void on_ping_ack(uint64_t opaque) { (void)opaque; }

    // The peer sent GOAWAY: streams above `last_stream_id` that we opened were not processed and
    // are closed with kRefusedStream; no new stream can be opened.
    virtual void on_goaway(int32_t last_stream_id, uint32_t error_code) {
        (void)last_stream_id;
        (void)error_code;
    }

    // The peer's SETTINGS frame was applied.
    virtual void on_settings() {}
};

}  // namespace cfd::http2
