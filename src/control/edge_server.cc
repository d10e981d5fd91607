#include "cfd/control/edge_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cfd/control/api.h"
#include "cfd/control/http_server.h"
#include "cfd/control/registrar.h"
#include "cfd/connector/metrics.h"
#include "cfd/connector/tunnel_session.h"
#include "cfd/core/log.h"
#include "cfd/core/prometheus.h"
#include "cfd/core/sd_notify.h"
#include "cfd/core/version.h"
#include "cfd/edge/messages.h"
#include "cfd/edge/stats.h"
#include "cfd/edge/worker.h"
#include "cfd/http1/parser.h"
#include "cfd/http1/writer.h"
#include "cfd/net/connection.h"
#include "cfd/net/listener.h"
#include "cfd/reactor/group.h"
#include "cfd/store/store.h"
#include "cfd/tls/certgen.h"

namespace cfd::control {

namespace {

std::atomic<int> g_signal{0};
std::atomic<int> g_signals{0};  // how many arrived: the second one stops without waiting

std::atomic<bool> g_reload{false};  // SIGHUP: reload the HTTPS certificates

void on_reload(int) {
    g_reload.store(true, std::memory_order_relaxed);
}

void on_signal(int sig) {
    g_signal.store(sig, std::memory_order_relaxed);
    g_signals.fetch_add(1, std::memory_order_relaxed);
}

constexpr Millis kControlTick{100};
constexpr int kHeartbeatTicks = 30;  // 3 s: well inside the store's 15 s lease
constexpr int kRoutesTicks = 20;     // 2 s
constexpr size_t kMaxApiBody = 1 << 20;

bool file_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

Status write_file(const std::string& path, std::string_view data, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        return Err{errno == EEXIST ? Errc::Exists : Errc::Syscall, errno, "open"};
    }
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n <= 0) {
            int e = errno;
            ::close(fd);
            return Err{Errc::Syscall, e, "write"};
        }
        off += static_cast<size_t>(n);
    }
    ::close(fd);
    return {};
}

std::string host_of(const std::string& host_port) {
    std::string_view s = host_port;
    if (!s.empty() && s[0] == '[') {
        return std::string(s.substr(1, s.find(']') - 1));
    }
    return std::string(s.substr(0, s.rfind(':')));
}

// The edge's certificate: configured, or made on first start in the store's folder.
Result<tls::Context> edge_tls(const EdgeConfig& cfg, const std::string& dir) {
    tls::ServerOptions o;
    o.session_tickets = true;
    if (!cfg.cert.empty() || !cfg.key.empty()) {
        o.cert_file = cfg.cert;
        o.key_file = cfg.key;
        return tls::Context::server(o);
    }
    std::string ca_path = dir + "/ca.pem";
    o.cert_file = dir + "/edge.pem";
    o.key_file = dir + "/edge.key";
    if (!file_exists(o.cert_file) || !file_exists(o.key_file)) {
        auto ca = tls::generate_ca("cfdtunnel edge CA", 3650);
        if (!ca) {
            return ca.error();
        }
        std::vector<std::string> names = {std::string(tls::kTunnelServerName), "localhost",
                                          "127.0.0.1", "::1"};
        std::string h = host_of(cfg.tunnel_listen);
        if (!h.empty() && h != "0.0.0.0" && h != "::" && h != "*" &&
            std::find(names.begin(), names.end(), h) == names.end()) {
            names.push_back(h);
        }
        char hn[256] = {};
        if (::gethostname(hn, sizeof hn - 1) == 0 && hn[0] != '\0' &&
            std::find(names.begin(), names.end(), hn) == names.end()) {
            names.emplace_back(hn);
        }
        auto leaf = tls::generate_leaf(*ca, tls::kTunnelServerName, names, 825);
        if (!leaf) {
            return leaf.error();
        }
        (void)::unlink(ca_path.c_str());
        if (auto st = write_file(ca_path, ca->cert_pem, 0644); !st) {
            return st.error();
        }
        if (auto st = tls::write_key_pair(*leaf, o.cert_file, o.key_file, true); !st) {
            return st.error();
        }
        log::info("Generated the edge's certificate authority and certificate",
                  {{"ca", ca_path}, {"cert", o.cert_file}});
    }
    log::info("Connectors verify this edge with its CA (pass it as --cacert)", {{"path", ca_path}});
    return tls::Context::server(o);
}

class ControlServer;

