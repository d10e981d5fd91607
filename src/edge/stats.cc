#include "cfd/edge/stats.h"

#include "cfd/core/prometheus.h"
#include "cfd/core/version.h"

namespace cfd::edge {

std::string_view cause_name(ErrorCause c) {
    switch (c) {
    case ErrorCause::UnknownHost: return "unknown_host";
    case ErrorCause::NoConnector: return "no_connector";
    case ErrorCause::BadGateway: return "bad_gateway";
    case ErrorCause::Malformed: return "malformed";
    case ErrorCause::Unsupported: return "unsupported";
    case ErrorCause::Aborted: return "aborted";
    }
    return "unknown";
}

ErrorCause cause_of_status(int status) {
    switch (status) {
    case 404: return ErrorCause::UnknownHost;
    case 530: return ErrorCause::NoConnector;
    case 502: return ErrorCause::BadGateway;
    case 501: return ErrorCause::Unsupported;
    default: return ErrorCause::Malformed;  // 400, 413, 414, 431, 505: the parser's answers
    }
}

void count_response(EdgeStats& s, int status) {
    if (status < EdgeStats::kMinStatus || status > EdgeStats::kMaxStatus) {
        bump(s.other_status);
        return;
    }
    bump(s.by_status[static_cast<size_t>(status - EdgeStats::kMinStatus)]);
}

void add_stats(EdgeMetrics& m, const EdgeStats& s) {
    constexpr auto kRelaxed = std::memory_order_relaxed;
    m.have_workers = true;
    m.requests += s.requests.load(kRelaxed);
    m.request_bytes += s.request_bytes.load(kRelaxed);
    m.response_bytes += s.response_bytes.load(kRelaxed);
    m.concurrent += s.concurrent.load(kRelaxed);
    m.public_connections += s.public_connections.load(kRelaxed);
    m.relayed_out += s.relayed_out.load(kRelaxed);
    m.relayed_in += s.relayed_in.load(kRelaxed);
    m.retries += s.retries.load(kRelaxed);
    for (int code = EdgeStats::kMinStatus; code <= EdgeStats::kMaxStatus; code++) {
        if (uint64_t n = s.responses(code); n > 0) {
            m.responses_by_code[code] += n;
        }
    }
    if (uint64_t n = s.other_status.load(kRelaxed); n > 0) {
        m.responses_by_code[0] += n;
    }
    for (size_t i = 0; i < kErrorCauses; i++) {
        m.errors[i] += s.errors[i].load(kRelaxed);
    }
}

std::string render_metrics(const EdgeMetrics& m) {
    prom::TextWriter w;
    // The series with only `location` is the edge's total; one per tunnel follows.
    w.family("cfdtunnel_edge_tunnel_connections", prom::Type::Gauge,
             "Registered tunnel connections on this edge (location total, and per tunnel).");
    w.sample("cfdtunnel_edge_tunnel_connections", m.tunnel_connections, {{"location", m.location}});
    for (const auto& [tunnel, n] : m.tunnel_connections_by_tunnel) {
        w.sample("cfdtunnel_edge_tunnel_connections", n,
                 {{"location", m.location}, {"tunnel", tunnel}});
    }

    w.family("cfdtunnel_edge_registrations_total", prom::Type::Counter,
             "Registration calls answered.");
    w.sample("cfdtunnel_edge_registrations_total", m.registrations_accepted,
             {{"result", "accepted"}});
    w.sample("cfdtunnel_edge_registrations_total", m.registrations_refused,
             {{"result", "refused"}});

    if (m.have_workers) {
        w.family("cfdtunnel_edge_requests_total", prom::Type::Counter,
                 "Public requests answered or forwarded, malformed ones included.");
        w.sample("cfdtunnel_edge_requests_total", m.requests);

        w.family("cfdtunnel_edge_responses_total", prom::Type::Counter,
                 "Response heads sent to public clients by status code, the connectors' and "
                 "the edge's own.");
        for (const auto& [code, n] : m.responses_by_code) {
            std::string c = code == 0 ? "other" : std::to_string(code);
            w.sample("cfdtunnel_edge_responses_total", n, {{"code", c}});
        }

        w.family("cfdtunnel_edge_errors_total", prom::Type::Counter,
                 "Requests the edge answered itself, or whose response it cut, by cause.");
        for (size_t i = 0; i < kErrorCauses; i++) {
            w.sample("cfdtunnel_edge_errors_total", m.errors[i],
                     {{"cause", cause_name(static_cast<ErrorCause>(i))}});
        }

        w.family("cfdtunnel_edge_concurrent_requests", prom::Type::Gauge,
                 "Public requests between their head and the end of their answer.");
        w.sample("cfdtunnel_edge_concurrent_requests", m.concurrent);

        w.family("cfdtunnel_edge_public_connections", prom::Type::Gauge,
                 "Public client connections open.");
        w.sample("cfdtunnel_edge_public_connections", m.public_connections);

        w.family("cfdtunnel_edge_request_bytes_total", prom::Type::Counter,
                 "Bytes received from public clients (heads and bodies).");
        w.sample("cfdtunnel_edge_request_bytes_total", m.request_bytes);

        w.family("cfdtunnel_edge_response_bytes_total", prom::Type::Counter,
                 "Bytes sent to public clients (heads and bodies).");
        w.sample("cfdtunnel_edge_response_bytes_total", m.response_bytes);

        w.family("cfdtunnel_edge_retries_total", prom::Type::Counter,
                 "Requests tried again on another tunnel stream.");
        w.sample("cfdtunnel_edge_retries_total", m.retries);

        w.family("cfdtunnel_edge_relayed_streams_total", prom::Type::Counter,
                 "Requests whose tunnel connection was on another core, relayed through the "
                 "mailboxes.");
        w.sample("cfdtunnel_edge_relayed_streams_total", m.relayed_out, {{"side", "sent"}});
        w.sample("cfdtunnel_edge_relayed_streams_total", m.relayed_in, {{"side", "received"}});
    }

    w.family("cfdtunnel_edge_draining", prom::Type::Gauge,
             "1 once a shutdown signal started the drain");
    w.sample("cfdtunnel_edge_draining", m.draining ? 1 : 0);

    w.family("cfdtunnel_build_info", prom::Type::Gauge, "Build and version information");
    w.sample("cfdtunnel_build_info", 1, {{"version", kVersion}, {"arch", m.arch}});

    if (m.resident_memory_bytes > 0) {
        w.family("process_resident_memory_bytes", prom::Type::Gauge,
                 "Resident memory size in bytes.");
        w.sample("process_resident_memory_bytes", m.resident_memory_bytes);
    }
    return w.take();
}

ReadyAnswer ready_answer(const EdgeMetrics& m) {
    ReadyAnswer a;
    a.status = m.draining ? 503 : 200;
    a.body = "{\"status\":" + std::to_string(a.status) +
             ",\"readyConnections\":" + std::to_string(m.tunnel_connections) + ",\"location\":\"" +
             m.location + "\"}";
    return a;
}

}  // namespace cfd::edge
