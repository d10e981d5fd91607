// Prometheus text exposition format 0.0.4, written by hand: the families a process exposes are a
// few dozen lines, so a registry would cost more than it saves. Both roles use it: the connector's
// /metrics (src/connector/metrics.cc) and, later, the edge's (src/control/edge_server.cc).
//
//     prom::TextWriter w;
//     w.family("cfdtunnel_tunnel_total_requests", prom::Type::Counter, "Requests proxied.");
//     w.sample("cfdtunnel_tunnel_total_requests", 42);
//     w.sample("cfdtunnel_tunnel_response_by_code", 40, {{"status_code", "200"}});
//     respond(200, prom::kContentType, w.take());
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace cfd::prom {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type : uint8_t { Counter, Gauge, Untyped };

using Label = std::pair<std::string_view, std::string_view>;
using Labels = std::initializer_list<Label>;

class TextWriter {
public:
    // The "# HELP" and "# TYPE" lines of a family; its samples follow.
    void family(std::string_view name, Type type, std::string_view help);
    void sample(std::string_view name, uint64_t value, Labels labels = {});
    void sample(std::string_view name, int64_t value, Labels labels = {});
    void sample(std::string_view name, double value, Labels labels = {});
    // Disambiguates plain int literals and counts.
    void sample(std::string_view name, int value, Labels labels = {}) {
        sample(name, static_cast<int64_t>(value), labels);
    }

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void start_sample(std::string_view name, Labels labels);
    std::string out_;
};

// Label values escape backslash, double quote and newline; HELP text escapes backslash and
// newline (the format's two escaping rules).
std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);
// A metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]* (label names without ':').
bool valid_metric_name(std::string_view n);

}  // namespace cfd::prom
