// One tunnel connection of the connector, sans I/O (DESIGN.md §2): TLS client towards the edge,
// then an HTTP/2 SERVER session on top (the edge opens every stream), whose first stream, the
// control stream, carries the registration RPC. Every other stream is a proxied request handed
// to a StreamSink (the proxy), which answers through http2().
//
// Driving it (the reactor glue, or a test in memory):
//     on bytes from the edge:  feed(bytes)            (events and sink calls happen inside)
//     after feed() and after any sink action (submit_response, resume_data, consume...): pump()
//     then send pending_output() and consume_output(n sent); pump() again when room came back
//     take_events() after each step
// Nothing here blocks, allocates without bound or trusts the edge's bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/core/uuid.h"
#include "cfd/http2/session.h"
#include "cfd/http2/tunnel_headers.h"
#include "cfd/rpc/client.h"
#include "cfd/tls/context.h"
#include "cfd/tls/session.h"

namespace cfd::connector {

// What one connection registers with (registerConnection's parameters).
struct TunnelIdentity {
    std::string account_tag;
    std::string secret;  // raw bytes; never logged
    Uuid tunnel_id;
    Uuid connector_id;
    uint8_t conn_index = 0;
    std::vector<std::string> features{"serialized_headers"};
    std::string arch;             // "linux_amd64"; empty: this build's
    std::string origin_local_ip;  // raw 4 or 16 bytes, empty when unknown
    bool replace_existing = false;
    uint8_t num_previous_attempts = 0;
};

// "linux_amd64" / "linux_arm64" for this build.
const char* build_arch();

// The proxy's side: every stream but the control stream.
class StreamSink {
public:
    virtual ~StreamSink() = default;
    virtual void on_stream_open(int32_t id, http2::StreamKind kind, http2::Headers&& headers,
                                bool end_stream) = 0;
    // Body bytes, borrowed for the call; the sink calls http2().consume() once they moved on.
    virtual void on_stream_data(int32_t id, std::string_view bytes) = 0;
    virtual void on_stream_end(int32_t id) = 0;
    // The last event of a stream.
    virtual void on_stream_close(int32_t id, uint32_t code) = 0;
    virtual http2::BodyChunk on_body_ready(int32_t id, size_t max) = 0;
    virtual void on_body_copy(int32_t id, std::span<char> dest) = 0;
};

namespace event {
struct Registered {
    Uuid connection;
    std::string location;
};
struct Refused {
    std::string cause;
    int64_t retry_after_ns = 0;
    bool should_retry = false;
};
struct Unregistered {};
// Registration could not happen or the RPC broke (exception, abort, bad bytes).
struct RpcFailed {
    std::string reason;
};
}  // namespace event
using TunnelEvent =
    std::variant<event::Registered, event::Refused, event::Unregistered, event::RpcFailed>;

class TunnelSession final : private http2::Handler {
public:
    enum class State : uint8_t { Handshake, Serving, Closed };

    // Plaintext produced by HTTP/2 and waiting for TLS: bounded, so a slow edge stops the
    // streams instead of growing memory.
    static constexpr size_t kPlainHighWater = 128 << 10;
    // RPC bytes for the edge waiting on the control stream; the RPC is a few small messages,
    // so a peer making us produce more is misbehaving.
    static constexpr size_t kMaxControlOut = 1 << 20;

    // `sink` must outlive the session. `server_name` is what TLS sends and verifies.
    [[nodiscard]] static Result<std::unique_ptr<TunnelSession>> create(
        const tls::Context& ctx, std::string_view server_name, TunnelIdentity id,
        StreamSink* sink, const http2::Settings& settings = {});
    ~TunnelSession() override;
    TunnelSession(const TunnelSession&) = delete;
    TunnelSession& operator=(const TunnelSession&) = delete;

    // Ciphertext from the edge. An error ends the session (TLS failure, HTTP/2 connection error):
    // flush what pending_output() holds (an alert, a GOAWAY), then close.
    [[nodiscard]] Status feed(std::string_view ciphertext);
    // Moves HTTP/2 output through TLS until pending output is over TLS's high watermark.
    [[nodiscard]] Status pump();
    std::string_view pending_output() const { return tls_.pending_output(); }
    void consume_output(size_t n) { tls_.consume_output(n); }

    // Takes the events since the last call.
    std::vector<TunnelEvent> take_events();

    // Calls unregisterConnection (drain): the edge stops sending new streams.
    [[nodiscard]] Status unregister();
    // Ends the session: GOAWAY, then close_notify; over() once both are in pending_output().
    // Streams still open are cut.
    void close();

    // For the sink's answers (submit_response, resume_data, consume, rst_stream).
    http2::Session& h2() { return *h2_; }
    State state() const { return state_; }
    bool registered() const { return registered_; }
    // Both sides are done with HTTP/2 (or TLS failed): close the socket once output is flushed.
    bool over() const;
    // Proxied streams open now.
    size_t proxied_streams() const;
    const std::string& detail() const { return detail_; }

private:
    TunnelSession(tls::Session tls, TunnelIdentity id, StreamSink* sink);

    [[nodiscard]] Status read_plaintext();
    [[nodiscard]] Status start_rpc();
    void rpc_events(std::vector<rpc::ClientEvent>& events);
    Status fail(std::string why);

    // http2::Handler
    void on_request(int32_t id, http2::Headers&& headers, bool end_stream) override;
    void on_response(int32_t id, int status, http2::Headers&& headers, bool end_stream) override;
    void on_data(int32_t id, std::string_view bytes) override;
    void on_stream_end(int32_t id) override;
    void on_stream_close(int32_t id, uint32_t code) override;
    http2::BodyChunk on_body_ready(int32_t id, size_t max) override;
    void on_body_copy(int32_t id, std::span<char> dest) override;

    tls::Session tls_;
    TunnelIdentity id_;
    StreamSink* sink_;
    http2::Settings settings_;
    std::unique_ptr<http2::Session> h2_;
    rpc::RegistrationClient rpc_;
    State state_ = State::Handshake;
    int32_t control_id_ = 0;   // 0 until the edge opened the control stream
    bool control_closed_ = false;
    std::string control_out_;  // RPC bytes for the control stream's response body
    size_t control_off_ = 0;
    std::string plain_out_;    // HTTP/2 frames not yet taken by TLS
    std::vector<TunnelEvent> events_;
    bool registered_ = false;
    bool closing_ = false;
    std::string detail_;
    std::string rpc_scratch_;  // reused RPC output buffer
};

}  // namespace cfd::connector
