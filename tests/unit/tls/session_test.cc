#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "cfd/tls/session.h"
#include "tls_test_util.h"

using namespace cfd;
using namespace cfd::tls;

namespace {

using test::connected;
using test::Pair;

// Reads everything currently decryptable from `s` into `out`.
void drain(Session& s, std::string* out) {
    char buf[8192];
    for (;;) {
        auto n = s.read(buf, sizeof(buf));
        REQUIRE_MESSAGE(n, describe(n.error()));
        if (*n == 0) {
            return;
        }
        out->append(buf, *n);
    }
}

uint64_t fnv1a(std::string_view s) {
    uint64_t h = 1469598103934665603ull;
    for (char c : s) {
        h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    }
    return h;
}

std::string pattern(size_t n, uint32_t seed) {
    std::string s(n, '\0');
    uint32_t x = seed;
    for (auto& c : s) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

// Sends `data` from `from` to `to` through pending_output/feed in bounded steps, as a reactor
// would, and returns what `to` decrypted.
std::string stream(Session& from, Session& to, std::string_view data) {
    std::string got;
    size_t sent = 0;
    size_t max_pending = 0;
    while (sent < data.size() || !from.pending_output().empty()) {
        if (sent < data.size()) {
            auto n = from.write(data.substr(sent));
            REQUIRE(n);
            sent += *n;
        }
        max_pending = std::max(max_pending, from.pending_output().size());
        // Hand over at most 64 KiB per step: the receiver must read before it is fed again.
        auto out = from.pending_output().substr(0, 64 * 1024);
        REQUIRE(to.feed(out));
        from.consume_output(out.size());
        drain(to, &got);
    }
    CHECK(max_pending <= Session::kOutputHighWater + Session::kMaxRecordPlaintext + 64);
    return got;
}

}  // namespace

TEST_CASE("tls: client and server handshake in memory with TLS 1.3") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    CHECK(p.cli.handshake_done());
    CHECK(p.srv.handshake_done());
    CHECK(p.cli.version() == "TLSv1.3");
    CHECK(p.srv.version() == "TLSv1.3");
    CHECK(p.cli.cipher() == "TLS13-AES128-GCM-SHA256");
    CHECK(p.cli.alpn().empty());
    CHECK(!p.cli.is_server());
    CHECK(p.srv.is_server());
}

TEST_CASE("tls: data both ways, then close_notify in both directions") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);

    auto w = p.cli.write("hello from the connector");
    REQUIRE(w);
    CHECK(*w == 24);
    REQUIRE(test::transfer(p.cli, p.srv));
    std::string got;
    drain(p.srv, &got);
    CHECK(got == "hello from the connector");

    REQUIRE(p.srv.write("and back from the edge"));
    REQUIRE(test::transfer(p.srv, p.cli));
    got.clear();
    drain(p.cli, &got);
    CHECK(got == "and back from the edge");

    // Client closes; the server sees Closed (not an error), answers with its own close_notify.
    p.cli.shutdown();
    CHECK(!p.cli.pending_output().empty());
    REQUIRE(test::transfer(p.cli, p.srv));
    char buf[64];
    auto r = p.srv.read(buf, sizeof(buf));
    REQUIRE(!r);
    CHECK(r.error().code == Errc::Closed);
    // TLS 1.3 closes each direction on its own: the server may still send, then closes.
    REQUIRE(p.srv.write("last words"));
    p.srv.shutdown();
    REQUIRE(test::transfer(p.srv, p.cli));
    auto r1 = p.cli.read(buf, sizeof(buf));
    REQUIRE(r1);
    CHECK(std::string_view(buf, *r1) == "last words");
    auto r2 = p.cli.read(buf, sizeof(buf));
    REQUIRE(!r2);
    CHECK(r2.error().code == Errc::Closed);
    CHECK(!p.srv.write("after shutdown"));
    // Writes after our own shutdown are refused.
    auto w2 = p.cli.write("x");
    REQUIRE(!w2);
    CHECK(w2.error().code == Errc::Closed);
}

