// Helpers shared by the tls tests: throwaway CAs and an in-memory pump between two sessions.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cfd/tls/certgen.h"
#include "cfd/tls/context.h"
#include "cfd/tls/session.h"

namespace cfd::tls::test {

struct Pki {
    KeyPair ca;
    KeyPair leaf;
};

// A CA and a leaf for `names` (first name is also the common name).
inline Pki make_pki(const std::vector<std::string>& names) {
    auto ca = generate_ca("cfdtunnel test CA", 1);
    REQUIRE(ca);
    auto leaf = generate_leaf(*ca, names.front(), names, 1);
    REQUIRE(leaf);
    return Pki{std::move(*ca), std::move(*leaf)};
}

inline Context server_ctx(const KeyPair& leaf, std::vector<std::string> alpn = {}) {
    ServerOptions o;
    o.cert_pem = leaf.cert_pem;
    o.key_pem = leaf.key_pem;
    o.alpn = std::move(alpn);
    auto c = Context::server(o);
    REQUIRE_MESSAGE(c, (c ? "" : describe(c.error())));
    return std::move(*c);
}

inline Context client_ctx(const KeyPair& ca, std::vector<std::string> alpn = {}) {
    ClientOptions o;
    o.ca_pem = ca.cert_pem;
    o.alpn = std::move(alpn);
    auto c = Context::client(o);
    REQUIRE_MESSAGE(c, (c ? "" : describe(c.error())));
    return std::move(*c);
}

// Moves all pending output of `from` into `to`. False if `to` refused it.
inline bool transfer(Session& from, Session& to) {
    auto out = from.pending_output();
    if (out.empty()) {
        return true;
    }
    if (!to.feed(out)) {
        return false;
    }
    from.consume_output(out.size());
    return true;
}

struct HandshakeResult {
    bool ok = false;
    Error client_error{};
    Error server_error{};
};

// Drives both handshakes to completion or the first error. Bounded by a round count, not time:
// a TLS 1.3 handshake needs 2 round trips, so 20 rounds without progress means a hang.
inline HandshakeResult handshake(Session& client, Session& server) {
    HandshakeResult res;
    for (int round = 0; round < 20; round++) {
        auto c = client.handshake();
        REQUIRE(transfer(client, server));
        if (!c) {
            res.client_error = c.error();
            // Let the server see the client's alert.
            (void)server.handshake();
            return res;
        }
        auto s = server.handshake();
        REQUIRE(transfer(server, client));
        if (!s) {
            res.server_error = s.error();
            (void)client.handshake();
            return res;
        }
        if (*c == HandshakeStep::Done && *s == HandshakeStep::Done) {
            res.ok = true;
            return res;
        }
    }
    FAIL("handshake made no progress in 20 rounds");
    return res;
}

// A server and a client session that finished their handshake (client name h2.cftunnel.com),
// with the contexts they came from.
struct Pair {
    Context sctx;
    Context cctx;
    Session srv;
    Session cli;
};

inline Pair connected(const Pki& pki, std::vector<std::string> server_alpn = {},
                      std::vector<std::string> client_alpn = {}) {
    auto sctx = server_ctx(pki.leaf, std::move(server_alpn));
    auto cctx = client_ctx(pki.ca, std::move(client_alpn));
    auto srv = Session::server(sctx);
    auto cli = Session::client(cctx, "h2.cftunnel.com");
    REQUIRE(srv);
    REQUIRE(cli);
    auto hs = handshake(*cli, *srv);
    REQUIRE_MESSAGE(hs.ok, describe(hs.client_error) << " / " << describe(hs.server_error));
    return Pair{std::move(sctx), std::move(cctx), std::move(*srv), std::move(*cli)};
}

}  // namespace cfd::tls::test
