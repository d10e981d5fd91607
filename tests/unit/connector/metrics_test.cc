// The connector's /ready and /metrics answers, from snapshots built by hand (sans I/O).
#include <doctest/doctest.h>

#include "cfd/connector/metrics.h"
#include "cfd/connector/proxy.h"

using namespace cfd;
using namespace cfd::connector;

namespace {

MetricsSnapshot snapshot(int ready, bool draining) {
    MetricsSnapshot s;
    s.connector_id = *Uuid::parse("14e2e624-0d32-4a21-a88c-64acf9484dac");
    s.ready_connections = ready;
    s.draining = draining;
    return s;
}

}  // namespace

TEST_CASE("metrics: /ready is 503 until a connection registers, 200 after, 503 once draining") {
    const std::string id = "\"connectorId\":\"14e2e624-0d32-4a21-a88c-64acf9484dac\"}";
    ReadyAnswer none = ready_answer(snapshot(0, false));
    CHECK(none.status == 503);
    CHECK(none.body == "{\"status\":503,\"readyConnections\":0," + id);

    ReadyAnswer four = ready_answer(snapshot(4, false));
    CHECK(four.status == 200);
    CHECK(four.body == "{\"status\":200,\"readyConnections\":4," + id);

    ReadyAnswer one = ready_answer(snapshot(1, false));
    CHECK(one.status == 200);

    // The connections are still registered while the edge answers unregisterConnection, but
    // the replica leaves the rotation at once.
    ReadyAnswer draining = ready_answer(snapshot(4, true));
    CHECK(draining.status == 503);
    CHECK(draining.body == "{\"status\":503,\"readyConnections\":4," + id);
}

TEST_CASE("metrics: per-core proxy counters add up") {
    ProxyStats a;
    ProxyStats b;
    bump(a.requests, 3);
    bump(b.requests, 4);
    bump(a.errors);
    bump(a.concurrent, 2);
    bump(b.concurrent, 1);
    bump(a.by_status[200 - ProxyStats::kMinStatus], 2);
    bump(b.by_status[200 - ProxyStats::kMinStatus], 3);
    bump(b.by_status[502 - ProxyStats::kMinStatus]);
    MetricsSnapshot s;
    add_proxy_stats(s, a);
    add_proxy_stats(s, b);
    CHECK(s.total_requests == 7);
    CHECK(s.request_errors == 1);
    CHECK(s.concurrent_requests == 3);
    CHECK(s.responses_by_code.size() == 2);
    CHECK(s.responses_by_code[200] == 5);
    CHECK(s.responses_by_code[502] == 1);
}

TEST_CASE("metrics: Prometheus text has cloudflared's names, HELP and TYPE lines") {
    MetricsSnapshot s = snapshot(4, false);
    s.total_requests = 12;
    s.request_errors = 2;
    s.concurrent_requests = 1;
    s.responses_by_code[200] = 9;
    s.responses_by_code[502] = 2;
    s.server_locations[0] = "DFW";
    s.server_locations[1] = "MCI";
    s.resident_memory_bytes = 4096;
    std::string t = render_metrics(s);
    auto has = [&](std::string_view line) {
        INFO(line);
        CHECK(t.find(std::string(line) + "\n") != std::string::npos);
    };
    has("# TYPE cfdtunnel_tunnel_ha_connections gauge");
    has("cfdtunnel_tunnel_ha_connections 4");
    has("# TYPE cfdtunnel_tunnel_total_requests counter");
    has("cfdtunnel_tunnel_total_requests 12");
    has("# TYPE cfdtunnel_tunnel_concurrent_requests gauge");
    has("cfdtunnel_tunnel_concurrent_requests 1");
    has("# TYPE cfdtunnel_tunnel_response_by_code counter");
    has("cfdtunnel_tunnel_response_by_code{status_code=\"200\"} 9");
    has("cfdtunnel_tunnel_response_by_code{status_code=\"502\"} 2");
    has("# TYPE cfdtunnel_tunnel_request_errors counter");
    has("cfdtunnel_tunnel_request_errors 2");
    has("# TYPE cfdtunnel_tunnel_server_locations gauge");
    has("cfdtunnel_tunnel_server_locations{connection_id=\"0\",edge_location=\"DFW\"} 1");
    has("cfdtunnel_tunnel_server_locations{connection_id=\"1\",edge_location=\"MCI\"} 1");
    has("cfdtunnel_tunnel_draining 0");
    has("process_resident_memory_bytes 4096");
    CHECK(t.find("cfdtunnel_build_info{version=\"") != std::string::npos);
    // Every family has its HELP line right before its TYPE line, and every line ends.
    CHECK(t.back() == '\n');
    size_t types = 0;
    for (size_t at = t.find("# TYPE "); at != std::string::npos; at = t.find("# TYPE ", at + 1)) {
        types++;
        size_t prev = t.rfind('\n', at - 2);
        prev = prev == std::string::npos ? 0 : prev + 1;
        CHECK(t.compare(prev, 7, "# HELP ") == 0);
    }
    CHECK(types == 9);
}

TEST_CASE("metrics: no resident memory line when it is unknown; this process has some") {
    MetricsSnapshot s = snapshot(0, true);
    std::string t = render_metrics(s);
    CHECK(t.find("process_resident_memory_bytes") == std::string::npos);
    CHECK(t.find("cfdtunnel_tunnel_draining 1\n") != std::string::npos);
    CHECK(resident_memory_bytes() > 0);
}
