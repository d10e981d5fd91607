// The HTTP/2 side of one origin connection (http2Origin), sans I/O: an http2::Session in the
// client role that carries the requests of many tunnel streams at once, of any Proxy of the
// core. The reactor glue (OriginH2Conn, origin_h2_conn.cc) feeds it the origin's plaintext and
// writes what produce() returns; tests shuttle the same bytes to a server-role Session.
//
// Each origin stream belongs to one tunnel stream, reached through its OriginH2Sink (the
// Proxy). Flow control is end to end: a request body byte leaves the sink's buffer only when
// the origin stream's window takes it (h2_body_copy(), where the sink consumes it on the
// tunnel stream), and a response byte is consume()d on the origin stream only once the tunnel
// took it from the sink; so the origin's stream window bounds what the sink holds.
//
// Streams are refused (h2_closed() with `refused`, safe to retry elsewhere) when the origin did
// not process them: RST_STREAM(REFUSED_STREAM), above a GOAWAY's last stream, or never sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cfd/core/result.h"
#include "cfd/http2/session.h"

namespace cfd::connector {

// What a tunnel stream hears from its origin stream. Events come from inside feed() and
// produce() (and lost()); a sink may call back into the OriginH2 (consume(), cancel(),
// body_more()) but must not destroy it.
class OriginH2Sink {
public:
    virtual ~OriginH2Sink() = default;
    // The final response's head; `end`: no body (h2_end() follows).
    virtual void h2_response(int32_t tunnel_id, int status, http2::Headers&& headers,
                             bool end) = 0;
    // Response body bytes, borrowed for the call: consume() them once the tunnel took them.
    virtual void h2_data(int32_t tunnel_id, std::string_view bytes) = 0;
    // The response ended (END_STREAM).
    virtual void h2_end(int32_t tunnel_id) = 0;
    // The origin stream is gone, the last event: kNoError after both ends, else a reset, or the
    // connection was lost. `refused`: the origin never processed the request.
    virtual void h2_closed(int32_t tunnel_id, uint32_t code, bool refused) = 0;
    // The request body: at most `max` bytes ready now, and whether the body ends after them
    // ({0, false}: nothing yet, body_more() resumes it).
    virtual http2::BodyChunk h2_body_ready(int32_t tunnel_id, size_t max) = 0;
    // Copy exactly what h2_body_ready() promised: the origin stream took these bytes.
    virtual void h2_body_copy(int32_t tunnel_id, std::span<char> dest) = 0;
};

class OriginH2 final : private http2::Handler {
public:
    // Told when the session has output to produce after a call from outside feed()/produce()
    // (open, body_more, consume, cancel): the glue schedules a write.
    class Owner {
    public:
        virtual ~Owner() = default;
        virtual void h2_output_ready() = 0;
    };

    // Streams one connection carries at once; more open another connection. An origin that
    // allows fewer (SETTINGS_MAX_CONCURRENT_STREAMS) makes the rest wait in the session, sent
    // as earlier streams end.
    static constexpr size_t kMaxStreams = 100;
    // Response bytes one origin stream may have in flight toward the tunnel (its window).
    static constexpr int32_t kStreamWindow = 256 << 10;

    [[nodiscard]] static Result<std::unique_ptr<OriginH2>> create(Owner* owner,
                                                                  size_t max_streams = kMaxStreams);
    ~OriginH2() override;
    OriginH2(const OriginH2&) = delete;
    OriginH2& operator=(const OriginH2&) = delete;

    // Plaintext from the origin. An error: the connection cannot go on (flush produce(), close).
    [[nodiscard]] Status feed(std::string_view bytes);
    // Appends frames to `out` while it holds less than `high` bytes; how many it appended.
    [[nodiscard]] Result<size_t> produce(std::string& out,
                                         size_t high = http2::Session::kDefaultHighWatermark);

    // A request for tunnel stream `tunnel_id` of `sink`. Headers start with the pseudo-headers.
    // Returns the origin stream's id.
    [[nodiscard]] Result<int32_t> open(OriginH2Sink& sink, int32_t tunnel_id,
                                       http2::HeaderSpan headers, bool has_body);
    // The sink has more request body (or its end) for `h2id`.
    void body_more(int32_t h2id);
    // The tunnel took `n` response bytes of `h2id`.
    void consume(int32_t h2id, size_t n);
    // The tunnel stream went away: the origin stream is reset (CANCEL) if still open, and its
    // sink hears nothing more.
    void cancel(int32_t h2id);
    // The connection is gone: every stream hears h2_closed(kInternalError, not refused: the
    // origin may have seen its request); afterwards no stream is left.
    void lost();
    // Drops every sink without telling them (the owner is being torn down).
    void detach_all();
    // Starts a graceful close: GOAWAY; streams in flight finish.
    void shut_down();

    // Room for one more stream: the origin did not GOAWAY, the session is healthy, fewer than
    // max_streams are open.
    bool accepting() const;
    // Streams open now.
    size_t streams() const { return streams_.size(); }
    // Nothing left to do: the session ended (GOAWAY both ways, or an error), close the socket.
    bool over() const;
    bool goaway_received() const { return goaway_; }

private:
    struct Entry {
        OriginH2Sink* sink = nullptr;  // null once cancelled
        int32_t tunnel_id = 0;
    };

    explicit OriginH2(Owner* owner, size_t max_streams) : owner_(owner), max_(max_streams) {}
    Entry* find(int32_t h2id);
    void notify();

    // http2::Handler
    void on_request(int32_t, http2::Headers&&, bool) override {}
    void on_response(int32_t stream_id, int status, http2::Headers&& headers,
                     bool end_stream) override;
    void on_data(int32_t stream_id, std::string_view bytes) override;
    void on_stream_end(int32_t stream_id) override;
    void on_stream_close(int32_t stream_id, uint32_t error_code) override;
    http2::BodyChunk on_body_ready(int32_t stream_id, size_t max_bytes) override;
    void on_body_copy(int32_t stream_id, std::span<char> dest) override;
    void on_goaway(int32_t last_stream_id, uint32_t error_code) override;

    Owner* owner_;
    size_t max_;
    std::unique_ptr<http2::Session> session_;
    std::unordered_map<int32_t, Entry> streams_;
    bool goaway_ = false;
    bool failed_ = false;
    int io_depth_ = 0;  // inside feed()/produce(): no Owner notification needed
};

}  // namespace cfd::connector
