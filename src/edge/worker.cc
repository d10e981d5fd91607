#include "cfd/edge/worker.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "cfd/core/log.h"

namespace cfd::edge {

namespace {
constexpr Millis kTick{250};

uint16_t peer_port_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return 0;
    }
    return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

std::string peer_ip_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return "";
    }
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    }
    return buf;
}
}  // namespace

// --- TunnelLink: one connector connection on this core -----------------------------------------

class TunnelLink final : public StreamRouter, public net::ConnHandler {
public:
    TunnelLink(Worker& w, uint64_t id, std::string peer_ip)
        : w_(w), id_(id), peer_ip_(std::move(peer_ip)),
          tc_(*w.config().tls, *this, w.reactor().now(), w.config().tunnel) {}

    uint64_t id() const { return id_; }
    TunnelConn& tunnel() { return tc_; }
    const std::string& peer_ip() const { return peer_ip_; }
    void attach(net::Connection* c) { conn_ = c; }
    bool in_registry = false;
    bool registered_row = false;  // the control thread wrote a store row for it

    void tick(reactor::TimePoint now) {
        tc_.tick(now);
        pump();
    }
    void shutdown(std::string_view why) {
        tc_.close(why);
        pump();
    }

    // net::ConnHandler
    void on_recv(net::Connection&, net::LentBuf data) override {
        tc_.feed({reinterpret_cast<const char*>(data.data()), data.size()});
        data.release();
        pump();
    }
    void on_eof(net::Connection&) override {
        tc_.feed_eof();
        pump();
    }
    void on_resume(net::Connection&) override { pump(); }
    void on_close(net::Connection&, Error reason) override {
        conn_ = nullptr;
        if (tc_.state() != TunnelConn::State::Closed) {
            tc_.close(reason.message());
        } else {
            tc_.flush();  // delivers the stream closes if not yet done
        }
        if (tc_.details().uuid.is_nil() == false) {
            log::info("Tunnel connection closed",
                      {{"connection", tc_.details().uuid.str()}, {"reason", tc_.close_reason()}});
        } else {
            log::debug("Tunnel connection closed before registration",
                       {{"peer", peer_ip_}, {"reason", tc_.close_reason()}});
        }
        w_.link_closed(*this);
    }

    // TunnelEvents
    void on_register(TunnelConn&, rpc::CallId id, const rpc::RegisterRequest& req) override {
        w_.post_register(*this, id, req);
    }
    void on_unregister(TunnelConn&) override {
        log::info("Connector unregistered its connection",
                  {{"connection", tc_.details().uuid.str()}});
        w_.unroute(*this);
    }
    void on_output(TunnelConn&) override { pump(); }

    void pump() {
        if (pumping_ || conn_ == nullptr) {
            return;
        }
        pumping_ = true;
        for (int i = 0; i < 4096 && conn_ != nullptr; i++) {
            std::string_view out = tc_.pending_output();
            size_t n = std::min(out.size(), conn_->room());
            if (n == 0) {
                break;
            }
            if (!conn_->send({reinterpret_cast<const uint8_t*>(out.data()), n})) {
                break;
            }
            tc_.consume_output(n);
        }
        pumping_ = false;
        if (conn_ != nullptr && tc_.finished()) {
            conn_->close_after_flush();
        }
    }

private:
    Worker& w_;
    uint64_t id_;
    std::string peer_ip_;
    net::Connection* conn_ = nullptr;
    TunnelConn tc_;
    bool pumping_ = false;
};

// --- ClientIo: a public client's socket as its session writes to it --------------------------

class ClientIo : public PublicIo, public net::ConnHandler {
public:
    void attach(net::Connection* c) { conn_ = c; }

    bool send(std::string_view bytes) override {
        if (conn_ == nullptr || conn_->state() != net::Connection::State::Open) {
            return false;
        }
        return static_cast<bool>(
            conn_->send({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}));
    }
    bool writable() const override { return conn_ != nullptr && conn_->writable(); }
    void close_after_flush() override {
        if (conn_ != nullptr) {
            conn_->close_after_flush();
        }
    }
    void abort() override {
        if (conn_ != nullptr) {
            conn_->close(Error{Errc::Closed, 0, "response aborted"});
        }
    }
    void input_room() override {
        if (conn_ != nullptr) {
            conn_->resume_recv();
        }
    }

protected:
    net::Connection* conn_ = nullptr;
};

