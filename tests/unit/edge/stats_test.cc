// The edge's counters (cfd/edge/stats.h): the text /metrics renders, /ready's answer, and what a
// PublicSession counts when it proxies, answers itself or cuts a response, on a real TunnelConn
// and a connector-like peer (public_doubles.h, edge_test_util.h).
#include <doctest/doctest.h>

#include "cfd/edge/public_session.h"
#include "cfd/edge/routes.h"
#include "cfd/edge/stats.h"
#include "edge_test_util.h"
#include "public_doubles.h"

using namespace cfd;
using namespace cfd::edge;
using namespace cfd::edge::test;

namespace {


// A registered tunnel connection and a counted public session on it.
struct Rig {
    Owner owner;
    Connector conn;
    std::unique_ptr<TunnelConn> edge;
    Router router;
    EdgeStats stats;
    PublicOptions opts;
    Io io;
    std::unique_ptr<PublicSession> pub;

    Rig() {
        conn.set_request("acct", "secret", Uuid::random());
        edge = std::make_unique<TunnelConn>(server_ctx(), owner, t0());
        REQUIRE(pump(*edge, conn));
        REQUIRE(owner.calls.size() == 1);
        rpc::ConnectionDetails d;
        d.uuid = Uuid::random();
        d.location_name = "DFW";
        edge->accept_registration(owner.calls[0], d);
        REQUIRE(pump(*edge, conn));
        REQUIRE(edge->registered());
        router.table.add("app.example.com", Uuid::random());
        router.conn = edge.get();
        opts.stats = &stats;
        pub = std::make_unique<PublicSession>(router, io, opts);
    }
    ~Rig() { pub.reset(); }
    void run() { REQUIRE(pump(*edge, conn)); }
};

uint64_t load(const std::atomic<uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
}
int64_t load(const std::atomic<int64_t>& a) {
    return a.load(std::memory_order_relaxed);
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("edge stats: causes of the edge's own answers") {
    CHECK(cause_of_status(404) == ErrorCause::UnknownHost);
    CHECK(cause_of_status(530) == ErrorCause::NoConnector);
    CHECK(cause_of_status(502) == ErrorCause::BadGateway);
    CHECK(cause_of_status(501) == ErrorCause::Unsupported);
    CHECK(cause_of_status(400) == ErrorCause::Malformed);
    CHECK(cause_of_status(431) == ErrorCause::Malformed);
    CHECK(cause_name(ErrorCause::UnknownHost) == "unknown_host");
    CHECK(cause_name(ErrorCause::NoConnector) == "no_connector");
    CHECK(cause_name(ErrorCause::Aborted) == "aborted");
}

TEST_CASE("edge stats: cores are summed, and the text names every family") {
    EdgeStats a, b;
    bump(a.requests, 3);
    bump(b.requests, 4);
    bump(a.request_bytes, 100);
    bump(b.response_bytes, 250);
    bump(a.concurrent, 2);
    bump(b.concurrent, -1);
    bump(a.public_connections, 5);
    bump(b.retries);
    bump(a.relayed_out);
    bump(b.relayed_in, 2);
    count_response(a, 200);
    count_response(b, 200);
    count_response(b, 404);
    count_response(b, 777);  // a connector's odd status
    count_error(b, ErrorCause::UnknownHost);
    count_error(a, ErrorCause::NoConnector);
    count_error(b, ErrorCause::NoConnector);
    CHECK(a.responses(200) == 1);
    CHECK(b.errors_of(ErrorCause::NoConnector) == 1);

    EdgeMetrics m;
    m.location = "DFW";
    m.tunnel_connections = 3;
    m.tunnel_connections_by_tunnel["11111111-2222-3333-4444-555555555555"] = 2;
    m.tunnel_connections_by_tunnel["66666666-2222-3333-4444-555555555555"] = 1;
    m.registrations_accepted = 3;
    m.registrations_refused = 1;
    m.arch = "linux_amd64";
    m.resident_memory_bytes = 4096;
    add_stats(m, a);
    add_stats(m, b);
    CHECK(m.requests == 7);
    CHECK(m.concurrent == 1);

    std::string t = render_metrics(m);
    CAPTURE(t);
    CHECK(has_line(t, "# TYPE cfdtunnel_edge_requests_total counter"));
    CHECK(t.find("# HELP cfdtunnel_edge_requests_total ") != std::string::npos);
    CHECK(has_line(t, "cfdtunnel_edge_requests_total 7"));
    CHECK(has_line(t, "cfdtunnel_edge_request_bytes_total 100"));
    CHECK(has_line(t, "cfdtunnel_edge_response_bytes_total 250"));
    CHECK(has_line(t, "# TYPE cfdtunnel_edge_concurrent_requests gauge"));
    CHECK(has_line(t, "cfdtunnel_edge_concurrent_requests 1"));
    CHECK(has_line(t, "# TYPE cfdtunnel_edge_public_connections gauge"));
    CHECK(has_line(t, "cfdtunnel_edge_public_connections 5"));
    CHECK(has_line(t, "cfdtunnel_edge_retries_total 1"));
    CHECK(has_line(t, "cfdtunnel_edge_relayed_streams_total{side=\"sent\"} 1"));
    CHECK(has_line(t, "cfdtunnel_edge_relayed_streams_total{side=\"received\"} 2"));
    CHECK(has_line(t, "cfdtunnel_edge_responses_total{code=\"200\"} 2"));
    CHECK(has_line(t, "cfdtunnel_edge_responses_total{code=\"404\"} 1"));
    CHECK(has_line(t, "cfdtunnel_edge_responses_total{code=\"other\"} 1"));
    CHECK(t.find("code=\"530\"") == std::string::npos);  // only codes seen
    CHECK(has_line(t, "cfdtunnel_edge_errors_total{cause=\"unknown_host\"} 1"));
    CHECK(has_line(t, "cfdtunnel_edge_errors_total{cause=\"no_connector\"} 2"));
    CHECK(has_line(t, "cfdtunnel_edge_errors_total{cause=\"malformed\"} 0"));
    CHECK(has_line(t, "cfdtunnel_edge_tunnel_connections{location=\"DFW\"} 3"));
    CHECK(has_line(t, "cfdtunnel_edge_tunnel_connections{location=\"DFW\",tunnel=\"11111111-2222-"
                      "3333-4444-555555555555\"} 2"));
    CHECK(has_line(t, "cfdtunnel_edge_registrations_total{result=\"accepted\"} 3"));
    CHECK(has_line(t, "cfdtunnel_edge_registrations_total{result=\"refused\"} 1"));
    CHECK(t.find("cfdtunnel_build_info{version=\"") != std::string::npos);
    CHECK(t.find("arch=\"linux_amd64\"} 1\n") != std::string::npos);
    CHECK(has_line(t, "process_resident_memory_bytes 4096"));
    CHECK(has_line(t, "cfdtunnel_edge_draining 0"));

    // Without workers (none started yet) the per-core families are left out.
    EdgeMetrics bare;
    bare.location = "MCI";
    std::string b2 = render_metrics(bare);
    CHECK(b2.find("cfdtunnel_edge_requests_total") == std::string::npos);
    CHECK(has_line(b2, "cfdtunnel_edge_tunnel_connections{location=\"MCI\"} 0"));
}

TEST_CASE("edge stats: /ready is 200 with the connection count, 503 while draining") {
    EdgeMetrics m;
    m.location = "DFW";
    m.tunnel_connections = 4;
    ReadyAnswer a = ready_answer(m);
    CHECK(a.status == 200);
    CHECK(a.body == R"({"status":200,"readyConnections":4,"location":"DFW"})");
    m.tunnel_connections = 0;
    CHECK(ready_answer(m).status == 200);
    m.draining = true;
    a = ready_answer(m);
    CHECK(a.status == 503);
    CHECK(a.body == R"({"status":503,"readyConnections":0,"location":"DFW"})");
}

TEST_CASE("edge stats: a public session counts requests, codes, bytes and its gauges") {
    Rig r;
    CHECK(load(r.stats.public_connections) == 1);
    int n = 0;
    r.conn.on_request_hook = [&](int32_t id) {
        n++;
        r.conn.respond(id, 200, {{"Content-Length", "5"}}, true);
        r.conn.write(id, "hello", true);
    };
    std::string fed;
    const std::string get = "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        r.pub->feed(get);
        fed += get;
        r.run();
    }
    CHECK(n == 3);
    CHECK(load(r.stats.requests) == 3);
    CHECK(r.stats.responses(200) == 3);
    CHECK(load(r.stats.concurrent) == 0);
    CHECK(load(r.stats.request_bytes) == fed.size());
    CHECK(load(r.stats.response_bytes) == r.io.out.size());
    CHECK(load(r.stats.response_bytes) > 3 * 5);

    // In flight between the head and the answer.
    r.conn.on_request_hook = [](int32_t) {};
    r.pub->feed(get);
    r.run();
    CHECK(load(r.stats.concurrent) == 1);
    REQUIRE(r.conn.requests.size() == 4);
    r.conn.respond(r.conn.requests[3], 204, {}, false);
    r.run();
    CHECK(load(r.stats.concurrent) == 0);
    CHECK(r.stats.responses(204) == 1);
    CHECK(load(r.stats.requests) == 4);

    // The edge's own answers, by cause.
    r.pub->feed("GET / HTTP/1.1\r\nHost: nowhere.example.org\r\n\r\n");
    r.router.conn = nullptr;
    r.pub->feed(get);
    CHECK(load(r.stats.requests) == 6);
    CHECK(r.stats.responses(404) == 1);
    CHECK(r.stats.responses(530) == 1);
    CHECK(r.stats.errors_of(ErrorCause::UnknownHost) == 1);
    CHECK(r.stats.errors_of(ErrorCause::NoConnector) == 1);
    CHECK(r.stats.errors_of(ErrorCause::Malformed) == 0);
    CHECK(load(r.stats.concurrent) == 0);

    {
        Io io2;
        PublicSession bad(r.router, io2, r.opts);
        CHECK(load(r.stats.public_connections) == 2);
        bad.feed("GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n");
        CHECK(r.stats.responses(400) == 1);
        Io io3;
        PublicSession big(r.router, io3, r.opts);
        big.feed("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(40000, 'x') + "\r\n\r\n");
        CHECK(r.stats.responses(431) == 1);
        CHECK(r.stats.errors_of(ErrorCause::Malformed) == 2);
        CHECK(load(r.stats.requests) == 8);  // heads that never parsed are requests too
    }
    CHECK(load(r.stats.public_connections) == 1);
    CHECK(load(r.stats.concurrent) == 0);
    r.pub.reset();
    CHECK(load(r.stats.public_connections) == 0);
}

TEST_CASE("edge stats: a reset before the response is a 502, after the head an abort") {
    {
        Rig r;
        r.conn.on_request_hook = [&](int32_t id) {
            REQUIRE(r.conn.h2->rst_stream(id, http2::kInternalError));
        };
        r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
        r.run();
        CHECK(r.stats.responses(502) == 1);
        CHECK(r.stats.errors_of(ErrorCause::BadGateway) == 1);
        CHECK(load(r.stats.concurrent) == 0);
    }
    {
        Rig r;
        r.conn.on_request_hook = [&](int32_t id) {
            r.conn.respond(id, 200, {{"Content-Length", "100"}}, true);
            r.conn.write(id, "partial", false);
        };
        r.pub->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
        r.run();
        CHECK(load(r.stats.concurrent) == 1);
        REQUIRE(r.conn.requests.size() == 1);
        REQUIRE(r.conn.h2->rst_stream(r.conn.requests[0], http2::kInternalError));
        r.run();
        CHECK(r.io.aborted);
        CHECK(r.stats.responses(200) == 1);
        CHECK(r.stats.errors_of(ErrorCause::Aborted) == 1);
        CHECK(load(r.stats.concurrent) == 0);
    }
}

TEST_CASE("edge stats: a session without counters counts nothing and works") {
    Rig r;
    Io io;
    PublicSession plain(r.router, io);  // PublicOptions{}: stats == nullptr
    plain.feed("GET / HTTP/1.1\r\nHost: nowhere.example.org\r\n\r\n");
    CHECK(io.out.rfind("HTTP/1.1 404", 0) == 0);
    CHECK(r.stats.responses(404) == 0);
    CHECK(load(r.stats.requests) == 0);
}