// One HTTP/1.1 client of the management API, on the control reactor. (The metrics endpoint is
// a control::HttpServer: GET only, no bodies, no auth.)
class HttpLink final : public net::ConnHandler {
public:
    explicit HttpLink(ControlServer& s) : s_(s) {}
    void attach(net::Connection* c) { conn_ = c; }
    void on_recv(net::Connection& c, net::LentBuf data) override;
    void on_close(net::Connection&, Error) override;

private:
    void respond(int status, std::string_view content_type, std::string_view body, bool keep);
    ControlServer& s_;
    net::Connection* conn_ = nullptr;
    http1::RequestParser parser_;
    std::string in_;
    std::string body_;
    bool too_big_ = false;
    bool done_ = false;
};

class ControlServer final : public reactor::MessageHandler,
                            public reactor::TimerTarget,
                            public HttpRoutes {
public:
    ControlServer(const EdgeConfig& cfg, store::Store& st, Registrar& reg, Api& api,
                  reactor::Reactor& r, reactor::ReactorGroup& g, edge::LoadBoard& board)
        : cfg_(cfg), store_(st), reg_(reg), api_(api), r_(r), group_(g), board_(board) {}

    struct Acceptor : net::AcceptHandler {
        ControlServer* s = nullptr;
        void on_accept(net::Listener&, int fd) override { s->accept(fd); }
    };

    // The management API and metrics listeners; an error names the flag and address at fault.
    Result<void, std::string> open_listeners() {
        api_acceptor_.s = this;
        auto fail = [](std::string_view flag, const std::string& addr, const Error& e) {
            return "--" + std::string(flag) + " " + addr + ": " + e.message();
        };
        auto a = net::SockAddr::parse(cfg_.api_listen);
        if (!a) {
            return fail("api-listen", cfg_.api_listen, a.error());
        }
        // SO_REUSEPORT, like the public and tunnel listeners: the process that replaces this one
        // binds the same address before this one stops (both share the store, so either answers).
        auto l = net::Listener::open(r_, *a, &api_acceptor_, net::ListenOptions{64, true, false});
        if (!l) {
            return fail("api-listen", cfg_.api_listen, l.error());
        }
        api_listener_ = *l;
        if (!cfg_.metrics.empty()) {
            auto m = net::SockAddr::parse(cfg_.metrics);
            if (!m) {
                return fail("metrics", cfg_.metrics, m.error());
            }
            HttpServerLimits ml;
            ml.reuse_port = true;  // as the API listener: a replacing edge binds it too
            auto ms = HttpServer::open(r_, *m, *this, ml);
            if (!ms) {
                return fail("metrics", cfg_.metrics, ms.error());
            }
            metrics_ = std::move(*ms);
        }
        return {};
    }

    void accept(int fd) {
        auto link = std::make_unique<HttpLink>(*this);
        auto c = net::Connection::adopt(r_, fd, link.get());
        if (!c) {
            return;
        }
        link->attach(*c);
        HttpLink* key = link.get();
        links_[key] = std::move(link);
    }
    void link_closed(HttpLink* l) {
        auto it = links_.find(l);
        if (it != links_.end()) {
            dead_.push_back(std::move(it->second));
            links_.erase(it);
        }
    }

    ApiResponse api(const ApiRequest& req) {
        ApiResponse resp = api_.handle(req);
        if (req.method != "GET" && resp.status < 300) {
            refresh_routes();  // a route may have changed: workers see it at once
        }
        return resp;
    }

    // What /metrics and /ready show: every core's counters (relaxed loads: each core writes its
    // own, summed here on scrape) and the control thread's own figures.
    edge::EdgeMetrics metrics_snapshot() const {
        edge::EdgeMetrics m;
        m.location = cfg_.location;
        m.draining = draining_;
        m.tunnel_connections = reg_.live_connections();
        for (const auto& [raw, ci] : conns_) {
            if (auto id = Uuid::from_bytes(ci.tunnel)) {
                m.tunnel_connections_by_tunnel[id->str()]++;
            }
        }
        m.registrations_accepted = accepted_;
        m.registrations_refused = refused_;
        if (workers_list_ != nullptr) {
            for (const auto& w : *workers_list_) {
                if (w) {
                    edge::add_stats(m, w->counters());
                }
            }
        }
        m.arch = connector::build_arch();
        m.resident_memory_bytes = connector::resident_memory_bytes();
        return m;
    }
    std::string metrics_text() const { return edge::render_metrics(metrics_snapshot()); }

    // HttpRoutes: the --metrics listener (GET only).
    HttpReply get(std::string_view path) override {
        if (path == "/metrics") {
            return {200, std::string(prom::kContentType), metrics_text()};
        }
        if (path == "/ready") {
            // 503 once draining: load balancers and probes stop sending here.
            edge::EdgeMetrics m;
            m.location = cfg_.location;
            m.draining = draining_;
            m.tunnel_connections = reg_.live_connections();
            auto a = edge::ready_answer(m);
            return {a.status, "application/json", std::move(a.body)};
        }
        if (path == "/healthcheck") {
            return {200, "text/plain; charset=utf-8", "OK\n"};
        }
        return {404, "text/plain; charset=utf-8", "404 page not found\n"};
    }
    size_t live_connections() const { return reg_.live_connections(); }
    const EdgeConfig& config() const { return cfg_; }

    void set_workers(uint32_t n) { workers_ = n; }
    // Read only for counters; the vector outlives the server's listeners.
    void set_worker_list(const std::vector<std::unique_ptr<edge::Worker>>* w) {
        workers_list_ = w;
    }

    void refresh_routes() {
        auto rs = store_.list_routes();
        if (!rs) {
            log::warn("Cannot load routes from the store", {{"error", rs.error().message()}});
            return;
        }
        edge::RouteTable table;
        for (const auto& r : *rs) {
            table.add(r.hostname, r.tunnel_id);
        }
        // Another process of this location (the one being replaced) holds these tunnels'
        // connections: their connectors will come here once it lets them go.
        if (cfg_.connector_wait.count() > 0) {
            auto ex = store_.tunnels_at(cfg_.location, reg_.options().edge_id);
            if (ex) {
                for (const Uuid& t : *ex) {
                    table.set_expected(t);
                }
            }
        }
        for (const auto& [tunnel, per_connector] : connectors_) {
            std::vector<edge::ConnectorRoute> routes;
            for (const auto& [id, info] : per_connector) {
                edge::ConnectorRoute cr;
                cr.id = *Uuid::from_bytes(id);
                cr.load_slot = info.slot;
                for (const auto& [core, n] : info.routed) {
                    if (n > 0 && core < 64) {
                        cr.cores |= uint64_t{1} << core;
                    }
                }
                if (cr.cores != 0) {
                    routes.push_back(cr);
                }
            }
            table.set_connectors(*Uuid::from_bytes(tunnel), std::move(routes));
        }
        std::string fp = table.fingerprint();
        if (fp == routes_fp_) {
            return;
        }
        bool all = true;
        for (uint32_t i = 0; i < workers_; i++) {
            auto* copy = new edge::RouteTable(table);
            reactor::Message m;
            m.tag = edge::kMsgRoutes;
            m.ptr = copy;
            if (!group_.post(i, m)) {
                delete copy;
                all = false;
            }
        }
        if (all) {
            routes_fp_ = fp;  // otherwise the next tick tries again
            log::debug("Routes pushed to workers", {{"routes", table.size()}});
        }
    }

    void on_message(reactor::Reactor&, const reactor::Message& m) override {
        if (m.tag == edge::kMsgRegister) {
            std::unique_ptr<edge::RegisterMsg> msg(static_cast<edge::RegisterMsg*>(m.ptr));
            if (stopping_) {
                return;
            }
            if (msg->request.options.replace_existing) {
                replace(msg->request);
            }
            Decision d = reg_.register_connection(msg->request, msg->peer_ip);
            std::string tunnel(msg->request.tunnel_id.raw());
            std::string connector(msg->request.options.client.client_id.raw());
            ConnectorInfo* info = nullptr;
            if (d.ok) {
                info = connector_info(tunnel, connector);
                if (info == nullptr) {
                    reg_.connection_closed(d.details.uuid);
                    d.ok = false;
                    d.error.cause = "edge is at its limit of connectors";
                    d.error.should_retry = true;
                }
            }
            (d.ok ? accepted_ : refused_)++;
            auto ans = std::make_unique<edge::RegisterAnswerMsg>();
            ans->link = msg->link;
            ans->call = msg->call;
            ans->ok = d.ok;
            ans->details = d.details;
            ans->error = d.error;
            ans->load_slot = info != nullptr ? info->slot : UINT32_MAX;
            reactor::Message out;
            out.tag = edge::kMsgRegisterAnswer;
            out.ptr = ans.get();
            if (group_.post(msg->core, out)) {
                (void)ans.release();
                if (d.ok) {
                    ConnInfo& ci = conns_[std::string(d.details.uuid.raw())];
                    ci.tunnel = tunnel;
                    ci.core = msg->core;
                    ci.connector = msg->request.options.client.client_id;
                    ci.index = msg->request.conn_index;
                    info->live++;
                    info->routed[msg->core]++;
                    refresh_routes();
                }
            } else if (d.ok) {
                reg_.connection_closed(d.details.uuid);
                drop_connector_if_gone(tunnel, connector);
            }
        } else if (m.tag == edge::kMsgDrained) {
            drained_++;
        } else if (m.tag == edge::kMsgConnClosed || m.tag == edge::kMsgConnUnrouted) {
            Uuid id = edge::uuid_from_words(m.a, m.b);
            auto it = conns_.find(std::string(id.raw()));
            if (it != conns_.end() && it->second.routed) {
                it->second.routed = false;
                ConnInfo& ci = it->second;
                ConnectorInfo& info =
                    connectors_[ci.tunnel][std::string(ci.connector.raw())];
                if (--info.routed[ci.core] <= 0) {
                    info.routed.erase(ci.core);
                }
                if (!stopping_) {
                    refresh_routes();
                }
            }
            if (m.tag == edge::kMsgConnClosed) {
                reg_.connection_closed(id);
                if (it != conns_.end()) {
                    std::string tunnel = it->second.tunnel;
                    std::string connector(it->second.connector.raw());
                    connectors_[tunnel][connector].live--;
                    conns_.erase(it);
                    drop_connector_if_gone(tunnel, connector);
                }
            }
        }
    }

    void on_timer(reactor::TimerId, uint64_t) override {
        dead_.clear();
        if (g_reload.exchange(false, std::memory_order_relaxed)) {
            reload_certificates();
        }
        int sig = g_signal.load(std::memory_order_relaxed);
        int count = g_signals.load(std::memory_order_relaxed);
        if (sig != 0 && !stopping_) {
            if (!draining_) {
                begin_drain(sig);
            } else if (count > signals_at_drain_) {
                log::warn(std::string("Second signal ") + strsignal(sig) + ": stopping now");
                stop(sig);
                return;
            }
        }
        if (draining_ && !stopping_) {
            if (drained_ >= workers_) {
                log::info("Every public request finished: closing the tunnel connections");
                stop(sig);
                return;
            }
            if (std::chrono::steady_clock::now() >= drain_deadline_) {
                log::warn("Grace period over: closing the requests and tunnel connections left",
                          {{"gracePeriod", format_duration(cfg_.grace_period)}});
                stop(sig);
                return;
            }
            post_drain();  // to workers a full queue refused
        }
        ticks_++;
        if (ticks_ % kHeartbeatTicks == 0) {
            if (auto st = reg_.heartbeat(); !st) {
                log::warn("Store heartbeat failed", {{"error", st.error().message()}});
            }
        }
        if (ticks_ % kRoutesTicks == 0) {
            refresh_routes();
        }
        (void)r_.add_timer(kControlTick, this);
    }

    // SIGTERM, first step: workers stop accepting (a new edge process on the same ports takes
    // over) and finish their public requests; /ready turns 503. The tunnel connections stay
    // until then, so in-flight requests complete; stop() closes them.
    void begin_drain(int sig) {
        draining_ = true;
        signals_at_drain_ = g_signals.load(std::memory_order_relaxed);
        drain_deadline_ = std::chrono::steady_clock::now() + cfg_.grace_period;
        log::info("Initiating graceful shutdown: no new connections, finishing public requests",
                  {{"signal", strsignal(sig)}, {"gracePeriod", format_duration(cfg_.grace_period)}});
        sd_notify_or_warn("STOPPING=1\nSTATUS=Draining: finishing public requests");
        drain_posted_.assign(workers_, false);
        post_drain();
    }
    void post_drain() {
        for (uint32_t i = 0; i < drain_posted_.size(); i++) {
            if (!drain_posted_[i]) {
                reactor::Message m;
                m.tag = edge::kMsgDrain;
                drain_posted_[i] = static_cast<bool>(group_.post(i, m));
            }
        }
    }
    bool draining() const { return draining_; }

    // SIGHUP: the certificate files are read again and every worker gets the new set for its
    // next handshakes; connections already running keep theirs. A set that fails to load is
    // logged and the old one stays.
    void reload_certificates() {
        if (cfg_.certificates.empty()) {
            log::info("SIGHUP: no HTTPS certificates to reload");
            return;
        }
        auto set = tls::load_certificates(cfg_.certificates, kHttpsAlpn);
        if (!set) {
            log::error("Cannot reload the HTTPS certificates; the old ones stay",
                       {{"error", set.error()}});
            return;
        }
        auto shared = std::make_shared<const tls::ServerContexts>(std::move(*set));
        uint32_t posted = 0;
        for (uint32_t i = 0; i < workers_; i++) {
            reactor::Message m;
            m.tag = edge::kMsgCerts;
            auto* c = new edge::CertsMsg{shared};
            m.ptr = c;
            if (group_.post(i, m)) {
                posted++;
            } else {
                delete c;
            }
        }
        log::info("Reloaded the HTTPS certificates",
                  {{"certificates", static_cast<int>(cfg_.certificates.size())},
                   {"workers", static_cast<int>(posted)}});
    }

    void stop(int sig) {
        stopping_ = true;
        log::info("Initiating shutdown", {{"signal", strsignal(sig)}});
        group_.stop();  // listeners and tunnel connections close on every core
        reg_.shutdown();
        log::info("Removed this edge's connections from the store", {{"location", cfg_.location}});
        if (api_listener_) {
            api_listener_->close();
        }
        if (metrics_) {
            metrics_->close();
        }
        r_.request_stop();
    }

private:
    const EdgeConfig& cfg_;
    store::Store& store_;
    Registrar& reg_;
    Api& api_;
    reactor::Reactor& r_;
    reactor::ReactorGroup& group_;
    Acceptor api_acceptor_;
    net::Listener* api_listener_ = nullptr;
    std::unique_ptr<HttpServer> metrics_;
    std::unordered_map<HttpLink*, std::unique_ptr<HttpLink>> links_;
    std::vector<std::unique_ptr<HttpLink>> dead_;
    // cloudflared reconnects with replaceExisting: the connection it had at that index on this
    // edge is dead or dying; close it now rather than when its PINGs time out.
    void replace(const rpc::RegisterRequest& req) {
        for (const auto& [raw, ci] : conns_) {
            if (ci.connector == req.options.client.client_id && ci.index == req.conn_index &&
                ci.tunnel == req.tunnel_id.raw()) {
                reactor::Message m;
                m.tag = edge::kMsgCloseConn;
                Uuid id = *Uuid::from_bytes(raw);
                edge::uuid_to_words(id, &m.a, &m.b);
                (void)group_.post(ci.core, m);
            }
        }
    }

    struct ConnInfo {
        std::string tunnel;  // raw UUID
        uint32_t core = 0;
        Uuid connector;
        uint8_t index = 0;
        bool routed = true;  // counted in its connector's `routed`
    };
    // A connector with connections on this edge: its LoadBoard slot (held while any of its
    // connections lives, draining ones included: their streams still count), and its routed
    // connections per core (for the workers' snapshots).
    struct ConnectorInfo {
        uint32_t slot = 0;
        int live = 0;
        std::unordered_map<uint32_t, int> routed;
    };
    // The connector's record, created with a slot on its first connection; nullptr when the
    // board is full.
    ConnectorInfo* connector_info(const std::string& tunnel, const std::string& connector) {
        auto& per = connectors_[tunnel];
        auto it = per.find(connector);
        if (it != per.end()) {
            return &it->second;
        }
        auto slot = board_.acquire();
        if (!slot) {
            if (per.empty()) {
                connectors_.erase(tunnel);
            }
            return nullptr;
        }
        ConnectorInfo& info = per[connector];
        info.slot = *slot;
        return &info;
    }
    void drop_connector_if_gone(const std::string& tunnel, const std::string& connector) {
        auto t = connectors_.find(tunnel);
        if (t == connectors_.end()) {
            return;
        }
        auto c = t->second.find(connector);
        if (c != t->second.end() && c->second.live <= 0) {
            board_.release(c->second.slot);
            t->second.erase(c);
        }
        if (t->second.empty()) {
            connectors_.erase(t);
        }
    }
    // Every registered connection of this edge: its core (for the snapshots) and identity.
    std::unordered_map<std::string, ConnInfo> conns_;
    // raw tunnel UUID -> raw connector ID -> its record
    std::unordered_map<std::string, std::unordered_map<std::string, ConnectorInfo>> connectors_;
    edge::LoadBoard& board_;
    std::string routes_fp_ = "\x01";  // never a real fingerprint: the first load pushes
    uint32_t workers_ = 0;
    const std::vector<std::unique_ptr<edge::Worker>>* workers_list_ = nullptr;
    uint64_t ticks_ = 0;
    uint64_t accepted_ = 0;
    uint64_t refused_ = 0;
    bool stopping_ = false;
    bool draining_ = false;
    uint32_t drained_ = 0;
    int signals_at_drain_ = 0;
    std::vector<bool> drain_posted_;
    std::chrono::steady_clock::time_point drain_deadline_{};
};

