// One connector's tunnel connection as the edge sees it, sans I/O (DESIGN.md §2):
//
//     ciphertext in -> feed() -> TLS server -> HTTP/2 CLIENT session -> events to the owner
//     owner calls (open_stream, write_body, consume, accept...) -> flush() -> pending_output()
//
// After the TLS handshake the edge opens the control stream at once (GET / with
// cf-cloudflared-proxy-connection-upgrade: control-stream, a request body that never ends). The
// 200 response's body feeds an rpc::RegistrationServer, whose output becomes the request body.
// A registerConnection call goes OUT to the owner (TunnelEvents::on_register): the credential
// check runs on the control thread against the store, and the owner answers later with
// accept_registration() or refuse_registration(). Only a registered connection takes streams.
//
// Time is the owner's: tick(now) sends a PING every ping_interval and marks the connection dead
// when an ACK is later than ping_timeout; the handshake and the registration have deadlines too.
//
// Proxied streams: open_stream() sends a request head; body bytes go in with write_body() into a
// bounded per-stream buffer (on_body_room() says when there is room again); response body bytes
// are lent through on_data() and the stream's HTTP/2 window reopens only when the owner calls
// consume() for them, so a slow public client slows the connector and memory never grows.
//
// Driving it: after feed(), tick() or any owner call made outside an event, call flush(), then
// send pending_output() and consume_output(). Events are delivered from inside feed() and
// flush(); a handler may call back into the connection but must not destroy it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/edge/stream_target.h"
#include "cfd/http1/message.h"
#include "cfd/http2/handler.h"
#include "cfd/http2/session.h"
#include "cfd/http2/tunnel_headers.h"
#include "cfd/reactor/timers.h"
#include "cfd/rpc/server.h"
#include "cfd/tls/context.h"
#include "cfd/tls/session.h"

namespace cfd::edge {

using reactor::TimePoint;

class TunnelConn;

// What a tunnel connection tells its owner. Stream ids are the HTTP/2 stream ids open_stream()
// returned; every stream the owner opened ends with exactly one on_stream_close().
class TunnelEvents {
public:
    virtual ~TunnelEvents() = default;
    // The connector called registerConnection; answer with accept_/refuse_registration(id).
    virtual void on_register(TunnelConn& t, rpc::CallId id, const rpc::RegisterRequest& req) = 0;
    // The connector called unregisterConnection: it is draining; no new stream goes to it.
    virtual void on_unregister(TunnelConn& t) { (void)t; }
    // The response head of a proxied stream, origin headers decoded.
    virtual void on_response(TunnelConn& t, int32_t sid, int status,
                             std::vector<http2::HeaderPair>&& headers, bool end) = 0;
    // Response body bytes, borrowed for the call. consume(sid, n) once the client took them.
    virtual void on_data(TunnelConn& t, int32_t sid, std::string_view bytes) = 0;
    // The response body is complete.
    virtual void on_stream_end(TunnelConn& t, int32_t sid) = 0;
    // The stream is gone: kNoError after both ends, else the reset code. The last event.
    virtual void on_stream_close(TunnelConn& t, int32_t sid, uint32_t code) = 0;
    // write_body() refused bytes earlier, and the stream's buffer has room again.
    virtual void on_body_room(TunnelConn& t, int32_t sid) {
        (void)t;
        (void)sid;
    }
    // flush() left ciphertext in pending_output(): send it (e.g. after an owner call made
    // outside feed()). Never destroy the connection here.
    virtual void on_output(TunnelConn& t) { (void)t; }
};

struct TunnelOptions {
    Millis handshake_timeout{10000};  // TLS handshake + control stream + registration call
    Millis register_timeout{15000};   // the owner's answer to a registration
    Millis ping_interval{5000};
    Millis ping_timeout{5000};             // an ACK later than this: the link is dead
    size_t stream_send_buffer = 64 << 10;  // request-body bytes buffered per stream
    size_t max_streams = 1000;             // proxied streams open at once
    size_t output_high_water = 256 << 10;  // ciphertext waiting: stop producing frames
    http2::Settings h2;
};

class TunnelConn final : public StreamTarget, private http2::Handler {
public:
    enum class State : uint8_t {
        Handshake,     // TLS
        Control,       // control stream open, waiting for the registration call
        Registering,   // the owner is checking credentials
        Registered,    // serving streams
        Unregistered,  // the connector is draining: no new streams
        Closed,        // dead or finished: close the socket once output is sent
    };

    TunnelConn(const tls::Context& ctx, TunnelEvents& events, TimePoint now,
               const TunnelOptions& opts = {});
    ~TunnelConn() override;
    TunnelConn(const TunnelConn&) = delete;
    TunnelConn& operator=(const TunnelConn&) = delete;

