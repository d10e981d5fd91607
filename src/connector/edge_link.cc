#include "cfd/connector/edge_link.h"

#include <netinet/in.h>

#include <algorithm>

#include "cfd/core/log.h"
#include "connector/origin_conns.h"

namespace cfd::connector {

namespace {

// Timer arguments (the origin connections' own are in origin_conns.h).
constexpr uint64_t kTimerReconnect = 0;
constexpr uint64_t kTimerUnregister = 1;
constexpr uint64_t kTimerSilence = 5;

// How long a draining connection waits for the edge to confirm unregisterConnection before it
// closes anyway.
constexpr Millis kUnregisterTimeout{5000};

std::string local_ip_bytes(int fd) {
    auto a = net::local_address(fd);
    if (!a) {
        return {};
    }
    if (a->family() == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(a->get());
        return std::string(reinterpret_cast<const char*>(&in->sin_addr), 4);
    }
    if (a->family() == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->get());
        return std::string(reinterpret_cast<const char*>(&in6->sin6_addr), 16);
    }
    return {};
}

}  // namespace

// --- OriginPool --------------------------------------------------------------------------

OriginPool::~OriginPool() {
    // Normally empty: the reactor closes every connection before the pool goes. Whatever is
    // left must not call back into us.
    for (OriginConn* c : all_) {
        c->detach();
    }
    for (auto& [key, v] : h2_) {
        for (OriginH2Conn* c : v) {
            c->detach();
        }
    }
}

void OriginPool::remove_link(EdgeLink* l) {
    links_.erase(std::remove(links_.begin(), links_.end(), l), links_.end());
}

void OriginPool::flush_links() {
    for (size_t i = 0; i < links_.size(); i++) {
        links_[i]->flush();
    }
}

void OriginPool::forget_h2(OriginH2Conn* c) {
    auto it = h2_.find(c->key());
    if (it != h2_.end()) {
        auto& v = it->second;
        v.erase(std::remove(v.begin(), v.end(), c), v.end());
        if (v.empty()) {
            h2_.erase(it);
        }
    }
    for (auto p = h2_pending_.begin(); p != h2_pending_.end();) {
        p = p->second == c ? h2_pending_.erase(p) : std::next(p);
    }
}

void OriginPool::dial_h2(const OriginService& svc, Proxy& proxy, EdgeLink& owner, int32_t id,
                         std::string_view host) {
    std::string sni;
    if (svc.use_tls) {
        sni = svc.sni_from_host ? sni_from_host_value(host) : svc.server_name;
    }
    if (h1_only_.count(svc.pool_key) != 0 || (svc.use_tls && sni.empty())) {
        // The origin chose HTTP/1.1 before (or there is no name to verify it by, which the
        // HTTP/1.1 path reports): the stream falls back at once.
        dial(svc, proxy, owner, id);
        return;
    }
    std::string key = std::to_string(svc.pool_key);
    if (svc.sni_from_host) {
        key += "/" + sni;  // a certificate checked for one host serves no other
    }
    auto& v = h2_[key];
    for (OriginH2Conn* c : v) {
        if (c->accepting()) {
            reuses_++;
            c->add(proxy, owner, id);
            h2_pending_[{&owner, id}] = c;
            return;
        }
    }
    dials_++;
    auto* c = new OriginH2Conn(*this, svc, key, sni);
    v.push_back(c);
    c->add(proxy, owner, id);
    h2_pending_[{&owner, id}] = c;
    auto conn = net::Connection::connect(reactor_, svc.addr, svc.connect_timeout, c);
    if (!conn) {
        c->fail_later(conn.error());
        return;
    }
    if (svc.addr.family() != AF_UNIX) {
        if (auto k = set_tcp_keep_alive((*conn)->fd(), svc.tcp_keep_alive); !k) {
            log::debug("origin keep-alive not set", {{"error", k.error().message()}});
        }
    }
    c->start(*conn);
}

bool OriginPool::park(OriginConn* c) {
    auto& v = idle_[c->key()];
    if (v.size() >= max_idle_for(c)) {
        return false;
    }
    v.push_back(c);
    return true;
}

void OriginPool::unpark(OriginConn* c) {
    auto it = idle_.find(c->key());
    if (it == idle_.end()) {
        return;
    }
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), c), v.end());
}

void OriginPool::forget(OriginConn* c) {
    unpark(c);
    all_.erase(std::remove(all_.begin(), all_.end(), c), all_.end());
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->second == c) {
            pending_.erase(it);
            break;
        }
    }
}

size_t OriginPool::idle(uint32_t key) const {
    auto it = idle_.find(key);
    return it == idle_.end() ? 0 : it->second.size();
}

