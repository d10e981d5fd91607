// One test CA and an edge certificate for h2.cftunnel.com and 127.0.0.1, made once per test
// binary (key generation is slow-ish); shared by the edge and connector tests.
#pragma once

#include <doctest/doctest.h>

#include <utility>

#include "cfd/tls/certgen.h"

namespace cfd::test {

struct TunnelPki {
    tls::KeyPair ca;
    tls::KeyPair leaf;
};

inline const TunnelPki& tunnel_pki() {
    static TunnelPki p = [] {
        auto ca = tls::generate_ca("cfdtunnel test CA", 1);
        REQUIRE(ca);
        auto leaf = tls::generate_leaf(*ca, "h2.cftunnel.com", {"h2.cftunnel.com", "127.0.0.1"}, 1);
        REQUIRE(leaf);
        return TunnelPki{std::move(*ca), std::move(*leaf)};
    }();
    return p;
}

}  // namespace cfd::test
