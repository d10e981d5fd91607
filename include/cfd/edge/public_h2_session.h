// One public client's HTTP/2 connection, sans I/O: the HTTP/2 counterpart of PublicSession
// (cfd/edge/public_session.h), with the same routing, answers of its own and retry rules
// (cfd/edge/upstream.h). Each client stream is one request, routed by :authority (or Host) to a
// tunnel and opened as a stream of its own on a StreamTarget; many run at once, bounded by
// SETTINGS_MAX_CONCURRENT_STREAMS.
//
//     bytes from the client -> feed() -> http2::Session (server role) -> Handler events
//     streams' events (StreamSink) -> submit_response / held body -> send() -> PublicIo
//
// Flow control, end to end, per stream:
//   client -> connector: body bytes go to StreamTarget::write_body(); the client's window
//     reopens (Session::consume) only for bytes the tunnel took. What it did not take waits in
//     the stream's Upstream, at most one stream window (max_request_hold) plus a replay copy.
//   connector -> client: the tunnel's bytes wait in the stream until the client's window lets
//     them out (on_body_ready/on_body_copy). The tunnel's window reopens (StreamTarget::consume)
//     only for bytes that went to PublicIo while it was writable, the rest once on_writable()
//     says the client drained them. So a stream holds at most one tunnel stream window, and a
//     slow client stops the connector instead of growing memory.
//
// Output goes to PublicIo only while it is writable(); on_writable() continues.
//
// Re-entrancy: tunnel events may arrive inside any call we make into a StreamTarget (its
// write_body() or consume() flushes). No StreamTarget is called from inside an http2::Session
// callback, and Session::send() runs only from the outermost call (leave()): an event nested
// in another only records what is to be done.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/edge/public_session.h"
#include "cfd/edge/stats.h"
#include "cfd/edge/upstream.h"
#include "cfd/http1/message.h"
#include "cfd/http2/handler.h"
#include "cfd/http2/session.h"

namespace cfd::edge {

// What a public client's HTTP/2 session advertises: 100 streams at once (RFC 9113's suggested
// minimum), 256 KiB per stream and 1 MiB per connection of request body in flight.
inline http2::Settings public_h2_settings() {
    http2::Settings s;
    s.max_concurrent_streams = 100;
    s.stream_window = 256 << 10;
    s.connection_window = 1 << 20;
    return s;
}

struct PublicH2Options {
    http2::Settings h2 = public_h2_settings();
    // The core's counters (the worker's); null: not counted. Written on the session's thread.
    EdgeStats* stats = nullptr;
    // Request-body bytes one stream may hold while the tunnel does not take them (or while it
    // waits for a connector): the stream window advertised is capped to it.
    size_t max_request_hold = 256 << 10;
    // Hosts whose requests in clear (h2c) are redirected to HTTPS; null: none.
    const HttpsRedirect* https_redirect = nullptr;
};

class PublicH2Session final : public StreamSink, public ClientSession, public http2::Handler {
public:
    // Fails only when nghttp2 cannot allocate the session (or `opts.h2` is unusable).
    [[nodiscard]] static Result<std::unique_ptr<PublicH2Session>> create(
        PublicRouter& router, PublicIo& io, const PublicH2Options& opts = {});
    // Resets every tunnel stream still open: the connectors stop at once.
    ~PublicH2Session() override;
    PublicH2Session(const PublicH2Session&) = delete;
    PublicH2Session& operator=(const PublicH2Session&) = delete;

    // As PublicSession::set_client: Cf-Connecting-IP and X-Forwarded-Proto ("https").
    void set_client(std::string ip, std::string proto) override {
        client_ip_ = std::move(ip);
        client_proto_ = std::move(proto);
    }

    // Bytes from the client (after TLS), starting with the client preface. A broken protocol
    // is answered with GOAWAY, then the connection closes once that is flushed.
    void feed(std::string_view bytes) override;
    // The client's side ended: with no stream open the connection closes after its output;
    // otherwise it is cut (no WINDOW_UPDATE can come any more, so a response could hang).
    void feed_eof() override;
    // PublicIo turned writable again.
    void on_writable() override;
    // False: stop reading from the client (the connection is ending, or the client does not
    // read its output, which holds our frames); input_room() says when to read again.
    bool wants_input() const override;
    bool closing() const override { return closing_; }
    // The edge is draining: GOAWAY, no new stream; those in flight finish, then the connection
    // closes once flushed.
    void drain() override;
    // Some stream waits for an expected connector (RouteResult::Kind::Wait).
    bool waiting() const override;
    // Routes every waiting stream again (as PublicSession::route_again): `last` false, they may
    // wait on; `last`, a connection or 530.
    void route_again(bool last) override;
    // No stream open, nothing owed to the client: the glue closes after its idle timeout.
    bool idle() const override { return streams_.empty() && !closing_; }
    void trim() override;