// --- PublicLink: one public client on this core -----------------------------------------------
//
// Over HTTPS the link runs TLS between the socket and the session: the ClientHello is held
// until its SNI picks the certificate (tls::ServerContexts), records are decrypted straight out
// of the received chunk (read_from) and encrypted records go straight to the socket's queue
// (take_ciphertext). The session is made once the handshake is done: HTTP/2 when ALPN chose
// h2, HTTP/1.1 otherwise. In clear, a connection that opens with the HTTP/2 client preface
// gets HTTP/2 (h2c with prior knowledge); any other first bytes, HTTP/1.1.

class PublicLink final : public ClientIo, private tls::OutputSink {
public:
    PublicLink(Worker& w, bool tls, std::string client_ip)
        : w_(w), tls_wanted_(tls), client_ip_(std::move(client_ip)) {}

    reactor::TimePoint last_rx{};
    // A request waiting for an expected connector gets `limit`, then a connection or 530.
    void check_wait(reactor::TimePoint now, Millis limit) {
        if (!session_ || !session_->waiting()) {
            wait_seen_ = false;
            return;
        }
        if (!wait_seen_) {
            wait_seen_ = true;
            wait_since_ = now;
        } else if (now - wait_since_ >= limit) {
            wait_seen_ = false;
            session_->route_again(true);
        }
    }
    // An idle connection, or one still in its TLS handshake, closes after `limit` of silence;
    // after a second of it, its buffers are freed (an idle keep-alive client costs a few KiB).
    void close_if_idle(reactor::TimePoint now, Millis limit) {
        bool idle = session_ ? session_->idle() : true;
        if (conn_ == nullptr || !idle) {
            return;
        }
        if (now - last_rx >= limit) {
            conn_->close(Error{Errc::TimedOut, 0, "idle"});
        } else if (now - last_rx >= kTrimAfter && !trimmed_ && session_) {
            trimmed_ = true;
            session_->trim();
            if (tls_) {
                (void)tls_->trim();
            }
            conn_->trim();
        }
    }
    void drain() {
        draining_ = true;
        if (session_) {
            session_->drain();
        }
    }

    // PublicIo, through TLS when the link has it.
    bool send(std::string_view bytes) override {
        if (!tls_) {
            return ClientIo::send(bytes);
        }
        if (conn_ == nullptr || conn_->state() != net::Connection::State::Open) {
            return false;
        }
        while (!bytes.empty()) {
            auto n = tls_->write(bytes, *this);
            flush_tls();
            if (!n || *n == 0) {
                return false;  // the queues are full: the session writes only while writable()
            }
            bytes.remove_prefix(*n);
        }
        return true;
    }
    bool writable() const override {
        return ClientIo::writable() && (!tls_ || tls_->pending_output().empty());
    }
    void close_after_flush() override {
        if (tls_ && conn_ != nullptr) {
            tls_->shutdown();  // close_notify: the client can tell our end from a truncation
            flush_tls();
        }
        ClientIo::close_after_flush();
    }

    // net::ConnHandler
    void on_recv(net::Connection& c, net::LentBuf data) override {
        last_rx = w_.reactor().now();
        trimmed_ = false;
        std::string_view bytes{reinterpret_cast<const char*>(data.data()), data.size()};
        if (tls_wanted_) {
            on_ciphertext(bytes);
        } else if (session_) {
            session_->feed(bytes);
        } else {
            sniff_preface(bytes);
        }
        data.release();
        if (session_ && !session_->wants_input() && conn_ != nullptr) {
            c.pause_recv();
        }
    }
    void on_eof(net::Connection& c) override {
        if (!session_ && !tls_wanted_ && !hello_.empty()) {
            start_session(false);  // a short HTTP/1.1 head: its parser answers it
            session_->feed(std::exchange(hello_, {}));
        }
        if (session_) {
            session_->feed_eof();
        } else {
            c.close(Error{Errc::Closed, 0, "eof before a request"});
        }
    }
    void on_resume(net::Connection&) override {
        flush_tls();
        if (session_ && writable()) {
            session_->on_writable();
        }
    }
    void on_close(net::Connection&, Error) override {
        conn_ = nullptr;
        session_.reset();  // resets a stream still open
        w_.link_closed(*this);
    }

