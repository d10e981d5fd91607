#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <unistd.h>
#include <vector>
#include <string>

#include "cfd/tls/certgen.h"
#include "cfd/tls/client_hello.h"
#include "cfd/tls/server_contexts.h"
#include "tls_test_util.h"

using namespace cfd;
using namespace cfd::tls;

namespace {

// The first flight of a real client: one record holding the ClientHello.
std::string client_hello_for(std::string_view server_name, std::vector<std::string> alpn = {}) {
    ClientOptions o;
    o.insecure_skip_verify = true;
    o.alpn = std::move(alpn);
    auto ctx = Context::client(o);
    REQUIRE(ctx);
    auto cli = Session::client(*ctx, server_name);
    REQUIRE(cli);
    auto step = cli->handshake();
    REQUIRE(step);
    CHECK(*step == HandshakeStep::NeedMore);
    return std::string(cli->pending_output());
}

// The same hello re-framed into records of at most `chunk` payload bytes.
std::string reframe(const std::string& one_record, size_t chunk) {
    std::string msg = one_record.substr(5);
    std::string out;
    for (size_t off = 0; off < msg.size(); off += chunk) {
        size_t n = std::min(chunk, msg.size() - off);
        out += std::string("\x16\x03\x01", 3);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xff);
        out += msg.substr(off, n);
    }
    return out;
}

void check_every_prefix(const std::string& hello, std::string_view want) {
    for (size_t i = 0; i < hello.size(); i++) {
        auto p = peek_sni(std::string_view(hello).substr(0, i));
        REQUIRE_MESSAGE(p, "prefix " << i);
        REQUIRE_MESSAGE(p->status == SniPeek::Status::NeedMore, "prefix " << i);
    }
    auto p = peek_sni(hello);
    REQUIRE(p);
    CHECK(p->status == SniPeek::Status::Found);
    CHECK(p->name == want);
}

}  // namespace

TEST_CASE("tls: peek_sni finds the name in a ClientHello cut at every byte") {
    std::string hello = client_hello_for("App.Example.COM", {"h2", "http/1.1"});
    REQUIRE(hello.size() > 100);
    check_every_prefix(hello, "app.example.com");
    // Whatever follows the hello (say, early data) does not matter.
    auto p = peek_sni(hello + "trailing");
    REQUIRE(p);
    CHECK(p->name == "app.example.com");
}

TEST_CASE("tls: peek_sni reassembles a ClientHello spread over several records") {
    std::string hello = client_hello_for("h2.cftunnel.com");
    for (size_t chunk : {1, 2, 3, 7, 100}) {
        CAPTURE(chunk);
        std::string framed = reframe(hello, chunk);
        if (chunk <= 7) {
            // Cut at every byte only for the small cases: enough to cross every boundary kind.
            auto p = peek_sni(framed);
            REQUIRE(p);
            CHECK(p->name == "h2.cftunnel.com");
        } else {
            check_every_prefix(framed, "h2.cftunnel.com");
        }
    }
}

TEST_CASE("tls: peek_sni reports a ClientHello without SNI as absent") {
    // Clients never send SNI for an address literal.
    std::string hello = client_hello_for("127.0.0.1");
    auto p = peek_sni(hello);
    REQUIRE(p);
    CHECK(p->status == SniPeek::Status::Absent);
    CHECK(p->name.empty());
}