TEST_CASE("tls: 4 MiB each way arrives intact with bounded pending output") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    std::string up = pattern(4 << 20, 1);
    std::string down = pattern(4 << 20, 2);
    std::string got_up = stream(p.cli, p.srv, up);
    CHECK(got_up.size() == up.size());
    CHECK(fnv1a(got_up) == fnv1a(up));
    std::string got_down = stream(p.srv, p.cli, down);
    CHECK(got_down.size() == down.size());
    CHECK(fnv1a(got_down) == fnv1a(down));
    CHECK(p.cli.buffered_input() == 0);
    CHECK(p.srv.buffered_input() == 0);
    // Idle again: the burst's buffer capacity can be given back.
    CHECK(p.cli.trim() == 0);
    CHECK(p.srv.trim() == 0);
    REQUIRE(p.cli.write("after trim"));
    CHECK(p.cli.trim() > 0);  // pending output is kept
    REQUIRE(test::transfer(p.cli, p.srv));
    std::string got;
    drain(p.srv, &got);
    CHECK(got == "after trim");
}

TEST_CASE("tls: large writes become full 16 KiB records and stop at the high watermark") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    std::string data = pattern(4 * Session::kMaxRecordPlaintext, 3);
    auto n = p.cli.write(data);
    REQUIRE(n);
    CHECK(*n == data.size());
    // TLS 1.3 record: 5-byte header + plaintext + 1 content-type byte + 16-byte GCM tag.
    CHECK(p.cli.pending_output().size() == 4 * (Session::kMaxRecordPlaintext + 22));

    std::string big = pattern(2 << 20, 4);
    auto m = p.cli.write(big);
    REQUIRE(m);
    CHECK(*m < big.size());
    CHECK(p.cli.pending_output().size() >= Session::kOutputHighWater);
    CHECK(p.cli.pending_output().size() <= Session::kOutputHighWater + 16406);
    auto zero = p.cli.write(big);
    REQUIRE(zero);
    CHECK(*zero == 0);  // over the watermark: the caller must flush first
    p.cli.consume_output(p.cli.pending_output().size());
    auto more = p.cli.write(big);
    REQUIRE(more);
    CHECK(*more > 0);
}

TEST_CASE("tls: write before the handshake is refused") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto cctx = test::client_ctx(pki.ca);
    auto cli = Session::client(cctx);
    REQUIRE(cli);
    auto w = cli->write("early");
    REQUIRE(!w);
    CHECK(w.error().code == Errc::Invalid);
    char buf[16];
    auto r = cli->read(buf, sizeof(buf));  // drives the handshake: ClientHello, then need more
    REQUIRE(r);
    CHECK(*r == 0);
    CHECK(!cli->pending_output().empty());
}

TEST_CASE("tls: a client trusting another CA fails the handshake with an error") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto other = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf);
    auto cctx = test::client_ctx(other.ca);
    auto srv = Session::server(sctx);
    auto cli = Session::client(cctx);
    REQUIRE(srv);
    REQUIRE(cli);
    auto hs = test::handshake(*cli, *srv);
    CHECK(!hs.ok);
    CHECK(hs.client_error.code == Errc::Tls);
    CHECK(hs.client_error.sys != 0);
    CHECK(!describe(hs.client_error).empty());
    CHECK(hs.client_error.sys == -188);  // ASN_NO_SIGNER_E
    // The session stays failed: later calls return the same error, never crash.
    auto again = cli->handshake();
    REQUIRE(!again);
    CHECK(again.error().sys == hs.client_error.sys);
    CHECK(!cli->feed("more"));
}

TEST_CASE("tls: a wrong server name fails verification") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf);
    auto cctx = test::client_ctx(pki.ca);
    auto srv = Session::server(sctx);
    auto cli = Session::client(cctx, "evil.example.com");
    REQUIRE(srv);
    REQUIRE(cli);
    auto hs = test::handshake(*cli, *srv);
    CHECK(!hs.ok);
    CHECK(hs.client_error.code == Errc::Tls);
    CHECK(hs.client_error.sys == -322);  // DOMAIN_NAME_MISMATCH
}

