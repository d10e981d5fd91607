// A snapshot of the store's routes (hostname -> tunnel), immutable once built. The control
// thread builds one copy per reactor and posts it; each reactor swaps its own pointer, so the
// data path reads routes without a lock and without sharing memory across cores.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cfd/core/uuid.h"

namespace cfd::edge {

// A connector of a tunnel with routed (registered, not draining) connections on this edge.
struct ConnectorRoute {
    Uuid id;                 // the connector ID
    uint32_t load_slot = 0;  // its in-flight count on the LoadBoard
    uint64_t cores = 0;      // bit i: worker i holds a routed connection of it
};

class RouteTable {
public:
    // `hostname` lower case, maybe "*.example.com".
    void add(std::string_view hostname, const Uuid& tunnel);
    // Exact name first, then the wildcard one label up ("a.b.c" -> "*.b.c"). `host` may carry
    // a port and any case; a trailing dot is ignored.
    const Uuid* resolve(std::string_view host) const;
    size_t size() const { return exact_.size() + wildcard_.size(); }
    // The connectors of `tunnel` and where their connections are, as the control thread last
    // heard: a core without a connection of the chosen connector relays to one that has.
    void set_connectors(const Uuid& tunnel, std::vector<ConnectorRoute> connectors);
    // Never empty when not null.
    const std::vector<ConnectorRoute>* connectors(const Uuid& tunnel) const;
    // Tunnels whose connectors are expected here soon: another edge process of this location
    // holds their connections (a restart in progress). A request for one of them waits a
    // little for a connection instead of answering 530 at once.
    void set_expected(const Uuid& tunnel) { expected_.insert(std::string(tunnel.raw())); }
    bool expected(const Uuid& tunnel) const { return expected_.count(std::string(tunnel.raw())); }
    // A canonical text of the table, to tell whether a reload changed anything.
    std::string fingerprint() const;

private:
    std::unordered_map<std::string, Uuid> exact_;
    std::unordered_map<std::string, Uuid> wildcard_;   // key: the parent domain of "*.x"
    // raw tunnel UUID -> its connectors
    std::unordered_map<std::string, std::vector<ConnectorRoute>> connectors_;
    std::unordered_set<std::string> expected_;  // raw tunnel UUIDs
};

// "App.Example.com:8080" -> "app.example.com"; "[::1]:80" -> "::1".
std::string host_without_port(std::string_view authority);

}  // namespace cfd::edge