uint32_t OriginPool::max_idle_for(const OriginConn* c) const {
    auto it = max_idle_.find(c->key());
    return it == max_idle_.end() ? 0 : it->second;
}

void OriginPool::dial(const OriginService& svc, Proxy& proxy, EdgeLink& owner, int32_t id) {
    max_idle_[svc.pool_key] = svc.max_idle;
    auto& idle = idle_[svc.pool_key];
    if (!idle.empty()) {
        // Most recently used first: it is the least likely to have been closed by the origin.
        OriginConn* c = idle.back();
        idle.pop_back();
        reuses_++;
        c->attach(proxy, owner, id);
        pending_[{&owner, id}] = c;
        c->deliver_later(OriginConn::State::Delivering);
        return;
    }
    dials_++;
    auto* c = new OriginConn(*this, svc);
    all_.push_back(c);
    c->attach(proxy, owner, id);
    pending_[{&owner, id}] = c;
    auto conn = net::Connection::connect(reactor_, svc.addr, svc.connect_timeout, c);
    if (!conn) {
        c->deliver_later(OriginConn::State::Connecting, conn.error());
        return;
    }
    if (svc.addr.family() != AF_UNIX) {
        // tcpKeepAlive: set before the connect runs, so it covers the whole connection.
        if (auto k = set_tcp_keep_alive((*conn)->fd(), svc.tcp_keep_alive); !k) {
            log::debug("origin keep-alive not set", {{"error", k.error().message()}});
        }
    }
    c->start(*conn);
}

void OriginPool::answered(EdgeLink& owner, int32_t id) {
    pending_.erase({&owner, id});
    h2_pending_.erase({&owner, id});
}

void OriginPool::cancel(EdgeLink& owner, int32_t id) {
    if (auto h = h2_pending_.find({&owner, id}); h != h2_pending_.end()) {
        OriginH2Conn* c = h->second;
        h2_pending_.erase(h);
        c->remove(owner, id);
        return;
    }
    auto it = pending_.find({&owner, id});
    if (it == pending_.end()) {
        return;
    }
    OriginConn* c = it->second;
    pending_.erase(it);
    c->cancelled();
}

// --- EdgeLink ------------------------------------------------------------------------------

EdgeLink::EdgeLink(reactor::Reactor& r, OriginPool& pool, const tls::Context& tls,
                   const Router& router, TunnelIdentity id, EdgeLinkConfig cfg,
                   ConnectorStats& stats)
    : reactor_(r),
      pool_(pool),
      tls_(tls),
      router_(router),
      id_(std::move(id)),
      cfg_(std::move(cfg)),
      stats_(stats),
      backoff_(cfg_.backoff, [] {
          uint64_t seed = 0;
          random_bytes(&seed, sizeof(seed));
          return seed;
      }()) {
    pool_.add_link(this);
}

EdgeLink::~EdgeLink() {
    pool_.remove_link(this);
    if (timer_) {
        reactor_.cancel_timer(timer_);
    }
    if (watch_) {
        reactor_.cancel_timer(watch_);
    }
    proxy_.reset();
    session_.reset();
    if (conn_ != nullptr) {
        conn_->set_handler(nullptr);
        conn_->close();
    }
}

void EdgeLink::start() {
    if (state_ == State::Idle) {
        connect();
    }
}

void EdgeLink::connect() {
    state_ = State::Connecting;
    auto c = net::Connection::connect(reactor_, cfg_.edge, cfg_.dial_timeout, this);
    if (!c) {
        log::warn("Unable to dial the edge", {{"connIndex", int(id_.conn_index)},
                                              {"addr", cfg_.edge.str()},
                                              {"error", c.error().message()}});
        schedule_reconnect(Millis(0));
        return;
    }
    conn_ = *c;
}

void EdgeLink::on_connect(net::Connection& c, Status result) {
    if (!result) {
        log::warn("Unable to reach the edge", {{"connIndex", int(id_.conn_index)},
                                               {"addr", cfg_.edge.str()},
                                               {"error", result.error().message()}});
        return;  // on_close follows
    }
    id_.origin_local_ip = local_ip_bytes(c.fd());
    id_.num_previous_attempts = static_cast<uint8_t>(std::min<uint32_t>(backoff_.attempts(), 255));
    OriginDialer& dialer = *this;  // a private base: converted here, where it is accessible
    proxy_ = std::make_unique<Proxy>(router_, dialer, cfg_.proxy);
    auto s = TunnelSession::create(tls_, cfg_.server_name, id_, proxy_.get(), cfg_.h2);
    if (!s) {
        log::error("TLS setup failed", {{"connIndex", int(id_.conn_index)},
                                        {"error", s.error().message()}});
        c.close(s.error());
        return;
    }
    session_ = std::move(*s);
    proxy_->attach(session_.get());
    state_ = state_ == State::Draining ? State::Draining : State::Serving;
    last_rx_ = reactor_.now();
    arm_watch();
    flush();
}

