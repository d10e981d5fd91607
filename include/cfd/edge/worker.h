// The edge's per-core half (DESIGN.md §3). One Worker per reactor thread owns, on that core only:
//   - a TLS listener on --tunnel-listen, a public HTTP listener on --http-listen and, with
//     certificates, a public HTTPS listener on --https-listen (all SO_REUSEPORT: the kernel
//     spreads connections across cores),
//   - the tunnel connections accepted here (TunnelLink: socket + TunnelConn) and the registry
//     of those registered, per tunnel,
//   - the public connections accepted here (PublicLink: socket + PublicSession),
//   - its own copy of the route table, replaced by the control thread's snapshots.
// Registration leaves the core: the worker posts the request to the control thread (store
// access), which answers with a message; nothing on the data path takes a lock.
// A public request is served by a registered connection of this core (the least busy one); when
// this core holds none of the tunnel's connections, the stream is relayed to a core that does,
// through the mailboxes (cfd/edge/relay.h): the client stays on the core that accepted it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "cfd/edge/load_board.h"
#include "cfd/edge/messages.h"
#include "cfd/edge/https_redirect.h"
#include "cfd/edge/public_h2_session.h"
#include "cfd/edge/public_session.h"
#include "cfd/edge/raw_session.h"
#include "cfd/edge/relay.h"
#include "cfd/edge/routes.h"
#include "cfd/edge/stats.h"
#include "cfd/edge/tunnel_conn.h"
#include "cfd/net/connection.h"
#include "cfd/net/listener.h"
#include "cfd/net/sock_addr.h"
#include "cfd/reactor/reactor.h"
#include "cfd/tls/context.h"
#include "cfd/tls/server_contexts.h"
#include "cfd/tls/session.h"

