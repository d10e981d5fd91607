// OriginConn: an HTTP/1.1 (or byte-stream) origin connection of OriginPool (origin_conns.h).
#include <algorithm>

#include "cfd/core/log.h"
#include "connector/origin_conns.h"

namespace cfd::connector {

void OriginConn::deliver_later(State s, Error failure) {
    state_ = s;
    failure_ = failure;
    auto t = pool_->reactor().add_timer(Millis(0), this, kTimerDeliver);
    if (!t) {
        // The timer slab is full: answer the stream now rather than never.
        on_timer({}, kTimerDeliver);
        return;
    }
    timer_ = *t;
}

void OriginConn::cancelled() {
    detach();
    if (state_ == State::Delivering && conn_ != nullptr) {
        pool_->reactor().cancel_timer(timer_);
        timer_ = {};
        go_idle();
        return;
    }
    if (conn_ != nullptr) {
        close_now();
    }
    // No connection: the pending delivery timer frees us.
}

// --- OriginLink --------------------------------------------------------------------------------

size_t OriginConn::room() const {
    if (conn_ == nullptr) {
        return 0;
    }
    if (!tls_ && !awaiting_sni_) {
        return conn_->writable() ? conn_->room() : 0;
    }
    if (plain_out_.size() >= kPlainQueue || !conn_->writable()) {
        starved_ = true;  // pump_tls() calls origin_writable() once there is room
        return 0;
    }
    return kPlainQueue - plain_out_.size();
}

void OriginConn::send(std::string_view bytes) {
    if (conn_ == nullptr) {
        return;
    }
    if (!tls_ && !awaiting_sni_) {
        (void)conn_->send(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
        return;
    }
    plain_out_.append(bytes);
    if (awaiting_sni_) {
        start_tls_from_head();
        return;
    }
    pump_tls();
}

void OriginConn::pause_recv(bool paused) {
    if (conn_ == nullptr) {
        return;
    }
    if (paused) {
        conn_->pause_recv();
    } else {
        conn_->resume_recv();
    }
}

void OriginConn::shutdown_write() {
    // Byte-stream origins only, which are never TLS: a FIN after the queued bytes.
    if (conn_ != nullptr && !tls_) {
        conn_->shutdown_write();
    }
}

void OriginConn::release(bool reusable) {
    detach();
    if (reusable && conn_ != nullptr && conn_->state() == net::Connection::State::Open) {
        go_idle();
        return;
    }
    close_now();
}

// --- net::ConnHandler --------------------------------------------------------------------------

void OriginConn::on_connect(net::Connection&, Status result) {
    if (!result || proxy_ == nullptr) {
        return;  // on_close follows (failure), or nobody waits any more (closing)
    }
    if (svc_->use_tls) {
        if (svc_->sni_from_host) {
            // The name comes with the request's head, which the stream sends once it has
            // the link.
            awaiting_sni_ = true;
            ready();
            return;
        }
        start_tls(svc_->server_name);  // ready() once the handshake is done
        return;
    }
    ready();
}

void OriginConn::on_recv(net::Connection& c, net::LentBuf data) {
    if (tls_) {
        on_recv_tls(c, std::move(data));
        return;
    }
    if (state_ != State::Busy || proxy_ == nullptr || awaiting_sni_) {
        // An idle origin talking out of turn cannot be reused safely.
        c.close(Error{Errc::Protocol, 0, "origin sent bytes while idle"});
        return;
    }
    EdgeLink* owner = owner_;
    proxy_->origin_data(id_, view(data));
    owner->flush();
}

void OriginConn::on_eof(net::Connection& c) {
    if (state_ == State::Busy && proxy_ != nullptr) {
        EdgeLink* owner = owner_;
        proxy_->origin_eof(id_);
        owner->flush();
    }
    c.close(Error{Errc::Closed, 0, "origin closed"});
}

void OriginConn::on_resume(net::Connection&) {
    pump_tls();
    if (state_ == State::Busy && proxy_ != nullptr) {
        EdgeLink* owner = owner_;
        starved_ = false;
        proxy_->origin_writable(id_);
        owner->flush();
    }
}

void OriginConn::on_close(net::Connection&, Error reason) {
    conn_ = nullptr;
    if (timer_) {
        pool_->reactor().cancel_timer(timer_);
    }
    if (proxy_ != nullptr) {
        EdgeLink* owner = owner_;
        Proxy* p = proxy_;
        detach();
        pool_->answered(*owner, id_);
        if (state_ == State::Connecting) {
            p->origin_failed(id_, reason);
        } else {
            p->origin_closed(id_, reason);
        }
        owner->flush();
    }
    pool_->forget(this);
    delete this;
}

// --- reactor::TimerTarget ----------------------------------------------------------------------

void OriginConn::on_timer(reactor::TimerId, uint64_t arg) {
    timer_ = {};
    if (arg == kTimerIdle) {
        close_now();
        return;
    }
    if (arg == kTimerTls) {
        log::error("Unable to reach the origin service: TLS handshake timed out",
                   {{"originService", svc_->url},
                    {"serverName", tls_ ? tls_->server_name() : std::string()},
                    {"tlsTimeout", format_duration(svc_->tls_timeout)}});
        if (conn_ != nullptr) {
            conn_->close(Error{Errc::TimedOut, 0, "tls handshake with the origin"});
        }
        return;
    }
    // kTimerDeliver
    if (proxy_ == nullptr) {
        if (conn_ == nullptr) {
            pool_->forget(this);
            delete this;
        }
        return;
    }
    EdgeLink* owner = owner_;
    Proxy* p = proxy_;
    pool_->answered(*owner, id_);
    if (conn_ == nullptr) {
        detach();
        p->origin_failed(id_, failure_);
        owner->flush();
        pool_->forget(this);
        delete this;
        return;
    }
    state_ = State::Busy;
    p->origin_ready(id_, this, true);
    owner->flush();
}

void OriginConn::close_now() {
    if (state_ == State::Idle) {
        pool_->unpark(this);
    }
    state_ = State::Closing;
    if (timer_) {
        pool_->reactor().cancel_timer(timer_);
        timer_ = {};
    }
    if (conn_ != nullptr) {
        conn_->close(Error{Errc::Ok, 0, ""});
    }
}

// --- private -----------------------------------------------------------------------------------

void OriginConn::ready() {
    if (proxy_ == nullptr) {
        return;
    }
    state_ = State::Busy;
    EdgeLink* owner = owner_;
    pool_->answered(*owner, id_);
    proxy_->origin_ready(id_, this);
    owner->flush();
}

void OriginConn::start_tls(const std::string& name) {
    if (svc_->tls_ctx == nullptr) {
        // A service built without its router (tests): refuse rather than send in clear.
        conn_->close(Error{Errc::Invalid, 0, "origin tls without a context"});
        return;
    }
    if (!start_origin_tls(*conn_, *svc_, name, tls_)) {
        return;
    }
    auto timer = pool_->reactor().add_timer(svc_->tls_timeout, this, kTimerTls);
    if (!timer) {
        conn_->close(Error{Errc::Busy, 0, "no timer for the origin tls handshake"});
        return;
    }
    timer_ = *timer;
    pump_tls();
}

void OriginConn::start_tls_from_head() {
    size_t end = plain_out_.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (plain_out_.size() >= kPlainQueue) {
            conn_->close(Error{Errc::Protocol, 0, "request head too large"});
        }
        return;
    }
    std::string name = sni_from_request_head(std::string_view(plain_out_).substr(0, end + 2));
    if (name.empty()) {
        log::error("Unable to reach the origin service: the request has no Host to verify "
                   "the origin's certificate against",
                   {{"originService", svc_->url}});
        conn_->close(Error{Errc::Invalid, 0, "no server name for the origin"});
        return;
    }
    awaiting_sni_ = false;
    start_tls(name);
}

void OriginConn::on_recv_tls(net::Connection& c, net::LentBuf data) {
    bool was_done = tls_->handshake_done();
    plain_in_.clear();
    Status st = tls_->feed(view(data), plain_in_);
    data = net::LentBuf();  // back to the ring before anything else runs
    pump_tls(true);         // handshake flights, alerts
    if (close_on_tls_error(c, *svc_, *tls_, was_done, st)) {
        return;
    }
    if (!was_done && tls_->handshake_done()) {
        handshake_finished();
    }
    if (!plain_in_.empty()) {
        if (state_ != State::Busy || proxy_ == nullptr) {
            c.close(Error{Errc::Protocol, 0, "origin sent bytes while idle"});
            return;
        }
        EdgeLink* owner = owner_;
        proxy_->origin_data(id_, plain_in_);
        owner->flush();
    }
    if (!st) {
        on_eof(c);  // close_notify: the origin's orderly end
    }
}

void OriginConn::handshake_finished() {
    if (timer_) {
        pool_->reactor().cancel_timer(timer_);
        timer_ = {};
    }
    log::debug("origin TLS handshake done", {{"originService", svc_->url},
                                             {"serverName", tls_->server_name()},
                                             {"tls", tls_->describe()}});
    if (state_ == State::Connecting) {
        ready();
        return;
    }
    pump_tls(true);  // the head held while the name was awaited
}

void OriginConn::pump_tls(bool notify) {
    if (!tls_ || conn_ == nullptr) {
        return;
    }
    for (;;) {
        send_tls_output(*conn_, *tls_);
        if (plain_out_.empty()) {
            break;
        }
        auto w = tls_->write(plain_out_);
        if (!w) {
            log::error("Origin TLS connection failed",
                       {{"originService", svc_->url}, {"error", tls_->detail()}});
            conn_->close(Error{Errc::Tls, w.error().sys, "tls with the origin"});
            return;
        }
        if (*w == 0) {
            break;  // before the handshake, or the output is over its watermark
        }
        plain_out_.erase(0, *w);
    }
    if (notify && starved_ && state_ == State::Busy && proxy_ != nullptr && room() > 0) {
        starved_ = false;
        EdgeLink* owner = owner_;
        proxy_->origin_writable(id_);
        owner->flush();
    }
}

void OriginConn::go_idle() {
    if (svc_->sni_from_host) {
        // Its certificate was checked for one request's host; the pool cannot tell which
        // host the next request is for, so this connection serves no other.
        close_now();
        return;
    }
    if (!pool_->park(this)) {
        close_now();
        return;
    }
    state_ = State::Idle;
    if (tls_) {
        tls_->trim();
    }
    conn_->resume_recv();  // an idle connection must notice the origin closing it
    auto t = pool_->reactor().add_timer(svc_->idle_timeout, this, kTimerIdle);
    if (!t) {
        close_now();
        return;
    }
    timer_ = *t;
}

}  // namespace cfd::connector