    uint64_t requests() const { return requests_; }
    uint64_t retries() const { return retries_; }
    size_t open_streams() const { return streams_.size(); }
    // Response bytes of all streams held here (tunnel bytes not yet framed for the client).
    size_t held_bytes() const;

    // StreamSink: events of the tunnel streams (their user pointer is this session).
    void on_tunnel_response(StreamTarget& t, int32_t sid, int status,
                            std::vector<http2::HeaderPair>&& headers, bool end) override;
    void on_tunnel_data(StreamTarget& t, int32_t sid, std::string_view bytes) override;
    void on_tunnel_end(StreamTarget& t, int32_t sid) override;
    void on_tunnel_close(StreamTarget& t, int32_t sid, uint32_t code) override;
    void on_tunnel_room(StreamTarget& t, int32_t sid) override;

    // http2::Handler: the client's streams.
    void on_request(int32_t id, http2::Headers&& headers, bool end_stream) override;
    void on_response(int32_t, int, http2::Headers&&, bool) override {}
    void on_data(int32_t id, std::string_view bytes) override;
    void on_stream_end(int32_t id) override;
    void on_stream_close(int32_t id, uint32_t code) override;
    http2::BodyChunk on_body_ready(int32_t id, size_t max_bytes) override;
    void on_body_copy(int32_t id, std::span<char> dest) override;

private:
    enum class Phase : uint8_t {
        New,    // the request's head arrived; routed by the next pump()
        Wait,   // its tunnel's connector is expected: route_again() decides
        Proxy,  // a tunnel stream carries it (or did: the response is being served)
        Local,  // answered by the edge itself; client body bytes are dropped
    };

    struct Stream {
        int32_t id = 0;
        Phase phase = Phase::New;
        // The request, kept for retries (StreamRequest views into these).
        std::string method;
        std::string authority;
        std::string path;
        http1::Headers headers;
        bool has_body = false;
        bool head_request = false;
        bool req_done = false;       // the client's END_STREAM arrived
        bool drop_input = false;     // the body has nowhere to go: released as it arrives
        uint64_t in_unconsumed = 0;  // client body bytes received, window not reopened yet
        Upstream up;
        // The response.
        bool resp_started = false;  // its head was submitted
        bool no_body = false;       // HEAD, 204, 304: the tunnel's bytes are dropped
        bool has_length = false;    // the connector sent Content-Length ...
        uint64_t resp_left = 0;     // ... and this much is still to come
        bool tunnel_ended = false;  // the connector's body is complete
        std::string out;            // body bytes not yet framed for the client
        size_t out_off = 0;
        bool out_end = false;     // no byte comes after `out`
        bool deferred = false;    // the body source said "nothing yet": resume_data() later
        bool end_queued = false;  // the response's last frame is on its way
        bool rst_sent = false;
        uint64_t copied = 0;       // tunnel bytes framed since the last write to PublicIo
        bool h2_closed = false;    // the client's stream is gone
        uint32_t close_code = 0;   // ... with this code
        bool finished = false;     // let go of everything: sweep() frees it
        bool counted = false;      // in EdgeStats::concurrent
    };

    PublicH2Session(PublicRouter& router, PublicIo& io, const PublicH2Options& opts);

    // Every entry point runs between enter() and leave(); the outermost leave() pumps.
    void enter() { depth_++; }
    void leave();
    // Pushes bodies, routes new streams, writes output, until nothing changes.
    void pump();
    void flush();
    void sweep();
    void check_end();

    Stream* stream(int32_t id) const;
    Stream* find(const StreamTarget& t, int32_t sid) const;
    void bind(Stream& s);
    void unbind(Stream& s);
    StreamRequest request_of(const Stream& s) const;

    void route(Stream& s, bool may_wait);
    // `location`: a redirect's Location header.
    void answer(Stream& s, int status, std::string_view text, std::string_view location = {});
    // Cuts a response that already began: RST_STREAM(INTERNAL_ERROR) on that stream only.
    void abort_stream(Stream& s);
    // Reopens the client's window for body bytes no longer held for the tunnel.
    void reopen_input(Stream& s);
    // The client's stream is gone: lets go of the tunnel stream and the counters.
    void finish(Stream& s);
    void close_all(bool abort);

    PublicRouter& router_;
    PublicIo& io_;
    PublicH2Options opts_;
    std::unique_ptr<http2::Session> h2_;
    std::map<int32_t, std::unique_ptr<Stream>> streams_;  // by client stream id
    // Tunnel stream -> client stream id, for the StreamSink events.
    std::map<std::pair<const StreamTarget*, int32_t>, int32_t> by_tunnel_;
    std::vector<int32_t> copied_ids_;  // streams whose `copied` is not zero
    std::string out_;                  // frames on their way to PublicIo
    std::string client_ip_;
    std::string client_proto_;
    int depth_ = 0;
    bool again_ = false;  // something changed inside a nested event: pump once more
    bool closing_ = false;
    bool eof_ = false;
    bool draining_ = false;
    uint64_t requests_ = 0;
    uint64_t retries_ = 0;
};

}  // namespace cfd::edge