    ClientSession* session() { return session_.get(); }

private:
    // A ClientHello is a few hundred bytes (a few KiB with post-quantum key shares).
    static constexpr size_t kMaxHello = 16 << 10;
    static constexpr Millis kTrimAfter{1000};
    static constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    void start_session(bool h2) {
        if (h2) {
            auto s = PublicH2Session::create(w_, *this, w_.config().pub_h2);
            if (!s) {
                conn_->close(s.error());
                return;
            }
            session_ = std::move(*s);
        } else {
            session_ = std::make_unique<PublicSession>(w_, *this, w_.config().pub);
        }
        session_->set_client(client_ip_, tls_wanted_ ? "https" : "http");
        if (draining_) {
            session_->drain();
        }
    }

    // In clear: the first bytes are held while they could still be the HTTP/2 preface.
    void sniff_preface(std::string_view bytes) {
        hello_.append(bytes);
        size_t n = std::min(hello_.size(), kH2Preface.size());
        bool h2 = hello_.compare(0, n, kH2Preface.substr(0, n)) == 0;
        if (h2 && n < kH2Preface.size()) {
            return;  // more bytes decide
        }
        start_session(h2);
        if (session_) {
            session_->feed(std::exchange(hello_, {}));
        }
    }

    void on_ciphertext(std::string_view bytes) {
        if (!tls_) {
            // The ClientHello is held until it names the certificate it wants.
            hello_.append(bytes);
            const tls::ServerContexts* certs = w_.certs();
            auto choice = certs ? certs->choose(hello_) : Result<tls::ServerContexts::Choice>(
                                                              Err{Errc::Invalid, 0, "no certs"});
            if (!choice || (choice->need_more() && hello_.size() >= kMaxHello)) {
                fail_hello();
                return;
            }
            if (choice->need_more()) {
                return;
            }
            auto s = tls::Session::server(*choice->context, choice->sni);
            if (!s) {
                conn_->close(s.error());
                return;
            }
            tls_.emplace(std::move(*s));
            std::string hello = std::move(hello_);
            hello_ = {};
            decrypt(hello);
            return;
        }
        decrypt(bytes);
    }

    // Not TLS at all: a plain HTTP request gets a readable answer, as nginx gives one.
    void fail_hello() {
        bool looks_http = !hello_.empty() && hello_[0] >= 'A' && hello_[0] <= 'Z';
        hello_.clear();
        if (looks_http) {
            std::string out;
            http1::write_error_response(out, 400,
                                        "Bad Request: plain HTTP was sent to the HTTPS port",
                                        false, "text/plain; charset=utf-8", false);
            (void)ClientIo::send(out);
            ClientIo::close_after_flush();
            return;
        }
        conn_->close(Error{Errc::Protocol, 0, "not a TLS ClientHello"});
    }

    void decrypt(std::string_view bytes) {
        std::span<char> buf = w_.plain_scratch();
        for (;;) {
            auto r = tls_->read_from(bytes, buf.data(), buf.size());
            flush_tls();  // handshake flights, alerts, tickets
            if (conn_ == nullptr) {
                return;
            }
            if (!r) {
                if (r.error().code == Errc::Closed && session_) {
                    session_->feed_eof();  // close_notify
                } else {
                    log::debug("Public TLS connection failed",
                               {{"error", tls::describe(r.error())}});
                    ClientIo::close_after_flush();  // the alert goes out first
                }
                return;
            }
            bytes.remove_prefix(r->used);
            if (!session_ && tls_->handshake_done()) {
                start_session(tls_->alpn() == "h2");
                if (!session_) {
                    return;
                }
            }
            if (r->plain > 0 && session_) {
                session_->feed({buf.data(), r->plain});
            }
            if (r->plain == 0 || conn_ == nullptr) {
                return;
            }
        }
    }

    size_t take_ciphertext(std::string_view ct) override {
        if (conn_ == nullptr || !pending_empty()) {
            return 0;
        }
        size_t n = std::min(ct.size(), conn_->room());
        if (n == 0 || !conn_->send({reinterpret_cast<const uint8_t*>(ct.data()), n})) {
            return 0;
        }
        return n;
    }
    bool pending_empty() const { return !tls_ || tls_->pending_output().empty(); }

    void flush_tls() {
        if (!tls_ || conn_ == nullptr) {
            return;
        }
        for (;;) {
            std::string_view out = tls_->pending_output();
            size_t n = std::min(out.size(), conn_->room());
            if (n == 0 || !conn_->send({reinterpret_cast<const uint8_t*>(out.data()), n})) {
                return;
            }
            tls_->consume_output(n);
        }
    }

