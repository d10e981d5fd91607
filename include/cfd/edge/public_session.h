// One public client's HTTP/1.1 connection, sans I/O: requests parsed from feed(), routed by
// Host to a tunnel, streamed down one of its connections as an HTTP/2 stream, the response
// written back through PublicIo. One exchange at a time (pipelined requests wait in the input).
//
// Flow control, both ways:
//   client -> connector: body bytes go to StreamTarget::write_body(); when it takes fewer, parsing
//     stops and the input is held (wants_input() turns false: the glue pauses recv) until
//     on_tunnel_room();
//   connector -> client: response bytes are copied to PublicIo::send(); the HTTP/2 window is
//     reopened (consume) at once while PublicIo is writable, otherwise when on_writable() says
//     the client drained it. The connector can never have more than one stream window in
//     flight, so the client's out-queue stays below its high-water mark plus one window.
//
// Retry (DESIGN.md §5): a stream refused, reset or lost before any response byte is opened
// again on another connector, within kMaxAttempts streams, by the rules of cfd/edge/upstream.h
// (shared with the HTTP/2 front end, cfd/edge/public_h2_session.h).
//
// Answers of its own, with short bodies: unknown host 404, no connector 530 (error 1033),
// malformed 400 (or the parser's 413/414/431/501/505), no stream could serve it 502.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/uuid.h"
#include "cfd/edge/https_redirect.h"
#include "cfd/edge/stats.h"
#include "cfd/edge/tunnel_conn.h"
#include "cfd/edge/upstream.h"
#include "cfd/http1/parser.h"
#include "cfd/http1/writer.h"

namespace cfd::edge {

// Events of a proxied stream, delivered to whatever StreamTarget::stream_user() points at.
class StreamSink {
public:
    virtual ~StreamSink() = default;
    virtual void on_tunnel_response(StreamTarget& t, int32_t sid, int status,
                                    std::vector<http2::HeaderPair>&& headers, bool end) = 0;
    virtual void on_tunnel_data(StreamTarget& t, int32_t sid, std::string_view bytes) = 0;
    virtual void on_tunnel_end(StreamTarget& t, int32_t sid) = 0;
    virtual void on_tunnel_close(StreamTarget& t, int32_t sid, uint32_t code) = 0;
    virtual void on_tunnel_room(StreamTarget& t, int32_t sid) = 0;
};

// TunnelEvents whose stream events go to the StreamSink in the stream's user pointer; a stream
// whose sink is gone has its response bytes released at once.
class StreamRouter : public TunnelEvents {
public:
    void on_response(TunnelConn& t, int32_t sid, int status,
                     std::vector<http2::HeaderPair>&& headers, bool end) override;
    void on_data(TunnelConn& t, int32_t sid, std::string_view bytes) override;
    void on_stream_end(TunnelConn& t, int32_t sid) override;
    void on_stream_close(TunnelConn& t, int32_t sid, uint32_t code) override;
    void on_body_room(TunnelConn& t, int32_t sid) override;
};

struct RouteResult {
    // Wait: no connection here yet, but one is expected soon (a restart of this location).
    enum class Kind : uint8_t { UnknownHost, NoConnector, Ok, Wait };
    Kind kind = Kind::UnknownHost;
    StreamTarget* conn = nullptr;  // Ok: a connection here, or the relay to its core
    Uuid connector;                // Ok: whose connection it is (a retry avoids it)
};

class PublicRouter {
public:
    virtual ~PublicRouter() = default;
    // Where a request for `host` goes: a registered connection of its tunnel, of a connector
    // not in `avoid` when there is one (a retry goes elsewhere, or to the only one left).
    virtual RouteResult route(std::string_view host, std::span<const Uuid> avoid = {}) = 0;
    // A request is being tried again on another stream (for the metrics).
    virtual void on_retry() {}
};

class PublicIo {
public:
    virtual ~PublicIo() = default;
    // Queues bytes for the client; false when the queue refused them (the session then ends).
    virtual bool send(std::string_view bytes) = 0;
    // Below the high-water mark.
    virtual bool writable() const = 0;
    // Close once everything queued is sent.
    virtual void close_after_flush() = 0;
    // Close now (a response cut in the middle: the client must see an error, not a short body).
    virtual void abort() = 0;
    // Held input was used up: reading may resume (the glue re-arms recv).
    virtual void input_room() {}
};

struct PublicOptions {
    http1::Limits limits;
    size_t max_input = 64 << 10;  // bytes held while the tunnel does not take the body
    // The core's counters (the worker's); null: not counted. Written on the session's thread.
    EdgeStats* stats = nullptr;
    // Hosts whose requests in clear are redirected to HTTPS (--https-redirect); null: none.
    const HttpsRedirect* https_redirect = nullptr;
};

// What the socket glue drives, whichever protocol the client speaks: HTTP/1.1 (PublicSession)
// or HTTP/2 (PublicH2Session, cfd/edge/public_h2_session.h).
class ClientSession {
public:
    virtual ~ClientSession() = default;
    // The client's address and the scheme it came in with ("http", "https").
    virtual void set_client(std::string ip, std::string proto) = 0;
    virtual void feed(std::string_view bytes) = 0;
    virtual void feed_eof() = 0;
    // PublicIo turned writable again.
    virtual void on_writable() = 0;
    // False: stop reading from the client; PublicIo::input_room() says when to read again.
    virtual bool wants_input() const = 0;
    virtual bool closing() const = 0;
    // The edge is draining: finish what was started, then close.
    virtual void drain() = 0;
    // A request waits for an expected connector; route_again() decides (`last`: no more wait).
    virtual bool waiting() const = 0;
    virtual void route_again(bool last) = 0;
    // Nothing in progress: the glue closes the connection after its idle timeout.
    virtual bool idle() const = 0;
    // Idle for a while: frees the buffers kept for the next request (they grow back on use).
    virtual void trim() = 0;
};

class PublicSession final : public StreamSink, public ClientSession {
public:
    static constexpr size_t kMaxAttempts = Upstream::kMaxAttempts;
    static constexpr size_t kMaxReplay = Upstream::kMaxReplay;
    // WebSocket bytes taken from the client's input per step toward the tunnel.
    static constexpr size_t kRawSlice = 64 << 10;

