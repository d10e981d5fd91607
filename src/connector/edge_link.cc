#include "cfd/connector/edge_link.h"

#include <netinet/in.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "cfd/core/log.h"
#include "cfd/connector/origin_h2.h"
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
constexpr uint64_t kTimerWrite = 6;

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
    // An http2Origin connection whose origin chose HTTP/1.1 in ALPN: its socket and finished
    // TLS session are taken over as they are.
    OriginConn(OriginPool& pool, const OriginService& svc, net::Connection* c, OriginTls tls)
        : pool_(&pool), svc_(&svc), conn_(c), tls_(std::move(tls)) {
        c->set_handler(this);
    }
    // Fall-back: the stream gets the taken-over connection now (we are in an event handler).
    void hand_to(Proxy& p, EdgeLink& owner, int32_t id) {
        attach(p, owner, id);
        ready();
    }

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

// One HTTP/2 origin connection (http2Origin) of a core: TCP, then TLS offering ALPN "h2" or
// HTTP/2 in clear with prior knowledge (h2c), and an OriginH2 carrying the streams of any
// tunnel connection of the core. Dials that join it wait in `waiters_` until it is ready and
// are answered on a later turn than the dial. It deletes itself when its Connection closes,
// after delivering a failure when it never had one, or when the origin chose HTTP/1.1 in ALPN:
// then an OriginConn takes the socket and the first waiting stream (the fall-back), the other
// waiters are dialed again as HTTP/1.1, and the pool remembers the service as HTTP/1.1.
class OriginH2Conn final : public net::ConnHandler,
                           public reactor::TimerTarget,
                           public OriginH2::Owner {
public:
    enum class State : uint8_t { Connecting, Ready, Closing };

    // Plaintext frames held ahead of TLS or the socket.
    static constexpr size_t kOutQueue = 256 << 10;

    OriginH2Conn(OriginPool& pool, const OriginService& svc, std::string key, std::string sni)
        : pool_(&pool), svc_(&svc), key_(std::move(key)), sni_(std::move(sni)) {}

    const std::string& key() const { return key_; }

    bool accepting() const {
        if (state_ == State::Closing || pool_ == nullptr) {
            return false;
        }
        if (state_ == State::Connecting) {
            return waiters_.size() < OriginH2::kMaxStreams;
        }
        return h2_ && h2_->accepting() &&
               h2_->streams() + waiters_.size() < OriginH2::kMaxStreams;
    }

    void add(Proxy& p, EdgeLink& owner, int32_t id) {
        waiters_.push_back({&p, &owner, id});
        if (state_ == State::Ready) {
            arm(deliver_t_, Millis(0), kTimerDeliver);
        }
        disarm(idle_t_);
    }
    void remove(EdgeLink& owner, int32_t id) {
        std::erase_if(waiters_, [&](const Waiter& w) { return w.owner == &owner && w.id == id; });
        after_io();
    }

    void start(net::Connection* c) { conn_ = c; }

    // The connect could not even start: the waiters hear it on a later turn, then we go.
    void fail_later(Error e) {
        state_ = State::Closing;
        failure_ = e;
        if (!arm(deliver_t_, Millis(0), kTimerDeliver)) {
            on_timer({}, kTimerDeliver);
        }
    }

    // The pool is going away: nothing may call back into it or into a proxy.
    void detach() {
        pool_ = nullptr;
        waiters_.clear();
        if (h2_) {
            h2_->detach_all();
        }
    }

    // OriginH2::Owner: the streams' calls (open, body, consume, cancel) made output.
    void h2_output_ready() override { arm(write_t_, Millis(0), kTimerWrite); }

    // net::ConnHandler
    void on_connect(net::Connection&, Status result) override {
        if (!result) {
            return;  // on_close follows
        }
        if (svc_->use_tls) {
            start_tls();
            return;
        }
        become_ready();
    }
    void on_recv(net::Connection& c, net::LentBuf data) override {
        if (!tls_) {
            feed_h2(c, view(data));
            return;
        }
        bool was_done = tls_->handshake_done();
        plain_in_.clear();
        Status st = tls_->feed(view(data), plain_in_);
        data = net::LentBuf();
        pump_cipher();
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
    void on_eof(net::Connection& c) override { c.close(Error{Errc::Closed, 0, "origin closed"}); }
    void on_resume(net::Connection&) override {
        write();
        after_io();
    }
    void on_close(net::Connection&, Error reason) override {
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

    // reactor::TimerTarget
    void on_timer(reactor::TimerId, uint64_t arg) override {
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

private:
    struct Waiter {
        Proxy* proxy;
        EdgeLink* owner;
        int32_t id;
    };

    bool arm(reactor::TimerId& t, Millis after, uint64_t arg) {
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
    void disarm(reactor::TimerId& t) {
        if (t && pool_ != nullptr) {
            pool_->reactor().cancel_timer(t);
        }
        t = {};
    }

    void start_tls() {
        if (svc_->tls_ctx == nullptr || sni_.empty()) {
            conn_->close(Error{Errc::Invalid, 0,
                               svc_->tls_ctx == nullptr ? "origin tls without a context"
                                                        : "no server name for the origin"});
            return;
        }
        auto t = OriginTls::start(*svc_->tls_ctx, sni_);
        if (!t) {
            log::error("Unable to reach the origin service: TLS setup failed",
                       {{"originService", svc_->url},
                        {"serverName", sni_},
                        {"error", tls::describe(t.error())}});
            conn_->close(Error{Errc::Tls, t.error().sys, "tls with the origin"});
            return;
        }
        tls_.emplace(std::move(*t));
        if (!arm(tls_t_, svc_->tls_timeout, kTimerTls)) {
            conn_->close(Error{Errc::Busy, 0, "no timer for the origin tls handshake"});
            return;
        }
        pump_cipher();
    }

    void become_ready() {
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

    // Every waiting stream gets the connection.
    void deliver() {
        std::vector<Waiter> ws = std::move(waiters_);
        waiters_.clear();
        for (const Waiter& w : ws) {
            pool_->answered(*w.owner, w.id);
            w.proxy->origin_h2_ready(w.id, *h2_);
        }
    }

    void fail_waiters(const Error& e) {
        std::vector<Waiter> ws = std::move(waiters_);
        waiters_.clear();
        for (const Waiter& w : ws) {
            pool_->answered(*w.owner, w.id);
            w.proxy->origin_failed(w.id, e);
        }
    }

    void feed_h2(net::Connection& c, std::string_view bytes) {
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

    // Frames to the socket, through TLS when there is one, as far as both allow.
    void write() {
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
    size_t push_plain() {
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
    size_t push_tls() {
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
    void pump_cipher() {
        if (!tls_ || conn_ == nullptr) {
            return;
        }
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
    }

    // After any event: the tunnels send what the streams produced; an ended session closes;
    // a connection without streams starts its keepAliveTimeout.
    void after_io() {
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

    // ALPN did not pick h2: HTTP/1.1 on this connection (cloudflared's transport does the
    // same). Logged once per rule for the process.
    void fall_back() {
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

    OriginPool* pool_;
    const OriginService* svc_;
    std::string key_;
    std::string sni_;
    net::Connection* conn_ = nullptr;
    State state_ = State::Connecting;
    std::vector<Waiter> waiters_;
    Error failure_{};
    std::unique_ptr<OriginH2> h2_;
    std::optional<OriginTls> tls_;
    std::string out_;       // frames not yet taken by TLS or the socket
    std::string plain_in_;  // plaintext of one receive
    bool writing_ = false;
    reactor::TimerId deliver_t_{};
    reactor::TimerId tls_t_{};
    reactor::TimerId idle_t_{};
    reactor::TimerId write_t_{};
};

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