    Worker& w_;
    bool tls_wanted_;
    bool draining_ = false;
    bool trimmed_ = false;  // buffers freed since the last bytes came in
    std::string client_ip_;
    std::string hello_;
    std::optional<tls::Session> tls_;
    std::unique_ptr<ClientSession> session_;
    bool wait_seen_ = false;
    reactor::TimePoint wait_since_{};
};

// --- RawLink: one client of an edge TCP listener -------------------------------------------

class RawLink final : public ClientIo {
public:
    RawLink(Worker& w, std::string authority, std::string client)
        : w_(w), session_(w, *this, std::move(authority), std::move(client)) {}
    void start() { session_.start(); }

    void on_recv(net::Connection& c, net::LentBuf data) override {
        session_.feed({reinterpret_cast<const char*>(data.data()), data.size()});
        data.release();
        if (conn_ != nullptr && !session_.wants_input()) {
            c.pause_recv();
        }
    }
    void on_eof(net::Connection&) override { session_.feed_eof(); }
    void on_resume(net::Connection&) override { session_.on_writable(); }
    void on_close(net::Connection&, Error) override {
        conn_ = nullptr;
        w_.link_closed(*this);
    }

private:
    Worker& w_;
    RawSession session_;
};

// --- Worker ----------------------------------------------------------------------------------

void Worker::Acceptor::on_accept(net::Listener&, int fd) {
    if (tcp_service >= 0) {
        w->accept_raw(fd, static_cast<size_t>(tcp_service));
    } else if (tunnel) {
        w->accept_tunnel(fd);
    } else {
        w->accept_public(fd, tls);
    }
}

Worker::Worker(reactor::Reactor& r, const WorkerConfig& cfg) : r_(r), cfg_(cfg) {
    routes_ = std::make_unique<RouteTable>();
    relay_server_ = std::make_unique<RelayServer>(*this);
    tunnel_acceptor_.w = this;
    tunnel_acceptor_.tunnel = true;
    public_acceptor_.w = this;
    https_acceptor_.w = this;
    https_acceptor_.tls = true;
    certs_ = cfg.certs;
    cfg_.pub.stats = &counters_;  // bump() (cfd/edge/stats.h): single writer, this thread
    cfg_.pub_h2.stats = &counters_;
    if (!cfg_.https_redirect.empty()) {
        cfg_.pub.https_redirect = &cfg_.https_redirect;
        cfg_.pub_h2.https_redirect = &cfg_.https_redirect;
    }
}

// The reactor is gone by now: sessions first (they point at tunnel connections and relays),
// then tunnels, then the relayed streams they pointed at.
Worker::~Worker() {
    dead_publics_.clear();
    publics_.clear();
    dead_raws_.clear();
    raws_.clear();
    relay_clients_.clear();
    dead_tunnels_.clear();
    tunnels_.clear();
    relay_server_.reset();
    for (auto& q : outbox_) {
        for (const reactor::Message& m : q) {
            discard_message(m);
        }
    }
}

void Worker::discard_message(const reactor::Message& m) {
    if (is_relay_message(m.tag)) {
        discard_relay_message(m);
    } else if (m.tag == kMsgCerts) {
        delete static_cast<CertsMsg*>(m.ptr);
    }
}

Result<std::unique_ptr<Worker>> Worker::start(reactor::Reactor& r, const WorkerConfig& cfg) {
    std::unique_ptr<Worker> w(new Worker(r, cfg));
    auto tl = net::Listener::open(r, cfg.tunnel_addr, &w->tunnel_acceptor_);
    if (!tl) {
        return tl.error();
    }
    w->tunnel_listener_ = *tl;
    auto pl = net::Listener::open(r, cfg.http_addr, &w->public_acceptor_);
    if (!pl) {
        w->tunnel_listener_->close();
        return pl.error();
    }
    w->public_listener_ = *pl;
    if (cfg.certs) {
        auto hl = net::Listener::open(r, cfg.https_addr, &w->https_acceptor_);
        if (!hl) {
            w->tunnel_listener_->close();
            w->public_listener_->close();
            return hl.error();
        }
        w->https_listener_ = *hl;
    }
    for (size_t i = 0; i < cfg.tcp_services.size(); i++) {
        auto a = std::make_unique<Acceptor>();
        a->w = w.get();
        a->tcp_service = static_cast<int64_t>(i);
        auto tl2 = net::Listener::open(r, cfg.tcp_services[i].addr, a.get());
        if (!tl2) {
            w->tunnel_listener_->close();
            w->public_listener_->close();
            if (w->https_listener_ != nullptr) {
                w->https_listener_->close();
            }
            for (net::Listener* l : w->tcp_listeners_) {
                l->close();
            }
            return tl2.error();
        }
        w->tcp_listeners_.push_back(*tl2);
        w->tcp_acceptors_.push_back(std::move(a));
    }
    r.set_message_handler(w.get());
    if (auto t = r.add_timer(kTick, w.get()); !t) {
        return t.error();
    }
    return w;
}

