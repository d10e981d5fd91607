#include "cfd/edge/public_session.h"


#include "cfd/core/numbers.h"
#include "cfd/edge/routes.h"
#include "cfd/http1/hop_by_hop.h"

namespace cfd::edge {

// --- StreamRouter ----------------------------------------------------------------------------

namespace {
StreamSink* sink_of(TunnelConn& t, int32_t sid) {
    return static_cast<StreamSink*>(t.stream_user(sid));
}
}  // namespace

void StreamRouter::on_response(TunnelConn& t, int32_t sid, int status,
                               std::vector<http2::HeaderPair>&& headers, bool end) {
    if (StreamSink* s = sink_of(t, sid)) {
        s->on_tunnel_response(t, sid, status, std::move(headers), end);
    }
}

void StreamRouter::on_data(TunnelConn& t, int32_t sid, std::string_view bytes) {
    if (StreamSink* s = sink_of(t, sid)) {
        s->on_tunnel_data(t, sid, bytes);
    } else {
        t.consume(sid, bytes.size());  // nobody reads it: keep the connection window open
    }
}

void StreamRouter::on_stream_end(TunnelConn& t, int32_t sid) {
    if (StreamSink* s = sink_of(t, sid)) {
        s->on_tunnel_end(t, sid);
    }
}

void StreamRouter::on_stream_close(TunnelConn& t, int32_t sid, uint32_t code) {
    if (StreamSink* s = sink_of(t, sid)) {
        t.set_stream_user(sid, nullptr);
        s->on_tunnel_close(t, sid, code);
    }
}

void StreamRouter::on_body_room(TunnelConn& t, int32_t sid) {
    if (StreamSink* s = sink_of(t, sid)) {
        s->on_tunnel_room(t, sid);
    }
}

// --- PublicSession ---------------------------------------------------------------------------

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";


}  // namespace

PublicSession::PublicSession(PublicRouter& router, PublicIo& io, const PublicOptions& opts)
    : router_(router), io_(io), opts_(opts), parser_(opts.limits) {
    add(opts_.stats, &EdgeStats::public_connections, 1);
}

PublicSession::~PublicSession() {
    detach_stream();
    end_request();
    add(opts_.stats, &EdgeStats::public_connections, -1);
}

void PublicSession::end_request() {
    if (in_flight_) {
        in_flight_ = false;
        add(opts_.stats, &EdgeStats::concurrent, -1);
    }
}

bool PublicSession::wants_input() const {
    return !closing_ && in_.size() - in_off_ < opts_.max_input;
}

bool PublicSession::send(std::string_view bytes) {
    if (closing_) {
        return false;
    }
    if (!io_.send(bytes)) {
        close_now();
        return false;
    }
    add(opts_.stats, &EdgeStats::response_bytes, bytes.size());
    return true;
}

void PublicSession::feed(std::string_view bytes) {
    add(opts_.stats, &EdgeStats::request_bytes, bytes.size());
    if (closing_) {
        return;
    }
    in_.append(bytes);
    head_begun_ = head_begun_ || !bytes.empty();
    process();
}

void PublicSession::feed_eof() {
    eof_ = true;
    if (closing_) {
        return;
    }
    if (phase_ == Phase::Head && in_off_ == in_.size()) {
        closing_ = true;
        io_.close_after_flush();
        return;
    }
    if (raw_) {
        process();  // the WebSocket's client side ends: the stream's body ends
        return;
    }
    if (!req_done_ && phase_ != Phase::Head) {
        // The client went away in the middle of its request: nothing can complete it.
        close_now();
        return;
    }
    keep_alive_ = false;  // answer what was asked, then close
    process();
}

void PublicSession::drain() {
    draining_ = true;
    if (closing_) {
        return;
    }
    if (idle() && !head_begun_ && in_off_ == in_.size()) {
        closing_ = true;
        io_.close_after_flush();
        return;
    }
    keep_alive_ = false;
}

void PublicSession::trim() {
    if (idle() && in_off_ == in_.size() && !in_process_) {
        std::string().swap(in_);
        in_off_ = 0;
        std::string().swap(scratch_);
    }
}

void PublicSession::on_writable() {
    up_.settle();
    process();
}

void PublicSession::process() {
    if (in_process_) {
        again_ = true;
        return;
    }
    in_process_ = true;
    do {
        again_ = false;
        process_once();
    } while (again_ && !closing_);
    in_process_ = false;
    if (wants_input()) {
        io_.input_room();
    }
}

