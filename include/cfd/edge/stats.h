// The edge's counters (DESIGN.md §5 Observability, issue 4) and what its metrics listener
// answers, sans I/O.
//
// Every worker owns one EdgeStats, written only by its own thread with a relaxed load and store
// (bump(): no locked instruction on the data path); the control thread reads every core's with
// relaxed loads when a scraper asks, adds them up (add_stats) into an EdgeMetrics, together with
// what it knows itself (tunnel connections per tunnel, registrations), and renders the text.
//
//   /metrics      Prometheus text (render_metrics)
//   /ready        200 {"status":200,"readyConnections":N,"location":"DFW"}; 503 with
//                 "status":503 while the edge drains (ready_answer)
//   /healthcheck  200 OK
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace cfd::edge {

// Why the edge answered a public request itself, or cut its response (errors_total{cause}).
enum class ErrorCause : uint8_t {
    UnknownHost,  // 404: no route for the Host
    NoConnector,  // 530 (error 1033): the tunnel has no connection here
    BadGateway,   // 502: no stream could carry the request, or the connector's answer was unusable
    Malformed,    // 400, 413, 414, 431, 505...: the request could not be parsed or was too big
    Unsupported,  // 501: upgrades, CONNECT, unknown transfer codings
    Aborted,      // the response was cut after its head (stream reset, short or long body)
};
inline constexpr size_t kErrorCauses = 6;
std::string_view cause_name(ErrorCause c);
// The cause of a local answer with `status` (the edge answers only the statuses above).
ErrorCause cause_of_status(int status);

// One core's counters. Written by its worker's thread only, read by any thread.
struct EdgeStats {
    static constexpr int kMinStatus = 100;
    static constexpr int kMaxStatus = 599;

    std::atomic<uint64_t> requests{0};           // public requests answered or forwarded
    std::atomic<uint64_t> request_bytes{0};      // bytes read from public clients (heads, bodies)
    std::atomic<uint64_t> response_bytes{0};     // bytes queued to public clients
    std::atomic<int64_t> concurrent{0};          // requests between their head and their answer
    std::atomic<int64_t> public_connections{0};  // public client connections open
    std::atomic<uint64_t> relayed_out{0};        // streams sent to another core's connection
    std::atomic<uint64_t> relayed_in{0};         // streams other cores sent here
    std::atomic<uint64_t> retries{0};            // requests tried again on another stream
    // Response heads sent to clients by status, the connector's and the edge's own.
    std::array<std::atomic<uint64_t>, kMaxStatus - kMinStatus + 1> by_status{};
    std::atomic<uint64_t> other_status{0};  // a connector's status above 599
    std::array<std::atomic<uint64_t>, kErrorCauses> errors{};

    uint64_t responses(int status) const {
        return status < kMinStatus || status > kMaxStatus
                   ? 0
                   : by_status[static_cast<size_t>(status - kMinStatus)].load(
                         std::memory_order_relaxed);
    }
    uint64_t errors_of(ErrorCause c) const {
        return errors[static_cast<size_t>(c)].load(std::memory_order_relaxed);
    }
};

// One more on a single-writer counter: a plain add published with a relaxed store, no lock
// prefix (the only writer is the owning core; readers see a recent value).
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void bump(std::atomic<int64_t>& c, int64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
// A response head with `status` went to a client.
void count_response(EdgeStats& s, int status);
inline void count_error(EdgeStats& s, ErrorCause c) {
    bump(s.errors[static_cast<size_t>(c)]);
}

// The same through a session's optional counters: a null `s` (nobody counts) costs one test.
inline void add(EdgeStats* s, std::atomic<uint64_t> EdgeStats::*c, uint64_t n = 1) {
    if (s != nullptr) {
        bump(s->*c, n);
    }
}
inline void add(EdgeStats* s, std::atomic<int64_t> EdgeStats::*c, int64_t n) {
    if (s != nullptr) {
        bump(s->*c, n);
    }
}
inline void add_error(EdgeStats* s, ErrorCause c) {
    if (s != nullptr) {
        count_error(*s, c);
    }
}

// Everything /metrics and /ready show, summed over the cores plus the control thread's figures.
struct EdgeMetrics {
    std::string location;
    bool draining = false;
    uint64_t tunnel_connections = 0;  // registered on this edge, every tunnel
    std::map<std::string, uint64_t> tunnel_connections_by_tunnel;  // tunnel UUID (text)
    uint64_t registrations_accepted = 0;
    uint64_t registrations_refused = 0;

    bool have_workers = false;  // the per-core figures below are known
    uint64_t requests = 0;
    uint64_t request_bytes = 0;
    uint64_t response_bytes = 0;
    int64_t concurrent = 0;
    int64_t public_connections = 0;
    uint64_t relayed_out = 0;
    uint64_t relayed_in = 0;
    uint64_t retries = 0;
    std::map<int, uint64_t> responses_by_code;  // only codes seen; 0 stands for "other"
    std::array<uint64_t, kErrorCauses> errors{};

    std::string arch;                    // build_info's arch label (connector::build_arch())
    uint64_t resident_memory_bytes = 0;  // 0: unknown
};

// Adds one core's counters (relaxed loads).
void add_stats(EdgeMetrics& m, const EdgeStats& s);

// Prometheus text format 0.0.4 (content type prom::kContentType).
std::string render_metrics(const EdgeMetrics& m);

struct ReadyAnswer {
    int status = 200;
    std::string body;  // JSON
};
// 503 while draining, 200 otherwise (even with no tunnel connection: the edge itself is up).
ReadyAnswer ready_answer(const EdgeMetrics& m);

}  // namespace cfd::edge