uint16_t Worker::tunnel_port() const {
    return tunnel_listener_ ? tunnel_listener_->port() : 0;
}
uint16_t Worker::http_port() const {
    return public_listener_ ? public_listener_->port() : 0;
}
uint16_t Worker::https_port() const {
    return https_listener_ ? https_listener_->port() : 0;
}

void Worker::accept_tunnel(int fd) {
    uint64_t id = next_link_++;
    auto link = std::make_unique<TunnelLink>(*this, id, peer_ip_of(fd));
    auto c = net::Connection::adopt(r_, fd, link.get(), cfg_.tunnel_conn);
    if (!c) {
        log::warn("Cannot take a tunnel connection", {{"error", c.error().message()}});
        return;
    }
    link->attach(*c);
    tunnels_[id] = std::move(link);
}

void Worker::accept_public(int fd, bool tls) {
    auto link = std::make_unique<PublicLink>(*this, tls, peer_ip_of(fd));
    auto c = net::Connection::adopt(r_, fd, link.get(), cfg_.public_conn);
    if (!c) {
        return;
    }
    link->attach(*c);
    link->last_rx = r_.now();
    PublicLink* key = link.get();
    publics_[key] = std::move(link);
}

uint64_t Worker::random() {
    // xorshift64*: cheap, and per core (no shared state)
    if (rng_ == 0) {
        rng_ = 0x9e3779b97f4a7c15ull * (r_.index() + 1) ^ static_cast<uint64_t>(
                                                              r_.now().time_since_epoch().count());
        rng_ |= 1;
    }
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545f4914f6cdd1dull;
}

// DESIGN.md §5: among the tunnel's connectors (this edge's connections only), two chosen at
// random, the one with fewer streams in flight wins; then the least busy of its connections on
// this core, or a relay to a core that holds one. Connectors a retry avoids are skipped unless
// nothing else is left (another connection of the same connector may still serve).
RouteResult Worker::route(std::string_view host, std::span<const Uuid> avoid) {
    const Uuid* t = routes_->resolve(host);
    if (t == nullptr) {
        return {};
    }
    const std::vector<ConnectorRoute>* all = routes_->connectors(*t);
    if (all == nullptr) {
        // Registered here a moment ago, before the control thread's next snapshot.
        if (TunnelConn* c = pick_local(*t, nullptr)) {
            return {RouteResult::Kind::Ok, c, c->request().options.client.client_id};
        }
        return no_connector(*t);
    }
    auto avoided = [&](const ConnectorRoute& c) {
        return std::find(avoid.begin(), avoid.end(), c.id) != avoid.end();
    };
    // Candidates as indices into `all`; small (connectors per tunnel are bounded).
    std::vector<uint32_t> cand;
    cand.reserve(all->size());
    for (uint32_t i = 0; i < all->size(); i++) {
        if (!avoided((*all)[i])) {
            cand.push_back(i);
        }
    }
    if (cand.empty()) {
        for (uint32_t i = 0; i < all->size(); i++) {
            cand.push_back(i);
        }
    }
    uint64_t self = uint64_t{1} << (r_.index() & 63);
    while (!cand.empty()) {
        size_t pick = 0;
        if (cand.size() > 1) {
            uint64_t x = random();
            size_t a = x % cand.size();
            size_t b = (a + 1 + (x >> 32) % (cand.size() - 1)) % cand.size();
            int32_t la = cfg_.load ? cfg_.load->load((*all)[cand[a]].load_slot) : 0;
            int32_t lb = cfg_.load ? cfg_.load->load((*all)[cand[b]].load_slot) : 0;
            // A tie keeps `a`, itself drawn at random: preferring the connector that has a
            // connection on this core would starve, at light load, one that has none here.
            pick = lb < la ? b : a;
        }
        const ConnectorRoute& c = (*all)[cand[pick]];
        if (TunnelConn* local = pick_local(*t, &c.id)) {
            return {RouteResult::Kind::Ok, local, c.id};
        }
        uint64_t mask = c.cores & ~self;
        if (mask != 0) {
            uint32_t n = static_cast<uint32_t>(__builtin_popcountll(mask));
            uint32_t k = static_cast<uint32_t>(random() % n);
            for (uint32_t core = 0; core < 64; core++) {
                if ((mask >> core & 1) && k-- == 0) {
                    bump(counters_.relayed_out);
                    return {RouteResult::Kind::Ok, &relay_to(core), c.id};
                }
            }
        }
        cand.erase(cand.begin() + static_cast<ptrdiff_t>(pick));  // stale: gone from here
    }
    return no_connector(*t);
}