TEST_CASE("tls: peek_sni refuses what is not a ClientHello") {
    auto http = peek_sni("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(!http);
    CHECK(http.error().code == Errc::Protocol);
    // SSLv2-style hello.
    CHECK(!peek_sni(std::string("\x80\x2e\x01\x03\x01", 5)));
    // A zero-length handshake record, an oversized record.
    CHECK(!peek_sni(std::string("\x16\x03\x01\x00\x00", 5)));
    CHECK(!peek_sni(std::string("\x16\x03\x01\x48\x01", 5)));
    // A handshake message that is not a ClientHello (ServerHello type 2).
    CHECK(!peek_sni(std::string("\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9)));
    // A ClientHello announcing more than kMaxClientHello.
    CHECK(!peek_sni(std::string("\x16\x03\x03\x00\x04\x01\x01\x00\x00", 9)));
    // A hello announced at the maximum but trickled in one-byte records runs out of budget.
    std::string trickle = std::string("\x16\x03\x01\x00\x04\x01\x00\x80\x00", 9);
    while (trickle.size() < kMaxClientHelloBytes + 6) {
        trickle += std::string("\x16\x03\x01\x00\x01\x00", 6);
    }
    auto t = peek_sni(trickle);
    REQUIRE(!t);
    CHECK(t.error().code == Errc::Protocol);
    CHECK(peek_sni(std::string_view(trickle).substr(0, 6000))->status ==
          SniPeek::Status::NeedMore);
    // A complete but empty ClientHello body.
    CHECK(!peek_sni(std::string("\x16\x03\x03\x00\x04\x01\x00\x00\x00", 9)));
}

TEST_CASE("tls: peek_sni survives every single-byte corruption of a real hello") {
    std::string hello = client_hello_for("h2.cftunnel.com", {"h2"});
    size_t errors = 0;
    for (size_t i = 0; i < hello.size(); i++) {
        for (uint8_t flip : {0x01, 0x80, 0xff}) {
            std::string bad = hello;
            bad[i] = static_cast<char>(bad[i] ^ flip);
            auto p = peek_sni(bad);  // must return, whatever it says
            if (!p) {
                errors++;
                CHECK(p.error().code == Errc::Protocol);
            }
        }
    }
    CHECK(errors > 0);
}

TEST_CASE("tls: peek_sni refuses host names with bytes outside the host alphabet") {
    std::string hello = client_hello_for("abc.example.com");
    size_t at = hello.find("abc.example.com");
    REQUIRE(at != std::string::npos);
    hello[at + 1] = '\0';
    auto p = peek_sni(hello);
    REQUIRE(!p);
    CHECK(p.error().code == Errc::Protocol);
}

TEST_CASE("tls: ServerContexts matches exact names, one-label wildcards, then the default") {
    auto pki = test::make_pki({"default.test"});
    ServerContexts set(test::server_ctx(pki.leaf));
    const Context* def = &set.find("");
    REQUIRE(set.add({"app.example.com", "API.example.com."}, test::server_ctx(pki.leaf)));
    REQUIRE(set.add({"*.example.org"}, test::server_ctx(pki.leaf)));
    REQUIRE(set.add({"special.example.org"}, test::server_ctx(pki.leaf)));
    CHECK(set.size() == 4);
    const Context* exact = &set.find("app.example.com");
    const Context* wild = &set.find("x.example.org");
    const Context* special = &set.find("special.example.org");
    CHECK(exact != def);
    CHECK(wild != def);
    CHECK(wild != exact);
    CHECK(special != wild);  // the exact name wins over the wildcard
    CHECK(&set.find("APP.EXAMPLE.COM") == exact);
    CHECK(&set.find("app.example.com.") == exact);
    CHECK(&set.find("api.example.com") == exact);
    CHECK(&set.find("Y.Example.Org") == wild);
    CHECK(&set.find("a.b.example.org") == def);  // one label only
    CHECK(&set.find("example.org") == def);
    CHECK(&set.find("other.test") == def);
    CHECK(&set.find("bad name\x01") == def);

    auto dup = set.add({"new.example.net", "APP.example.com"}, test::server_ctx(pki.leaf));
    REQUIRE(!dup);
    CHECK(dup.error().code == Errc::Exists);
    CHECK(&set.find("new.example.net") == def);  // nothing of a refused add is kept
    CHECK(!set.add({"*.example.org"}, test::server_ctx(pki.leaf)));
    auto bad = set.add({"sp ace.example.com"}, test::server_ctx(pki.leaf));
    REQUIRE(!bad);
    CHECK(bad.error().code == Errc::Invalid);
    CHECK(!set.add({}, test::server_ctx(pki.leaf)));
    CHECK(!set.add({"*."}, test::server_ctx(pki.leaf)));
    ClientOptions co;
    co.insecure_skip_verify = true;
    auto client = Context::client(co);
    REQUIRE(client);
    CHECK(!set.add({"c.example.com"}, std::move(*client)));
}

TEST_CASE("tls: SNI picks the certificate; clients verifying each name connect") {
    auto ca = generate_ca("sni test CA", 1);
    REQUIRE(ca);
    auto leaf_default = generate_leaf(*ca, "default.test", {"default.test"}, 1);
    auto leaf_app = generate_leaf(*ca, "app.example.com", {"app.example.com"}, 1);
    auto leaf_wild = generate_leaf(*ca, "*.example.org", {"*.example.org"}, 1);
    REQUIRE(leaf_default);
    REQUIRE(leaf_app);
    REQUIRE(leaf_wild);
    ServerContexts set(test::server_ctx(*leaf_default));
    REQUIRE(set.add({"app.example.com"}, test::server_ctx(*leaf_app)));
    REQUIRE(set.add({"*.example.org"}, test::server_ctx(*leaf_wild)));
    auto cctx = test::client_ctx(*ca);

    struct Case {
        const char* name;
        const char* want_sni;
        const Context* want_ctx;
        bool connects;  // the client verifies the name against the chosen certificate
    };
    const Context* def = &set.find("");
    Case cases[] = {
        {"app.example.com", "app.example.com", &set.find("app.example.com"), true},
        {"APP.Example.Com", "app.example.com", &set.find("app.example.com"), true},
        {"x.example.org", "x.example.org", &set.find("x.example.org"), true},
        {"default.test", "default.test", def, true},
        // Unknown name: the default certificate, which does not cover it.
        {"unknown.test", "unknown.test", def, false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        auto cli = Session::client(cctx, c.name);
        REQUIRE(cli);
        REQUIRE(cli->handshake());
        std::string first(cli->pending_output());
        cli->consume_output(first.size());
        // The reactor's view: bytes arrive in pieces; choose once enough is there.
        auto partial = set.choose(std::string_view(first).substr(0, first.size() / 2));
        REQUIRE(partial);
        CHECK(partial->need_more());
        auto choice = set.choose(first);
        REQUIRE(choice);
        REQUIRE(!choice->need_more());
        CHECK(choice->context == c.want_ctx);
        CHECK(choice->sni == c.want_sni);
        auto srv = Session::server(*choice->context, choice->sni);
        REQUIRE(srv);
        CHECK(srv->sni() == c.want_sni);
        REQUIRE(srv->feed(first));
        auto hs = test::handshake(*cli, *srv);
        CHECK(hs.ok == c.connects);
    }
}

TEST_CASE("tls: a ClientHello without SNI gets the default certificate") {
    auto pki = test::make_pki({"default.test", "127.0.0.1"});
    ServerContexts set(test::server_ctx(pki.leaf));
    REQUIRE(set.add({"app.example.com"}, test::server_ctx(pki.leaf)));
    ClientOptions o;
    o.insecure_skip_verify = true;
    auto cctx = Context::client(o);
    REQUIRE(cctx);
    auto cli = Session::client(*cctx, "127.0.0.1");
    REQUIRE(cli);
    REQUIRE(cli->handshake());
    auto choice = set.choose(cli->pending_output());
    REQUIRE(choice);
    CHECK(choice->context == &set.find(""));
    CHECK(choice->sni.empty());
    auto srv = Session::server(*choice->context);
    REQUIRE(srv);
    CHECK(test::handshake(*cli, *srv).ok);
    CHECK(srv->sni().empty());
}

TEST_CASE("tls: sessions outlive the ServerContexts they were made from (reload)") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto cctx = test::client_ctx(pki.ca);
    auto cli = Session::client(cctx);
    REQUIRE(cli);
    std::optional<Session> srv;
    {
        auto set = std::make_unique<ServerContexts>(test::server_ctx(pki.leaf));
        auto s = Session::server(set->find("h2.cftunnel.com"));
        REQUIRE(s);
        srv.emplace(std::move(*s));
        // A reload swaps in a new set; the old one goes away under the live session.
        set = std::make_unique<ServerContexts>(test::server_ctx(pki.leaf));
    }
    REQUIRE(test::handshake(*cli, *srv).ok);
    REQUIRE(cli->write("still here"));
    REQUIRE(test::transfer(*cli, *srv));
    char buf[32];
    auto n = srv->read(buf, sizeof(buf));
    REQUIRE(n);
    CHECK(std::string_view(buf, *n) == "still here");
}

TEST_CASE("tls: peek_sni drops one trailing dot and refuses empty labels") {
    auto one = peek_sni(client_hello_for("h2.example.com."));
    REQUIRE(one);
    CHECK(one->name == "h2.example.com");
    // Found by fuzzing: "h2.example.com.." used to come out as "h2.example.com.".
    for (const char* bad : {"h2.example.com..", "a..example.com", ".example.com"}) {
        CAPTURE(bad);
        CHECK(!peek_sni(client_hello_for(bad)));
    }
}

TEST_CASE("tls: certificate_dns_names reads a certificate's DNS names, not its addresses") {
    auto ca = generate_ca("names test CA", 1);
    REQUIRE(ca);
    auto leaf = generate_leaf(*ca, "app.example.com",
                              {"app.example.com", "127.0.0.1", "*.example.org", "::1"}, 1);
    REQUIRE(leaf);
    auto names = certificate_dns_names(leaf->cert_pem);
    REQUIRE(names);
    CHECK(*names == std::vector<std::string>{"app.example.com", "*.example.org"});
    auto only_ip = generate_leaf(*ca, "ip", {"127.0.0.1"}, 1);
    REQUIRE(only_ip);
    auto none = certificate_dns_names(only_ip->cert_pem);
    REQUIRE(none);
    CHECK(none->empty());
    CHECK(!certificate_dns_names("not a certificate"));
    CHECK(!certificate_dns_names(leaf->key_pem));
}

namespace {
// Writes a pair's PEM files into a fresh folder; removed with the object.
struct PemFiles {
    std::string dir;
    std::vector<std::string> files;
    PemFiles() {
        char tmpl[] = "/tmp/cfd-sni-test-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir = tmpl;
    }
    ~PemFiles() {
        for (const auto& f : files) {
            ::unlink(f.c_str());
        }
        ::rmdir(dir.c_str());
    }
    CertificatePair write(const std::string& stem, const KeyPair& kp) {
        CertificatePair p;
        p.cert_file = dir + "/" + stem + ".crt";
        p.key_file = dir + "/" + stem + ".key";
        REQUIRE(write_key_pair(kp, p.cert_file, p.key_file));
        files.push_back(p.cert_file);
        files.push_back(p.key_file);
        return p;
    }
};
}  // namespace

TEST_CASE("tls: load_certificates serves each certificate's own names; the first is the default") {
    auto ca = generate_ca("load test CA", 1);
    REQUIRE(ca);
    auto a = generate_leaf(*ca, "a", {"a.example.com"}, 1);
    auto b = generate_leaf(*ca, "b", {"b.example.com", "*.b.example.com"}, 1);
    REQUIRE(a);
    REQUIRE(b);
    PemFiles pf;
    std::vector<CertificatePair> pairs = {pf.write("a", *a), pf.write("b", *b)};
    auto set = load_certificates(pairs, {"h2", "http/1.1"});
    REQUIRE_MESSAGE(set, (set ? "" : set.error()));
    CHECK(&set->find("a.example.com") == &set->find(""));  // the default serves its names too
    CHECK(&set->find("b.example.com") != &set->find(""));
    CHECK(&set->find("x.b.example.com") == &set->find("b.example.com"));
    CHECK(set->find("b.example.com").alpn_list() == "h2,http/1.1");

    // Explicit names win over the certificate's.
    pairs[1].names = {"other.example.net"};
    auto renamed = load_certificates(pairs, {});
    REQUIRE(renamed);
    CHECK(&renamed->find("b.example.com") == &renamed->find(""));
    CHECK(&renamed->find("other.example.net") != &renamed->find(""));

    // Errors name the pair and the cause.
    pairs[1].names = {"a.example.com"};
    pairs[1].origin = "--tls-cert #2";
    auto dup = load_certificates(pairs, {});
    REQUIRE(!dup);
    CHECK(dup.error().find("--tls-cert #2") == 0);
    CHECK(dup.error().find("already served") != std::string::npos);
    pairs[1].names.clear();
    pairs[1].key_file = pf.dir + "/missing.key";
    auto missing = load_certificates(pairs, {});
    REQUIRE(!missing);
    CHECK(missing.error().find("missing.key") != std::string::npos);
    pairs[1].key_file = pairs[0].key_file;  // a key that does not match the certificate
    auto mismatch = load_certificates(pairs, {});
    REQUIRE(!mismatch);
    CHECK(mismatch.error().find("b.crt") != std::string::npos);
    CHECK(!load_certificates({}, {}));
}