void HttpLink::on_recv(net::Connection&, net::LentBuf data) {
    if (done_) {
        return;
    }
    in_.append(reinterpret_cast<const char*>(data.data()), data.size());
    data.release();
    std::string_view in = in_;
    size_t used = 0;
    while (!done_) {
        http1::Step st = parser_.feed(in.substr(used));
        used += parser_.consumed();
        if (st == http1::Step::NeedMore) {
            break;
        }
        if (st == http1::Step::HeadDone) {
            body_.clear();
            too_big_ = parser_.head().body == http1::BodyKind::Length &&
                       parser_.head().content_length > kMaxApiBody;
        } else if (st == http1::Step::Body) {
            if (body_.size() + parser_.body().size() > kMaxApiBody) {
                too_big_ = true;
            } else {
                body_.append(parser_.body());
            }
        } else if (st == http1::Step::MessageDone) {
            const auto& h = parser_.head();
            bool keep = parser_.keep_alive();
            if (too_big_) {
                respond(413, "application/json", R"({"error":"request body too large"})", false);
                break;
            }
            const std::string* auth = http1::find_header(h.headers, "authorization");
            ApiRequest req{h.method, h.path, auth ? std::string_view(*auth) : "", body_};
            ApiResponse resp = s_.api(req);
            respond(resp.status, "application/json", resp.body, keep);
        } else if (st == http1::Step::Error) {
            std::string out;
            http1::write_error_response(out, parser_.error().status, parser_.error().reason, false);
            (void)conn_->send({reinterpret_cast<const uint8_t*>(out.data()), out.size()});
            conn_->close_after_flush();
            done_ = true;
        } else {
            respond(400, "text/plain; charset=utf-8", "Bad Request\n", false);
        }
    }
    in_.erase(0, used);
    if (in_.size() > 64 * 1024 && !done_) {
        respond(431, "text/plain; charset=utf-8", "Request Header Fields Too Large\n", false);
    }
}