void PublicSession::process_once() {
    for (int guard = 0; guard < 100000 && !closing_; guard++) {
        if (phase_ == Phase::Wait) {
            break;  // route_again() resumes
        }
        if (phase_ == Phase::Proxy && !up_.push_body()) {
            break;  // on_tunnel_room() resumes
        }
        if (raw_) {
            // A WebSocket: the client's bytes go down the stream as they are, a bounded slice
            // at a time (the rest stays in the input, which pauses the client); its EOF ends
            // the stream's body.
            if (phase_ == Phase::Proxy && !req_done_ && in_off_ < in_.size() &&
                up_.pending() < kRawSlice) {
                size_t n = std::min(in_.size() - in_off_, kRawSlice - up_.pending());
                up_.add_body(std::string_view(in_).substr(in_off_, n));
                in_off_ += n;
                continue;
            }
            if (eof_ && !req_done_ && in_off_ == in_.size()) {
                req_done_ = true;
                up_.end_body();
                continue;
            }
            break;
        }
        bool can_parse = phase_ == Phase::Head || !req_done_;
        if (!can_parse) {
            break;
        }
        std::string_view in(in_.data() + in_off_, in_.size() - in_off_);
        http1::Step s = parser_.feed(in);
        in_off_ += parser_.consumed();
        if (phase_ == Phase::Head && parser_.consumed() > 0) {
            head_begun_ = true;
        }
        if (s == http1::Step::NeedMore) {
            if (eof_ && phase_ != Phase::Head && !req_done_) {
                close_now();
            } else if (eof_ && phase_ == Phase::Head) {
                closing_ = true;
                io_.close_after_flush();
            }
            break;
        }
        if (s == http1::Step::HeadDone) {
            start_exchange();
        } else if (s == http1::Step::Body) {
            if (phase_ == Phase::Proxy && up_.attached()) {
                up_.add_body(parser_.body());
            }
        } else if (s == http1::Step::MessageDone) {
            req_done_ = true;
            if (phase_ == Phase::Proxy && req_has_body_ && up_.attached()) {
                up_.end_body();
                if (!up_.push_body()) {
                    break;
                }
            }
            maybe_finish();
        } else if (s == http1::Step::Upgrade) {
            if (ws_ && phase_ == Phase::Proxy) {
                raw_ = true;  // what follows the head is the WebSocket's
            } else {
                answer(501, "Upgrades are not supported by this edge", false);
            }
        } else if (s == http1::Step::Error) {
            if (phase_ == Phase::Head) {
                add(opts_.stats, &EdgeStats::requests);  // a head that never became a request
            }
            head_request_ = false;
            answer(parser_.error().status, parser_.error().reason, false);
        } else {
            break;
        }
    }
    // Compact the input once the parser is past most of it; body views are dead by now (the
    // parser keeps its own copy of a head in progress).
    if (in_off_ == in_.size()) {
        in_.clear();
        in_off_ = 0;
    } else if (in_off_ > 16384) {
        in_.erase(0, in_off_);
        in_off_ = 0;
    }
}

StreamRequest PublicSession::upstream_request() const {
    const http1::RequestHead& h = parser_.head();
    StreamRequest sr;
    sr.method = h.method;
    sr.authority = h.authority;
    sr.path = h.path;
    sr.headers = &h.headers;
    sr.has_body = req_has_body_;
    sr.websocket = ws_;
    sr.client_ip = client_ip_;
    sr.client_proto = client_proto_;
    return sr;
}

bool PublicSession::retry(uint32_t code) {
    if (closing_ || !up_.retry(router_, code, upstream_request(), this)) {
        return false;
    }
    retries_++;
    return true;
}

void PublicSession::start_exchange() {
    const http1::RequestHead& h = parser_.head();
    exchanges_++;
    add(opts_.stats, &EdgeStats::requests);
    if (!in_flight_) {
        in_flight_ = true;
        add(opts_.stats, &EdgeStats::concurrent, 1);
    }
    keep_alive_ = h.keep_alive && !draining_;
    head_request_ = h.method == "HEAD";
    http10_ = h.version_major == 1 && h.version_minor == 0;
    req_done_ = false;
    req_has_body_ = (h.body == http1::BodyKind::Length && h.content_length > 0) ||
                    h.body == http1::BodyKind::Chunked;
    resp_started_ = false;
    resp_done_ = false;
    resp_framing_ = http1::BodyKind::None;
    resp_left_ = 0;
    up_.start(Upstream::idempotent_method(h.method));
    // A WebSocket (GET with Upgrade: websocket) goes down the tunnel with its mark; other
    // upgrades (h2c, CONNECT) are not served here.
    ws_ = h.upgrade && h.method == "GET" && http1::iequals(h.upgrade_protocol, "websocket");
    raw_ = false;
    if (ws_) {
        req_has_body_ = true;  // the stream stays open for the client's frames
    }
    if (h.upgrade && !ws_) {
        answer(501, "Not Implemented: only WebSocket upgrades are served by this edge", false);
        return;
    }
    if (host_without_port(h.authority).empty()) {
        answer(400, "Bad Request: missing Host header", false);
        return;
    }
    route_exchange(true);
}

