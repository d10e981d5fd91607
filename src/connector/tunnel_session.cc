#include "cfd/connector/tunnel_session.h"

#include <algorithm>
#include <cstring>

#include "cfd/core/log.h"
#include "cfd/core/version.h"

namespace cfd::connector {

namespace {

// Plaintext read from TLS per call: one full record.
constexpr size_t kReadChunk = tls::Session::kMaxRecordPlaintext;

}  // namespace

const char* build_arch() {
#if defined(__aarch64__)
    return "linux_arm64";
#elif defined(__x86_64__)
    return "linux_amd64";
#else
    return "linux_unknown";
#endif
}

Result<std::unique_ptr<TunnelSession>> TunnelSession::create(const tls::Context& ctx,
                                                             std::string_view server_name,
                                                             TunnelIdentity id, StreamSink* sink,
                                                             const http2::Settings& settings) {
    CFD_CHECK(sink != nullptr);
    auto t = tls::Session::client(ctx, server_name);
    if (!t) {
        return t.error();
    }
    std::unique_ptr<TunnelSession> s(new TunnelSession(std::move(*t), std::move(id), sink));
    s->settings_ = settings;
    // The ClientHello is ready now: the caller flushes it after create().
    if (auto h = s->tls_.handshake(); !h) {
        return h.error();
    }
    return s;
}

TunnelSession::TunnelSession(tls::Session tls, TunnelIdentity id, StreamSink* sink)
    : tls_(std::move(tls)), id_(std::move(id)), sink_(sink) {}

TunnelSession::~TunnelSession() = default;

Status TunnelSession::fail(std::string why) {
    if (detail_.empty()) {
        detail_ = std::move(why);
    }
    state_ = State::Closed;
    return Err{Errc::Protocol, 0, "tunnel session"};
}

Status TunnelSession::feed(std::string_view ciphertext) {
    if (state_ == State::Closed) {
        return Err{Errc::Closed, 0, "tunnel session"};
    }
    // feed() takes all or nothing: when TLS holds too much unread input, read it first (HTTP/2
    // takes every plaintext byte, its windows bound the bodies), then offer the rest again.
    while (!ciphertext.empty()) {
        size_t n = std::min(ciphertext.size(), size_t(64 << 10));
        auto f = tls_.feed(ciphertext.substr(0, n));
        if (!f) {
            if (f.error().code != Errc::Busy) {
                return fail("tls: " + tls::describe(f.error()));
            }
            size_t before = tls_.buffered_input();
            if (auto r = read_plaintext(); !r) {
                return r;
            }
            if (tls_.buffered_input() >= before) {
                return fail("tls: input does not drain");
            }
            continue;
        }
        ciphertext.remove_prefix(n);
        if (auto r = read_plaintext(); !r) {
            return r;
        }
    }
    return pump();
}

Status TunnelSession::read_plaintext() {
    if (state_ == State::Handshake) {
        auto h = tls_.handshake();
        if (!h) {
            return fail("tls handshake: " + tls::describe(h.error()));
        }
        if (*h == tls::HandshakeStep::NeedMore) {
            return {};
        }
        auto s = http2::Session::create(http2::Role::Server, *this, settings_);
        if (!s) {
            return fail("http2: " + s.error().message());
        }
        h2_ = std::move(*s);
        state_ = State::Serving;
    }
    char buf[kReadChunk];
    while (state_ == State::Serving) {
        auto r = tls_.read(buf, sizeof(buf));
        if (!r) {
            if (r.error().code == Errc::Closed) {
                return fail("edge closed the TLS session");
            }
            return fail("tls: " + tls::describe(r.error()));
        }
        if (*r == 0) {
            break;
        }
        if (auto s = h2_->recv(std::string_view(buf, *r)); !s) {
            (void)pump();  // the GOAWAY
            return fail("http2: " + s.error().message());
        }
    }
    return {};
}

Status TunnelSession::pump() {
    if (!h2_) {
        return {};
    }
    for (;;) {
        if (plain_out_.size() < kPlainHighWater) {
            auto n = h2_->send(plain_out_, kPlainHighWater);
            if (!n) {
                state_ = State::Closed;
                return fail("http2 send: " + n.error().message());
            }
        }
        if (plain_out_.empty()) {
            break;
        }
        auto w = tls_.write(plain_out_);
        if (!w) {
            return fail("tls write: " + tls::describe(w.error()));
        }
        plain_out_.erase(0, *w);
        if (*w == 0) {
            break;  // TLS output over its watermark: again after consume_output()
        }
    }
    if (closing_ && plain_out_.empty()) {
        tls_.shutdown();
    }
    return {};
}

std::vector<TunnelEvent> TunnelSession::take_events() {
    std::vector<TunnelEvent> out;
    out.swap(events_);
    return out;
}

bool TunnelSession::over() const {
    if (state_ == State::Closed) {
        return true;
    }
    if (!h2_) {
        return false;
    }
    return !h2_->want_read() && !h2_->want_write() && plain_out_.empty();
}

size_t TunnelSession::proxied_streams() const {
    if (!h2_) {
        return 0;
    }
    size_t n = h2_->stream_count();
    return control_id_ != 0 && !control_closed_ && n > 0 ? n - 1 : n;
}

Status TunnelSession::start_rpc() {
    rpc_.start(control_out_);
    rpc::RegisterRequest req;
    req.auth.account_tag = id_.account_tag;
    req.auth.tunnel_secret = id_.secret;
    req.tunnel_id = id_.tunnel_id;
    req.conn_index = id_.conn_index;
    req.options.client.client_id = id_.connector_id;
    req.options.client.features = id_.features;
    req.options.client.version = kVersion;
    req.options.client.arch = id_.arch.empty() ? build_arch() : id_.arch;
    req.options.origin_local_ip = id_.origin_local_ip;
    req.options.replace_existing = id_.replace_existing;
    req.options.num_previous_attempts = id_.num_previous_attempts;
    auto q = rpc_.register_connection(req, control_out_);
    if (!q) {
        return q.error();
    }
    return h2_->resume_data(control_id_);
}

Status TunnelSession::unregister() {
    if (control_id_ == 0 || control_closed_ || rpc_.closed()) {
        return Err{Errc::Closed, 0, "unregister"};
    }
    auto q = rpc_.unregister_connection(control_out_);
    if (!q) {
        return q.error();
    }
    if (auto r = h2_->resume_data(control_id_); !r) {
        return r;
    }
    return pump();
}

void TunnelSession::close() {
    if (closing_ || state_ == State::Closed) {
        return;
    }
    closing_ = true;
    if (h2_) {
        // GOAWAY and stop reading: streams still open are cut, so the owner calls this once
        // the streams it cares about are done.
        (void)h2_->terminate(http2::kNoError);
        (void)pump();
    }
    if (plain_out_.empty()) {
        tls_.shutdown();
    }
}

void TunnelSession::rpc_events(std::vector<rpc::ClientEvent>& events) {
    for (auto& ev : events) {
        if (auto* reg = std::get_if<rpc::Registered>(&ev)) {
            registered_ = true;
            events_.push_back(event::Registered{reg->details.uuid, reg->details.location_name});
        } else if (auto* ref = std::get_if<rpc::Refused>(&ev)) {
            events_.push_back(event::Refused{ref->error.cause, ref->error.retry_after_ns,
                                             ref->error.should_retry});
        } else if (std::holds_alternative<rpc::Unregistered>(ev)) {
            registered_ = false;
            events_.push_back(event::Unregistered{});
        } else if (auto* cf = std::get_if<rpc::CallFailed>(&ev)) {
            events_.push_back(event::RpcFailed{cf->reason});
        }
    }
    events.clear();
}

void TunnelSession::on_request(int32_t id, http2::Headers&& headers, bool end_stream) {
    http2::StreamKind kind = http2::classify_stream(headers);
    if (kind == http2::StreamKind::Control) {
        if (control_id_ != 0) {
            // One control stream per connection: a second one is the edge's bug, not ours to
            // serve.
            (void)h2_->rst_stream(id, http2::kProtocolError);
            return;
        }
        control_id_ = id;
        if (auto r = h2_->submit_response(id, 200, {}, true); !r) {
            events_.push_back(event::RpcFailed{"control stream: " + r.error().message()});
            return;
        }
        if (auto r = start_rpc(); !r) {
            events_.push_back(event::RpcFailed{"registration: " + r.error().message()});
        }
        if (end_stream) {
            events_.push_back(event::RpcFailed{"the edge ended the control stream"});
        }
        return;
    }
    sink_->on_stream_open(id, kind, std::move(headers), end_stream);
}

void TunnelSession::on_response(int32_t id, int, http2::Headers&&, bool) {
    // We are the server: nghttp2 never delivers responses to us.
    (void)h2_->rst_stream(id, http2::kProtocolError);
}

void TunnelSession::on_data(int32_t id, std::string_view bytes) {
    if (id != control_id_) {
        sink_->on_stream_data(id, bytes);
        return;
    }
    // The RPC reader buffers at most one message (bounded by its Limits): the window can
    // reopen at once.
    h2_->consume(id, bytes.size());
    if (rpc_.closed()) {
        return;
    }
    std::vector<rpc::ClientEvent> evs;
    size_t before = control_out_.size();
    auto r = rpc_.feed(bytes, control_out_, evs);
    rpc_events(evs);
    if (!r) {
        events_.push_back(event::RpcFailed{"rpc: " + rpc_.detail()});
    }
    if (control_out_.size() - control_off_ > kMaxControlOut) {
        events_.push_back(event::RpcFailed{"rpc: the edge made us queue too much"});
        (void)h2_->rst_stream(id, http2::kEnhanceYourCalm);
        control_out_.clear();
        control_off_ = 0;
        return;
    }
    if (control_out_.size() != before) {
        (void)h2_->resume_data(id);
    }
}

void TunnelSession::on_stream_end(int32_t id) {
    if (id == control_id_) {
        // The edge never ends the control stream's request body; if it does, the RPC is over.
        if (!rpc_.closed()) {
            events_.push_back(event::RpcFailed{"the edge ended the control stream"});
        }
        return;
    }
    sink_->on_stream_end(id);
}

void TunnelSession::on_stream_close(int32_t id, uint32_t code) {
    if (id == control_id_) {
        control_closed_ = true;
        if (registered_ || rpc_.outstanding() > 0) {
            events_.push_back(event::RpcFailed{std::string("control stream closed: ") +
                                               http2::error_code_name(code)});
        }
        registered_ = false;
        return;
    }
    sink_->on_stream_close(id, code);
}

http2::BodyChunk TunnelSession::on_body_ready(int32_t id, size_t max) {
    if (id != control_id_) {
        return sink_->on_body_ready(id, max);
    }
    return http2::BodyChunk{std::min(max, control_out_.size() - control_off_), false};
}

void TunnelSession::on_body_copy(int32_t id, std::span<char> dest) {
    if (id != control_id_) {
        sink_->on_body_copy(id, dest);
        return;
    }
    CFD_CHECK(dest.size() <= control_out_.size() - control_off_);
    std::memcpy(dest.data(), control_out_.data() + control_off_, dest.size());
    control_off_ += dest.size();
    if (control_off_ == control_out_.size()) {
        control_out_.clear();
        control_off_ = 0;
    }
}

}  // namespace cfd::connector
