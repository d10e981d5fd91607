// The connector process: a ReactorGroup (one reactor per worker), the tunnel connections spread
// over it (connection i on core i mod N, to edge address i mod count), each core with its own
// TLS context and origin pool. The control thread (the caller) starts it, watches its
// counters, drains and stops it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cfd/connector/credentials.h"
#include "cfd/connector/edge_link.h"
#include "cfd/connector/metrics.h"
#include "cfd/connector/origin.h"
#include "cfd/core/result.h"
#include "cfd/net/sock_addr.h"
#include "cfd/reactor/group.h"

namespace cfd::connector {

struct ConnectorOptions {
    Credentials creds;
    Uuid connector_id;
    std::vector<net::SockAddr> edges;  // at least one
    uint32_t ha_connections = 4;
    uint32_t workers = 0;  // 0: one per CPU
    std::string ca_file;   // empty: the system pool
    std::string server_name{tls::kTunnelServerName};
    Millis dial_timeout{15000};
    Millis silence_timeout{10000};  // see EdgeLinkConfig
    net::BackoffPolicy backoff{};
    const Router* router = nullptr;  // must outlive the connector
};

class Connector {
public:
    explicit Connector(ConnectorOptions o);
    ~Connector();
    Connector(const Connector&) = delete;
    Connector& operator=(const Connector&) = delete;

    // TLS contexts (errors name the CA file), then the reactors and the connections.
    [[nodiscard]] Status start();
    // Every connection calls unregisterConnection and closes once its streams are done.
    // draining() turns true at once (readiness answers 503 from then on).
    void drain();
    // Every connection closes now; returns once all are closed (bounded by a few seconds),
    // then stops the reactors.
    void stop();

    const ConnectorStats& stats() const { return stats_; }
    uint32_t connections() const { return opts_.ha_connections; }
    uint32_t workers() const { return group_ ? group_->size() : 0; }
    bool draining() const { return draining_.load(std::memory_order_relaxed); }
    const Uuid& connector_id() const { return opts_.connector_id; }

    // The counters /ready and /metrics answer from: every core's proxy counters summed (relaxed
    // loads; the reactors keep counting meanwhile). Control thread only, between start() and
    // stop() (the cores must not come or go meanwhile).
    MetricsSnapshot metrics_snapshot() const;

private:
    struct Core;
    void post_all(uint32_t tag);

    ConnectorOptions opts_;
    ConnectorStats stats_;
    std::unique_ptr<reactor::ReactorGroup> group_;
    std::vector<std::unique_ptr<Core>> cores_;
    bool stopped_ = false;
    std::atomic<bool> draining_{false};
};

}  // namespace cfd::connector