void PublicSession::route_again(bool last) {
    if (phase_ != Phase::Wait || closing_) {
        return;
    }
    phase_ = Phase::Head;
    route_exchange(!last);
    if (phase_ != Phase::Wait) {
        process();  // the body, or the next request
    }
}

void PublicSession::route_exchange(bool may_wait) {
    const http1::RequestHead& h = parser_.head();
    // A local answer keeps the connection only when no request body has to be skipped.
    bool keep = keep_alive_ && !req_has_body_;
    std::string host = host_without_port(h.authority);
    if (client_proto_ == "http" && opts_.https_redirect != nullptr &&
        opts_.https_redirect->applies(h.authority)) {
        std::string to = opts_.https_redirect->location(h.authority, h.path);
        answer(HttpsRedirect::status_for(h.method), "Moved to " + to, keep, to);
        return;
    }
    RouteResult r = router_.route(h.authority);
    if (r.kind == RouteResult::Kind::UnknownHost) {
        answer(404, "Not Found: no tunnel is routed for " + host, keep);
        return;
    }
    if (r.kind == RouteResult::Kind::Wait && may_wait) {
        phase_ = Phase::Wait;
        return;
    }
    if (r.kind != RouteResult::Kind::Ok || r.conn == nullptr) {
        answer(530, no_connector_page(host), keep);
        return;
    }
    if (!up_.open(router_, r, upstream_request(), this)) {
        answer(502, "Bad Gateway: no tunnel connection took the request", keep);
        return;
    }
    phase_ = Phase::Proxy;
    if (h.expect_continue && req_has_body_) {
        (void)send(kContinue);
    }
}

void PublicSession::answer(uint16_t status, std::string_view text, bool keep_alive,
                           std::string_view location) {
    if (resp_started_ && !resp_done_) {
        close_now();  // a head already went out: a second one would corrupt the stream
        return;
    }
    phase_ = Phase::Local;
    resp_started_ = true;
    resp_done_ = true;
    keep_alive_ = keep_alive;
    if (opts_.stats != nullptr) {
        count_response(*opts_.stats, status);
        if (status >= 400) {
            count_error(*opts_.stats, cause_of_status(status));
        }
    }
    scratch_.clear();
    http1::write_error_response(scratch_, status, text, keep_alive, "text/plain; charset=utf-8",
                                head_request_, location);
    if (!send(scratch_)) {
        return;
    }
    if (!keep_alive) {
        detach_stream();
        end_request();
        closing_ = true;
        io_.close_after_flush();
        return;
    }
    maybe_finish();
}

void PublicSession::maybe_finish() {
    if (req_done_ && resp_done_ && !closing_) {
        finish_exchange();
    }
}

void PublicSession::finish_exchange() {
    detach_stream();
    end_request();
    head_begun_ = false;
    if (!keep_alive_ || eof_) {
        closing_ = true;
        io_.close_after_flush();
        return;
    }
    phase_ = Phase::Head;
    head_request_ = false;
    resp_started_ = false;
    resp_done_ = false;
    req_done_ = false;
    // Pipelined bytes already held are parsed by the caller's loop, or now.
    again_ = true;
    process();
}

void PublicSession::detach_stream() {
    up_.detach(req_done_ && resp_done_);
}

void PublicSession::close_now() {
    if (closing_ && !up_.attached()) {
        return;
    }
    detach_stream();
    end_request();
    closing_ = true;
    io_.abort();
}

