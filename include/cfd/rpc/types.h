// The registration RPC's values as plain C++ (schema: src/rpc/tunnelrpc.capnp, DESIGN.md §2).
// No Cap'n Proto type leaves src/rpc: the edge and the connector see only these structs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cfd/core/uuid.h"

namespace cfd::rpc {

// cloudflared's RegistrationServer: the interface id and method ordinals travel on the wire.
constexpr uint64_t kRegistrationInterfaceId = 0xf71695ec7fe85497ULL;

enum class Method : uint16_t {
    RegisterConnection = 0,
    UnregisterConnection = 1,
    UpdateLocalConfiguration = 2,
};

struct TunnelAuth {
    std::string account_tag;
    std::string tunnel_secret;  // raw bytes (32 from `tunnel create`); never logged
};

struct ClientInfo {
    Uuid client_id;  // the connector ID
    std::vector<std::string> features;
    std::string version;  // e.g. "2026.11.0"
    std::string arch;     // e.g. "linux_amd64"
};

struct ConnectionOptions {
    ClientInfo client;
    std::string origin_local_ip;  // raw bytes as Go's net.IP (4 or 16), empty when unknown
    bool replace_existing = false;
    uint8_t compression_quality = 0;
    uint8_t num_previous_attempts = 0;
};

// The parameters of registerConnection.
struct RegisterRequest {
    TunnelAuth auth;
    Uuid tunnel_id;
    uint8_t conn_index = 0;
    ConnectionOptions options;
};

// A successful registration.
struct ConnectionDetails {
    Uuid uuid;  // the connection's ID
    std::string location_name;
    bool tunnel_is_remotely_managed = false;
};

// A refused registration. `cause` begins with "Unauthorized:" for a wrong secret or tunnel.
struct ConnectionError {
    std::string cause;
    int64_t retry_after_ns = 0;
    bool should_retry = false;
};

// Bounds on what a peer can make one RPC session hold.
struct Limits {
    uint32_t max_segments = 64;          // per message
    size_t max_message_bytes = 1 << 20;  // per message, framing included
    uint32_t max_questions = 64;         // open questions (client) / answers (server)
    uint32_t max_features = 256;         // entries of ClientInfo.features
    size_t max_text_bytes = 64 * 1024;   // any single Text or Data field but the config
};

}  // namespace cfd::rpc
