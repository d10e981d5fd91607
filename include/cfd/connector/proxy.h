// The proxied streams of one tunnel connection, sans I/O: each HTTP/2 request the edge opens
// becomes an HTTP/1.1 exchange with an origin, and the origin's response becomes the stream's
// HTTP/2 response in the tunnel's conventions (DESIGN.md §2):
//   :status             the origin's status (a WebSocket's 101 travels as 200)
//   cf-cloudflared-response-headers   every origin header but the hop-by-hop ones, serialized
//   content-length      also as a real header
//   cf-cloudflared-response-meta      {"src":"origin"}, or {"src":"cloudflared"} when we answer
// Flow control end to end: a request body byte is consume()d on the HTTP/2 stream only once the
// origin connection took it; origin reads pause while a stream's response buffer is full and
// resume as HTTP/2 sends it.
//
// tcp:// and ssh:// rules (cloudflared's TCP services) are byte pipes: a WebSocket stream (the
// edge's side of `cfdtunnel access tcp`, cloudflared's "TCP over WebSocket") is answered 200
// once the origin is connected, then the client's frames (masked) are decoded and their
// payloads go to the origin raw, and the origin's bytes come back as binary frames; a raw TCP
// stream (Cf-Cloudflared-Proxy-Src) is routed by its :authority's host to a tcp:// or ssh://
// rule, never to an address of the edge's choosing, and bytes pass as they are. The same
// watermarks apply in both directions.
//
// Origin connections come from an OriginDialer (the reactor glue, or a test) and are driven
// through OriginLink; the dialer answers with origin_ready()/origin_failed(), the link's owner
// reports bytes and closes with origin_data()/origin_eof()/origin_closed()/origin_writable().
// After each of those calls (and after each TunnelSession::feed()), the owner pumps the tunnel.
//
// http2Origin (OriginService::http2): an HTTP request (not a WebSocket) is sent as an HTTP/2
// stream on a shared origin connection instead. The proxy asks dial_h2(); the dialer answers
// origin_h2_ready() with the connection (cfd/connector/origin_h2.h), whose events come back
// through OriginH2Sink; or origin_ready() with a plain link when the origin did not pick h2 in
// ALPN, and the stream falls back to HTTP/1.1 on it. The response goes into the tunnel's
// conventions by the same code as HTTP/1.1's (submit_origin_head()). A stream the origin did
// not process (refused) is sent once more on another connection when none of its body left.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cfd/connector/origin.h"
#include "cfd/connector/origin_h2.h"
#include "cfd/connector/tunnel_session.h"
#include "cfd/http1/parser.h"

namespace cfd::connector {

// One origin connection as a stream sees it.
class OriginLink {
public:
    virtual ~OriginLink() = default;
    // Bytes send() takes now.
    virtual size_t room() const = 0;
    // Queues at most room() bytes.
    virtual void send(std::string_view bytes) = 0;
    virtual void pause_recv(bool paused) = 0;
    // A byte-stream origin (tcp://, ssh://): the edge's side ended, so the origin gets a FIN
    // once everything send() took is out; its own bytes keep coming. Links that only ever
    // carry HTTP exchanges have nothing to half-close and may keep the default.
    virtual void shutdown_write() {}
    // The stream is done with the link: back to the pool when `reusable` (a complete exchange
    // that keeps the connection alive), closed otherwise. The link is not used after this.
    virtual void release(bool reusable) = 0;
};

class OriginDialer {
public:
    virtual ~OriginDialer() = default;
    // A connection to `svc` for stream `id`, answered later (never from inside this call) with
    // Proxy::origin_ready() or Proxy::origin_failed().
    virtual void dial(const OriginService& svc, int32_t id) = 0;
    // An HTTP/2 stream toward `svc` (http2Origin) for stream `id`, whose request carries `host`
    // (the TLS name when the service takes it from the request). Answered later with
    // Proxy::origin_h2_ready(), origin_ready() (the origin chose HTTP/1.1: the stream falls
    // back on that link) or origin_failed(). By default, HTTP/1.1 links only.
    virtual void dial_h2(const OriginService& svc, int32_t id, std::string_view host) {
        (void)host;
        dial(svc, id);
    }
    // The stream went away before the answer: the dialer must not answer for `id` any more.
    virtual void cancel(int32_t id) = 0;
};

// What the proxies of one core count, for /metrics (cloudflared's tunnel_* metrics). Every field
// is written only by the thread of the reactor that owns the proxies (a plain load and store,
// never a locked read-modify-write: see bump()), and read by the control thread with relaxed
// loads when it is scraped; the sum over cores is the connector's. Counters are monotonic; a
// scrape may see one field a request ahead of another, which Prometheus tolerates.
struct ProxyStats {
    static constexpr int kMinStatus = 100;
    static constexpr int kMaxStatus = 599;

    std::atomic<uint64_t> requests{0};   // streams the edge opened (every kind)
    std::atomic<uint64_t> errors{0};     // 502s we answered, resets after the head
    std::atomic<uint64_t> origin_ok{0};  // responses that came from an origin
    std::atomic<int64_t> concurrent{0};  // streams open now
    // Responses by :status as sent to the edge (a WebSocket's 101 counts as its 200).
    std::array<std::atomic<uint64_t>, kMaxStatus - kMinStatus + 1> by_status{};