TEST_CASE("tls: insecure_skip_verify connects to an unknown CA and a wrong name") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf);
    ClientOptions o;
    o.insecure_skip_verify = true;
    auto cctx = Context::client(o);
    REQUIRE(cctx);
    CHECK(!cctx->verifies_peer());
    auto srv = Session::server(sctx);
    auto cli = Session::client(*cctx, "anything.invalid");
    REQUIRE(srv);
    REQUIRE(cli);
    CHECK(test::handshake(*cli, *srv).ok);
}

TEST_CASE("tls: ALPN agrees on h2; a client without ALPN or with unknown ALPN still connects") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    SUBCASE("h2") {
        auto p = connected(pki, {"h2", "http/1.1"}, {"h2"});
        CHECK(p.cli.alpn() == "h2");
        CHECK(p.srv.alpn() == "h2");
    }
    SUBCASE("http/1.1 only") {
        auto p = connected(pki, {"h2", "http/1.1"}, {"http/1.1"});
        CHECK(p.cli.alpn() == "http/1.1");
        CHECK(p.srv.alpn() == "http/1.1");
    }
    SUBCASE("no ALPN from the client (the tunnel connector)") {
        auto p = connected(pki, {"h2", "http/1.1"}, {});
        CHECK(p.cli.alpn().empty());
        CHECK(p.srv.alpn().empty());
    }
    SUBCASE("nothing in common") {
        auto p = connected(pki, {"h2", "http/1.1"}, {"spdy/3"});
        CHECK(p.srv.alpn().empty());
    }
}

TEST_CASE("tls: bad ALPN names in options are refused") {
    ClientOptions o;
    o.insecure_skip_verify = true;
    o.alpn = {"h2,http/1.1"};
    auto c = Context::client(o);
    REQUIRE(!c);
    CHECK(c.error().code == Errc::Invalid);
    o.alpn = {""};
    CHECK(!Context::client(o));
}

TEST_CASE("tls: garbage fed to a server is an error, not a crash or a hang") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf);
    auto srv = Session::server(sctx);
    REQUIRE(srv);
    REQUIRE(srv->feed("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
    auto r = srv->handshake();
    REQUIRE(!r);
    CHECK(r.error().code == Errc::Tls);
}

TEST_CASE("tls: a huge junk record is refused without unbounded buffering") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf);
    auto srv = Session::server(sctx);
    REQUIRE(srv);
    // A handshake record header claiming 65535 bytes, then junk.
    std::string junk = std::string("\x16\x03\x03\xff\xff", 5) + std::string(1000, 'A');
    REQUIRE(srv->feed(junk));
    auto r = srv->handshake();
    REQUIRE(!r);
    CHECK(r.error().code == Errc::Tls);
    // A second server fed junk faster than it reads it: feed refuses past the bound.
    auto srv2 = Session::server(sctx);
    REQUIRE(srv2);
    std::string chunk(16384, 'Z');
    size_t accepted = 0;
    Status last;
    for (int i = 0; i < 100 && last; i++) {
        last = srv2->feed(chunk);
        if (last) {
            accepted += chunk.size();
        }
    }
    REQUIRE(!last);
    CHECK(last.error().code == Errc::Busy);
    CHECK(accepted <= Session::kMaxBufferedInput);
    CHECK(srv2->buffered_input() <= Session::kMaxBufferedInput);
}

TEST_CASE("tls: a corrupted record after the handshake fails the read") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    REQUIRE(p.cli.write("integrity"));
    std::string rec(p.cli.pending_output());
    p.cli.consume_output(rec.size());
    rec[rec.size() - 3] ^= 0x40;  // flips a bit of the GCM tag
    REQUIRE(p.srv.feed(rec));
    char buf[64];
    auto r = p.srv.read(buf, sizeof(buf));
    REQUIRE(!r);
    CHECK(r.error().code == Errc::Tls);
}