RouteResult Worker::no_connector(const Uuid& tunnel) const {
    if (cfg_.connector_wait.count() > 0 && routes_->expected(tunnel)) {
        return {RouteResult::Kind::Wait, nullptr, {}};
    }
    return {RouteResult::Kind::NoConnector, nullptr, {}};
}

void Worker::wake_waiters() {
    std::vector<PublicLink*> waiting;
    for (auto& [p, l] : publics_) {
        if (p->session() != nullptr && p->session()->waiting()) {
            waiting.push_back(p);
        }
    }
    for (PublicLink* p : waiting) {
        if (p->session() != nullptr) {
            p->session()->route_again(false);
        }
    }
}

void Worker::on_retry() {
    bump(counters_.retries);
}

StreamTarget* Worker::local_target(std::string_view authority, const Uuid* connector) {
    bump(counters_.relayed_in);
    const Uuid* t = routes_->resolve(authority);
    return t == nullptr ? nullptr : pick_local(*t, connector);
}

TunnelConn* Worker::pick_local(const Uuid& tunnel, const Uuid* connector) {
    auto it = registry_.find(std::string(tunnel.raw()));
    if (it == registry_.end() || it->second.empty()) {
        return nullptr;
    }
    // The least busy of this core's connections (of that connector); ties rotate.
    auto& v = it->second;
    TunnelLink* best = nullptr;
    size_t n = v.size();
    for (size_t i = 0; i < n; i++) {
        TunnelLink* l = v[(rr_ + i) % n];
        if (!l->tunnel().registered()) {
            continue;
        }
        if (connector != nullptr && l->tunnel().request().options.client.client_id != *connector) {
            continue;
        }
        if (best == nullptr || l->tunnel().open_streams() < best->tunnel().open_streams()) {
            best = l;
        }
    }
    rr_++;
    return best == nullptr ? nullptr : &best->tunnel();
}

RelayClient& Worker::relay_to(uint32_t core) {
    if (relay_clients_.size() <= core) {
        relay_clients_.resize(core + 1);
    }
    if (!relay_clients_[core]) {
        relay_clients_[core] = std::make_unique<RelayClient>(*this, core);
    }
    return *relay_clients_[core];
}

void Worker::relay_post(uint32_t to, const reactor::Message& m) {
    if (outbox_.size() <= to) {
        outbox_.resize(to + 1);
    }
    auto& q = outbox_[to];
    if (q.empty()) {
        Status st = r_.post(to, m);
        if (st) {
            return;
        }
        if (st.error().code != Errc::Busy) {
            discard_message(m);  // the group is stopping
            return;
        }
    }
    // Bounded by the relay's flow control: stream counts and one window per stream.
    q.push_back(m);
    if (!turn_hooked_) {
        turn_hooked_ = true;
        r_.add_turn_hook(this);
    }
}

bool Worker::on_turn(reactor::Reactor&) {
    bool left = false;
    for (uint32_t to = 0; to < outbox_.size(); to++) {
        auto& q = outbox_[to];
        while (!q.empty()) {
            Status st = r_.post(to, q.front());
            if (!st && st.error().code == Errc::Busy) {
                break;
            }
            if (!st) {
                discard_message(q.front());
            }
            q.pop_front();
        }
        left = left || !q.empty();
    }
    if (!left) {
        turn_hooked_ = false;
        r_.remove_turn_hook(this);
    }
    return left;  // another turn soon: the target core is draining its queue
}