    uint64_t responses(int status) const {
        return status < kMinStatus || status > kMaxStatus
                   ? 0
                   : by_status[static_cast<size_t>(status - kMinStatus)].load(
                         std::memory_order_relaxed);
    }
};

// One more on a single-writer counter: no lock prefix on the data path.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void bump(std::atomic<int64_t>& c, int64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct ProxyLimits {
    // Response bytes buffered per stream before origin reads pause; resumed below half.
    size_t response_buffer = 256 << 10;
    // Request bytes (head + framing + body) per stream waiting for the origin socket. Body
    // bytes are also held by the stream's HTTP/2 window, so this is the window plus framing.
    size_t max_request_queue = 4 << 20;
    http1::Limits http1;
    // Where the proxy counts: the core's ProxyStats, shared by the proxies of that core's tunnel
    // connections so that counts survive reconnects (a link makes a new Proxy each time).
    // Null: the proxy's own. It rides in ProxyLimits because that is how EdgeLinkConfig hands
    // the proxy its settings.
    ProxyStats* stats = nullptr;
};

// The page hello_world answers with.
std::string_view hello_world_page();

class Proxy final : public StreamSink, public OriginH2Sink {
public:
    Proxy(const Router& router, OriginDialer& dialer, ProxyLimits limits = {});
    ~Proxy() override;
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;

    // The session whose streams this proxy serves; set before it feeds any byte.
    void attach(TunnelSession* session) { session_ = session; }

    // `reused`: the link served an earlier exchange (from the keep-alive pool).
    void origin_ready(int32_t id, OriginLink* link, bool reused = false);
    // The HTTP/2 connection for a stream that asked dial_h2(): the stream opens its request on
    // it. `h2` must outlive the stream's use of it: it tells every stream h2_closed() before
    // it goes.
    void origin_h2_ready(int32_t id, OriginH2& h2);
    void origin_failed(int32_t id, const Error& e);
    // Bytes the origin sent, borrowed for the call: all of them are taken.
    void origin_data(int32_t id, std::string_view bytes);
    void origin_eof(int32_t id);
    // The link broke (the link is not used after this call).
    void origin_closed(int32_t id, const Error& e);
    // The link's out-queue has room again.
    void origin_writable(int32_t id);

    size_t streams() const { return streams_.size(); }
    using Stats = ProxyStats;
    const Stats& stats() const { return *stats_; }

    // StreamSink
    void on_stream_open(int32_t id, http2::StreamKind kind, http2::Headers&& headers,
                        bool end_stream) override;
    void on_stream_data(int32_t id, std::string_view bytes) override;
    void on_stream_end(int32_t id) override;
    void on_stream_close(int32_t id, uint32_t code) override;
    http2::BodyChunk on_body_ready(int32_t id, size_t max) override;
    void on_body_copy(int32_t id, std::span<char> dest) override;

    // OriginH2Sink
    void h2_response(int32_t id, int status, http2::Headers&& headers, bool end) override;
    void h2_data(int32_t id, std::string_view bytes) override;
    void h2_end(int32_t id) override;
    void h2_closed(int32_t id, uint32_t code, bool refused) override;
    http2::BodyChunk h2_body_ready(int32_t id, size_t max) override;
    void h2_body_copy(int32_t id, std::span<char> dest) override;

private:
    struct Stream;

    Stream* find(int32_t id);
    void answer_local(Stream& s, int status, std::string_view meta, std::string_view body,
                      std::string_view content_type);
    void fail(Stream& s, std::string_view why);
    void flush_request(Stream& s);
    void parse_response(Stream& s, std::string_view bytes);
    void submit_head(Stream& s);
    // The response head in the tunnel's conventions, from either protocol: `fields` are the
    // origin's headers (hop-by-hop ones are dropped here), `upgrade` a 101 switching protocols.
    void submit_origin_head(Stream& s, int status, const http1::Headers& fields, bool upgrade,
                            bool has_body);
    // The HTTP/1.1 request of an HTTP stream: head (and framing) queued, origin dialed unless
    // `dial` is false. False when the stream was answered locally instead.
    bool open_http1(Stream& s, const http2::Headers& headers, bool end_stream, bool dial = true);
    void open_h2(Stream& s, http2::Headers&& headers, bool end_stream);
    bool h2_fall_back(Stream& s);
    // A request body's next `bytes`, either protocol, against the stream's content-length and
    // the request queue's bound. False when over one: the bytes are consumed (the tunnel's
    // window) and the stream failed.
    bool admit_body(Stream& s, std::string_view bytes);
    void maybe_finish(Stream& s);
    void body_arrived(Stream& s);
    void release_link(Stream& s, bool reusable);
    bool retry_stale(Stream& s);
    void count_status(int status);
    // Byte pipes (tcp://, ssh://).
    void open_tcp_stream(Stream& s, const http2::Headers& headers);
    void start_pipe(Stream& s, const http2::Headers& headers);
    void pipe_connected(Stream& s);
    void pipe_edge_data(Stream& s, std::string_view bytes);
    void pipe_progress(Stream& s);
    void pipe_origin_done(Stream& s, uint16_t ws_code);
    void drop_request(Stream& s);

    const Router& router_;
    OriginDialer& dialer_;
    ProxyLimits limits_;
    TunnelSession* session_ = nullptr;
    std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
    std::unique_ptr<Stats> own_stats_;  // only when limits.stats is null
    Stats* stats_;                      // never null
};

}  // namespace cfd::connector
