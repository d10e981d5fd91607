// The origin connections OriginPool (edge_link.cc) keeps, one reactor's each, private to
// src/connector:
//
//   OriginConn     an HTTP/1.1 (or byte-stream) origin connection, in origin_conn.cc
//   OriginH2Conn   an HTTP/2 origin connection (http2Origin), in origin_h2_conn.cc
//
// and the TLS steps the two share (origin_conn_tls.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/connector/edge_link.h"
#include "cfd/connector/origin_h2.h"
#include "connector/origin_tls.h"

namespace cfd::connector {

inline std::string_view view(const net::LentBuf& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// --- TLS toward an origin, for both kinds of connection ---------------------------------------

// OriginTls::start() toward `name` on the connected `c`, into `tls`. False when it could not
// start: the failure is logged and `c` is closing.
[[nodiscard]] bool start_origin_tls(net::Connection& c, const OriginService& svc,
                                    const std::string& name, std::optional<OriginTls>& tls);
// After OriginTls::feed() returned `st`: an error other than close_notify is logged (before
// the handshake was done, `was_done` false, as an unreachable origin) and closes `c`. True
// when it did.
[[nodiscard]] bool close_on_tls_error(net::Connection& c, const OriginService& svc,
                                      const OriginTls& tls, bool was_done, const Status& st);
// Moves `tls`'s ciphertext to the socket as far as it takes it.
void send_tls_output(net::Connection& c, OriginTls& tls);

// --- OriginConn ------------------------------------------------------------------------------

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
    void deliver_later(State s, Error failure = {});

    void start(net::Connection* c) {
        conn_ = c;
        state_ = State::Connecting;
    }

    // Pool: the stream went away before the answer.
    void cancelled();

    // OriginLink
    size_t room() const override;
    void send(std::string_view bytes) override;
    void pause_recv(bool paused) override;
    void shutdown_write() override;
    void release(bool reusable) override;

    // net::ConnHandler
    void on_connect(net::Connection&, Status result) override;
    void on_recv(net::Connection& c, net::LentBuf data) override;
    void on_eof(net::Connection& c) override;
    void on_resume(net::Connection&) override;
    void on_close(net::Connection&, Error reason) override;

    // reactor::TimerTarget
    void on_timer(reactor::TimerId, uint64_t arg) override;

    void close_now();

private:
    // Timer arguments.
    static constexpr uint64_t kTimerDeliver = 2;
    static constexpr uint64_t kTimerIdle = 3;
    static constexpr uint64_t kTimerTls = 4;

    // The connection is usable: the stream gets it.
    void ready();
    void start_tls(const std::string& name);
    // sni_from_host: the head the stream sent names the host to verify.
    void start_tls_from_head();
    void on_recv_tls(net::Connection& c, net::LentBuf data);
    void handshake_finished();
    // Encrypts held plaintext and moves ciphertext to the socket, as far as both allow. With
    // `notify` (event handlers only: never from inside send(), which the stream is running),
    // tells a stream that found no room() once there is some.
    void pump_tls(bool notify = false);
    void go_idle();

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
    bool awaiting_sni_ = false;     // sni_from_host: connected, the request's Host not seen yet
    mutable bool starved_ = false;  // room() said 0 to the stream
    std::string plain_out_;         // plaintext not yet taken by TLS
    std::string plain_in_;          // plaintext of one receive, handed to the stream
};

// --- OriginH2Conn ----------------------------------------------------------------------------

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

    bool accepting() const;

    void add(Proxy& p, EdgeLink& owner, int32_t id);
    void remove(EdgeLink& owner, int32_t id);

    void start(net::Connection* c) { conn_ = c; }

    // The connect could not even start: the waiters hear it on a later turn, then we go.
    void fail_later(Error e);

    // The pool is going away: nothing may call back into it or into a proxy.
    void detach();

    // OriginH2::Owner: the streams' calls (open, body, consume, cancel) made output.
    void h2_output_ready() override { arm(write_t_, Millis(0), kTimerWrite); }

    // net::ConnHandler
    void on_connect(net::Connection&, Status result) override;
    void on_recv(net::Connection& c, net::LentBuf data) override;
    void on_eof(net::Connection& c) override { c.close(Error{Errc::Closed, 0, "origin closed"}); }
    void on_resume(net::Connection&) override;
    void on_close(net::Connection&, Error reason) override;

    // reactor::TimerTarget
    void on_timer(reactor::TimerId, uint64_t arg) override;

private:
    struct Waiter {
        Proxy* proxy;
        EdgeLink* owner;
        int32_t id;
    };

    // Timer arguments.
    static constexpr uint64_t kTimerDeliver = 2;
    static constexpr uint64_t kTimerIdle = 3;
    static constexpr uint64_t kTimerTls = 4;
    static constexpr uint64_t kTimerWrite = 6;

    bool arm(reactor::TimerId& t, Millis after, uint64_t arg);
    void disarm(reactor::TimerId& t);

    void start_tls();
    void become_ready();
    // Every waiting stream gets the connection.
    void deliver();
    void fail_waiters(const Error& e);
    void feed_h2(net::Connection& c, std::string_view bytes);
    // Frames to the socket, through TLS when there is one, as far as both allow.
    void write();
    size_t push_plain();
    size_t push_tls();
    void pump_cipher();
    // After any event: the tunnels send what the streams produced; an ended session closes;
    // a connection without streams starts its keepAliveTimeout.
    void after_io();
    // ALPN did not pick h2: HTTP/1.1 on this connection (cloudflared's transport does the
    // same). Logged once per rule for the process.
    void fall_back();

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

}  // namespace cfd::connector
