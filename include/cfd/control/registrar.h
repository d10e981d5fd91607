// The edge's registration authority, on the control thread (the only thread that touches the
// store). A reactor that receives registerConnection posts the request here; the answer goes
// back as a message. The registrar:
//   - checks the tunnel (exists, not deleted), the account tag and the secret (constant time),
//   - enforces the per-tunnel connector limit, counting distinct connector IDs across every
//     edge location that shares the store,
//   - allocates the connection UUID and writes the store::Connection row,
//   - heartbeats the store (this edge's rows stay live while it does) and removes rows when
//     connections close, and all of this edge's rows on shutdown.
// Secrets are never logged: refusals log the tunnel and connector IDs and the cause only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "cfd/core/result.h"
#include "cfd/core/uuid.h"
#include "cfd/rpc/types.h"
#include "cfd/store/store.h"

namespace cfd::control {

inline constexpr std::string_view kCauseBadSecret = "Unauthorized: Invalid tunnel secret";
inline constexpr std::string_view kCauseUnknownTunnel = "Unauthorized: Unknown tunnel";

struct RegistrarOptions {
    std::string location = "DFW";
    Uuid edge_id;                  // this edge process
    int64_t max_connectors = 100;  // distinct connector IDs per tunnel
};

struct Decision {
    bool ok = false;
    rpc::ConnectionDetails details;  // when ok
    rpc::ConnectionError error;      // when refused
    store::Connection row;           // when ok: what was written
};

class Registrar {
public:
    Registrar(store::Store& store, RegistrarOptions opts);

    // `peer_ip` is the connector's address as this edge sees it (the ORIGIN IP of
    // `tunnel info`); empty falls back to the origin local IP the connector reported.
    Decision register_connection(const rpc::RegisterRequest& req, std::string_view peer_ip);
    // A connection closed (or unregistered and drained): its row goes.
    void connection_closed(const Uuid& conn_id);
    // Every few seconds.
    Status heartbeat();
    // Removes every row of this edge (clean shutdown).
    void shutdown();

    size_t live_connections() const { return live_.size(); }
    const RegistrarOptions& options() const { return opts_; }

private:
    store::Store& store_;
    RegistrarOptions opts_;
    std::unordered_set<std::string> live_;  // raw conn UUIDs this edge wrote
};

// Equal length and bytes, in time that depends on the length only.
bool secrets_equal(std::string_view a, std::string_view b);

// "192.168.1.2" / "2001:db8::1" from Go's net.IP bytes (4 or 16); "" otherwise.
std::string ip_from_bytes(std::string_view raw);

}  // namespace cfd::control
