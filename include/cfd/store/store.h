// Tunnel, route and live-connection records. Blocking calls: they run on the control thread,
// never on a reactor. Several edge processes (locations) may share one store; each writes its
// own connections and heartbeats, and rows of an edge whose heartbeat lapsed are not live.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/core/uuid.h"

namespace cfd::store {

// Microseconds since the Unix epoch.
using Micros = int64_t;
Micros now_micros();

struct Tunnel {
    Uuid id;
    std::string name;
    std::string account_tag;
    std::string secret;  // 32 raw bytes; never logged
    Micros created_at = 0;
    Micros deleted_at = 0;  // 0 while the tunnel exists
};

struct Route {
    std::string hostname;  // lower case; may start with "*."
    Uuid tunnel_id;
    Micros created_at = 0;
};

struct Connection {
    Uuid conn_id;       // the connection's UUID (ConnectionDetails.uuid)
    Uuid tunnel_id;
    Uuid connector_id;  // ClientInfo.clientId
    int conn_index = 0;
    std::string location;  // edge location name, e.g. DFW
    Uuid edge_id;          // the edge process holding it
    std::string version;
    std::string arch;
    std::string origin_ip;
    Micros opened_at = 0;
};

class Store {
public:
    virtual ~Store() = default;

    // Errc::Exists when a live tunnel has that name.
    virtual Result<Tunnel> create_tunnel(std::string_view name, std::string_view account_tag,
                                         std::string_view secret) = 0;
    // Live tunnels only; Errc::NotFound otherwise.
    virtual Result<Tunnel> get_tunnel(const Uuid& id) = 0;
    // By name, or by UUID text.
    virtual Result<Tunnel> find_tunnel(std::string_view name_or_id) = 0;
    virtual Result<std::vector<Tunnel>> list_tunnels(bool include_deleted) = 0;
    // Marks the tunnel deleted and removes its routes and connections.
    virtual Status delete_tunnel(const Uuid& id) = 0;

    // Errc::Exists when the hostname routes to another tunnel and !overwrite.
    virtual Status add_route(std::string_view hostname, const Uuid& tunnel_id, bool overwrite) = 0;
    virtual Status delete_route(std::string_view hostname) = 0;
    virtual Result<std::vector<Route>> list_routes() = 0;
    // Exact hostname first, then the wildcard one label up ("*.example.com").
    virtual Result<std::optional<Uuid>> resolve(std::string_view hostname) = 0;

    virtual Status add_connection(const Connection& c) = 0;
    virtual Status remove_connection(const Uuid& conn_id) = 0;
    // Live connections: rows of edges whose heartbeat is younger than the lease.
    virtual Result<std::vector<Connection>> list_connections(const Uuid& tunnel_id) = 0;
    // Tunnels with live connections at `location` held by edge processes other than
    // `except_edge`: during a restart of a location, the connectors about to move to it.
    virtual Result<std::vector<Uuid>> tunnels_at(std::string_view location,
                                                 const Uuid& except_edge) = 0;
    // Removes a tunnel's rows (or only one connector's); returns how many.
    virtual Result<int> cleanup_connections(const Uuid& tunnel_id,
                                            const std::optional<Uuid>& connector_id) = 0;

    // Every edge process calls this every few seconds; it also drops rows of edges gone silent.
    virtual Status heartbeat(const Uuid& edge_id, std::string_view location) = 0;
    // Removes this edge's rows (clean shutdown).
    virtual Status forget_edge(const Uuid& edge_id) = 0;
};

// "sqlite:/var/lib/cfdtunnel/edge.db". `lease` is how long an edge's rows stay live after its
// last heartbeat.
Result<std::unique_ptr<Store>> open_store(std::string_view spec, Micros lease = 15'000'000);

// Lower-cases and checks a hostname (letters, digits, '-', '.', an optional leading "*.").
Result<std::string> normalize_hostname(std::string_view host);

}  // namespace cfd::store
