// What the connector's readiness and metrics server answers (DESIGN.md §5 Observability, story
// 10), sans I/O: a snapshot of the counters in, response bodies out. The control thread takes the
// snapshot (Connector::metrics_snapshot()) and serves it with control::HttpServer.
//
//   /ready        200 {"status":200,"readyConnections":N,"connectorId":"<uuid>"} with N >= 1
//                 registered connections and no drain started; otherwise 503 with the same shape
//   /healthcheck  200 OK
//   /metrics      Prometheus text: cloudflared's tunnel_* names under the cfdtunnel_ prefix
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/uuid.h"

namespace cfd::connector {

struct ProxyStats;

struct MetricsSnapshot {
    Uuid connector_id;
    int ready_connections = 0;  // registered with the edge now
    bool draining = false;      // SIGTERM/SIGINT came: the edge is told to stop sending requests

    // Sums over every core's ProxyStats.
    uint64_t total_requests = 0;
    uint64_t request_errors = 0;
    int64_t concurrent_requests = 0;
    std::map<int, uint64_t> responses_by_code;  // only codes seen

    // The edge location each registered connection serves, by connection index.
    std::map<uint32_t, std::string> server_locations;

    uint64_t resident_memory_bytes = 0;  // 0: unknown
};

// Adds one core's counters.
void add_proxy_stats(MetricsSnapshot& s, const ProxyStats& p);

struct ReadyAnswer {
    int status = 503;
    std::string body;  // JSON
};
ReadyAnswer ready_answer(const MetricsSnapshot& s);

// Prometheus text format 0.0.4 (content type prom::kContentType).
std::string render_metrics(const MetricsSnapshot& s);

// This process's resident set size, from /proc/self/statm; 0 when unreadable.
uint64_t resident_memory_bytes();

}  // namespace cfd::connector
