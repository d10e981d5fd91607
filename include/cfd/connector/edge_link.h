// The reactor glue of one core: tunnel connections to the edge (TCP + TunnelSession + Proxy) and
// the pool of origin connections they share. Everything here runs on its reactor's thread.
//
//   OriginPool    keep-alive origin connections of one core, per origin service: idle ones wait
//                 up to the service's idle timeout, at most max_idle of them per service.
//                 http2Origin services get HTTP/2 connections instead (OriginH2Conn): one
//                 carries up to OriginH2::kMaxStreams streams of any tunnel connection of the
//                 core, more streams open another, and it closes after the idle timeout.
//   EdgeLink      tunnel connection number `index`: dials the edge with a timeout, registers,
//                 serves streams, and after a loss reconnects with full-jitter backoff.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cfd/connector/proxy.h"
#include "cfd/connector/tunnel_session.h"
#include "cfd/net/backoff.h"
#include "cfd/net/connection.h"
#include "cfd/reactor/reactor.h"

namespace cfd::connector {

class OriginConn;
class OriginH2Conn;
class EdgeLink;

// Counters shared by every core, read by the control thread (/ready and the exit decisions).
struct ConnectorStats {
    std::atomic<int> registered{0};          // connections registered now
    std::atomic<int> ever_registered{0};     // registrations so far
    std::atomic<int> permanent_refusals{0};  // connections refused with should_retry=false
    std::atomic<int> unregistered{0};        // connections whose unregistration completed
    std::atomic<int> closed_for_good{0};     // connections that will not reconnect (draining)

    // The edge location each registered connection serves, by connection index, for /metrics.
    // Written on registration changes only (never per request), so a lock is fine here.
    void set_location(uint8_t index, std::string_view location) {
        std::lock_guard<std::mutex> lock(mu_);
        if (location.empty()) {
            locations_.erase(index);
        } else {
            locations_[index] = std::string(location);
        }
    }
    std::map<uint32_t, std::string> locations() const {
        std::lock_guard<std::mutex> lock(mu_);
        return locations_;
    }

private:
    mutable std::mutex mu_;
    std::map<uint32_t, std::string> locations_;
};

class OriginPool {
public:
    explicit OriginPool(reactor::Reactor& r) : reactor_(r) {}
    ~OriginPool();
    OriginPool(const OriginPool&) = delete;
    OriginPool& operator=(const OriginPool&) = delete;

    // A connection for stream `id` of `proxy`: an idle one when the pool has it, a new one
    // otherwise. Answered later through proxy.origin_ready()/origin_failed(); `owner` is
    // pumped after each answer and each origin event.
    void dial(const OriginService& svc, Proxy& proxy, EdgeLink& owner, int32_t id);
    // Forgets the pending dial of (owner, id): the connection closes (or goes idle) unanswered.
    void cancel(EdgeLink& owner, int32_t id);
    // An HTTP/2 stream for stream `id` (http2Origin): joins a connection of this service that
    // has room, or dials one. Answered later with proxy.origin_h2_ready(), or origin_ready()
    // when the origin chose HTTP/1.1 in ALPN (from then on this core reaches that service over
    // HTTP/1.1), or origin_failed(). `host`: the request's host, the TLS name when the
    // service verifies the origin against it.
    void dial_h2(const OriginService& svc, Proxy& proxy, EdgeLink& owner, int32_t id,
                 std::string_view host);

    // The tunnel connections of the core, flushed after HTTP/2 origin events (which may concern
    // streams of any of them).
    void add_link(EdgeLink* l) { links_.push_back(l); }
    void remove_link(EdgeLink* l);

    reactor::Reactor& reactor() { return reactor_; }
    size_t idle(uint32_t pool_key) const;
    uint64_t dials() const { return dials_; }
    uint64_t reuses() const { return reuses_; }

private:
    friend class OriginConn;
    friend class OriginH2Conn;
    [[nodiscard]] bool park(OriginConn* c);  // goes idle; false when the pool is full
    void unpark(OriginConn* c);              // leaves the idle list (taken or closed)
    void forget(OriginConn* c);              // is being deleted
    void answered(EdgeLink& owner, int32_t id);
    uint32_t max_idle_for(const OriginConn* c) const;
    void forget_h2(OriginH2Conn* c);
    void flush_links();