    // Ciphertext from the socket. Errors close the connection (state() turns Closed).
    void feed(std::string_view ciphertext);
    // The socket reached EOF.
    void feed_eof();
    // Timers: pings, deadlines. Call at least every ping_interval / 2.
    void tick(TimePoint now);
    // Moves frames into the TLS output until it reaches the high-water mark.
    void flush();

    std::string_view pending_output() const;
    void consume_output(size_t n);
    // Nothing left to send and the connection is over: close the socket.
    bool finished() const;

    // Registration answers (the owner's decision, from the control thread).
    void accept_registration(rpc::CallId id, const rpc::ConnectionDetails& details);
    void refuse_registration(rpc::CallId id, const rpc::ConnectionError& error);

    // StreamTarget. open_stream() is Busy when not Registered or at max_streams; write_body()
    // buffers into the stream's bounded buffer (on_body_room() follows a short take).
    [[nodiscard]] Result<int32_t> open_stream(const StreamRequest& req,
                                              void* user = nullptr) override;
    size_t write_body(int32_t sid, std::string_view bytes, bool end) override;
    void consume(int32_t sid, size_t n) override;
    void reset_stream(int32_t sid, uint32_t code = http2::kCancel) override;
    void* stream_user(int32_t sid) const override;
    void set_stream_user(int32_t sid, void* user) override;
    size_t body_room(int32_t sid) const;

    // The connector's in-flight counter (cfd/edge/load_board.h): +1 per stream opened, -1 per
    // stream gone. Set once registered, before any stream.
    void set_load_counter(std::atomic<int32_t>* c) { load_ = c; }

    // Ends the connection at once (edge shutdown).
    void close(std::string_view why);

    State state() const { return state_; }
    bool registered() const { return state_ == State::Registered; }
    size_t open_streams() const { return streams_.size(); }
    const std::string& close_reason() const { return close_reason_; }
    // Set once registered.
    const rpc::ConnectionDetails& details() const { return details_; }
    const rpc::RegisterRequest& request() const { return request_; }
    uint64_t pings_acked() const { return pings_acked_; }

private:
    struct Stream {
        void* user = nullptr;
        std::string out;  // request body waiting for the window
        size_t out_off = 0;
        bool has_body = false;
        bool out_end = false;   // no more body after `out`
        bool deferred = false;  // the session waits for resume_data()
        bool wants_room = false;
    };

    // http2::Handler
    void on_request(int32_t, http2::Headers&&, bool) override {}
    void on_response(int32_t sid, int status, http2::Headers&& headers, bool end) override;
    void on_data(int32_t sid, std::string_view bytes) override;
    void on_stream_end(int32_t sid) override;
    void on_stream_close(int32_t sid, uint32_t code) override;
    http2::BodyChunk on_body_ready(int32_t sid, size_t max_bytes) override;
    void on_body_copy(int32_t sid, std::span<char> dest) override;
    void on_ping_ack(uint64_t opaque) override;
    void on_goaway(int32_t last, uint32_t code) override;

    void start_h2();
    void read_plaintext();
    void feed_rpc(std::string_view bytes);
    void rpc_output_added();
    void fail(std::string why);

    const TunnelOptions opts_;
    TunnelEvents& events_;
    std::optional<tls::Session> tls_;
    std::unique_ptr<http2::Session> h2_;
    rpc::RegistrationServer rpc_;
    State state_ = State::Handshake;
    std::string close_reason_;
    bool closing_ = false;  // close_notify queued; finished once sent

    int32_t control_sid_ = -1;
    bool control_ok_ = false;  // 200 seen
    std::string rpc_out_;      // RPC bytes waiting to go into the control stream's body
    size_t rpc_out_off_ = 0;
    bool control_deferred_ = false;
    std::optional<rpc::CallId> pending_register_;
    rpc::RegisterRequest request_;
    rpc::ConnectionDetails details_;

    std::unordered_map<int32_t, Stream> streams_;
    std::vector<int32_t> room_waiters_;
    std::string plain_out_;  // frames waiting for TLS to take them

    TimePoint now_;
    TimePoint deadline_;  // handshake / registration
    TimePoint next_ping_;
    TimePoint unregistered_at_{};
    std::optional<TimePoint> ping_sent_at_;
    uint64_t ping_seq_ = 0;
    uint64_t pings_acked_ = 0;
    bool delivering_room_ = false;
    int in_events_ = 0;  // >0 while inside h2 recv/send: flush() must wait
    std::atomic<int32_t>* load_ = nullptr;
};

const char* tunnel_state_name(TunnelConn::State s);

}  // namespace cfd::edge
