// OriginH2Conn: an HTTP/2 origin connection (http2Origin) of OriginPool (origin_conns.h).
#include <algorithm>
#include <mutex>
#include <set>

#include "cfd/core/log.h"
#include "connector/origin_conns.h"

namespace cfd::connector {

bool OriginH2Conn::accepting() const {
    if (state_ == State::Closing || pool_ == nullptr) {
        return false;
    }
    if (state_ == State::Connecting) {
        return waiters_.size() < OriginH2::kMaxStreams;
    }
    return h2_ && h2_->accepting() && h2_->streams() + waiters_.size() < OriginH2::kMaxStreams;
}

void OriginH2Conn::add(Proxy& p, EdgeLink& owner, int32_t id) {
    waiters_.push_back({&p, &owner, id});
    if (state_ == State::Ready) {
        arm(deliver_t_, Millis(0), kTimerDeliver);
    }
    disarm(idle_t_);
}

void OriginH2Conn::remove(EdgeLink& owner, int32_t id) {
    std::erase_if(waiters_, [&](const Waiter& w) { return w.owner == &owner && w.id == id; });
    after_io();
}

void OriginH2Conn::fail_later(Error e) {
    state_ = State::Closing;
    failure_ = e;
    if (!arm(deliver_t_, Millis(0), kTimerDeliver)) {
        on_timer({}, kTimerDeliver);
    }
}

void OriginH2Conn::detach() {
    pool_ = nullptr;
    waiters_.clear();
    if (h2_) {
        h2_->detach_all();
    }
}

// --- net::ConnHandler --------------------------------------------------------------------------

void OriginH2Conn::on_connect(net::Connection&, Status result) {
    if (!result) {
        return;  // on_close follows
    }
    if (svc_->use_tls) {
        start_tls();
        return;
    }
    become_ready();
}

void OriginH2Conn::on_recv(net::Connection& c, net::LentBuf data) {
    if (!tls_) {
        feed_h2(c, view(data));
        return;
    }
    bool was_done = tls_->handshake_done();
    plain_in_.clear();
    Status st = tls_->feed(view(data), plain_in_);
    data = net::LentBuf();
    pump_cipher();
    if (close_on_tls_error(c, *svc_, *tls_, was_done, st)) {
        return;
    }
    if (!was_done && tls_->handshake_done()) {
        disarm(tls_t_);
        log::debug("origin TLS handshake done", {{"originService", svc_->url},
                                                 {"serverName", tls_->server_name()},
                                                 {"tls", tls_->describe()},
                                                 {"alpn", tls_->alpn()}});
        if (tls_->alpn() != "h2") {
            fall_back();  // deletes this
            return;
        }
        become_ready();
        if (conn_ == nullptr || state_ != State::Ready) {
            return;
        }
    }
    if (!plain_in_.empty()) {
        std::string in = std::move(plain_in_);
        plain_in_.clear();
        feed_h2(c, in);
    }
    if (!st && conn_ != nullptr) {
        c.close(Error{Errc::Closed, 0, "origin closed"});  // close_notify
    }
}

void OriginH2Conn::on_resume(net::Connection&) {
    write();
    after_io();
}

void OriginH2Conn::on_close(net::Connection&, Error reason) {
    conn_ = nullptr;
    disarm(deliver_t_);
    disarm(tls_t_);
    disarm(idle_t_);
    disarm(write_t_);
    state_ = State::Closing;
    if (pool_ != nullptr) {
        fail_waiters(reason);
        if (h2_) {
            h2_->lost();  // every stream on it hears it (502, or a reset after the head)
        }
        pool_->forget_h2(this);
        pool_->flush_links();
    }
    delete this;
}

// --- reactor::TimerTarget ----------------------------------------------------------------------

void OriginH2Conn::on_timer(reactor::TimerId, uint64_t arg) {
    if (arg == kTimerDeliver) {
        deliver_t_ = {};
        if (conn_ == nullptr) {  // fail_later(): never had a connection
            if (pool_ != nullptr) {
                fail_waiters(failure_);
                pool_->forget_h2(this);
                pool_->flush_links();
            }
            delete this;
            return;
        }
        deliver();
        write();
        after_io();
        return;
    }
    if (arg == kTimerTls) {
        tls_t_ = {};
        log::error("Unable to reach the origin service: TLS handshake timed out",
                   {{"originService", svc_->url}, {"serverName", sni_}});
        if (conn_ != nullptr) {
            conn_->close(Error{Errc::TimedOut, 0, "tls handshake with the origin"});
        }
        return;
    }
    if (arg == kTimerIdle) {
        idle_t_ = {};
        // keepAliveTimeout with no stream: GOAWAY and close.
        if (conn_ != nullptr && h2_ && h2_->streams() == 0 && waiters_.empty()) {
            state_ = State::Closing;
            h2_->shut_down();
            write();
            conn_->close_after_flush();
        }
        return;
    }
    if (arg == kTimerWrite) {
        write_t_ = {};
        write();
        after_io();
    }
}

// --- private -----------------------------------------------------------------------------------

bool OriginH2Conn::arm(reactor::TimerId& t, Millis after, uint64_t arg) {
    if (t) {
        return true;
    }
    auto r = pool_ == nullptr ? Result<reactor::TimerId>(Err{Errc::Closed, 0, "no pool"})
                              : pool_->reactor().add_timer(after, this, arg);
    if (!r) {
        return false;
    }
    t = *r;
    return true;
}

void OriginH2Conn::disarm(reactor::TimerId& t) {
    if (t && pool_ != nullptr) {
        pool_->reactor().cancel_timer(t);
    }
    t = {};
}

void OriginH2Conn::start_tls() {
    if (svc_->tls_ctx == nullptr || sni_.empty()) {
        conn_->close(Error{Errc::Invalid, 0,
                           svc_->tls_ctx == nullptr ? "origin tls without a context"
                                                    : "no server name for the origin"});
        return;
    }
    if (!start_origin_tls(*conn_, *svc_, sni_, tls_)) {
        return;
    }
    if (!arm(tls_t_, svc_->tls_timeout, kTimerTls)) {
        conn_->close(Error{Errc::Busy, 0, "no timer for the origin tls handshake"});
        return;
    }
    pump_cipher();
}

void OriginH2Conn::become_ready() {
    auto h = OriginH2::create(this);
    if (!h) {
        conn_->close(h.error());
        return;
    }
    h2_ = std::move(*h);
    state_ = State::Ready;
    deliver();
    write();
    after_io();
}

void OriginH2Conn::deliver() {
    std::vector<Waiter> ws = std::move(waiters_);
    waiters_.clear();
    for (const Waiter& w : ws) {
        pool_->answered(*w.owner, w.id);
        w.proxy->origin_h2_ready(w.id, *h2_);
    }
}

void OriginH2Conn::fail_waiters(const Error& e) {
    std::vector<Waiter> ws = std::move(waiters_);
    waiters_.clear();
    for (const Waiter& w : ws) {
        pool_->answered(*w.owner, w.id);
        w.proxy->origin_failed(w.id, e);
    }
}

void OriginH2Conn::feed_h2(net::Connection& c, std::string_view bytes) {
    if (!h2_) {
        c.close(Error{Errc::Protocol, 0, "origin sent bytes before http2 started"});
        return;
    }
    Status st = h2_->feed(bytes);
    write();
    if (!st) {
        log::debug("origin http2 connection failed",
                   {{"originService", svc_->url}, {"error", st.error().message()}});
        state_ = State::Closing;
        if (conn_ != nullptr) {
            conn_->close_after_flush();
        }
        if (pool_ != nullptr) {
            pool_->flush_links();
        }
        return;
    }
    after_io();
}

void OriginH2Conn::write() {
    if (!h2_ || conn_ == nullptr || writing_) {
        return;
    }
    writing_ = true;
    for (;;) {
        if (out_.size() < kOutQueue) {
            auto r = h2_->produce(out_, kOutQueue);
            if (!r) {
                writing_ = false;
                conn_->close(Error{Errc::Protocol, 0, "origin http2 session failed"});
                return;
            }
        }
        size_t taken = tls_ ? push_tls() : push_plain();
        if (taken == 0) {
            break;
        }
    }
    writing_ = false;
}

size_t OriginH2Conn::push_plain() {
    size_t taken = 0;
    while (!out_.empty() && conn_->writable()) {
        size_t n = std::min(out_.size(), conn_->room());
        if (n == 0 || !conn_->send(std::span<const uint8_t>(
                          reinterpret_cast<const uint8_t*>(out_.data()), n))) {
            break;
        }
        out_.erase(0, n);
        taken += n;
    }
    return taken;
}

size_t OriginH2Conn::push_tls() {
    pump_cipher();
    if (out_.empty()) {
        return 0;
    }
    auto w = tls_->write(out_);
    if (!w) {
        log::error("Origin TLS connection failed",
                   {{"originService", svc_->url}, {"error", tls_->detail()}});
        conn_->close(Error{Errc::Tls, w.error().sys, "tls with the origin"});
        return 0;
    }
    out_.erase(0, *w);
    pump_cipher();
    return *w;
}

void OriginH2Conn::pump_cipher() {
    if (!tls_ || conn_ == nullptr) {
        return;
    }
    send_tls_output(*conn_, *tls_);
}

void OriginH2Conn::after_io() {
    if (pool_ != nullptr) {
        pool_->flush_links();
    }
    if (conn_ == nullptr || !h2_) {
        return;
    }
    if (h2_->over() && out_.empty()) {
        state_ = State::Closing;
        conn_->close_after_flush();
        return;
    }
    if (h2_->streams() == 0 && waiters_.empty()) {
        arm(idle_t_, svc_->idle_timeout, kTimerIdle);
    } else {
        disarm(idle_t_);
    }
}

void OriginH2Conn::fall_back() {
    static std::mutex mu;
    static std::set<std::string> warned;
    {
        std::lock_guard<std::mutex> lock(mu);
        if (warned.insert(svc_->url + "#" + std::to_string(svc_->pool_key)).second) {
            log::warn("http2Origin: the origin did not select h2 in ALPN; using HTTP/1.1",
                      {{"originService", svc_->url}});
        }
    }
    OriginPool* pool = pool_;
    pool->h1_only_.insert(svc_->pool_key);
    pool->max_idle_[svc_->pool_key] = svc_->max_idle;  // the link may go idle in the pool
    std::vector<Waiter> ws = std::move(waiters_);
    waiters_.clear();
    disarm(deliver_t_);
    disarm(idle_t_);
    disarm(write_t_);
    net::Connection* c = conn_;
    conn_ = nullptr;
    auto* oc = new OriginConn(*pool, *svc_, c, std::move(*tls_));
    pool->all_.push_back(oc);
    pool->forget_h2(this);
    for (const Waiter& w : ws) {
        pool->h2_pending_.erase({w.owner, w.id});
    }
    if (ws.empty()) {
        oc->release(true);  // nobody waits: idle in the HTTP/1.1 pool
    } else {
        pool->pending_[{ws[0].owner, ws[0].id}] = oc;
        oc->hand_to(*ws[0].proxy, *ws[0].owner, ws[0].id);
        for (size_t i = 1; i < ws.size(); i++) {
            pool->dial(*svc_, *ws[i].proxy, *ws[i].owner, ws[i].id);
        }
    }
    delete this;
}

}  // namespace cfd::connector