void Worker::post_register(TunnelLink& l, rpc::CallId call, const rpc::RegisterRequest& req) {
    auto msg = std::make_unique<RegisterMsg>();
    msg->core = r_.index();
    msg->link = l.id();
    msg->call = call;
    msg->request = req;
    msg->peer_ip = l.peer_ip();
    reactor::Message m;
    m.tag = kMsgRegister;
    m.ptr = msg.get();
    if (cfg_.control == nullptr || !cfg_.control->post_external(m)) {
        rpc::ConnectionError e;
        e.cause = "edge is busy, try again";
        e.should_retry = true;
        l.tunnel().refuse_registration(call, e);
        l.pump();
        return;
    }
    (void)msg.release();  // the control thread owns it now
}

void Worker::on_answer(std::unique_ptr<RegisterAnswerMsg> a) {
    auto it = tunnels_.find(a->link);
    if (it == tunnels_.end()) {
        if (a->ok) {
            post_closed(a->details.uuid);  // gone meanwhile: its row must go too
        }
        return;
    }
    TunnelLink& l = *it->second;
    if (!a->ok) {
        l.tunnel().refuse_registration(a->call, a->error);
        l.pump();
        return;
    }
    l.registered_row = true;
    if (cfg_.load != nullptr && a->load_slot < cfg_.load->size()) {
        l.tunnel().set_load_counter(cfg_.load->counter(a->load_slot));
    }
    l.tunnel().accept_registration(a->call, a->details);
    l.pump();
    if (!l.tunnel().registered()) {
        return;  // the call was canceled or the link died: link_closed() removes the row
    }
    registry_[std::string(l.tunnel().request().tunnel_id.raw())].push_back(&l);
    l.in_registry = true;
    wake_waiters();
}

void Worker::unroute(TunnelLink& l) {
    if (!l.in_registry) {
        return;
    }
    l.in_registry = false;
    // The control thread stops sending other cores' clients here for it.
    reactor::Message m;
    m.tag = kMsgConnUnrouted;
    uuid_to_words(l.tunnel().details().uuid, &m.a, &m.b);
    m.c = r_.index();
    if (cfg_.control != nullptr) {
        (void)cfg_.control->post_external(m);
    }
    auto it = registry_.find(std::string(l.tunnel().request().tunnel_id.raw()));
    if (it == registry_.end()) {
        return;
    }
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), &l), v.end());
    if (v.empty()) {
        registry_.erase(it);
    }
}

void Worker::post_closed(const Uuid& conn_id) {
    reactor::Message m;
    m.tag = kMsgConnClosed;
    uuid_to_words(conn_id, &m.a, &m.b);
    m.c = r_.index();
    if (cfg_.control != nullptr) {
        // Dropped only when the control queue is full; the row then lapses with the lease
        // of this edge (forget_edge on shutdown, or the next cleanup).
        (void)cfg_.control->post_external(m);
    }
}

void Worker::link_closed(TunnelLink& l) {
    unroute(l);
    if (l.registered_row) {
        post_closed(l.tunnel().details().uuid);
        l.registered_row = false;
    }
    auto it = tunnels_.find(l.id());
    if (it != tunnels_.end()) {
        dead_tunnels_.push_back(std::move(it->second));
        tunnels_.erase(it);
    }
}

void Worker::accept_raw(int fd, size_t service) {
    const TcpService& svc = cfg_.tcp_services[service];
    std::string authority = svc.hostname + ":" + std::to_string(svc.addr.port());
    std::string client = peer_ip_of(fd) + ":" + std::to_string(peer_port_of(fd));
    auto link = std::make_unique<RawLink>(*this, std::move(authority), std::move(client));
    auto c = net::Connection::adopt(r_, fd, link.get(), cfg_.public_conn);
    if (!c) {
        return;
    }
    link->attach(*c);
    RawLink* key = link.get();
    raws_[key] = std::move(link);
    key->start();
}

void Worker::link_closed(RawLink& l) {
    auto it = raws_.find(&l);
    if (it != raws_.end()) {
        dead_raws_.push_back(std::move(it->second));
        raws_.erase(it);
    }
}

void Worker::link_closed(PublicLink& l) {
    auto it = publics_.find(&l);
    if (it != publics_.end()) {
        dead_publics_.push_back(std::move(it->second));
        publics_.erase(it);
    }
    check_drained();
}

