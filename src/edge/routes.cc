#include "cfd/edge/routes.h"

#include <algorithm>
#include <map>
#include <set>

namespace cfd::edge {

std::string host_without_port(std::string_view a) {
    if (!a.empty() && a[0] == '[') {
        size_t end = a.find(']');
        return std::string(a.substr(1, end == std::string_view::npos ? a.size() - 1 : end - 1));
    }
    size_t colon = a.rfind(':');
    if (colon != std::string_view::npos) {
        a = a.substr(0, colon);
    }
    while (!a.empty() && a.back() == '.') {
        a.remove_suffix(1);
    }
    std::string out(a);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

void RouteTable::add(std::string_view hostname, const Uuid& tunnel) {
    if (hostname.substr(0, 2) == "*.") {
        wildcard_[std::string(hostname.substr(2))] = tunnel;
    } else {
        exact_[std::string(hostname)] = tunnel;
    }
}

const Uuid* RouteTable::resolve(std::string_view host) const {
    std::string h = host_without_port(host);
    if (h.empty()) {
        return nullptr;
    }
    if (auto it = exact_.find(h); it != exact_.end()) {
        return &it->second;
    }
    size_t dot = h.find('.');
    if (dot != std::string::npos && dot > 0) {
        if (auto it = wildcard_.find(h.substr(dot + 1)); it != wildcard_.end()) {
            return &it->second;
        }
    }
    return nullptr;
}

void RouteTable::set_connectors(const Uuid& tunnel, std::vector<ConnectorRoute> connectors) {
    if (connectors.empty()) {
        connectors_.erase(std::string(tunnel.raw()));
    } else {
        connectors_[std::string(tunnel.raw())] = std::move(connectors);
    }
}

const std::vector<ConnectorRoute>* RouteTable::connectors(const Uuid& tunnel) const {
    auto it = connectors_.find(std::string(tunnel.raw()));
    return it == connectors_.end() ? nullptr : &it->second;
}

std::string RouteTable::fingerprint() const {
    std::map<std::string, std::string> all;
    for (const auto& [k, v] : exact_) {
        all[k] = v.str();
    }
    for (const auto& [k, v] : wildcard_) {
        all["*." + k] = v.str();
    }
    std::string out;
    for (const auto& [k, v] : all) {
        out += k + "=" + v + "\n";
    }
    std::map<std::string, std::string> conns;
    for (const auto& [k, v] : connectors_) {
        std::string& line = conns[k];
        for (const ConnectorRoute& c : v) {
            line += " " + c.id.str() + "#" + std::to_string(c.load_slot) + "@" +
                    std::to_string(c.cores);
        }
    }
    for (const auto& [k, v] : conns) {
        out += Uuid::from_bytes(k)->str() + ":" + v + "\n";
    }
    std::set<std::string> expected(expected_.begin(), expected_.end());
    for (const auto& k : expected) {
        out += "expected " + Uuid::from_bytes(k)->str() + "\n";
    }
    return out;
}

}  // namespace cfd::edge
