#include "cfd/control/registrar.h"

#include <arpa/inet.h>

#include <set>

#include "cfd/core/log.h"

namespace cfd::control {

bool secrets_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    // No early exit: the time taken says nothing about where the first difference is.
    volatile unsigned char acc = 0;
    for (size_t i = 0; i < a.size(); i++) {
        acc = static_cast<unsigned char>(
            acc | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    }
    return acc == 0;
}

std::string ip_from_bytes(std::string_view raw) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (raw.size() == 4) {
        inet_ntop(AF_INET, raw.data(), buf, sizeof buf);
    } else if (raw.size() == 16) {
        // Go writes IPv4 addresses as IPv4-mapped IPv6 in 16 bytes.
        static const char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\xff', '\xff'};
        if (raw.substr(0, 12) == std::string_view(kMapped, 12)) {
            inet_ntop(AF_INET, raw.data() + 12, buf, sizeof buf);
        } else {
            inet_ntop(AF_INET6, raw.data(), buf, sizeof buf);
        }
    }
    return buf;
}

Registrar::Registrar(store::Store& store, RegistrarOptions opts)
    : store_(store), opts_(std::move(opts)) {}

namespace {
Decision refuse(std::string cause, bool retry, int64_t retry_after_ns = 0) {
    Decision d;
    d.error.cause = std::move(cause);
    d.error.should_retry = retry;
    d.error.retry_after_ns = retry_after_ns;
    return d;
}
}  // namespace

Decision Registrar::register_connection(const rpc::RegisterRequest& req, std::string_view peer_ip) {
    const std::string tunnel = req.tunnel_id.str();
    const std::string connector = req.options.client.client_id.str();
    auto t = store_.get_tunnel(req.tunnel_id);
    if (!t) {
        if (t.error().code != Errc::NotFound) {
            log::error("Store failed during registration",
                       {{"tunnelID", tunnel}, {"error", t.error().message()}});
            return refuse("edge store unavailable", true, 5'000'000'000);
        }
        log::warn("Refused tunnel connection: unknown tunnel",
                  {{"tunnelID", tunnel}, {"connectorID", connector}});
        return refuse(std::string(kCauseUnknownTunnel), false);
    }
    // Both compared, always: which one differed is not revealed by the timing.
    bool tag_ok = secrets_equal(t->account_tag, req.auth.account_tag);
    bool secret_ok = secrets_equal(t->secret, req.auth.tunnel_secret);
    if (!(tag_ok && secret_ok)) {
        log::warn("Refused tunnel connection: invalid tunnel secret",
                  {{"tunnelID", tunnel}, {"connectorID", connector}});
        return refuse(std::string(kCauseBadSecret), false);
    }
    auto conns = store_.list_connections(req.tunnel_id);
    if (!conns) {
        return refuse("edge store unavailable", true, 5'000'000'000);
    }
    std::set<Uuid> connectors;
    for (const auto& c : *conns) {
        connectors.insert(c.connector_id);
    }
    if (!connectors.count(req.options.client.client_id) &&
        static_cast<int64_t>(connectors.size()) >= opts_.max_connectors) {
        log::warn(
            "Refused tunnel connection: connector limit reached",
            {{"tunnelID", tunnel}, {"connectorID", connector}, {"limit", opts_.max_connectors}});
        return refuse("tunnel " + tunnel + " already has " + std::to_string(connectors.size()) +
                          " connectors, the limit of this edge (--max-connectors-per-tunnel)",
                      true, 30'000'000'000);
    }
    Decision d;
    d.row.conn_id = Uuid::random();
    d.row.tunnel_id = req.tunnel_id;
    d.row.connector_id = req.options.client.client_id;
    d.row.conn_index = req.conn_index;
    d.row.location = opts_.location;
    d.row.edge_id = opts_.edge_id;
    d.row.version = req.options.client.version;
    d.row.arch = req.options.client.arch;
    d.row.origin_ip =
        peer_ip.empty() ? ip_from_bytes(req.options.origin_local_ip) : std::string(peer_ip);
    d.row.opened_at = store::now_micros();
    if (auto st = store_.add_connection(d.row); !st) {
        log::error("Store failed during registration",
                   {{"tunnelID", tunnel}, {"error", st.error().message()}});
        return refuse("edge store unavailable", true, 5'000'000'000);
    }
    live_.insert(std::string(d.row.conn_id.raw()));
    d.ok = true;
    d.details.uuid = d.row.conn_id;
    d.details.location_name = opts_.location;
    log::info("Registered tunnel connection", {{"tunnelID", tunnel},
                                               {"connectorID", connector},
                                               {"connIndex", static_cast<int>(req.conn_index)},
                                               {"connection", d.row.conn_id.str()},
                                               {"originIP", d.row.origin_ip},
                                               {"version", d.row.version}});
    return d;
}

void Registrar::connection_closed(const Uuid& conn_id) {
    if (live_.erase(std::string(conn_id.raw())) == 0) {
        return;
    }
    if (auto st = store_.remove_connection(conn_id); !st) {
        log::warn("Could not remove a connection from the store",
                  {{"connection", conn_id.str()}, {"error", st.error().message()}});
    }
}

Status Registrar::heartbeat() {
    return store_.heartbeat(opts_.edge_id, opts_.location);
}

void Registrar::shutdown() {
    live_.clear();
    if (auto st = store_.forget_edge(opts_.edge_id); !st) {
        log::warn("Could not remove this edge's connections", {{"error", st.error().message()}});
    }
}

}  // namespace cfd::control
