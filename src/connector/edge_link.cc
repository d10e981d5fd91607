#include "cfd/connector/edge_link.h"

#include <netinet/in.h>

#include <algorithm>
#include <map>
#include <optional>

#include "cfd/core/log.h"
#include "connector/origin_tls.h"

namespace cfd::connector {

namespace {

// Timer arguments.
constexpr uint64_t kTimerReconnect = 0;
constexpr uint64_t kTimerUnregister = 1;
constexpr uint64_t kTimerDeliver = 2;
constexpr uint64_t kTimerIdle = 3;
constexpr uint64_t kTimerTls = 4;
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

std::string_view view(const net::LentBuf& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

// One origin connection: busy with one stream, or idle in its pool. Deletes itself when its
// Connection closes (on_close is the Connection's last call), or after delivering a failure
// when it never had a Connection.
//
// TLS origins (svc.use_tls): the connection carries an OriginTls. With a fixed server name the
// handshake runs right after the TCP connect, bounded by the service's tlsTimeout, and the
// stream hears origin_ready() only once it is done, so a failed or slow handshake is answered
// like an unreachable origin (502, src=cloudflared). When the name is the request's Host
// (sni_from_host) the stream gets the link at the TCP connect, its head is held until the
// Host line is in, and the handshake starts then.
class OriginConn final : public net::ConnHandler, public OriginLink, public reactor::TimerTarget {
public:
    enum class State : uint8_t { Connecting, Delivering, Busy, Idle, Closing };

    // Plaintext held for a TLS connection (before the handshake, or while the socket's
    // out-queue is full): the proxy is told room() == 0 past it.
    static constexpr size_t kPlainQueue = 256 << 10;

    OriginConn(OriginPool& pool, const OriginService& svc) : pool_(&pool), svc_(&svc) {}

    void attach(Proxy& p, EdgeLink& owner, int32_t id) {
        proxy_ = &p;
        owner_ = &owner;
        id_ = id;
    }
    void detach() {
        proxy_ = nullptr;
        owner_ = nullptr;
    }
    EdgeLink* owner() const { return owner_; }
    int32_t stream() const { return id_; }
    uint32_t key() const { return svc_->pool_key; }
    State state() const { return state_; }

    // Answers the dial on a later turn (a pooled connection, or a dial that failed at once).
    void deliver_later(State s, Error failure = {}) {
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

    void start(net::Connection* c) {
        conn_ = c;
        state_ = State::Connecting;
    }

    // Pool: the stream went away before the answer.
    void cancelled() {
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

    // OriginLink
    size_t room() const override {
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
    void send(std::string_view bytes) override {
        if (conn_ == nullptr) {
            return;
        }
        if (!tls_ && !awaiting_sni_) {
            (void)conn_->send(std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
            return;
        }
        plain_out_.append(bytes);
        if (awaiting_sni_) {
            start_tls_from_head();
            return;
        }
        pump_tls();
    }
    void pause_recv(bool paused) override {
        if (conn_ == nullptr) {
            return;
        }
        if (paused) {
            conn_->pause_recv();
        } else {
            conn_->resume_recv();
        }
    }
    void shutdown_write() override {
        // Byte-stream origins only, which are never TLS: a FIN after the queued bytes.
        if (conn_ != nullptr && !tls_) {
            conn_->shutdown_write();
        }
    }
    void release(bool reusable) override {
        detach();
        if (reusable && conn_ != nullptr && conn_->state() == net::Connection::State::Open) {
            go_idle();
            return;
        }
        close_now();
    }

    // net::ConnHandler
    void on_connect(net::Connection&, Status result) override {
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
    void on_recv(net::Connection& c, net::LentBuf data) override {
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
    void on_eof(net::Connection& c) override {
        if (state_ == State::Busy && proxy_ != nullptr) {
            EdgeLink* owner = owner_;
            proxy_->origin_eof(id_);
            owner->flush();
        }
        c.close(Error{Errc::Closed, 0, "origin closed"});
    }
    void on_resume(net::Connection&) override {
        pump_tls();
        if (state_ == State::Busy && proxy_ != nullptr) {
            EdgeLink* owner = owner_;
            starved_ = false;
            proxy_->origin_writable(id_);
            owner->flush();
        }
    }
    void on_close(net::Connection&, Error reason) override {
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

    // reactor::TimerTarget
    void on_timer(reactor::TimerId, uint64_t arg) override {
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

    void close_now() {
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

private:
    // The connection is usable: the stream gets it.
    void ready() {
        if (proxy_ == nullptr) {
            return;
        }
        state_ = State::Busy;
        EdgeLink* owner = owner_;
        pool_->answered(*owner, id_);
        proxy_->origin_ready(id_, this);
        owner->flush();
    }

    void start_tls(const std::string& name) {
        if (svc_->tls_ctx == nullptr) {
            // A service built without its router (tests): refuse rather than send in clear.
            conn_->close(Error{Errc::Invalid, 0, "origin tls without a context"});
            return;
        }
        auto t = OriginTls::start(*svc_->tls_ctx, name);
        if (!t) {
            log::error("Unable to reach the origin service: TLS setup failed",
                       {{"originService", svc_->url},
                        {"serverName", name},
                        {"error", tls::describe(t.error())}});
            conn_->close(Error{Errc::Tls, t.error().sys, "tls with the origin"});
            return;
        }
        tls_.emplace(std::move(*t));
        auto timer = pool_->reactor().add_timer(svc_->tls_timeout, this, kTimerTls);
        if (!timer) {
            conn_->close(Error{Errc::Busy, 0, "no timer for the origin tls handshake"});
            return;
        }
        timer_ = *timer;
        pump_tls();
    }

    // sni_from_host: the head the stream sent names the host to verify.
    void start_tls_from_head() {
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

    void on_recv_tls(net::Connection& c, net::LentBuf data) {
        bool was_done = tls_->handshake_done();
        plain_in_.clear();
        Status st = tls_->feed(view(data), plain_in_);
        data = net::LentBuf();  // back to the ring before anything else runs
        pump_tls(true);         // handshake flights, alerts
        if (!st && st.error().code != Errc::Closed) {
            log::error(was_done ? "Origin TLS connection failed"
                                : "Unable to reach the origin service: TLS handshake failed",
                       {{"originService", svc_->url},
                        {"serverName", tls_->server_name()},
                        {"error", tls_->detail()}});
            c.close(Error{Errc::Tls, st.error().sys,
                          was_done ? "tls with the origin" : "tls handshake with the origin"});
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

    void handshake_finished() {
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

    // Encrypts held plaintext and moves ciphertext to the socket, as far as both allow. With
    // `notify` (event handlers only: never from inside send(), which the stream is running),
    // tells a stream that found no room() once there is some.
    void pump_tls(bool notify = false) {
        if (!tls_ || conn_ == nullptr) {
            return;
        }
        for (;;) {
            std::string_view out = tls_->pending_output();
            while (!out.empty() && conn_->writable()) {
                size_t n = std::min(out.size(), conn_->room());
                if (n == 0 || !conn_->send(std::span<const uint8_t>(
                                  reinterpret_cast<const uint8_t*>(out.data()), n))) {
                    break;
                }
                tls_->consume_output(n);
                out = tls_->pending_output();
            }
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

    void go_idle() {
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

    OriginPool* pool_;
    const OriginService* svc_;
    net::Connection* conn_ = nullptr;
    Proxy* proxy_ = nullptr;
    EdgeLink* owner_ = nullptr;
    int32_t id_ = 0;
    State state_ = State::Connecting;
    reactor::TimerId timer_{};
    Error failure_{};
    // TLS origins only.
    std::optional<OriginTls> tls_;
    bool awaiting_sni_ = false;   // sni_from_host: connected, the request's Host not seen yet
    mutable bool starved_ = false;  // room() said 0 to the stream
    std::string plain_out_;       // plaintext not yet taken by TLS
    std::string plain_in_;        // plaintext of one receive, handed to the stream
};

// --- OriginPool --------------------------------------------------------------------------

OriginPool::~OriginPool() {
    // Normally empty: the reactor closes every connection before the pool goes. Whatever is
    // left must not call back into us.
    for (OriginConn* c : all_) {
        c->detach();
    }
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

void OriginPool::answered(EdgeLink& owner, int32_t id) { pending_.erase({&owner, id}); }

void OriginPool::cancel(EdgeLink& owner, int32_t id) {
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
      }()) {}

EdgeLink::~EdgeLink() {
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

}  // namespace cfd::connector
