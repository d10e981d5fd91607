// The origin side of the Proxy tests, played by the test: one connection (what the proxy sent,
// how much room it offers, whether it half-closed or went back to a pool) and the dialer that
// records what the proxy asked for. Plus small helpers shared by proxy_test and tcp_pipe_test.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cfd/connector/proxy.h"
#include "cfd/http2/tunnel_headers.h"
#include "edge_peer.h"

namespace cfd::connector::test {

struct TestLink : OriginLink {
    std::string received;
    size_t room_left = 1 << 30;
    bool paused = false;
    int pauses = 0;
    bool shut = false;  // shutdown_write(): the origin saw our half-close
    bool released = false;
    bool reusable = false;
    size_t room() const override { return room_left; }
    void send(std::string_view b) override {
        REQUIRE(!released);
        REQUIRE(!shut);
        REQUIRE(b.size() <= room_left);
        received.append(b);
        room_left -= b.size();
    }
    void pause_recv(bool p) override {
        paused = p;
        pauses += p ? 1 : 0;
    }
    void shutdown_write() override { shut = true; }
    void release(bool r) override {
        REQUIRE(!released);
        released = true;
        reusable = r;
    }
};

struct TestDialer : OriginDialer {
    std::vector<int32_t> dials;
    std::vector<std::string> urls;  // the service each dial was for
    std::set<int32_t> cancelled;
    void dial(const OriginService& svc, int32_t id) override {
        dials.push_back(id);
        urls.push_back(svc.url);
    }
    void cancel(int32_t id) override { cancelled.insert(id); }
};

// The origin headers a response carried, decoded from the tunnel's serialized form.
inline std::map<std::string, std::string> user_headers(const EdgeStream& s) {
    auto parsed = http2::parse_user_headers(http2::header_value(s.headers, http2::kResponseHeaders));
    REQUIRE(parsed);
    std::map<std::string, std::string> m;
    for (auto& [k, v] : *parsed) {
        m[k] = v;
    }
    return m;
}

// `n` deterministic bytes that differ with `seed` and are not periodic at small scales.
inline std::string pattern(size_t n, size_t seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i++) {
        s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 9)) & 0xff);
    }
    return s;
}

}  // namespace cfd::connector::test
