#include "cfd/connector/connector.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "cfd/core/log.h"

namespace cfd::connector {

namespace {

constexpr uint32_t kMsgDrain = 1;
constexpr uint32_t kMsgStop = 2;

// How long stop() waits for every connection to close before stopping the reactors anyway
// (they then close whatever is left themselves).
constexpr auto kStopWait = std::chrono::seconds(5);

}  // namespace

// What one reactor owns. Created before the group starts (TLS contexts load files), filled in
// on the reactor's own thread (the pool and the links belong to that thread).
struct Connector::Core final : reactor::MessageHandler {
    explicit Core(tls::Context c) : tls(std::move(c)) {}

    void on_message(reactor::Reactor&, const reactor::Message& m) override {
        for (auto& l : links) {
            if (m.tag == kMsgDrain) {
                l->drain();
            } else if (m.tag == kMsgStop) {
                l->stop();
            }
        }
    }

    tls::Context tls;
    // Counted by this core's proxies (every link's, across reconnects), read by the control
    // thread for /metrics.
    ProxyStats proxy_stats;
    std::unique_ptr<OriginPool> pool;
    std::vector<std::unique_ptr<EdgeLink>> links;
};

Connector::Connector(ConnectorOptions o) : opts_(std::move(o)) {}

Connector::~Connector() { stop(); }

Status Connector::start() {
    CFD_CHECK(opts_.router != nullptr && !opts_.edges.empty());
    uint32_t n = opts_.workers;
    if (n == 0) {
        long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? static_cast<uint32_t>(cpus) : 1;
    }
    // More reactors than connections would idle.
    n = std::max<uint32_t>(1, std::min(n, opts_.ha_connections));
    for (uint32_t i = 0; i < n; i++) {
        tls::ClientOptions co;
        co.ca_file = opts_.ca_file;
        auto ctx = tls::Context::client(co);
        if (!ctx) {
            return ctx.error();
        }
        cores_.push_back(std::make_unique<Core>(std::move(*ctx)));
    }
    reactor::GroupOptions go;
    go.threads = n;
    go.reactor.buf_count = 1024;
    group_ = std::make_unique<reactor::ReactorGroup>(go);
    auto s = group_->start([this, n](reactor::Reactor& r) {
        Core& core = *cores_[r.index()];
        r.set_message_handler(&core);
        core.pool = std::make_unique<OriginPool>(r);
        for (uint32_t i = r.index(); i < opts_.ha_connections; i += n) {
            TunnelIdentity id;
            id.account_tag = opts_.creds.account_tag;
            id.secret = opts_.creds.secret;
            id.tunnel_id = opts_.creds.tunnel_id;
            id.connector_id = opts_.connector_id;
            id.conn_index = static_cast<uint8_t>(i);
            EdgeLinkConfig cfg;
            cfg.edge = opts_.edges[i % opts_.edges.size()];
            cfg.server_name = opts_.server_name;
            cfg.dial_timeout = opts_.dial_timeout;
            cfg.silence_timeout = opts_.silence_timeout;
            cfg.backoff = opts_.backoff;
            cfg.proxy.stats = &core.proxy_stats;
            core.links.push_back(std::make_unique<EdgeLink>(r, *core.pool, core.tls, *opts_.router,
                                                            std::move(id), cfg, stats_));
        }
        for (auto& l : core.links) {
            l->start();
        }
    });
    if (!s) {
        group_.reset();
        return s;
    }
    return {};
}

void Connector::post_all(uint32_t tag) {
    if (!group_) {
        return;
    }
    for (uint32_t i = 0; i < group_->size(); i++) {
        reactor::Message m;
        m.tag = tag;
        // A full queue is retried: these messages are rare and must arrive.
        for (int tries = 0; tries < 1000; tries++) {
            auto r = group_->post(i, m);
            if (r || r.error().code != Errc::Busy) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
}

void Connector::drain() {
    draining_.store(true, std::memory_order_relaxed);
    post_all(kMsgDrain);
}

MetricsSnapshot Connector::metrics_snapshot() const {
    MetricsSnapshot s;
    s.connector_id = opts_.connector_id;
    s.ready_connections = stats_.registered.load(std::memory_order_relaxed);
    s.draining = draining();
    s.server_locations = stats_.locations();
    for (const auto& c : cores_) {
        add_proxy_stats(s, c->proxy_stats);
    }
    s.resident_memory_bytes = resident_memory_bytes();
    return s;
}

void Connector::stop() {
    if (stopped_ || !group_) {
        return;
    }
    stopped_ = true;
    post_all(kMsgStop);
    // The control thread may wait: it is not on the data path.
    auto deadline = std::chrono::steady_clock::now() + kStopWait;
    while (stats_.closed_for_good.load() < static_cast<int>(opts_.ha_connections) &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    group_->stop();
    // The reactors are gone: what the links and pools still hold refers to nothing live.
    cores_.clear();
}

}  // namespace cfd::connector
