#include "cfd/edge/tunnel_conn.h"
#include "cfd/core/text.h"

#include <algorithm>
#include <cstring>
#include <variant>

#include "cfd/core/log.h"
#include "cfd/http1/hop_by_hop.h"

namespace cfd::edge {

namespace {

constexpr size_t kReadChunk = 16384;
// The control stream's request: cloudflared's edge sends a GET; the connector only looks at the
// upgrade header.
constexpr std::string_view kControlAuthority = "h2.cftunnel.com";
constexpr Millis kUnregisterLinger{500};

}  // namespace

const char* tunnel_state_name(TunnelConn::State s) {
    switch (s) {
    case TunnelConn::State::Handshake: return "handshake";
    case TunnelConn::State::Control: return "control";
    case TunnelConn::State::Registering: return "registering";
    case TunnelConn::State::Registered: return "registered";
    case TunnelConn::State::Unregistered: return "unregistered";
    case TunnelConn::State::Closed: return "closed";
    }
    return "?";
}

TunnelConn::TunnelConn(const tls::Context& ctx, TunnelEvents& events, TimePoint now,
                       const TunnelOptions& opts)
    : opts_(opts), events_(events), now_(now) {
    deadline_ = now + opts_.handshake_timeout;
    auto s = tls::Session::server(ctx);
    if (!s) {
        state_ = State::Closed;
        close_reason_ = "tls: " + tls::describe(s.error());
        return;
    }
    tls_.emplace(std::move(*s));
}

TunnelConn::~TunnelConn() {
    if (load_ != nullptr && !streams_.empty()) {
        load_->fetch_sub(static_cast<int32_t>(streams_.size()), std::memory_order_relaxed);
    }
}

void TunnelConn::fail(std::string why) {
    if (state_ == State::Closed) {
        return;
    }
    state_ = State::Closed;
    close_reason_ = std::move(why);
    if (tls_ && tls_->handshake_done()) {
        tls_->shutdown();  // close_notify: the connector tells a clean end from a cut
    }
}

void TunnelConn::feed(std::string_view ciphertext) {
    if (state_ == State::Closed || !tls_) {
        return;
    }
    // The loop below takes every byte wolfSSL decrypts, so the buffered input never stays
    // above one record; a Busy here means the peer outran a 256 KiB bound: drop it.
    if (auto st = tls_->feed(ciphertext); !st) {
        fail("tls: " + tls::describe(st.error()));
        flush();
        return;
    }
    if (state_ == State::Handshake) {
        auto hs = tls_->handshake();
        if (!hs) {
            fail("tls handshake: " + tls::describe(hs.error()));
            flush();
            return;
        }
        if (*hs == tls::HandshakeStep::NeedMore) {
            flush();
            return;
        }
        start_h2();
    }
    read_plaintext();
    flush();
}

void TunnelConn::feed_eof() {
    fail("connection closed by the connector");
}

void TunnelConn::start_h2() {
    auto s = http2::Session::create(http2::Role::Client, *this, opts_.h2);
    if (!s) {
        fail("http2: cannot create the session");
        return;
    }
    h2_ = std::move(*s);
    state_ = State::Control;
    const http2::HeaderView hv[] = {
        {":method", "GET"},
        {":scheme", "http"},
        {":authority", kControlAuthority},
        {":path", "/"},
        {http2::kUpgradeHeader, http2::kUpgradeControlStream},
    };
    auto sid = h2_->submit_request(hv, true);
    if (!sid) {
        fail("http2: cannot open the control stream");
        return;
    }
    control_sid_ = *sid;
    next_ping_ = now_ + opts_.ping_interval;
}

void TunnelConn::read_plaintext() {
    char buf[kReadChunk];
    while (state_ != State::Closed) {
        auto n = tls_->read(buf, sizeof buf);
        if (!n) {
            fail(n.error().code == Errc::Closed ? "connector closed the connection"
                                                : "tls: " + tls::describe(n.error()));
            return;
        }
        if (*n == 0) {
            return;
        }
        if (!h2_) {
            return;
        }
        in_events_++;
        auto st = h2_->recv(std::string_view(buf, *n));
        in_events_--;
        if (!st) {
            fail("http2: " + st.error().message());
            return;
        }
    }
}

void TunnelConn::flush() {
    if (in_events_ > 0 || !tls_) {
        return;
    }
    if (state_ == State::Closed) {
        // Every stream still open ends now, once, outside any session callback.
        if (!streams_.empty()) {
            // Each entry stays during its event (the owner finds the user through it); the
            // owner may reset or forget other streams meanwhile, and opens none here (Closed).
            std::vector<int32_t> doomed;
            doomed.reserve(streams_.size());
            for (const auto& [sid, s] : streams_) {
                doomed.push_back(sid);
            }
            for (int32_t sid : doomed) {
                if (streams_.count(sid) == 0) {
                    continue;
                }
                if (load_ != nullptr) {
                    load_->fetch_sub(1, std::memory_order_relaxed);
                }
                events_.on_stream_close(*this, sid, http2::kInternalError);
                streams_.erase(sid);
            }
        }
        h2_.reset();
        plain_out_.clear();
        if (!pending_output().empty()) {
            events_.on_output(*this);
        }
        return;
    }
    if (!h2_ || !tls_->handshake_done()) {
        return;
    }
    for (int round = 0; round < 1024; round++) {
        if (tls_->pending_output().size() >= opts_.output_high_water) {
            break;
        }
        if (plain_out_.empty()) {
            in_events_++;
            auto n = h2_->send(plain_out_, http2::Session::kDefaultHighWatermark);
            in_events_--;
            if (!n) {
                fail("http2: " + n.error().message());
                break;
            }
            if (plain_out_.empty()) {
                break;
            }
        }
        auto took = tls_->write(plain_out_);
        if (!took) {
            fail("tls: " + tls::describe(took.error()));
            break;
        }
        plain_out_.erase(0, *took);
        if (*took == 0) {
            break;
        }
    }
    if (state_ != State::Closed && !h2_->want_read() && !h2_->want_write() && plain_out_.empty()) {
        fail("http2 session ended");
    }
    if (state_ == State::Closed) {
        flush();
        return;
    }
    // Streams whose body buffer drained: let their owners write again.
    // Not nested: an owner writing from on_body_room() re-enters flush(), and this loop (not
    // the stack) delivers what that produced.
    for (int round = 0; !delivering_room_ && round < 64 && !room_waiters_.empty(); round++) {
        delivering_room_ = true;
        std::vector<int32_t> ready;
        ready.swap(room_waiters_);
        for (int32_t sid : ready) {
            auto it = streams_.find(sid);
            if (it != streams_.end() && it->second.wants_room) {
                it->second.wants_room = false;
                events_.on_body_room(*this, sid);
            }
        }
        delivering_room_ = false;
    }
    if (!pending_output().empty()) {
        events_.on_output(*this);
    }
}

std::string_view TunnelConn::pending_output() const {
    return tls_ ? tls_->pending_output() : std::string_view();
}

void TunnelConn::consume_output(size_t n) {
    if (tls_) {
        tls_->consume_output(n);
    }
    // Room in the TLS output: produce more frames.
    flush();
}

bool TunnelConn::finished() const {
    return state_ == State::Closed && pending_output().empty();
}

void TunnelConn::tick(TimePoint now) {
    now_ = now;
    if (state_ == State::Closed) {
        return;
    }
    if ((state_ == State::Handshake || state_ == State::Control) && now >= deadline_) {
        fail(state_ == State::Handshake ? "tls handshake timed out" : "no registration in time");
    } else if (state_ == State::Registering && now >= deadline_) {
        fail("registration was not answered in time");
    } else if (state_ == State::Unregistered && streams_.empty() &&
               now - unregistered_at_ >= kUnregisterLinger) {
        // Its streams are done: close, so that the connector's shutdown finishes. The linger
        // lets the unregisterConnection answer reach it first.
        fail("connector unregistered and its streams are done");
    } else if (h2_) {
        if (ping_sent_at_) {
            if (now - *ping_sent_at_ >= opts_.ping_timeout) {
                fail("no PING ACK within " + format_duration(opts_.ping_timeout));
            }
        } else if (now >= next_ping_) {
            if (auto st = h2_->ping(++ping_seq_); st) {
                ping_sent_at_ = now;
            } else {
                fail("http2: cannot send PING");
            }
        }
    }
    flush();
}

void TunnelConn::on_ping_ack(uint64_t opaque) {
    if (ping_sent_at_ && opaque == ping_seq_) {
        ping_sent_at_.reset();
        next_ping_ = now_ + opts_.ping_interval;
        pings_acked_++;
    }
}

void TunnelConn::on_goaway(int32_t last, uint32_t code) {
    (void)last;
    (void)code;
    // The connector stops taking streams: treat it as an unregistration.
    if (state_ == State::Registered) {
        state_ = State::Unregistered;
        unregistered_at_ = now_;
        events_.on_unregister(*this);
    }
}

// --- control stream and registration ---------------------------------------------------------

void TunnelConn::rpc_output_added() {
    if (control_deferred_ && h2_ && rpc_out_.size() > rpc_out_off_) {
        control_deferred_ = false;
        if (!h2_->resume_data(control_sid_)) {
            fail("http2: cannot resume the control stream");
        }
    }
    flush();
}

void TunnelConn::feed_rpc(std::string_view bytes) {
    std::vector<rpc::ServerEvent> evs;
    std::string out;
    auto st = rpc_.feed(bytes, out, evs);
    rpc_out_ += out;
    for (auto& ev : evs) {
        if (auto* reg = std::get_if<rpc::RegisterCall>(&ev)) {
            if (state_ != State::Control) {
                rpc::ConnectionError e;
                e.cause = "connection already registered";
                std::string o;
                (void)rpc_.refuse_registration(reg->id, e, o);
                rpc_out_ += o;
                continue;
            }
            state_ = State::Registering;
            pending_register_ = reg->id;
            request_ = std::move(reg->request);
            deadline_ = now_ + opts_.register_timeout;
            events_.on_register(*this, reg->id, request_);
        } else if (auto* un = std::get_if<rpc::UnregisterCall>(&ev)) {
            std::string o;
            (void)rpc_.complete(un->id, o);
            rpc_out_ += o;
            if (state_ == State::Registered) {
                state_ = State::Unregistered;
                unregistered_at_ = now_;
                events_.on_unregister(*this);
            }
        } else if (auto* up = std::get_if<rpc::UpdateConfigCall>(&ev)) {
            std::string o;
            (void)rpc_.complete(up->id, o);
            rpc_out_ += o;
        } else if (auto* cc = std::get_if<rpc::CallCanceled>(&ev)) {
            if (pending_register_ && *pending_register_ == cc->id) {
                pending_register_.reset();
                state_ = State::Control;
                deadline_ = now_ + opts_.handshake_timeout;
            }
        } else if (auto* ab = std::get_if<rpc::PeerAborted>(&ev)) {
            fail("connector ended the RPC session: " + ab->reason);
        }
    }
    if (!st) {
        fail("rpc: " + rpc_.detail());
    }
    rpc_output_added();
}

void TunnelConn::accept_registration(rpc::CallId id, const rpc::ConnectionDetails& details) {
    if (state_ != State::Registering || !pending_register_ || *pending_register_ != id) {
        return;  // late: the call was canceled or the connection is gone
    }
    std::string o;
    if (!rpc_.accept_registration(id, details, o)) {
        fail("rpc: cannot answer the registration");
        flush();
        return;
    }
    rpc_out_ += o;
    pending_register_.reset();
    details_ = details;
    state_ = State::Registered;
    rpc_output_added();
}

void TunnelConn::refuse_registration(rpc::CallId id, const rpc::ConnectionError& error) {
    if (state_ != State::Registering || !pending_register_ || *pending_register_ != id) {
        return;
    }
    std::string o;
    (void)rpc_.refuse_registration(id, error, o);
    rpc_out_ += o;
    pending_register_.reset();
    // The connector closes after a refusal; if it does not, the deadline does.
    state_ = State::Control;
    deadline_ = now_ + opts_.handshake_timeout;
    rpc_output_added();
}

// --- streams -------------------------------------------------------------------------------

Result<int32_t> TunnelConn::open_stream(const StreamRequest& req, void* user) {
    if (state_ != State::Registered || !h2_) {
        return Err{Errc::Busy, 0, "tunnel connection not registered"};
    }
    if (streams_.size() >= opts_.max_streams) {
        return Err{Errc::Busy, 0, "tunnel connection at its stream limit"};
    }
    std::vector<http2::HeaderView> hv;
    hv.reserve(4 + (req.headers ? req.headers->size() : 0));
    hv.push_back({":method", req.method});
    hv.push_back({":scheme", "http"});
    hv.push_back({":authority", req.authority});
    hv.push_back({":path", req.path.empty() ? std::string_view("/") : req.path});
    if (req.websocket) {
        hv.push_back({http2::kUpgradeHeader, http2::kUpgradeWebsocket});
    }
    if (!req.proxy_src.empty()) {
        hv.push_back({http2::kProxySrcHeader, req.proxy_src});
    }
    http1::Headers copy;
    std::string xff;
    if (req.headers) {
        copy = *req.headers;
        http1::strip_hop_by_hop(copy);
        for (const auto& h : copy) {
            std::string ln = to_lower(h.name);
            // Host travels as :authority; the tunnel's own headers are never taken from a
            // client (they would turn a request into a control or TCP stream).
            if (ln == "host" || http2::is_control_header(ln) || ln.empty() || ln[0] == ':') {
                continue;
            }
            // The edge states these itself; a client's own values are not believed.
            if (!req.client_ip.empty() && (ln == "cf-connecting-ip" || ln == "x-forwarded-proto")) {
                continue;
            }
            if (!req.client_ip.empty() && ln == "x-forwarded-for") {
                xff = h.value;  // the chain so far: the client's address is appended
                continue;
            }
            hv.push_back({h.name, h.value});
        }
    }
    if (!req.client_ip.empty()) {
        xff = xff.empty() ? std::string(req.client_ip) : xff + ", " + std::string(req.client_ip);
        hv.push_back({"x-forwarded-for", xff});
        hv.push_back({"cf-connecting-ip", req.client_ip});
        if (!req.client_proto.empty()) {
            hv.push_back({"x-forwarded-proto", req.client_proto});
        }
    }
    auto sid = h2_->submit_request(hv, req.has_body, nullptr);
    if (!sid) {
        return sid.error();
    }
    Stream& s = streams_[*sid];
    s.user = user;
    s.has_body = req.has_body;
    if (load_ != nullptr) {
        load_->fetch_add(1, std::memory_order_relaxed);
    }
    flush();
    return *sid;
}

size_t TunnelConn::body_room(int32_t sid) const {
    auto it = streams_.find(sid);
    if (it == streams_.end() || it->second.out_end) {
        return 0;
    }
    size_t held = it->second.out.size() - it->second.out_off;
    return held >= opts_.stream_send_buffer ? 0 : opts_.stream_send_buffer - held;
}

size_t TunnelConn::write_body(int32_t sid, std::string_view bytes, bool end) {
    auto it = streams_.find(sid);
    if (it == streams_.end() || !it->second.has_body || it->second.out_end || !h2_) {
        return 0;
    }
    Stream& s = it->second;
    size_t take = std::min(bytes.size(), body_room(sid));
    if (s.out_off > 0 && s.out_off == s.out.size()) {
        s.out.clear();
        s.out_off = 0;
    }
    s.out.append(bytes.data(), take);
    if (take == bytes.size()) {
        s.out_end = end;
    } else {
        s.wants_room = true;
    }
    if (s.deferred && (take > 0 || s.out_end)) {
        s.deferred = false;
        if (!h2_->resume_data(sid)) {
            reset_stream(sid, http2::kInternalError);
            return take;
        }
    }
    flush();
    return take;
}

void TunnelConn::consume(int32_t sid, size_t n) {
    if (h2_ && n > 0) {
        h2_->consume(sid, n);
        flush();
    }
}

void TunnelConn::reset_stream(int32_t sid, uint32_t code) {
    if (h2_ && streams_.count(sid)) {
        (void)h2_->rst_stream(sid, code);
        flush();
    }
}

void* TunnelConn::stream_user(int32_t sid) const {
    auto it = streams_.find(sid);
    return it == streams_.end() ? nullptr : it->second.user;
}

void TunnelConn::set_stream_user(int32_t sid, void* user) {
    auto it = streams_.find(sid);
    if (it != streams_.end()) {
        it->second.user = user;
    }
}

void TunnelConn::close(std::string_view why) {
    fail(std::string(why));
    flush();
}

// --- http2::Handler ------------------------------------------------------------------------

void TunnelConn::on_response(int32_t sid, int status, http2::Headers&& headers, bool end) {
    if (sid == control_sid_) {
        if (status != 200) {
            fail("control stream answered " + std::to_string(status));
        }
        control_ok_ = true;
        return;
    }
    if (!streams_.count(sid)) {
        return;
    }
    std::vector<http2::HeaderPair> user;
    if (const auto* ser = http2::find_header(headers, http2::kResponseHeaders)) {
        auto parsed = http2::parse_user_headers(ser->value);
        if (!parsed) {
            (void)h2_->rst_stream(sid, http2::kProtocolError);
            return;
        }
        user = std::move(*parsed);
    } else {
        // A connector that sends plain headers: forward those that are not the tunnel's own.
        for (auto& h : headers) {
            if (!h.is_pseudo() && !http2::is_control_header(h.name)) {
                user.emplace_back(std::move(h.name), std::move(h.value));
            }
        }
    }
    events_.on_response(*this, sid, status, std::move(user), end);
}

void TunnelConn::on_data(int32_t sid, std::string_view bytes) {
    if (sid == control_sid_) {
        h2_->consume(sid, bytes.size());
        if (!control_ok_) {
            fail("control stream data before its response");
            return;
        }
        feed_rpc(bytes);
        return;
    }
    if (!streams_.count(sid)) {
        h2_->consume(sid, bytes.size());
        return;
    }
    events_.on_data(*this, sid, bytes);
}

void TunnelConn::on_stream_end(int32_t sid) {
    if (sid == control_sid_) {
        fail("connector ended the control stream");
        return;
    }
    if (streams_.count(sid)) {
        events_.on_stream_end(*this, sid);
    }
}

void TunnelConn::on_stream_close(int32_t sid, uint32_t code) {
    if (sid == control_sid_) {
        fail(std::string("control stream closed: ") + http2::error_code_name(code));
        return;
    }
    auto it = streams_.find(sid);
    if (it == streams_.end()) {
        return;
    }
    if (load_ != nullptr) {
        load_->fetch_sub(1, std::memory_order_relaxed);
    }
    // The entry stays during the event: the owner finds the stream's user through it.
    events_.on_stream_close(*this, sid, code);
    streams_.erase(sid);
}

http2::BodyChunk TunnelConn::on_body_ready(int32_t sid, size_t max_bytes) {
    if (sid == control_sid_) {
        size_t have = rpc_out_.size() - rpc_out_off_;
        if (have == 0) {
            control_deferred_ = true;
            return {};
        }
        return {std::min(have, max_bytes), false};
    }
    auto it = streams_.find(sid);
    if (it == streams_.end()) {
        return {0, true};
    }
    Stream& s = it->second;
    size_t have = s.out.size() - s.out_off;
    if (have == 0) {
        if (s.out_end) {
            return {0, true};
        }
        s.deferred = true;
        return {};
    }
    size_t n = std::min(have, max_bytes);
    return {n, s.out_end && n == have};
}

void TunnelConn::on_body_copy(int32_t sid, std::span<char> dest) {
    if (sid == control_sid_) {
        std::memcpy(dest.data(), rpc_out_.data() + rpc_out_off_, dest.size());
        rpc_out_off_ += dest.size();
        if (rpc_out_off_ == rpc_out_.size()) {
            rpc_out_.clear();
            rpc_out_off_ = 0;
        }
        return;
    }
    auto it = streams_.find(sid);
    if (it == streams_.end()) {
        return;
    }
    Stream& s = it->second;
    std::memcpy(dest.data(), s.out.data() + s.out_off, dest.size());
    s.out_off += dest.size();
    if (s.out_off == s.out.size()) {
        s.out.clear();
        s.out_off = 0;
    }
    if (s.wants_room) {
        room_waiters_.push_back(sid);
    }
}

}  // namespace cfd::edge