    reactor::Reactor& reactor_;
    std::unordered_map<uint32_t, std::vector<OriginConn*>> idle_;
    std::unordered_map<uint32_t, uint32_t> max_idle_;  // per pool key
    std::vector<OriginConn*> all_;  // every live one, to detach them when the pool goes
    std::map<std::pair<EdgeLink*, int32_t>, OriginConn*> pending_;  // dials not yet answered
    // HTTP/2 origins: connections by service (and TLS name when it comes from the request),
    // the dials they have not answered, and the services that chose HTTP/1.1.
    std::unordered_map<std::string, std::vector<OriginH2Conn*>> h2_;
    std::map<std::pair<EdgeLink*, int32_t>, OriginH2Conn*> h2_pending_;
    std::set<uint32_t> h1_only_;
    std::vector<EdgeLink*> links_;
    uint64_t dials_ = 0;
    uint64_t reuses_ = 0;
};

struct EdgeLinkConfig {
    net::SockAddr edge;
    std::string server_name{tls::kTunnelServerName};
    Millis dial_timeout{15000};
    // The edge PINGs every few seconds: nothing at all from it for this long means the link
    // is dead (a silent middlebox, a frozen edge), so it is closed and dialed again. 0: never.
    Millis silence_timeout{10000};
    net::BackoffPolicy backoff{};
    http2::Settings h2{};
    ProxyLimits proxy{};
};

class EdgeLink final : private net::ConnHandler,
                       private reactor::TimerTarget,
                       private OriginDialer {
public:
    enum class State : uint8_t { Idle, Connecting, Serving, Waiting, Draining, Stopped };

    // All references must outlive the link.
    EdgeLink(reactor::Reactor& r, OriginPool& pool, const tls::Context& tls, const Router& router,
             TunnelIdentity id, EdgeLinkConfig cfg, ConnectorStats& stats);
    ~EdgeLink() override;
    EdgeLink(const EdgeLink&) = delete;
    EdgeLink& operator=(const EdgeLink&) = delete;

    void start();
    // Drain: unregisterConnection, then close once the edge answered; no reconnect after.
    void drain();
    // Closes now; no reconnect after.
    void stop();

    // Moves the tunnel's output to the socket (after any proxy or origin event).
    void flush();

    State state() const { return state_; }
    bool registered() const { return registered_; }
    uint8_t index() const { return id_.conn_index; }
    uint32_t attempts() const { return backoff_.attempts(); }
    Proxy* proxy() { return proxy_.get(); }

private:
    // net::ConnHandler
    void on_connect(net::Connection& c, Status result) override;
    void on_recv(net::Connection& c, net::LentBuf data) override;
    void on_eof(net::Connection& c) override;
    void on_resume(net::Connection& c) override;
    void on_close(net::Connection& c, Error reason) override;
    // reactor::TimerTarget: reconnect, the unregister deadline, or the silence watchdog.
    void on_timer(reactor::TimerId id, uint64_t arg) override;
    // OriginDialer
    void dial(const OriginService& svc, int32_t id) override;
    void cancel(int32_t id) override;
    void dial_h2(const OriginService& svc, int32_t id, std::string_view host) override;

    void connect();
    void handle_events();
    void lost(std::string_view why);
    void schedule_reconnect(Millis at_least);
    void set_registered(bool r);
    void arm_watch();

    reactor::Reactor& reactor_;
    OriginPool& pool_;
    const tls::Context& tls_;
    const Router& router_;
    TunnelIdentity id_;
    EdgeLinkConfig cfg_;
    ConnectorStats& stats_;
    net::Backoff backoff_;
    State state_ = State::Idle;
    net::Connection* conn_ = nullptr;
    std::unique_ptr<Proxy> proxy_;
    std::unique_ptr<TunnelSession> session_;
    reactor::TimerId timer_{};
    reactor::TimerId watch_{};         // the silence watchdog, while connected
    reactor::TimePoint last_rx_{};     // when the edge last sent a byte
    bool registered_ = false;
    bool refused_for_good_ = false;
    bool unregistered_ = false;  // draining: the edge confirmed unregisterConnection
    Millis retry_hint_{0};
    std::string loss_reason_;  // why the connection is going down, for the one log line
    bool flushing_ = false;
};

}  // namespace cfd::connector
