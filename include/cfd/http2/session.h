// A sans-I/O HTTP/2 session over nghttp2, in either role, driven purely by bytes:
//
//     recv(bytes)            bytes read from the peer (after TLS); events go to the Handler
//     send(out, high)        appends frames to `out` until it holds `high` bytes; the reactor
//                            writes `out`
//     want_read/want_write   false/false once the session is over: close the connection
//
// On a tunnel connection the edge is the client and opens every stream; the connector is the
// server (DESIGN.md §2). Flow control is manual: nothing reopens a receive window until the
// owner calls consume() for bytes the next hop has taken, so a slow reader on one side stops
// the sender on the other and memory never grows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/http2/handler.h"
#include "cfd/http2/types.h"

namespace cfd::http2 {

struct Settings {
    // Streams the peer may have open towards us at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    uint32_t max_concurrent_streams = 1000;
    // Receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE): at most this many body bytes
    // of one stream wait for consume(). Until the peer has our SETTINGS (the first round trip)
    // HTTP/2's default of 65535 applies instead, so the bound is max(this, 65535).
    int32_t stream_window = 1 << 20;
    // Receive window of the connection, sized for the bandwidth-delay product. HTTP/2 cannot
    // shrink it below its initial 65535 bytes, so smaller values are raised to that.
    int32_t connection_window = 16 << 20;
    // SETTINGS_MAX_HEADER_LIST_SIZE, advertised and enforced on every received header block
    // (RFC 9113 size: name + value + 32 per field). A stream over it is reset.
    uint32_t max_header_list_bytes = 64 << 10;
    // Fields per received header block; a stream over it is reset.
    uint32_t max_header_fields = 200;
    // Largest header block we send; a bigger submit fails.
    size_t max_send_header_block = 64 << 10;
    // CONTINUATION frames allowed after one HEADERS frame; more is a connection error.
    size_t max_continuations = 8;
    // SETTINGS ACKs and PING ACKs we may owe; a peer flooding us past it is dropped.
    size_t max_outbound_ack = 1000;
    // Token bucket for RST_STREAMs received (server role; "rapid reset"): `reset_burst` tokens,
    // `reset_rate` more per second (0: none). An empty bucket sends GOAWAY(INTERNAL_ERROR).
    uint64_t reset_burst = 1000;
    uint64_t reset_rate = 33;
    // Empty DATA frames without END_STREAM in a row (they cost no window, so flow control does
    // not bound them); more is answered with GOAWAY(ENHANCE_YOUR_CALM).
    uint32_t max_empty_data_frames = 100;
};

// Counters of one session, for metrics and for logging why a connection ended.
struct SessionStats {
    uint64_t bytes_in = 0;         // fed to recv()
    uint64_t bytes_out = 0;        // produced by send()
    uint64_t streams_opened = 0;   // by either side
    uint64_t resets_received = 0;  // RST_STREAM frames from the peer
    uint64_t headers_refused = 0;  // header blocks over the size or field-count cap
    uint64_t window_overruns = 0;  // DATA chunks past a stream window, dropped
    bool goaway_sent = false;
    uint32_t goaway_sent_code = 0;  // ours or nghttp2's: non-zero when the peer misbehaved
    bool goaway_received = false;
    uint32_t goaway_received_code = 0;
};

// One per connection, used by the connection's reactor thread only. Destroying it delivers no
// events: the owner drops its own per-stream state.
class Session {
public:
    // The handler must outlive the session. The session queues its SETTINGS (and the client its
    // preface) at once: the first send() produces them.
    [[nodiscard]] static Result<std::unique_ptr<Session>> create(Role role, Handler& handler,
                                                                 const Settings& settings = {});
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    Role role() const;

    // Feeds bytes received from the peer. An error means the session cannot go on (the peer
    // broke the protocol, e.g. a bad preface, a CONTINUATION flood, an ACK flood): a GOAWAY is
    // queued; the caller flushes send() and closes. Connection errors nghttp2 answers by itself
    // with GOAWAY end the session the same way through want_read()/want_write(), and
    // stats().goaway_sent_code says why once send() has produced the GOAWAY.
    [[nodiscard]] Status recv(std::string_view bytes);

    // Appends frames to `out` while out.size() < high_watermark; returns the bytes appended
    // (0: nothing to send now, or `out` is full). Body bytes are copied straight from the owner
    // (Handler::on_body_copy) into `out`. `out` may end up above the watermark by one DATA frame
    // (16 KiB + 9) or one header block (max_send_header_block). Not re-entrant: never call it
    // from a Handler event. An error means the session is broken: close the connection.
    [[nodiscard]] Result<size_t> send(std::string& out,
                                      size_t high_watermark = kDefaultHighWatermark);

    // The session still expects input / has output to produce. Both false: close.
    bool want_read() const;
    bool want_write() const;

    // Client role: opens a stream with a request. Headers carry the pseudo-headers (":method",
    // ":scheme", ":authority", ":path") first. With has_body, body bytes come from the handler's
    // on_body_ready()/on_body_copy() until it reports the end.
    [[nodiscard]] Result<int32_t> submit_request(HeaderSpan headers, bool has_body,
                                                 void* user_data = nullptr);
    // Server role: the response of `stream_id`; ":status" is added from `status`.
    [[nodiscard]] Status submit_response(int32_t stream_id, int status, HeaderSpan headers,
                                         bool has_body);
    // Trailers end the stream. Submitted while the body is still going, they are sent right
    // after its last byte, when on_body_ready() reports the end.
    [[nodiscard]] Status submit_trailers(int32_t stream_id, HeaderSpan trailers);
    // The owner has new body bytes for a stream whose body source said "nothing yet".
    [[nodiscard]] Status resume_data(int32_t stream_id);

    // The next hop has taken `n` body bytes of `stream_id`: reopen that much of the stream's and
    // the connection's receive windows. Bytes of streams already closed are released by the
    // session itself, so a late consume() is harmless.
    void consume(int32_t stream_id, size_t n);

    // Resets a stream (RST_STREAM); on_stream_close() follows with the code.
    [[nodiscard]] Status rst_stream(int32_t stream_id, uint32_t error_code);
    // PING with `opaque`; Handler::on_ping_ack() reports its ACK.
    [[nodiscard]] Status ping(uint64_t opaque);
    // Server role, first step of a graceful shutdown: GOAWAY with the largest stream id, so the
    // client stops opening streams while those in flight still arrive. Follow it (about one RTT
    // later) with goaway().
    [[nodiscard]] Status shutdown_notice();
    // GOAWAY naming the last stream we processed: no stream above it will be served; streams at
    // or below it run to their end, then want_read()/want_write() turn false.
    [[nodiscard]] Status goaway(uint32_t error_code = kNoError);
    // GOAWAY and stop: nothing more is read; once send() has produced the GOAWAY the session
    // is over.
    [[nodiscard]] Status terminate(uint32_t error_code);

    // The owner's handle for a stream (e.g. its bridge); nullptr when unset or unknown.
    void set_stream_user_data(int32_t stream_id, void* user_data);
    void* stream_user_data(int32_t stream_id) const;

    // Streams this session tracks (opened and not yet closed).
    size_t stream_count() const;
    // Body bytes we may still send on `stream_id` now (min of stream and connection windows).
    int32_t send_window(int32_t stream_id) const;
    // Body bytes received on `stream_id` and not yet consume()d.
    size_t unconsumed(int32_t stream_id) const;
    const SessionStats& stats() const;

    static constexpr size_t kDefaultHighWatermark = 64 << 10;

    struct Impl;

private:
    explicit Session(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace cfd::http2