void EdgeLink::on_recv(net::Connection& c, net::LentBuf data) {
    if (!session_) {
        return;
    }
    last_rx_ = reactor_.now();
    auto r = session_->feed(view(data));
    data = net::LentBuf();  // back to the ring before anything else runs
    handle_events();
    flush();
    if (!r && conn_ != nullptr) {
        lost(session_ ? session_->detail() : "tunnel session failed");
        c.close_after_flush();
    }
}

void EdgeLink::on_eof(net::Connection& c) {
    lost("the edge closed the connection");
    c.close(Error{Errc::Closed, 0, "edge closed"});
}

void EdgeLink::on_resume(net::Connection&) { flush(); }

void EdgeLink::flush() {
    if (flushing_ || !session_ || conn_ == nullptr) {
        return;
    }
    flushing_ = true;
    if (auto r = session_->pump(); !r) {
        lost(session_->detail());
    }
    for (;;) {
        std::string_view out = session_->pending_output();
        if (out.empty() || !conn_->writable()) {
            break;
        }
        size_t n = std::min(out.size(), conn_->room());
        if (n == 0) {
            break;
        }
        if (!conn_->send(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(out.data()),
                                                  n))) {
            break;
        }
        session_->consume_output(n);
        (void)session_->pump();
    }
    handle_events();
    if (state_ == State::Draining && unregistered_ && session_->proxied_streams() == 0) {
        // The edge routes nothing new to us and the last stream is done.
        session_->close();
        std::string_view out = session_->pending_output();
        size_t n = std::min(out.size(), conn_->room());
        if (n > 0 && conn_->send(std::span<const uint8_t>(
                         reinterpret_cast<const uint8_t*>(out.data()), n))) {
            session_->consume_output(n);
        }
        conn_->close_after_flush();
    } else if (session_->over() && session_->pending_output().empty()) {
        conn_->close_after_flush();
    }
    flushing_ = false;
}

void EdgeLink::set_registered(bool r) {
    if (r == registered_) {
        return;
    }
    registered_ = r;
    if (!r) {
        stats_.set_location(id_.conn_index, {});
    }
    stats_.registered.fetch_add(r ? 1 : -1, std::memory_order_relaxed);
}

void EdgeLink::handle_events() {
    if (!session_) {
        return;
    }
    for (auto& ev : session_->take_events()) {
        if (auto* reg = std::get_if<event::Registered>(&ev)) {
            log::info("Registered tunnel connection",
                      {{"connIndex", int(id_.conn_index)},
                       {"connection", reg->connection.str()},
                       {"event", 0},
                       {"ip", cfg_.edge.str()},
                       {"location", reg->location},
                       {"protocol", "http2"}});
            set_registered(true);
            stats_.set_location(id_.conn_index, reg->location);
            backoff_.reset();
            refused_for_good_ = false;
            retry_hint_ = Millis(0);
            stats_.ever_registered.fetch_add(1, std::memory_order_relaxed);
            if (state_ == State::Draining) {
                (void)session_->unregister();
            }
        } else if (auto* ref = std::get_if<event::Refused>(&ev)) {
            log::error("Register tunnel error from server side",
                       {{"connIndex", int(id_.conn_index)}, {"error", ref->cause}});
            if (!ref->should_retry) {
                if (!refused_for_good_) {
                    stats_.permanent_refusals.fetch_add(1, std::memory_order_relaxed);
                }
                refused_for_good_ = true;
                log::error("The edge refused this connection and asked us not to retry; it will "
                           "try again only after the longest backoff",
                           {{"connIndex", int(id_.conn_index)}, {"cause", ref->cause}});
            }
            retry_hint_ = Millis(ref->retry_after_ns / 1000000);
            session_->close();  // over(): flush() closes the socket
        } else if (std::holds_alternative<event::Unregistered>(ev)) {
            log::info("Unregistered tunnel connection", {{"connIndex", int(id_.conn_index)}});
            set_registered(false);
            stats_.unregistered.fetch_add(1, std::memory_order_relaxed);
            // Streams in flight run to their end (bounded by the process's grace period);
            // flush() closes once none is left. The unregister deadline is met.
            unregistered_ = true;
            if (timer_) {
                reactor_.cancel_timer(timer_);
                timer_ = {};
            }
        } else if (auto* f = std::get_if<event::RpcFailed>(&ev)) {
            log::error("Tunnel connection registration failed",
                       {{"connIndex", int(id_.conn_index)}, {"error", f->reason}});
            if (conn_ != nullptr) {
                conn_->close(Error{Errc::Protocol, 0, "registration failed"});
            }
        }
    }
}

