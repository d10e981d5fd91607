// `cfdtunnel edge`: the whole process.
//
// Threads and ownership (DESIGN.md §3):
//   - main thread = the CONTROL thread. It owns the store (SQLite, blocking calls: only here),
//     the Registrar (credential checks, connection rows, heartbeats), the management API and the
//     metrics endpoint (served from its own small reactor), the route snapshots, and shutdown.
//   - N reactor threads (--workers), each running an edge::Worker that owns its listeners, its
//     tunnel connections and public connections, and its copy of the route table.
//   - Messages only (edge/messages.h): workers post RegisterMsg and ConnClosed to the control
//     reactor (post_external); the control thread answers with RegisterAnswerMsg and pushes
//     RouteTable snapshots (one copy per worker) when the store's routes change (checked every
//     few seconds, since other edge processes share the store, and at once after an API call).
//   - SIGTERM/SIGINT: stop the workers (listeners and tunnel connections close), forget this
//     edge's rows in the store, exit. Drain comes with issue 4.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/tls/server_contexts.h"

namespace cfd::control {

struct EdgeConfig {
    std::string location = "DFW";
    std::string tunnel_listen = "0.0.0.0:7844";
    std::string http_listen = "0.0.0.0:80";
    // Opened only when `certificates` is not empty.
    std::string https_listen = "0.0.0.0:443";
    // The HTTPS certificates (from --tls-cert/--tls-key pairs, then [tls "NAME"] sections):
    // chosen by SNI, the first is the default; re-read on SIGHUP.
    std::vector<tls::CertificatePair> certificates;
    // Host names (exact, "*.x" or "*") whose plain HTTP requests are redirected to HTTPS.
    std::vector<std::string> https_redirect;
    std::string api_listen = "127.0.0.1:7845";
    std::string metrics = "127.0.0.1:9100";
    std::string store = "sqlite:/var/lib/cfdtunnel/edge.db";
    std::string cert;
    std::string key;
    int64_t workers = 0;  // 0: one per core
    int64_t max_connectors_per_tunnel = 100;
    // SIGTERM: how long in-flight public requests may take before the tunnel connections close.
    Millis grace_period{30000};
    // How long a request waits for a connector that another process of this location still
    // holds (a restart in progress) before it is answered 530; 0: never waits.
    Millis connector_wait{5000};
    // Tunnel connections: a PING every ping_interval; an ACK later than ping_timeout means the
    // connector is gone, and its routes are dropped at once.
    Millis ping_interval{5000};
    Millis ping_timeout{5000};
    // Raw TCP listeners, "ADDR=HOSTNAME": each client's bytes go to HOSTNAME's tunnel, to the
    // connector's tcp:// or ssh:// rule for it.
    std::vector<std::string> tcp_listen;
};

// What the HTTPS listener offers by ALPN, in order of preference.
inline const std::vector<std::string> kHttpsAlpn = {"h2", "http/1.1"};

// Runs until SIGTERM/SIGINT. Returns a process exit code.
int run_edge(const EdgeConfig& cfg);

// The folder of a "sqlite:/path/edge.db" store spec ("." for a bare file name).
std::string store_folder(const std::string& spec);

// Reads `<dir>/api-token`, or creates it (mode 0600) with a new random token.
Result<std::string> load_or_create_token(const std::string& dir);

}  // namespace cfd::control