void Worker::drain() {
    if (draining_) {
        return;
    }
    draining_ = true;
    if (tunnel_listener_ != nullptr) {
        tunnel_listener_->close();
        tunnel_listener_ = nullptr;
    }
    for (net::Listener** l : {&public_listener_, &https_listener_}) {
        if (*l != nullptr) {
            (*l)->close();
            *l = nullptr;
        }
    }
    for (net::Listener* l : tcp_listeners_) {
        l->close();
    }
    tcp_listeners_.clear();
    std::vector<PublicLink*> pubs;
    pubs.reserve(publics_.size());
    for (auto& [p, l] : publics_) {
        pubs.push_back(p);
    }
    for (PublicLink* p : pubs) {
        p->drain();
    }
    release_idle_tunnels();
    check_drained();
}

// While draining, a tunnel connection with no stream left closes: its connector reconnects at
// once, to the edge process that replaces this one (or to its other location), while the
// connections still carrying requests finish them here.
void Worker::release_idle_tunnels() {
    std::vector<TunnelLink*> idle;
    for (auto& [id, l] : tunnels_) {
        if (l->tunnel().open_streams() == 0 && l->tunnel().state() != TunnelConn::State::Closed) {
            idle.push_back(l.get());
        }
    }
    for (TunnelLink* l : idle) {
        unroute(*l);
        l->shutdown("edge draining");
    }
}

void Worker::check_drained() {
    if (!draining_ || drained_sent_ || !publics_.empty() || !raws_.empty() ||
        relay_server_->open_streams() > 0) {
        return;
    }
    reactor::Message m;
    m.tag = kMsgDrained;
    m.a = r_.index();
    if (cfg_.control == nullptr || cfg_.control->post_external(m)) {
        drained_sent_ = true;  // otherwise the next tick tries again
    }
}

void Worker::on_message(reactor::Reactor&, const reactor::Message& m) {
    if (m.tag == kMsgRegisterAnswer) {
        on_answer(std::unique_ptr<RegisterAnswerMsg>(static_cast<RegisterAnswerMsg*>(m.ptr)));
    } else if (m.tag == kMsgRoutes) {
        routes_.reset(static_cast<RouteTable*>(m.ptr));
        wake_waiters();
    } else if (m.tag == kMsgCloseConn) {
        Uuid id = uuid_from_words(m.a, m.b);
        for (auto& [key, l] : tunnels_) {
            if (l->tunnel().details().uuid == id) {
                log::info("Tunnel connection replaced by the connector's new one",
                          {{"connection", id.str()}});
                unroute(*l);
                l->shutdown("replaced by a new registration");
                break;
            }
        }
    } else if (m.tag == kMsgDrain) {
        drain();
    } else if (m.tag == kMsgCerts) {
        std::unique_ptr<CertsMsg> c(static_cast<CertsMsg*>(m.ptr));
        certs_ = std::move(c->certs);  // new handshakes only; running sessions keep theirs
    } else if (is_relay_reply(m.tag)) {
        relay_to(m.from).on_message(m);
    } else if (is_relay_message(m.tag)) {
        relay_server_->on_message(m);
    }
}

void Worker::on_timer(reactor::TimerId, uint64_t) {
    dead_publics_.clear();
    dead_raws_.clear();
    dead_tunnels_.clear();
    reactor::TimePoint now = r_.now();
    std::vector<TunnelLink*> all;
    all.reserve(tunnels_.size());
    for (auto& [id, l] : tunnels_) {
        all.push_back(l.get());
    }
    for (TunnelLink* l : all) {
        if (l->tunnel().state() == TunnelConn::State::Closed) {
            continue;
        }
        bool was =
            l->tunnel().registered() || l->tunnel().state() == TunnelConn::State::Unregistered;
        l->tick(now);
        if (was && l->tunnel().state() == TunnelConn::State::Closed) {
            log::warn("Tunnel connection is dead",
                      {{"connection", l->tunnel().details().uuid.str()},
                       {"reason", l->tunnel().close_reason()}});
            unroute(*l);
        }
    }
    std::vector<PublicLink*> pubs;
    pubs.reserve(publics_.size());
    for (auto& [p, l] : publics_) {
        pubs.push_back(p);
    }
    for (PublicLink* p : pubs) {
        p->close_if_idle(now, cfg_.public_idle_timeout);
        p->check_wait(now, cfg_.connector_wait);
    }
    if (draining_) {
        release_idle_tunnels();
    }
    check_drained();
    if (!r_.stop_requested()) {
        (void)r_.add_timer(kTick, this);
    }
}

}  // namespace cfd::edge
