#include "cfd/edge/public_h2_session.h"

#include <algorithm>
#include <cstring>

#include "cfd/core/assert.h"
#include "cfd/core/numbers.h"
#include "cfd/edge/routes.h"
#include "cfd/http1/hop_by_hop.h"

namespace cfd::edge {

namespace {

// Frames produced per Session::send() before they go to PublicIo.
constexpr size_t kSendChunk = 64 << 10;
// Framed bytes at the front of a stream's `out` before it is compacted.
constexpr size_t kCompactAt = 64 << 10;


}  // namespace

Result<std::unique_ptr<PublicH2Session>> PublicH2Session::create(PublicRouter& router,
                                                                 PublicIo& io,
                                                                 const PublicH2Options& opts) {
    std::unique_ptr<PublicH2Session> s(new PublicH2Session(router, io, opts));
    http2::Settings st = opts.h2;
    size_t hold = std::max<size_t>(opts.max_request_hold, 1);
    if (static_cast<size_t>(st.stream_window) > hold) {
        st.stream_window = static_cast<int32_t>(std::min<size_t>(hold, INT32_MAX));
    }
    auto h2 = http2::Session::create(http2::Role::Server, *s, st);
    if (!h2) {
        return h2.error();
    }
    s->h2_ = std::move(*h2);
    return s;
}

PublicH2Session::PublicH2Session(PublicRouter& router, PublicIo& io, const PublicH2Options& opts)
    : router_(router), io_(io), opts_(opts) {
    add(opts_.stats, &EdgeStats::public_connections, 1);
}

PublicH2Session::~PublicH2Session() {
    // No event may reach this session any more: every tunnel stream forgets it first, so that
    // the resets below (a TunnelConn flushes inside reset_stream() and may deliver other
    // streams' events there) find no sink.
    for (auto& [id, s] : streams_) {
        if (s->up.attached()) {
            s->up.target()->set_stream_user(s->up.sid(), nullptr);
        }
    }
    for (auto& [id, s] : streams_) {
        if (!s->finished) {
            finish(*s);
        }
    }
    add(opts_.stats, &EdgeStats::public_connections, -1);
}

// --- plumbing ---------------------------------------------------------------------------------

PublicH2Session::Stream* PublicH2Session::stream(int32_t id) const {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
}

PublicH2Session::Stream* PublicH2Session::find(const StreamTarget& t, int32_t sid) const {
    auto it = by_tunnel_.find({&t, sid});
    return it == by_tunnel_.end() ? nullptr : stream(it->second);
}

void PublicH2Session::bind(Stream& s) {
    if (s.up.attached()) {
        by_tunnel_[{s.up.target(), s.up.sid()}] = s.id;
    }
}

void PublicH2Session::unbind(Stream& s) {
    if (s.up.attached()) {
        by_tunnel_.erase({s.up.target(), s.up.sid()});
    }
}

StreamRequest PublicH2Session::request_of(const Stream& s) const {
    StreamRequest r;
    r.method = s.method;
    r.authority = s.authority;
    r.path = s.path;
    r.headers = &s.headers;
    r.has_body = s.has_body;
    r.client_ip = client_ip_;
    r.client_proto = client_proto_;
    return r;
}

size_t PublicH2Session::held_bytes() const {
    size_t n = 0;
    for (const auto& [id, s] : streams_) {
        n += s->out.size() - s->out_off;
    }
    return n;
}

bool PublicH2Session::wants_input() const {
    return !closing_ && h2_->want_read() && io_.writable();
}

bool PublicH2Session::waiting() const {
    return std::any_of(streams_.begin(), streams_.end(),
                       [](const auto& e) { return e.second->phase == Phase::Wait; });
}

void PublicH2Session::leave() {
    if (depth_ > 1) {
        depth_--;
        return;
    }
    // The outermost call: nothing of ours is on the stack below, so output may be produced and
    // finished streams freed. Nested events only set again_.
    for (int round = 0; round < 1000; round++) {
        again_ = false;
        pump();
        if (!again_ || closing_) {
            break;
        }
    }
    sweep();
    depth_--;
}

// --- entry points -----------------------------------------------------------------------------

void PublicH2Session::feed(std::string_view bytes) {
    add(opts_.stats, &EdgeStats::request_bytes, bytes.size());
    if (closing_) {
        return;
    }
    enter();
    // An error has queued a GOAWAY already; want_read() is false from now on, and check_end()
    // closes the connection once it is flushed.
    (void)h2_->recv(bytes);
    again_ = true;
    leave();
}

void PublicH2Session::feed_eof() {
    eof_ = true;
    if (closing_) {
        return;
    }
    enter();
    again_ = true;
    leave();
}

void PublicH2Session::trim() {
    if (depth_ == 0 && out_.empty()) {
        std::string().swap(out_);
        std::vector<int32_t>().swap(copied_ids_);
    }
}

void PublicH2Session::on_writable() {
    if (closing_) {
        return;
    }
    enter();
    for (auto& [id, s] : streams_) {
        s->up.settle();  // bytes the client has drained by now
    }
    again_ = true;
    leave();
    if (wants_input()) {
        io_.input_room();
    }
}

void PublicH2Session::drain() {
    draining_ = true;
    if (closing_) {
        return;
    }
    enter();
    // GOAWAY naming the last stream seen: the client opens no more; those in flight finish, and
    // nghttp2 stops wanting to read or write once they have (check_end()).
    (void)h2_->goaway(http2::kNoError);
    again_ = true;
    leave();
}

void PublicH2Session::route_again(bool last) {
    if (closing_) {
        return;
    }
    enter();
    for (auto& [id, s] : streams_) {
        if (s->phase == Phase::Wait && !s->h2_closed) {
            route(*s, !last);
        }
    }
    again_ = true;
    leave();
}

// --- the pump ---------------------------------------------------------------------------------

void PublicH2Session::pump() {
    if (closing_) {
        return;
    }
    // Streams are freed only by sweep(), outside any event, so this walk is safe against the
    // events that write_body() and consume() may deliver; no stream is added meanwhile (only
    // recv() opens streams).
    for (auto& [id, sp] : streams_) {
        Stream& s = *sp;
        if (s.finished) {
            continue;
        }
        if (s.h2_closed) {
            finish(s);
            continue;
        }
        if (s.phase == Phase::New) {
            route(s, true);
        }
        if (s.phase == Phase::Proxy && s.up.attached()) {
            (void)s.up.push_body();  // a room event pumps again
        }
        reopen_input(s);
        if (closing_) {
            return;
        }
    }
    flush();
    check_end();
}

void PublicH2Session::flush() {
    for (int round = 0; round < 4096 && !closing_ && io_.writable(); round++) {
        out_.clear();
        auto n = h2_->send(out_, kSendChunk);
        if (!n) {
            close_all(true);  // the session is broken: nothing sensible can follow
            return;
        }
        if (!out_.empty()) {
            if (!io_.send(out_)) {
                close_all(true);
                return;
            }
            add(opts_.stats, &EdgeStats::response_bytes, out_.size());
        }
        // Tunnel bytes now in the client's queue: their window reopens at once while the client
        // keeps up, otherwise once it drains (on_writable()). consume() may deliver events.
        bool now = io_.writable();
        std::vector<int32_t> ids;
        ids.swap(copied_ids_);
        for (int32_t id : ids) {
            if (Stream* s = stream(id); s != nullptr && s->copied > 0) {
                uint64_t c = s->copied;
                s->copied = 0;
                s->up.took(static_cast<size_t>(c), now);
            }
        }
        // A response that ended before its request did: the rest of the body is not wanted
        // (RFC 9113 §8.1). Queued only now, so that it follows the response's last frame.
        bool reset_any = false;
        for (auto& [id, s] : streams_) {
            if (s->end_queued && !s->req_done && !s->rst_sent && !s->h2_closed) {
                s->rst_sent = true;
                reset_any = true;
                (void)h2_->rst_stream(id, http2::kNoError);
            }
        }
        if (out_.empty() && !reset_any && copied_ids_.empty()) {
            break;
        }
    }
}

void PublicH2Session::check_end() {
    if (closing_) {
        return;
    }
    bool open = std::any_of(streams_.begin(), streams_.end(),
                            [](const auto& e) { return !e.second->finished; });
    if (eof_) {
        // The client cannot send WINDOW_UPDATE or anything else any more: a stream still open
        // could wait forever, so such a connection is cut.
        close_all(open);
        return;
    }
    if (!h2_->want_read() && !h2_->want_write()) {
        // GOAWAY exchanged (drain, the client's own, or a protocol error) and no stream left.
        close_all(false);
    }
}

void PublicH2Session::sweep() {
    for (auto it = streams_.begin(); it != streams_.end();) {
        if (it->second->finished) {
            it = streams_.erase(it);
        } else {
            ++it;
        }
    }
}

void PublicH2Session::close_all(bool abort) {
    if (closing_) {
        return;
    }
    closing_ = true;
    for (auto& [id, s] : streams_) {
        if (!s->finished) {
            finish(*s);
        }
    }
    if (abort) {
        io_.abort();
    } else {
        io_.close_after_flush();
    }
}

void PublicH2Session::finish(Stream& s) {
    s.finished = true;
    unbind(s);
    // Both ends of the tunnel stream done: it closes by itself; otherwise the connector stops.
    bool complete = s.tunnel_ended && (!s.has_body || s.up.end_written());
    s.up.detach(complete);
    s.up.drop_body();
    if (s.counted) {
        s.counted = false;
        add(opts_.stats, &EdgeStats::concurrent, -1);
    }
}

void PublicH2Session::reopen_input(Stream& s) {
    // The body bytes not taken yet are the tail of what the Upstream holds (a replay, already
    // released, sits at its front), so every byte beyond that is released now.
    size_t held = s.up.pending();
    if (s.in_unconsumed > held && !s.h2_closed) {
        h2_->consume(s.id, static_cast<size_t>(s.in_unconsumed - held));
    }
    s.in_unconsumed = std::min<uint64_t>(s.in_unconsumed, held);
}

// --- requests ---------------------------------------------------------------------------------

void PublicH2Session::on_request(int32_t id, http2::Headers&& headers, bool end_stream) {
    requests_++;
    add(opts_.stats, &EdgeStats::requests);
    auto sp = std::make_unique<Stream>();
    Stream& s = *sp;
    s.id = id;
    s.has_body = !end_stream;
    s.req_done = end_stream;
    s.counted = true;
    add(opts_.stats, &EdgeStats::concurrent, 1);
    std::string scheme;
    std::string host;
    bool protocol = false;
    bool bad_pseudo = false;
    for (auto& h : headers) {
        if (h.is_pseudo()) {
            if (h.name == ":method") {
                s.method = std::move(h.value);
            } else if (h.name == ":path") {
                s.path = std::move(h.value);
            } else if (h.name == ":authority") {
                s.authority = std::move(h.value);
            } else if (h.name == ":scheme") {
                scheme = std::move(h.value);
            } else if (h.name == ":protocol") {
                protocol = true;
            } else {
                bad_pseudo = true;
            }
            continue;
        }
        if (h.name == "host" && host.empty()) {
            host = h.value;
        }
        s.headers.push_back({std::move(h.name), std::move(h.value)});
    }
    if (s.authority.empty()) {
        s.authority = std::move(host);
    }
    s.head_request = s.method == "HEAD";
    s.up.start(Upstream::idempotent_method(s.method));
    streams_.emplace(id, std::move(sp));
    if (s.method == "CONNECT" || protocol) {
        answer(s, 501, "Not Implemented: CONNECT is not served by this edge");
        return;
    }
    if (bad_pseudo || s.method.empty() || s.path.empty() || scheme.empty()) {
        answer(s, 400, "Bad Request: missing or unknown pseudo-header");
        return;
    }
    if (host_without_port(s.authority).empty()) {
        answer(s, 400, "Bad Request: missing :authority");
        return;
    }
    again_ = true;  // routed by pump(): no StreamTarget call from inside the session
}

void PublicH2Session::on_data(int32_t id, std::string_view bytes) {
    Stream* s = stream(id);
    if (s == nullptr || s->finished || s->drop_input || s->phase == Phase::Local) {
        h2_->consume(id, bytes.size());
        return;
    }
    // Held (unconsumed: the client's window shrinks) until the tunnel takes it.
    s->up.add_body(bytes);
    s->in_unconsumed += bytes.size();
    again_ = true;
}

void PublicH2Session::on_stream_end(int32_t id) {
    Stream* s = stream(id);
    if (s == nullptr) {
        return;
    }
    s->req_done = true;
    if (s->has_body && !s->drop_input && s->phase != Phase::Local) {
        s->up.end_body();  // trailers, if any, are not forwarded: the body just ends
    }
    again_ = true;
}

void PublicH2Session::on_stream_close(int32_t id, uint32_t code) {
    Stream* s = stream(id);
    if (s == nullptr) {
        return;
    }
    // Let go of the tunnel stream in pump(): no StreamTarget call from inside the session.
    s->h2_closed = true;
    s->close_code = code;
    again_ = true;
}

void PublicH2Session::route(Stream& s, bool may_wait) {
    std::string host = host_without_port(s.authority);
    if (client_proto_ == "http" && opts_.https_redirect != nullptr &&
        opts_.https_redirect->applies(s.authority)) {
        std::string to = opts_.https_redirect->location(s.authority, s.path);
        answer(s, HttpsRedirect::status_for(s.method), "Moved to " + to + "\n", to);
        return;
    }
    RouteResult r = router_.route(s.authority);
    if (r.kind == RouteResult::Kind::UnknownHost) {
        answer(s, 404, "Not Found: no tunnel is routed for " + host);
        return;
    }
    if (r.kind == RouteResult::Kind::Wait && may_wait) {
        s.phase = Phase::Wait;  // its body waits, unconsumed, in the Upstream
        return;
    }
    if (r.kind != RouteResult::Kind::Ok || r.conn == nullptr) {
        answer(s, 530, no_connector_page(host));
        return;
    }
    s.phase = Phase::Proxy;
    if (!s.up.open(router_, r, request_of(s), this)) {
        answer(s, 502, "Bad Gateway: no tunnel connection took the request");
        return;
    }
    bind(s);
    again_ = true;
}

void PublicH2Session::answer(Stream& s, int status, std::string_view text,
                             std::string_view location) {
    if (s.resp_started) {
        abort_stream(s);  // a head already went out: the client must see an error
        return;
    }
    unbind(s);
    s.up.detach(false);
    s.up.drop_body();
    s.phase = Phase::Local;
    s.drop_input = true;
    s.resp_started = true;
    if (opts_.stats != nullptr) {
        count_response(*opts_.stats, status);
        if (status >= 400) {
            count_error(*opts_.stats, cause_of_status(status));
        }
    }
    reopen_input(s);
    if (s.h2_closed) {
        return;
    }
    std::string length = std::to_string(text.size());
    const http2::HeaderView hv[] = {
        {"content-type", "text/plain; charset=utf-8"},
        {"content-length", length},
        {"location", location},
    };
    bool body = !s.head_request && !text.empty();
    if (body) {
        s.out.assign(text);
        s.out_off = 0;
    }
    s.out_end = true;
    s.tunnel_ended = true;
    if (!h2_->submit_response(s.id, status, http2::HeaderSpan(hv, location.empty() ? 2 : 3),
                              body)) {
        (void)h2_->rst_stream(s.id, http2::kInternalError);
        s.rst_sent = true;
        return;
    }
    s.end_queued = !body;
    again_ = true;
}

void PublicH2Session::abort_stream(Stream& s) {
    add_error(opts_.stats, ErrorCause::Aborted);
    unbind(s);
    s.up.detach(false);
    s.up.drop_body();
    s.drop_input = true;
    // `out` stays: a DATA frame promised by on_body_ready() may still be copied from it.
    s.out_end = false;
    reopen_input(s);
    if (!s.h2_closed && !s.rst_sent) {
        s.rst_sent = true;
        (void)h2_->rst_stream(s.id, http2::kInternalError);
    }
    again_ = true;
}

// --- the tunnel's events ----------------------------------------------------------------------

void PublicH2Session::on_tunnel_response(StreamTarget& t, int32_t sid, int status,
                                         std::vector<http2::HeaderPair>&& headers, bool end) {
    Stream* s = find(t, sid);
    if (s == nullptr || s->resp_started || s->h2_closed) {
        return;
    }
    enter();
    if (status < 200 || status > 999) {
        // 1xx never reach here but 101, which would need an upgrade HTTP/2 does not have.
        answer(*s, 502, "Bad Gateway: the connector answered an unusable status");
        leave();
        return;
    }
    http1::Headers hs;
    hs.reserve(headers.size());
    for (auto& [name, value] : headers) {
        hs.push_back({std::move(name), std::move(value)});
    }
    http1::strip_hop_by_hop(hs);
    bool no_body = s->head_request || status == 204 || status == 304;
    bool has_length = false;
    uint64_t length = 0;
    bool valid = true;
    std::vector<http2::HeaderView> hv;
    hv.reserve(hs.size());
    for (const auto& h : hs) {
        if (!http1::is_token(h.name) || !http1::is_field_value(h.value)) {
            valid = false;
            break;
        }
        if (http1::iequals(h.name, "content-length")) {
            if (has_length || !parse_uint(h.value, UINT64_MAX, &length)) {
                valid = false;  // two of them, or not a number: the client would refuse it
                break;
            }
            has_length = true;
            if (status == 204) {
                continue;  // a 204 has no content, not even a length (RFC 9110 §8.6)
            }
        }
        hv.push_back({h.name, h.value});
    }
    if (valid && !no_body && end && has_length && length != 0) {
        valid = false;  // a length with no body to match it
    }
    if (!valid) {
        answer(*s, 502, "Bad Gateway: the connector sent an invalid response header");
        leave();
        return;
    }
    bool body = !no_body && !end;
    if (!h2_->submit_response(s->id, status, hv, body)) {
        answer(*s, 502, "Bad Gateway: the connector sent an invalid response header");
        leave();
        return;
    }
    s->resp_started = true;
    s->no_body = no_body;
    s->has_length = has_length && !no_body;
    s->resp_left = length;
    s->end_queued = !body;
    if (opts_.stats != nullptr) {
        count_response(*opts_.stats, status);
    }
    if (end) {
        on_tunnel_end(t, sid);
    }
    leave();
}

void PublicH2Session::on_tunnel_data(StreamTarget& t, int32_t sid, std::string_view bytes) {
    Stream* s = find(t, sid);
    if (s == nullptr || !s->resp_started || s->no_body || s->h2_closed || s->rst_sent) {
        t.consume(sid, bytes.size());  // nobody reads them: keep the tunnel's window open
        return;
    }
    enter();
    if (s->has_length) {
        if (bytes.size() > s->resp_left) {
            // More than the connector's own Content-Length: the client would refuse the stream.
            t.consume(sid, bytes.size());
            abort_stream(*s);
            leave();
            return;
        }
        s->resp_left -= bytes.size();
    }
    // Held until the client's window lets it out; the tunnel's window stays shut for it until
    // it went to PublicIo (flush()).
    s->out.append(bytes);
    if (s->deferred) {
        s->deferred = false;
        (void)h2_->resume_data(s->id);
    }
    again_ = true;
    leave();
}

void PublicH2Session::on_tunnel_end(StreamTarget& t, int32_t sid) {
    Stream* s = find(t, sid);
    if (s == nullptr || !s->resp_started || s->tunnel_ended) {
        return;
    }
    enter();
    if (s->has_length && s->resp_left != 0) {
        abort_stream(*s);  // a short body: only a reset tells the client
        leave();
        return;
    }
    s->tunnel_ended = true;
    s->out_end = true;
    if (s->deferred) {
        s->deferred = false;
        (void)h2_->resume_data(s->id);
    }
    if (!s->req_done) {
        // The connector answered without reading the whole body: its half of the stream is
        // reset (it would stay open otherwise), the rest of the client's body is dropped, and
        // flush() tells the client to stop sending once the response is out.
        unbind(*s);
        s->up.detach(false);
        s->up.drop_body();
        s->drop_input = true;
        reopen_input(*s);
    }
    again_ = true;
    leave();
}

void PublicH2Session::on_tunnel_close(StreamTarget& t, int32_t sid, uint32_t code) {
    Stream* s = find(t, sid);
    if (s == nullptr) {
        return;
    }
    enter();
    // The stream is gone: nothing to reset or consume on it.
    unbind(*s);
    s->up.lost();
    if (!s->resp_started && !s->h2_closed && !closing_) {
        if (s->up.retry(router_, code, request_of(*s), this)) {
            bind(*s);
            retries_++;
            again_ = true;  // the body goes down the new stream
            leave();
            return;
        }
    }
    s->up.drop_body();
    if (!s->resp_started) {
        answer(*s, 502, "Bad Gateway: the tunnel stream ended before a response");
    } else if (!s->tunnel_ended && !s->end_queued) {
        abort_stream(*s);
    } else {
        reopen_input(*s);
    }
    again_ = true;
    leave();
}

void PublicH2Session::on_tunnel_room(StreamTarget& t, int32_t sid) {
    if (find(t, sid) == nullptr) {
        return;
    }
    enter();
    again_ = true;  // pump() pushes the body
    leave();
}

// --- response bodies --------------------------------------------------------------------------

http2::BodyChunk PublicH2Session::on_body_ready(int32_t id, size_t max_bytes) {
    Stream* s = stream(id);
    if (s == nullptr) {
        return {};
    }
    size_t avail = s->out.size() - s->out_off;
    size_t n = std::min(avail, max_bytes);
    bool end = s->out_end && n == avail;
    if (n == 0 && !end) {
        s->deferred = true;
        return {};
    }
    if (end) {
        s->end_queued = true;
    }
    return {n, end};
}

void PublicH2Session::on_body_copy(int32_t id, std::span<char> dest) {
    Stream* s = stream(id);
    size_t avail = s == nullptr ? 0 : s->out.size() - s->out_off;
    if (avail < dest.size()) {
        // Only when a promised frame outlived its stream; its bytes go nowhere anyway.
        CFD_BUG("public h2: body bytes promised and gone");
        std::memset(dest.data(), 0, dest.size());
        return;
    }
    std::memcpy(dest.data(), s->out.data() + s->out_off, dest.size());
    s->out_off += dest.size();
    if (s->up.attached()) {
        if (s->copied == 0) {
            copied_ids_.push_back(id);
        }
        s->copied += dest.size();
    }
    if (s->out_off == s->out.size()) {
        s->out.clear();
        s->out_off = 0;
    } else if (s->out_off >= kCompactAt) {
        s->out.erase(0, s->out_off);
        s->out_off = 0;
    }
}

}  // namespace cfd::edge