TEST_CASE("tls: a second client connection resumes with the session ticket") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf);
    auto cctx = test::client_ctx(pki.ca);
    Ticket ticket;
    {
        auto srv = Session::server(sctx);
        auto cli = Session::client(cctx);
        REQUIRE(srv);
        REQUIRE(cli);
        REQUIRE(test::handshake(*cli, *srv).ok);
        CHECK(!cli->resumed());
        // TLS 1.3 tickets come after the handshake: let the client read them.
        REQUIRE(test::transfer(*srv, *cli));
        std::string none;
        drain(*cli, &none);
        auto t = cli->save_ticket();
        REQUIRE(t);
        ticket = std::move(*t);
    }
    REQUIRE(ticket);
    auto srv = Session::server(sctx);
    auto cli = Session::client(cctx, kTunnelServerName, &ticket);
    REQUIRE(srv);
    REQUIRE(cli);
    REQUIRE(test::handshake(*cli, *srv).ok);
    CHECK(cli->resumed());
    // The resumed connection carries data like any other.
    REQUIRE(cli->write("resumed"));
    REQUIRE(test::transfer(*cli, *srv));
    std::string got;
    drain(*srv, &got);
    CHECK(got == "resumed");
}

TEST_CASE("tls: sessions move without breaking their I/O") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    Session moved = std::move(p.cli);
    REQUIRE(moved.write("after move"));
    REQUIRE(test::transfer(moved, p.srv));
    std::string got;
    drain(p.srv, &got);
    CHECK(got == "after move");
}

TEST_CASE("tls: error_string renders wolfSSL's text") {
    // -188 is wolfSSL's ASN_NO_SIGNER_E, -322 DOMAIN_NAME_MISMATCH.
    CHECK(!error_string(-188).empty());
    CHECK(error_string(-188) != error_string(-322));
    Error e{Errc::Tls, -322, "tls handshake"};
    CHECK(describe(e).find("tls handshake") == 0);
    CHECK(describe(e).size() > std::string("tls handshake: tls (-322)").size());
}

TEST_CASE("tls: a handshake fed one byte at a time in both directions completes") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf, {"h2"});
    auto cctx = test::client_ctx(pki.ca, {"h2"});
    auto srv = Session::server(sctx);
    auto cli = Session::client(cctx);
    REQUIRE(srv);
    REQUIRE(cli);
    // Moves one byte (a partial send) and steps the receiver. Returns whether a byte moved.
    auto step = [](Session& from, Session& to) {
        auto out = from.pending_output();
        if (out.empty()) {
            return false;
        }
        REQUIRE(to.feed(out.substr(0, 1)));
        from.consume_output(1);
        auto r = to.handshake();
        REQUIRE_MESSAGE(r, describe(r.error()));
        return true;
    };
    REQUIRE(cli->handshake());
    size_t moved = 0;
    // Each byte moved is progress; a handshake is a few KiB, so this bound means "stuck".
    for (int i = 0; i < 100000 && !(cli->handshake_done() && srv->handshake_done()); i++) {
        bool a = step(*cli, *srv);
        bool b = step(*srv, *cli);
        if (!a && !b) {
            break;
        }
        moved += size_t{a} + size_t{b};
    }
    CHECK(cli->handshake_done());
    CHECK(srv->handshake_done());
    CHECK(moved > 500);
    CHECK(cli->alpn() == "h2");
    // Application data split the same way.
    REQUIRE(cli->write("byte by byte"));
    std::string got;
    while (!cli->pending_output().empty()) {
        REQUIRE(srv->feed(cli->pending_output().substr(0, 1)));
        cli->consume_output(1);
        drain(*srv, &got);
    }
    CHECK(got == "byte by byte");
}

TEST_CASE("tls: an address literal is checked against iPAddress names, and its chain still is") {
    using namespace cfd::tls::test;
    auto good = make_pki({"origin.test", "127.0.0.1"});
    auto other = make_pki({"127.0.0.1"});
    Context sctx = server_ctx(good.leaf);
    struct Case {
        const char* what;
        const KeyPair* ca;
        const char* name;
        bool ok;
    } cases[] = {
        {"the address is named, the CA is trusted", &good.ca, "127.0.0.1", true},
        {"the CA is not trusted", &other.ca, "127.0.0.1", false},
        {"the address is not named", &good.ca, "127.0.0.2", false},
    };
    for (const Case& c : cases) {
        CAPTURE(c.what);
        Context cctx = client_ctx(*c.ca);
        auto cl = Session::client(cctx, c.name);
        auto sv = Session::server(sctx);
        REQUIRE(cl);
        REQUIRE(sv);
        CHECK(handshake(*cl, *sv).ok == c.ok);
    }
}