void EdgeLink::lost(std::string_view why) {
    if (loss_reason_.empty()) {
        loss_reason_ = std::string(why);  // logged once, by on_close()
    }
}

void EdgeLink::on_close(net::Connection&, Error reason) {
    conn_ = nullptr;
    proxy_.reset();  // releases its origin connections
    session_.reset();
    unregistered_ = false;
    set_registered(false);
    if (timer_) {
        reactor_.cancel_timer(timer_);
        timer_ = {};
    }
    if (watch_) {
        reactor_.cancel_timer(watch_);
        watch_ = {};
    }
    if (state_ == State::Draining || state_ == State::Stopped || reactor_.stop_requested()) {
        loss_reason_.clear();
        state_ = State::Stopped;
        stats_.closed_for_good.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (state_ == State::Serving && (reason.code != Errc::Ok || !loss_reason_.empty())) {
        log::warn("Connection terminated",
                  {{"connIndex", int(id_.conn_index)},
                   {"error", loss_reason_.empty() ? reason.message() : loss_reason_}});
    }
    loss_reason_.clear();
    schedule_reconnect(retry_hint_);
}

void EdgeLink::schedule_reconnect(Millis at_least) {
    state_ = State::Waiting;
    Millis d = backoff_.next();
    if (refused_for_good_) {
        d = cfg_.backoff.cap;  // no tight loop against an edge that said no
    }
    d = std::max(d, at_least);
    log::info("Retrying connection", {{"connIndex", int(id_.conn_index)},
                                      {"in", format_duration(d)}});
    auto t = reactor_.add_timer(d, this, kTimerReconnect);
    if (!t) {
        log::error("No timer for the reconnect; connection stays down",
                   {{"connIndex", int(id_.conn_index)}});
        state_ = State::Stopped;
        return;
    }
    timer_ = *t;
}

void EdgeLink::arm_watch() {
    if (cfg_.silence_timeout.count() <= 0 || watch_) {
        return;
    }
    // Checked a few times per timeout: a dead link is noticed within 1.25x of it.
    auto t = reactor_.add_timer(std::max(Millis(1), cfg_.silence_timeout / 4), this,
                                kTimerSilence);
    if (t) {
        watch_ = *t;
    }
}

void EdgeLink::on_timer(reactor::TimerId, uint64_t arg) {
    if (arg == kTimerSilence) {
        watch_ = {};
        if (conn_ == nullptr) {
            return;  // re-armed by the next connection
        }
        if (reactor_.now() - last_rx_ >= cfg_.silence_timeout) {
            lost("no traffic from the edge for " + format_duration(cfg_.silence_timeout) +
                 ", not even a PING");
            conn_->close(Error{Errc::TimedOut, 0, "edge silent"});
            return;
        }
        arm_watch();
        return;
    }
    timer_ = {};
    if (arg == kTimerReconnect) {
        if (state_ == State::Waiting) {
            connect();
        }
        return;
    }
    if (arg == kTimerUnregister && conn_ != nullptr) {
        conn_->close(Error{Errc::TimedOut, 0, "unregister"});
    }
}

void EdgeLink::drain() {
    if (state_ == State::Serving && session_ && registered_) {
        state_ = State::Draining;
        if (!session_->unregister()) {
            conn_->close(Error{Errc::Ok, 0, ""});
            return;
        }
        flush();
        auto t = reactor_.add_timer(kUnregisterTimeout, this, kTimerUnregister);
        if (t) {
            timer_ = *t;
        }
        return;
    }
    if (state_ == State::Connecting || state_ == State::Serving) {
        // Not registered yet: nothing to unregister.
        state_ = State::Draining;
        if (conn_ != nullptr) {
            conn_->close(Error{Errc::Ok, 0, ""});
        }
        return;
    }
    stop();
}

void EdgeLink::stop() {
    if (state_ == State::Stopped) {
        return;
    }
    bool had_conn = conn_ != nullptr;
    state_ = State::Stopped;
    if (timer_) {
        reactor_.cancel_timer(timer_);
        timer_ = {};
    }
    if (had_conn) {
        conn_->close(Error{Errc::Ok, 0, ""});  // on_close counts it
    } else {
        stats_.closed_for_good.fetch_add(1, std::memory_order_relaxed);
    }
}

void EdgeLink::dial(const OriginService& svc, int32_t id) {
    pool_.dial(svc, *proxy_, *this, id);
}

void EdgeLink::cancel(int32_t id) { pool_.cancel(*this, id); }

void EdgeLink::dial_h2(const OriginService& svc, int32_t id, std::string_view host) {
    pool_.dial_h2(svc, *proxy_, *this, id, host);
}

}  // namespace cfd::connector