void HttpLink::respond(int status, std::string_view content_type, std::string_view body,
                       bool keep) {
    if (conn_ == nullptr) {
        return;
    }
    std::string out;
    http1::Headers hs;
    if (!body.empty()) {
        hs.push_back({"Content-Type", std::string(content_type)});
    }
    (void)http1::write_response_head(out, static_cast<uint16_t>(status), hs,
                                     status == 204 ? http1::Framing::none()
                                                   : http1::Framing::content_length(body.size()),
                                     !keep);
    out.append(body);
    if (!conn_->send({reinterpret_cast<const uint8_t*>(out.data()), out.size()})) {
        conn_->close();
        done_ = true;
        return;
    }
    if (!keep) {
        conn_->close_after_flush();
        done_ = true;
    }
}

void HttpLink::on_close(net::Connection&, Error) {
    conn_ = nullptr;
    s_.link_closed(this);
}

}  // namespace

std::string store_folder(const std::string& spec) {
    std::string path = spec;
    if (path.rfind("sqlite:", 0) == 0) {
        path = path.substr(7);
    }
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

Result<std::string> load_or_create_token(const std::string& dir) {
    std::string path = dir + "/api-token";
    std::ifstream in(path);
    if (in) {
        std::string tok;
        std::getline(in, tok);
        if (!tok.empty()) {
            return tok;
        }
        return Err{Errc::Invalid, 0, "api-token is empty"};
    }
    uint8_t raw[32];
    random_bytes(raw, sizeof raw);
    static const char kHex[] = "0123456789abcdef";
    std::string tok;
    for (uint8_t b : raw) {
        tok.push_back(kHex[b >> 4]);
        tok.push_back(kHex[b & 15]);
    }
    if (auto st = write_file(path, tok + "\n", 0600); !st) {
        return st.error();
    }
    log::info("Created the management API token", {{"path", path}});
    return tok;
}

int run_edge(const EdgeConfig& cfg) {
    g_signal.store(0, std::memory_order_relaxed);  // a signal from an earlier run is spent
    g_signals.store(0, std::memory_order_relaxed);
    log::info("Starting edge", {{"location", cfg.location}});
    log::info(std::string("Version ") + kVersion);
    std::string dir = store_folder(cfg.store);
    if (!file_exists(dir) && ::mkdir(dir.c_str(), 0700) != 0) {
        log::error("Cannot create the store's folder",
                   {{"path", dir}, {"error", std::strerror(errno)}});
        return 1;
    }
    auto st = store::open_store(cfg.store);
    if (!st) {
        log::error("Cannot open the store",
                   {{"store", cfg.store}, {"error", st.error().message()}});
        return 1;
    }
    store::Store& store = **st;
    // Edges sharing this folder may start together: the first one makes the CA, certificate
    // and token while the others wait, then they read them (never two CAs, one overwritten).
    int setup_lock = ::open((dir + "/.setup.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (setup_lock < 0 || ::flock(setup_lock, LOCK_EX) != 0) {
        log::error("Cannot lock the store's folder for set-up",
                   {{"path", dir + "/.setup.lock"}, {"error", std::strerror(errno)}});
        return 1;
    }
    auto tls_ctx = edge_tls(cfg, dir);
    auto token = tls_ctx ? load_or_create_token(dir) : Result<std::string>(std::string());
    ::close(setup_lock);  // releases the lock
    if (!tls_ctx) {
        log::error("Cannot set up the tunnel listener's certificate",
                   {{"error", tls::describe(tls_ctx.error())}});
        return 1;
    }
    if (!token) {
        log::error("Cannot read or create the API token",
                   {{"path", dir + "/api-token"}, {"error", token.error().message()}});
        return 1;
    }
    std::shared_ptr<const tls::ServerContexts> certs;
    auto https_addr = net::SockAddr::parse(cfg.https_listen);
    if (!https_addr) {
        log::error("Bad listen address", {{"https-listen", cfg.https_listen}});
        return 2;
    }
    auto redirect = edge::HttpsRedirect::create(cfg.https_redirect, https_addr->port());
    if (!redirect) {
        log::error("Bad --https-redirect host (expected a name, *.domain or *)");
        return 2;
    }
    if (!cfg.certificates.empty()) {
        auto set = tls::load_certificates(cfg.certificates, kHttpsAlpn);
        if (!set) {
            log::error("Cannot load the HTTPS certificates", {{"error", set.error()}});
            return 2;
        }
        certs = std::make_shared<const tls::ServerContexts>(std::move(*set));
    }
    auto tunnel_addr = net::SockAddr::parse(cfg.tunnel_listen);
    auto http_addr = net::SockAddr::parse(cfg.http_listen);
    if (!tunnel_addr || !http_addr) {
        log::error("Bad listen address",
                   {{"tunnel-listen", cfg.tunnel_listen}, {"http-listen", cfg.http_listen}});
        return 2;
    }

    RegistrarOptions ro;
    ro.location = cfg.location;
    ro.edge_id = Uuid::random();
    ro.max_connectors = cfg.max_connectors_per_tunnel;
    Registrar registrar(store, ro);
    if (auto hb = registrar.heartbeat(); !hb) {
        log::error("Store heartbeat failed", {{"error", hb.error().message()}});
        return 1;
    }
    Api api(store, *token);

    reactor::ReactorOptions cro;
    cro.log_features = false;
    cro.buf_count = 64;
    cro.max_objects = 4096;
    auto control = reactor::Reactor::create(cro);
    if (!control) {
        log::error("Cannot create the control reactor", {{"error", control.error().message()}});
        return 1;
    }

    reactor::GroupOptions go;
    go.threads = static_cast<uint32_t>(cfg.workers > 0 ? cfg.workers : 0);
    reactor::ReactorGroup group(go);
    edge::LoadBoard board;
    ControlServer server(cfg, store, registrar, api, **control, group, board);
    if (auto ol = server.open_listeners(); !ol) {
        log::error("Cannot open the management API or metrics listener", {{"error", ol.error()}});
        return 1;
    }
    (*control)->set_message_handler(&server);

    edge::WorkerConfig wc;
    wc.tls = &*tls_ctx;
    wc.load = &board;
    wc.tunnel_addr = *tunnel_addr;
    wc.http_addr = *http_addr;
    if (certs) {
        wc.https_addr = *https_addr;
        wc.certs = certs;
    }
    wc.https_redirect = *redirect;
    wc.control = control->get();
    // The client's out-queue must hold one stream window beyond its high-water mark.
    wc.tunnel.h2.stream_window = 512 << 10;
    wc.public_conn.high_water = 1 << 20;
    wc.connector_wait = cfg.connector_wait;
    for (const std::string& t : cfg.tcp_listen) {
        size_t eq = t.find('=');
        auto addr = net::SockAddr::parse(eq == std::string::npos ? "" : t.substr(0, eq));
        std::string host = eq == std::string::npos ? "" : to_lower(t.substr(eq + 1));
        if (eq == std::string::npos || !addr || host.empty()) {
            log::error("Bad --tcp-listen (expected ADDR=HOSTNAME, e.g. 0.0.0.0:2222=ssh.example.com)",
                       {{"value", t}});
            return 2;
        }
        wc.tcp_services.push_back({*addr, host});
    }
    wc.tunnel.ping_interval = cfg.ping_interval;
    wc.tunnel.ping_timeout = cfg.ping_timeout;
    wc.public_conn.out_cap = 2 << 20;
    std::vector<std::unique_ptr<edge::Worker>> workers(
        go.threads ? go.threads : std::thread::hardware_concurrency() + 64);
    std::vector<std::string> errors(workers.size());
    auto started = group.start([&](reactor::Reactor& r) {
        auto w = edge::Worker::start(r, wc);
        if (!w) {
            errors[r.index()] = w.error().message();
            return;
        }
        workers[r.index()] = std::move(*w);
    });
    if (!started) {
        log::error("Cannot start the reactors", {{"error", started.error().message()}});
        return 1;
    }
    for (uint32_t i = 0; i < group.size(); i++) {
        if (!workers[i]) {
            log::error("Cannot open the edge's listeners", {{"tunnel-listen", cfg.tunnel_listen},
                                                            {"http-listen", cfg.http_listen},
                                                            {"https-listen", cfg.https_listen},
                                                            {"error", errors[i]}});
            group.stop();
            return 1;
        }
    }
    server.set_workers(group.size());
    server.set_worker_list(&workers);
    server.refresh_routes();

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    struct sigaction hup {};
    hup.sa_handler = on_reload;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, nullptr);
    signal(SIGPIPE, SIG_IGN);

    log::info("Tunnel listener ready (TLS)",
              {{"address", cfg.tunnel_listen}, {"workers", static_cast<int>(group.size())}});
    log::info("Public HTTP listener ready", {{"address", cfg.http_listen}});
    if (certs) {
        log::info("Public HTTPS listener ready",
                  {{"address", cfg.https_listen},
                   {"certificates", static_cast<int>(cfg.certificates.size())}});
    } else {
        log::info("Public HTTPS listener off: no certificate configured (--tls-cert/--tls-key)");
    }
    for (const edge::TcpService& t : wc.tcp_services) {
        log::info("TCP listener ready", {{"address", t.addr.str()}, {"hostname", t.hostname}});
    }
    log::info("Management API ready", {{"address", cfg.api_listen}, {"token", dir + "/api-token"}});
    if (!cfg.metrics.empty()) {
        log::info("Starting metrics server", {{"address", cfg.metrics + "/metrics"}});
    }
    // Every listener is bound and accepting (the workers opened them in start()), so systemd
    // (Type=notify) may start what depends on this edge.
    sd_notify_or_warn("READY=1\nSTATUS=Serving location " + cfg.location + " on " +
                      cfg.http_listen + ", tunnels on " + cfg.tunnel_listen);
    if (auto t = (*control)->add_timer(Millis{100}, &server); !t) {
        group.stop();
        return 1;
    }
    (*control)->run();
    group.stop();
    // Messages still in the mailboxes when the reactors stopped own payloads: free them.
    reactor::Message left;
    for (uint32_t from = 0; from < group.size(); from++) {
        for (uint32_t to = 0; to < group.size(); to++) {
            while (group.queue(from, to).pop(&left)) {
                edge::Worker::discard_message(left);
            }
        }
    }
    workers.clear();
    log::info("Edge stopped", {{"location", cfg.location}});
    return 0;
}

}  // namespace cfd::control
