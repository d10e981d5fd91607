// http2::Session: the nghttp2 session's set-up and the owner's actions. Events are in
// session_callbacks.cc.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cfd/core/log.h"
#include "http2/nv_list.h"
#include "http2/session_impl.h"

namespace cfd::http2 {
namespace {

// The smallest connection window HTTP/2 allows: windows start at 65535 and cannot be shrunk
// by WINDOW_UPDATE.
constexpr int32_t kMinConnectionWindow = 65535;

Err ng_error(int rv) {
    Errc code = Errc::Invalid;
    if (rv == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE || rv == NGHTTP2_ERR_FLOODED) {
        code = Errc::Busy;
    } else if (rv <= NGHTTP2_ERR_FATAL) {  // includes NOMEM: the session is unusable either way
        code = Errc::Protocol;
    } else if (rv == NGHTTP2_ERR_SESSION_CLOSING || rv == NGHTTP2_ERR_GOAWAY_ALREADY_SENT) {
        code = Errc::Closed;
    }
    // nghttp2_strerror() returns static strings, as Error::op requires.
    return Err{code, rv, nghttp2_strerror(rv)};
}

// The GOAWAY code that fits what mem_recv refused.
uint32_t goaway_code_for(int rv) {
    switch (rv) {
    case NGHTTP2_ERR_FLOODED:
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        return kEnhanceYourCalm;
    case NGHTTP2_ERR_CALLBACK_FAILURE:
        return kInternalError;
    default:
        return kProtocolError;
    }
}

}  // namespace

Session::Impl::~Impl() { nghttp2_session_del(ng); }

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::create(Role role, Handler& handler,
                                                 const Settings& settings) {
    if (settings.stream_window <= 0 || settings.connection_window <= 0 ||
        settings.max_header_list_bytes == 0 || settings.max_header_fields == 0) {
        return Err{Errc::Invalid, 0, "http2 settings"};
    }
    auto impl = std::make_unique<Impl>(role, handler, settings);

    nghttp2_session_callbacks* cbs = nullptr;
    if (int rv = nghttp2_session_callbacks_new(&cbs); rv != 0) {
        return ng_error(rv);
    }
    install_callbacks(cbs);

    nghttp2_option* opt = nullptr;
    if (int rv = nghttp2_option_new(&opt); rv != 0) {
        nghttp2_session_callbacks_del(cbs);
        return ng_error(rv);
    }
    // Windows reopen only on consume(): the next hop's pace, not ours, drives the peer.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, settings.max_send_header_block);
    nghttp2_option_set_max_continuations(opt, settings.max_continuations);
    nghttp2_option_set_max_outbound_ack(opt, settings.max_outbound_ack);
    nghttp2_option_set_stream_reset_rate_limit(opt, settings.reset_burst, settings.reset_rate);
    // Closed streams are kept only for the RFC 7540 priority tree, which we do not use.
    nghttp2_option_set_no_closed_streams(opt, 1);

    int rv = role == Role::Client ? nghttp2_session_client_new2(&impl->ng, cbs, impl.get(), opt)
                                  : nghttp2_session_server_new2(&impl->ng, cbs, impl.get(), opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        return ng_error(rv);
    }

    nghttp2_settings_entry entries[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(settings.stream_window)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings.max_header_list_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    rv = nghttp2_submit_settings(impl->ng, NGHTTP2_FLAG_NONE, entries,
                                 sizeof(entries) / sizeof(entries[0]));
    if (rv != 0) {
        return ng_error(rv);
    }
    int32_t conn_window = std::max(settings.connection_window, kMinConnectionWindow);
    rv = nghttp2_session_set_local_window_size(impl->ng, NGHTTP2_FLAG_NONE, 0, conn_window);
    if (rv != 0) {
        return ng_error(rv);
    }
    return std::unique_ptr<Session>(new Session(std::move(impl)));
}

Role Session::role() const { return impl_->role; }

Status Session::recv(std::string_view bytes) {
    Impl& s = *impl_;
    if (s.failed) {
        return Err{Errc::Closed, 0, "http2 recv"};
    }
    ssize_t rv = nghttp2_session_mem_recv(s.ng, reinterpret_cast<const uint8_t*>(bytes.data()),
                                          bytes.size());
    if (rv < 0) {
        s.failed = true;
        int code = static_cast<int>(rv);
        log::debug("http2: closing the session on bad input", {{"error", nghttp2_strerror(code)}});
        if (code != NGHTTP2_ERR_NOMEM) {
            // Tell the peer why before the caller closes; a no-op when nghttp2 already did.
            (void)nghttp2_session_terminate_session(s.ng, goaway_code_for(code));
        }
        return ng_error(code);
    }
    s.stats.bytes_in += bytes.size();
    if (s.abuse != nullptr) {
        s.failed = true;  // a callback already queued the GOAWAY
        return Err{Errc::Protocol, 0, s.abuse};
    }
    return {};
}

Result<size_t> Session::send(std::string& out, size_t high_watermark) {
    Impl& s = *impl_;
    CFD_CHECK(s.sink == nullptr);  // not re-entrant: never call send() from a handler event
    size_t before = out.size();
    s.sink = &out;
    s.sink_high = high_watermark;
    while (out.size() < high_watermark) {
        const uint8_t* data = nullptr;
        ssize_t n = nghttp2_session_mem_send(s.ng, &data);
        if (n < 0) {
            s.sink = nullptr;
            s.failed = true;
            return ng_error(static_cast<int>(n));
        }
        if (n == 0) {
            break;
        }
        out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    s.sink = nullptr;
    s.stats.bytes_out += out.size() - before;
    return out.size() - before;
}

bool Session::want_read() const {
    return !impl_->failed && nghttp2_session_want_read(impl_->ng) != 0;
}

bool Session::want_write() const { return nghttp2_session_want_write(impl_->ng) != 0; }

Result<int32_t> Session::submit_request(HeaderSpan headers, bool has_body, void* user_data) {
    Impl& s = *impl_;
    if (s.role != Role::Client) {
        return Err{Errc::Invalid, 0, "http2 submit_request: server role"};
    }
    NvList nv(headers);
    nghttp2_data_provider body{};
    body.read_callback = read_body;
    int32_t id = nghttp2_submit_request(s.ng, nullptr, nv.data(), nv.size(),
                                        has_body ? &body : nullptr, nullptr);
    if (id < 0) {
        return ng_error(id);
    }
    auto st = std::make_unique<Stream>();
    st->id = id;
    st->user = user_data;
    st->owner_knows = true;
    st->body_active = has_body;
    s.streams.emplace(id, std::move(st));
    s.stats.streams_opened++;
    return id;
}

Status Session::submit_response(int32_t stream_id, int status, HeaderSpan headers, bool has_body) {
    Impl& s = *impl_;
    if (s.role != Role::Server) {
        return Err{Errc::Invalid, 0, "http2 submit_response: client role"};
    }
    if (status < 100 || status > 999) {
        return Err{Errc::Invalid, status, "http2 submit_response: status"};
    }
    Stream* st = s.find(stream_id);
    if (st == nullptr) {
        return Err{Errc::NotFound, stream_id, "http2 submit_response: stream"};
    }
    char code[4];
    std::snprintf(code, sizeof(code), "%d", status);
    NvList nv(headers, std::string_view(code, 3));
    nghttp2_data_provider body{};
    body.read_callback = read_body;
    int rv =
        nghttp2_submit_response(s.ng, stream_id, nv.data(), nv.size(), has_body ? &body : nullptr);
    if (rv != 0) {
        return ng_error(rv);
    }
    st->body_active = has_body;
    return {};
}

Status Session::submit_trailers(int32_t stream_id, HeaderSpan trailers) {
    Impl& s = *impl_;
    Stream* st = s.find(stream_id);
    if (st == nullptr) {
        return Err{Errc::NotFound, stream_id, "http2 submit_trailers: stream"};
    }
    if (st->has_trailers_to_send) {
        return Err{Errc::Invalid, stream_id, "http2 submit_trailers: already submitted"};
    }
    if (st->body_active) {
        // Sent after the body's last DATA frame (read_body), never ahead of it.
        st->trailers_to_send.clear();
        for (const HeaderView& h : trailers) {
            st->trailers_to_send.push_back(Header{std::string(h.name), std::string(h.value)});
        }
        st->has_trailers_to_send = true;
        return {};
    }
    NvList nv(trailers);
    if (int rv = nghttp2_submit_trailer(s.ng, stream_id, nv.data(), nv.size()); rv != 0) {
        return ng_error(rv);
    }
    return {};
}

Status Session::resume_data(int32_t stream_id) {
    Impl& s = *impl_;
    Stream* st = s.find(stream_id);
    if (st == nullptr) {
        return Err{Errc::NotFound, stream_id, "http2 resume_data: stream"};
    }
    int rv = nghttp2_session_resume_data(s.ng, stream_id);
    // INVALID_ARGUMENT: the source was not deferred; nghttp2 will ask it again anyway.
    if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT) {
        return ng_error(rv);
    }
    return {};
}

void Session::consume(int32_t stream_id, size_t n) {
    Impl& s = *impl_;
    Stream* st = s.find(stream_id);
    if (st == nullptr || n == 0) {
        return;  // closed: its bytes were released at close
    }
    if (n > st->unconsumed) {
        CFD_BUG("http2: consume() of more than was delivered");
        n = st->unconsumed;
    }
    st->unconsumed -= n;
    if (int rv = nghttp2_session_consume(s.ng, stream_id, n); rv != 0) {
        log::warn("http2: consume failed",
                  {{"stream", stream_id}, {"error", nghttp2_strerror(rv)}});
    }
}

Status Session::rst_stream(int32_t stream_id, uint32_t error_code) {
    Impl& s = *impl_;
    Stream* st = s.find(stream_id);
    if (st == nullptr) {
        return Err{Errc::NotFound, stream_id, "http2 rst_stream: stream"};
    }
    st->reset_by_owner = true;
    st->reset_code = error_code;
    if (int rv = nghttp2_submit_rst_stream(s.ng, NGHTTP2_FLAG_NONE, stream_id, error_code);
        rv != 0) {
        return ng_error(rv);
    }
    return {};
}

Status Session::ping(uint64_t opaque) {
    uint8_t data[8];
    for (int i = 7; i >= 0; i--) {
        data[i] = static_cast<uint8_t>(opaque);
        opaque >>= 8;
    }
    if (int rv = nghttp2_submit_ping(impl_->ng, NGHTTP2_FLAG_NONE, data); rv != 0) {
        return ng_error(rv);
    }
    return {};
}

Status Session::shutdown_notice() {
    if (impl_->role != Role::Server) {
        return Err{Errc::Invalid, 0, "http2 shutdown_notice: client role"};
    }
    if (int rv = nghttp2_submit_shutdown_notice(impl_->ng); rv != 0) {
        return ng_error(rv);
    }
    return {};
}

Status Session::goaway(uint32_t error_code) {
    int32_t last = nghttp2_session_get_last_proc_stream_id(impl_->ng);
    if (int rv = nghttp2_submit_goaway(impl_->ng, NGHTTP2_FLAG_NONE, last, error_code, nullptr, 0);
        rv != 0) {
        return ng_error(rv);
    }
    return {};
}

Status Session::terminate(uint32_t error_code) {
    if (int rv = nghttp2_session_terminate_session(impl_->ng, error_code); rv != 0) {
        return ng_error(rv);
    }
    return {};
}

void Session::set_stream_user_data(int32_t stream_id, void* user_data) {
    if (Stream* st = impl_->find(stream_id); st != nullptr) {
        st->user = user_data;
    }
}

void* Session::stream_user_data(int32_t stream_id) const {
    Stream* st = impl_->find(stream_id);
    return st == nullptr ? nullptr : st->user;
}

size_t Session::stream_count() const { return impl_->streams.size(); }

int32_t Session::send_window(int32_t stream_id) const {
    int32_t stream = nghttp2_session_get_stream_remote_window_size(impl_->ng, stream_id);
    int32_t conn = nghttp2_session_get_remote_window_size(impl_->ng);
    return std::max(0, std::min(stream, conn));
}

size_t Session::unconsumed(int32_t stream_id) const {
    Stream* st = impl_->find(stream_id);
    return st == nullptr ? 0 : static_cast<size_t>(st->unconsumed);
}

const SessionStats& Session::stats() const { return impl_->stats; }

}  // namespace cfd::http2