    PublicSession(PublicRouter& router, PublicIo& io, const PublicOptions& opts = {});
    // Resets a stream still open: the connector stops at once.
    ~PublicSession() override;
    // The client's address ("203.0.113.7", "2001:db8::1") and the scheme it came in with
    // ("http"): the tunnel requests carry them (cfd/edge/stream_target.h).
    void set_client(std::string ip, std::string proto) override {
        client_ip_ = std::move(ip);
        client_proto_ = std::move(proto);
    }
    PublicSession(const PublicSession&) = delete;
    PublicSession& operator=(const PublicSession&) = delete;

    void feed(std::string_view bytes) override;
    void feed_eof() override;
    // PublicIo turned writable again.
    void on_writable() override;
    // False: stop reading from the client (input held, or the connection is ending).
    bool wants_input() const override;
    bool closing() const override { return closing_; }
    // A request whose tunnel's connectors are expected here soon (RouteResult::Kind::Wait)
    // waits, its input held, until route_again(): after a routing change (`last` false: it may
    // wait on), or when its time is up (`last`: a connection or 530).
    bool waiting() const override { return phase_ == Phase::Wait; }
    void route_again(bool last) override;
    // The edge is draining: the exchange in progress (or the next, if a head has begun) is the
    // connection's last, answered with Connection: close; an idle connection closes now.
    void drain() override;
    // Between requests (or inside a head): no stream, nothing owed to the client. The glue
    // closes such a connection once it was silent for its idle timeout (slow heads included).
    bool idle() const override { return phase_ == Phase::Head && !up_.attached() && !closing_; }
    void trim() override;
    uint64_t exchanges() const { return exchanges_; }
    uint64_t retries() const { return retries_; }

    // StreamSink
    void on_tunnel_response(StreamTarget& t, int32_t sid, int status,
                            std::vector<http2::HeaderPair>&& headers, bool end) override;
    void on_tunnel_data(StreamTarget& t, int32_t sid, std::string_view bytes) override;
    void on_tunnel_end(StreamTarget& t, int32_t sid) override;
    void on_tunnel_close(StreamTarget& t, int32_t sid, uint32_t code) override;
    void on_tunnel_room(StreamTarget& t, int32_t sid) override;

private:
    enum class Phase : uint8_t { Head, Wait, Local, Proxy };

    // Not re-entrant: a tunnel event arriving inside it (write_body() flushes) sets again_.
    void process();
    void process_once();
    void start_exchange();
    // Routes the exchange whose head was parsed: a stream, a wait, or an answer of our own.
    void route_exchange(bool may_wait);
    // The exchange's request as its tunnel stream carries it (views into the parsed head).
    StreamRequest upstream_request() const;
    // The stream ended (`code`) before any response byte: true when another one carries the
    // request.
    bool retry(uint32_t code);
    void answer(uint16_t status, std::string_view text, bool keep_alive,
                std::string_view location = {});
    void maybe_finish();
    void finish_exchange();
    void close_now();
    bool send(std::string_view bytes);
    void detach_stream();
    // The request in progress is answered (or given up): it leaves the in-flight gauge.
    void end_request();

    PublicRouter& router_;
    PublicIo& io_;
    PublicOptions opts_;
    http1::RequestParser parser_;
    std::string in_;
    size_t in_off_ = 0;
    Phase phase_ = Phase::Head;
    bool closing_ = false;
    bool eof_ = false;
    bool in_process_ = false;
    bool draining_ = false;
    bool head_begun_ = false;  // bytes arrived since the last exchange finished
    bool again_ = false;
    uint64_t exchanges_ = 0;
    uint64_t retries_ = 0;
    bool in_flight_ = false;  // counted in EdgeStats::concurrent

    // The current exchange.
    bool keep_alive_ = true;
    bool head_request_ = false;
    bool http10_ = false;
    bool req_done_ = false;
    bool req_has_body_ = false;
    std::string client_ip_;
    std::string client_proto_;
    bool ws_ = false;   // a WebSocket upgrade was asked for
    bool raw_ = false;  // ... and the parser handed over: client bytes go to the tunnel as is
    Upstream up_;  // the exchange's tunnel stream, its body and retries
    bool resp_started_ = false;
    bool resp_done_ = false;
    http1::BodyKind resp_framing_ = http1::BodyKind::None;
    uint64_t resp_left_ = 0;  // Content-Length bytes still to come
    std::string scratch_;
};

}  // namespace cfd::edge