void PublicSession::on_tunnel_response(StreamTarget& t, int32_t sid, int status,
                                       std::vector<http2::HeaderPair>&& headers, bool end) {
    if (!up_.is(t, sid) || resp_started_) {
        return;
    }
    http1::Headers hs;
    hs.reserve(headers.size());
    uint64_t length = 0;
    bool has_length = false;
    for (auto& [name, value] : headers) {
        if (http1::iequals(name, "content-length")) {
            has_length = parse_uint(value, UINT64_MAX, &length);
            continue;
        }
        hs.push_back({std::move(name), std::move(value)});
    }
    http1::strip_hop_by_hop(hs);
    if (ws_ && status == 200 && !end) {
        // The origin switched protocols: its 101 travels as 200 (DESIGN.md §2). From here the
        // stream's bytes are the WebSocket's, both ways, until either side ends.
        hs.push_back({"Upgrade", "websocket"});
        hs.push_back({"Connection", "Upgrade"});
        scratch_.clear();
        if (!http1::write_response_head(scratch_, 101, hs, http1::Framing::none(), false)) {
            detach_stream();
            answer(502, "Bad Gateway: the connector sent an invalid response header", false);
            return;
        }
        resp_started_ = true;
        resp_framing_ = http1::BodyKind::UntilEof;
        keep_alive_ = false;
        if (opts_.stats != nullptr) {
            count_response(*opts_.stats, 101);
        }
        (void)send(scratch_);
        return;
    }
    if (status < 200 || status > 999) {
        // 1xx other than the final answer never reach here; 101 needs an upgrade we lack.
        detach_stream();
        answer(502, "Bad Gateway: the connector answered an unusable status", false);
        return;
    }
    http1::Framing framing;
    bool no_body = head_request_ || status == 204 || status == 304;
    if (no_body) {
        framing = has_length && head_request_ ? http1::Framing::content_length(length)
                                              : http1::Framing::none();
        resp_framing_ = http1::BodyKind::None;
    } else if (has_length) {
        framing = http1::Framing::content_length(length);
        resp_framing_ = http1::BodyKind::Length;
        resp_left_ = length;
    } else if (end) {
        framing = http1::Framing::content_length(0);
        resp_framing_ = http1::BodyKind::Length;
    } else if (http10_) {
        framing = http1::Framing::none();
        resp_framing_ = http1::BodyKind::UntilEof;
        keep_alive_ = false;
    } else {
        framing = http1::Framing::chunked();
        resp_framing_ = http1::BodyKind::Chunked;
    }
    scratch_.clear();
    if (!http1::write_response_head(scratch_, static_cast<uint16_t>(status), hs, framing,
                                    !keep_alive_)) {
        detach_stream();
        answer(502, "Bad Gateway: the connector sent an invalid response header", false);
        return;
    }
    resp_started_ = true;
    if (opts_.stats != nullptr) {
        count_response(*opts_.stats, status);
    }
    (void)send(scratch_);
}

void PublicSession::on_tunnel_data(StreamTarget& t, int32_t sid, std::string_view bytes) {
    if (!up_.is(t, sid)) {
        t.consume(sid, bytes.size());
        return;
    }
    size_t n = bytes.size();
    if (!resp_started_ || resp_framing_ == http1::BodyKind::None) {
        t.consume(sid, n);
        return;
    }
    if (resp_framing_ == http1::BodyKind::Length) {
        if (n > resp_left_) {
            // More than the connector's own Content-Length: the client would be desynchronised.
            add_error(opts_.stats, ErrorCause::Aborted);
            close_now();
            return;
        }
        resp_left_ -= n;
        if (!send(bytes)) {
            return;
        }
    } else if (resp_framing_ == http1::BodyKind::Chunked) {
        scratch_.clear();
        http1::write_chunk_header(scratch_, n);
        if (!send(scratch_) || !send(bytes) || !send(http1::kCrlf)) {
            return;
        }
    } else if (!send(bytes)) {
        return;
    }
    up_.took(n, io_.writable());
}

void PublicSession::on_tunnel_end(StreamTarget& t, int32_t sid) {
    if (!up_.is(t, sid) || !resp_started_ || resp_done_) {
        return;
    }
    if (resp_framing_ == http1::BodyKind::Length && resp_left_ != 0) {
        add_error(opts_.stats, ErrorCause::Aborted);
        close_now();  // short body: only a close tells the client
        return;
    }
    if (resp_framing_ == http1::BodyKind::Chunked) {
        scratch_.clear();
        (void)http1::write_last_chunk(scratch_);
        if (!send(scratch_)) {
            return;
        }
    }
    resp_done_ = true;
    if (resp_framing_ == http1::BodyKind::UntilEof) {
        keep_alive_ = false;
    }
    if (!req_done_) {
        // The connector answered without reading the whole body: our half of the stream is
        // reset (it would stay open otherwise), and the client's connection closes after the
        // response, since the rest of its body cannot be skipped cheaply.
        detach_stream();
        keep_alive_ = false;
        req_done_ = true;
    }
    maybe_finish();
}

void PublicSession::on_tunnel_close(StreamTarget& t, int32_t sid, uint32_t code) {
    if (!up_.is(t, sid)) {
        return;
    }
    // The stream is gone: nothing to reset or consume on it.
    up_.lost();
    if (!resp_started_ && retry(code)) {
        process();  // the body goes down the new stream
        return;
    }
    up_.drop_body();
    if (!resp_started_) {
        answer(502, "Bad Gateway: the tunnel stream ended before a response", false);
    } else if (!resp_done_) {
        add_error(opts_.stats, ErrorCause::Aborted);
        close_now();
    } else {
        maybe_finish();
    }
}

void PublicSession::on_tunnel_room(StreamTarget& t, int32_t sid) {
    if (up_.is(t, sid)) {
        process();
    }
}

}  // namespace cfd::edge
