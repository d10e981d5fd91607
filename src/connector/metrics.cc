#include "cfd/connector/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "cfd/connector/proxy.h"
#include "cfd/connector/tunnel_session.h"
#include "cfd/core/prometheus.h"
#include "cfd/core/version.h"

namespace cfd::connector {

void add_proxy_stats(MetricsSnapshot& s, const ProxyStats& p) {
    constexpr auto kRelaxed = std::memory_order_relaxed;
    s.total_requests += p.requests.load(kRelaxed);
    s.request_errors += p.errors.load(kRelaxed);
    s.concurrent_requests += p.concurrent.load(kRelaxed);
    for (int code = ProxyStats::kMinStatus; code <= ProxyStats::kMaxStatus; code++) {
        if (uint64_t n = p.responses(code); n > 0) {
            s.responses_by_code[code] += n;
        }
    }
}

ReadyAnswer ready_answer(const MetricsSnapshot& s) {
    // Draining wins over registered connections: the connections stay registered until the
    // edge confirms unregisterConnection, but a readiness probe must take this replica out of
    // rotation the moment the drain starts (story 10).
    bool ready = s.ready_connections > 0 && !s.draining;
    ReadyAnswer a;
    a.status = ready ? 200 : 503;
    a.body = "{\"status\":" + std::to_string(a.status) +
             ",\"readyConnections\":" + std::to_string(s.ready_connections) +
             ",\"connectorId\":\"" + s.connector_id.str() + "\"}";
    return a;
}

std::string render_metrics(const MetricsSnapshot& s) {
    prom::TextWriter w;
    w.family("cfdtunnel_tunnel_ha_connections", prom::Type::Gauge,
             "Number of active ha connections");
    w.sample("cfdtunnel_tunnel_ha_connections", static_cast<int64_t>(s.ready_connections));

    w.family("cfdtunnel_tunnel_total_requests", prom::Type::Counter,
             "Amount of requests proxied through all the tunnels");
    w.sample("cfdtunnel_tunnel_total_requests", s.total_requests);

    w.family("cfdtunnel_tunnel_concurrent_requests", prom::Type::Gauge,
             "Concurrent requests proxied through all the tunnels");
    w.sample("cfdtunnel_tunnel_concurrent_requests", s.concurrent_requests);

    w.family("cfdtunnel_tunnel_response_by_code", prom::Type::Counter,
             "Count of responses by HTTP status code");
    for (const auto& [code, n] : s.responses_by_code) {
        std::string c = std::to_string(code);
        w.sample("cfdtunnel_tunnel_response_by_code", n, {{"status_code", c}});
    }

    w.family("cfdtunnel_tunnel_request_errors", prom::Type::Counter,
             "Amount of errors due to proxying");
    w.sample("cfdtunnel_tunnel_request_errors", s.request_errors);

    w.family("cfdtunnel_tunnel_server_locations", prom::Type::Gauge,
             "Where each tunnel is connected to. 1 means current location, 0 means previous "
             "locations.");
    for (const auto& [index, loc] : s.server_locations) {
        std::string i = std::to_string(index);
        w.sample("cfdtunnel_tunnel_server_locations", 1, {{"connection_id", i},
                                                          {"edge_location", loc}});
    }

    w.family("cfdtunnel_tunnel_draining", prom::Type::Gauge,
             "1 once a shutdown signal started the drain");
    w.sample("cfdtunnel_tunnel_draining", s.draining ? 1 : 0);

    w.family("cfdtunnel_build_info", prom::Type::Gauge, "Build and version information");
    w.sample("cfdtunnel_build_info", 1, {{"version", kVersion}, {"arch", build_arch()}});

    if (s.resident_memory_bytes > 0) {
        w.family("process_resident_memory_bytes", prom::Type::Gauge,
                 "Resident memory size in bytes.");
        w.sample("process_resident_memory_bytes", s.resident_memory_bytes);
    }
    return w.take();
}

uint64_t resident_memory_bytes() {
    // statm: "size resident shared ..." in pages. One small read, on scrape only.
    int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    unsigned long long size = 0;
    unsigned long long resident = 0;
    if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) {
        return 0;
    }
    long page = ::sysconf(_SC_PAGESIZE);
    return page > 0 ? resident * static_cast<uint64_t>(page) : 0;
}

}  // namespace cfd::connector