namespace cfd::edge {

// An edge TCP listener (--tcp-listen ADDR=HOSTNAME): its clients' bytes go to HOSTNAME's
// tunnel as raw TCP streams (cfd/edge/raw_session.h).
struct TcpService {
    net::SockAddr addr;
    std::string hostname;
};

struct WorkerConfig {
    const tls::Context* tls = nullptr;  // the tunnel listener's certificate
    LoadBoard* load = nullptr;           // in-flight streams per connector, all cores
    net::SockAddr tunnel_addr;
    net::SockAddr http_addr;
    // The HTTPS listener, opened when `certs` is set: the certificate is chosen by SNI.
    net::SockAddr https_addr;
    std::shared_ptr<const tls::ServerContexts> certs;
    reactor::Reactor* control = nullptr;  // post_external() target
    TunnelOptions tunnel;
    PublicOptions pub;
    PublicH2Options pub_h2;
    // --https-redirect: requests in clear for these hosts get a redirect to HTTPS.
    HttpsRedirect https_redirect;
    net::ConnOptions public_conn;
    Millis public_idle_timeout{60000};  // keep-alive idle, and the time to send a head
    Millis connector_wait{5000};        // a request for an expected tunnel waits this long
    net::ConnOptions tunnel_conn;
    std::vector<TcpService> tcp_services;
};

class TunnelLink;
class PublicLink;
class RawLink;

class Worker final : public reactor::MessageHandler,
                     public reactor::TimerTarget,
                     public reactor::TurnHook,
                     public PublicRouter,
                     public RelayHost {
public:
    // On the reactor's own thread: opens the listeners and installs the message handler.
    [[nodiscard]] static Result<std::unique_ptr<Worker>> start(reactor::Reactor& r,
                                                               const WorkerConfig& cfg);
    // Touches no reactor state: called after the reactor stopped.
    ~Worker() override;

    // Bound ports (for tests with port 0).
    uint16_t tunnel_port() const;
    uint16_t http_port() const;
    uint16_t https_port() const;
    // The HTTPS certificates new connections get (null: no HTTPS listener).
    const tls::ServerContexts* certs() const { return certs_.get(); }
    // Scratch space for decrypted bytes, lent for one synchronous delivery at a time.
    std::span<char> plain_scratch() { return {plain_.get(), kPlainScratch}; }

    // PublicRouter
    RouteResult route(std::string_view host, std::span<const Uuid> avoid = {}) override;
    void on_retry() override;

    // RelayHost
    void relay_post(uint32_t to, const reactor::Message& m) override;
    StreamTarget* local_target(std::string_view authority, const Uuid* connector) override;

    // Counters written by this worker's thread only, read by any (metrics): this core's
    // public sessions count into it too (PublicOptions::stats).
    using Counters = EdgeStats;
    const Counters& counters() const { return counters_; }

    // Frees what a message left in a mailbox owns, once its reactors stopped (shutdown).
    static void discard_message(const reactor::Message& m);

    // --- for the links
    void post_register(TunnelLink& l, rpc::CallId call, const rpc::RegisterRequest& req);
    void unroute(TunnelLink& l);
    void link_closed(TunnelLink& l);
    void link_closed(PublicLink& l);
    bool draining() const { return draining_; }
    reactor::Reactor& reactor() { return r_; }
    const WorkerConfig& config() const { return cfg_; }

    void accept_tunnel(int fd);
    void accept_public(int fd, bool tls);
    void accept_raw(int fd, size_t service);
    void link_closed(RawLink& l);

private:
    Worker(reactor::Reactor& r, const WorkerConfig& cfg);
    void on_message(reactor::Reactor& r, const reactor::Message& m) override;
    void on_timer(reactor::TimerId id, uint64_t arg) override;
    bool on_turn(reactor::Reactor& r) override;
    // The least busy registered connection of `tunnel` on this core (of `connector` when
    // given), or nullptr.
    TunnelConn* pick_local(const Uuid& tunnel, const Uuid* connector);
    uint64_t random();
    // NoConnector, or Wait when the tunnel's connectors are expected here soon.
    RouteResult no_connector(const Uuid& tunnel) const;
    RelayClient& relay_to(uint32_t core);
    void on_answer(std::unique_ptr<RegisterAnswerMsg> a);
    // SIGTERM (kMsgDrain): the listeners close (a new edge process on the same ports takes the
    // new connections), public connections finish what they started and close; once none is
    // left (relayed streams from other cores included) the control thread hears kMsgDrained.
    void drain();
    void check_drained();
    void release_idle_tunnels();
    // Routes changed or a connection registered here: waiting requests try again.
    void wake_waiters();
    void post_closed(const Uuid& conn_id);

    struct Acceptor : net::AcceptHandler {
        Worker* w = nullptr;
        bool tunnel = false;
        bool tls = false;  // the public HTTPS listener
        int64_t tcp_service = -1;  // >= 0: the TCP listener of cfg.tcp_services[i]
        void on_accept(net::Listener& l, int fd) override;
    };
    std::vector<std::unique_ptr<Acceptor>> tcp_acceptors_;
    std::vector<net::Listener*> tcp_listeners_;
    std::unordered_map<RawLink*, std::unique_ptr<RawLink>> raws_;
    std::vector<std::unique_ptr<RawLink>> dead_raws_;

    reactor::Reactor& r_;
    WorkerConfig cfg_;
    Acceptor tunnel_acceptor_;
    Acceptor public_acceptor_;
    Acceptor https_acceptor_;
    net::Listener* tunnel_listener_ = nullptr;
    net::Listener* public_listener_ = nullptr;
    net::Listener* https_listener_ = nullptr;
    std::shared_ptr<const tls::ServerContexts> certs_;
    static constexpr size_t kPlainScratch = tls::Session::kMaxRecordPlaintext;
    std::unique_ptr<char[]> plain_ = std::make_unique<char[]>(kPlainScratch);
    std::unique_ptr<RouteTable> routes_;
    uint64_t next_link_ = 1;
    std::unordered_map<uint64_t, std::unique_ptr<TunnelLink>> tunnels_;
    std::unordered_map<PublicLink*, std::unique_ptr<PublicLink>> publics_;
    // Registered, non-draining connections per tunnel (raw UUID bytes).
    std::unordered_map<std::string, std::vector<TunnelLink*>> registry_;
    std::vector<std::unique_ptr<TunnelLink>> dead_tunnels_;
    std::vector<std::unique_ptr<PublicLink>> dead_publics_;
    uint64_t rr_ = 0;
    uint64_t rng_ = 0;
    // Streams relayed to other cores (by core index), and from them.
    std::vector<std::unique_ptr<RelayClient>> relay_clients_;
    std::unique_ptr<RelayServer> relay_server_;
    // Messages a full mailbox refused, per target core, sent in order on the next loop turns.
    std::vector<std::deque<reactor::Message>> outbox_;
    bool turn_hooked_ = false;
    bool draining_ = false;
    bool drained_sent_ = false;
    Counters counters_;
};

}  // namespace cfd::edge
