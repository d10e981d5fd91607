#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "cfd/core/base64.h"
#include "cfd/tls/certgen.h"
#include "tls/x509_san.h"
#include "tls_test_util.h"

using namespace cfd;
using namespace cfd::tls;

namespace {

// A fresh directory under /tmp, removed with its files at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/cfd-tls-test-XXXXXX";
        char* p = mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path = p;
    }
    ~TempDir() {
        for (const char* f :
             {"/cert.pem", "/key.pem", "/ca.pem", "/cert.pem.tmp", "/key.pem.tmp"}) {
            ::unlink((path + f).c_str());
        }
        ::rmdir(path.c_str());
    }
    std::string file(const char* name) const { return path + "/" + name; }
};

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

bool connects(const Context& sctx, const Context& cctx, std::string_view name) {
    auto srv = Session::server(sctx);
    auto cli = Session::client(cctx, name);
    REQUIRE(srv);
    REQUIRE(cli);
    return test::handshake(*cli, *srv).ok;
}

}  // namespace

TEST_CASE("tls: generated CA and leaf are PEM and verify for every DNS name") {
    auto ca = generate_ca("cfdtunnel local CA", 365);
    REQUIRE(ca);
    CHECK(ca->cert_pem.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
    CHECK(ca->key_pem.find("PRIVATE KEY-----") != std::string::npos);
    auto leaf = generate_leaf(*ca, "h2.cftunnel.com",
                              {"h2.cftunnel.com", "edge.local", "*.apps.test", "127.0.0.1", "::1"},
                              30);
    REQUIRE_MESSAGE(leaf, describe(leaf.error()));
    CHECK(leaf->cert_pem != ca->cert_pem);
    auto sctx = test::server_ctx(*leaf);
    auto cctx = test::client_ctx(*ca);
    CHECK(connects(sctx, cctx, "h2.cftunnel.com"));
    CHECK(connects(sctx, cctx, "edge.local"));
    CHECK(connects(sctx, cctx, "x.apps.test"));
    CHECK(!connects(sctx, cctx, "y.x.apps.test"));
    CHECK(!connects(sctx, cctx, "other.test"));
    // Address literals match iPAddress names only.
    CHECK(connects(sctx, cctx, "127.0.0.1"));
    CHECK(connects(sctx, cctx, "::1"));
    CHECK(!connects(sctx, cctx, "127.0.0.2"));
    CHECK(!connects(sctx, cctx, "::2"));
}

TEST_CASE("tls: an address literal never passes with an untrusted chain") {
    auto pki = test::make_pki({"127.0.0.1"});
    auto other = test::make_pki({"127.0.0.1"});
    auto sctx = test::server_ctx(pki.leaf);
    CHECK(connects(sctx, test::client_ctx(pki.ca), "127.0.0.1"));
    CHECK(!connects(sctx, test::client_ctx(other.ca), "127.0.0.1"));
}

TEST_CASE("tls: each generated CA is distinct; a leaf does not verify under another CA") {
    auto ca1 = generate_ca("CA one", 1);
    auto ca2 = generate_ca("CA two", 1);
    REQUIRE(ca1);
    REQUIRE(ca2);
    CHECK(ca1->key_pem != ca2->key_pem);
    auto leaf = generate_leaf(*ca1, "h2.cftunnel.com", {"h2.cftunnel.com"}, 1);
    REQUIRE(leaf);
    auto sctx = test::server_ctx(*leaf);
    CHECK(connects(sctx, test::client_ctx(*ca1), "h2.cftunnel.com"));
    CHECK(!connects(sctx, test::client_ctx(*ca2), "h2.cftunnel.com"));
}

TEST_CASE("tls: certificate generation refuses bad input") {
    auto ca = generate_ca("CA", 1);
    REQUIRE(ca);
    CHECK(generate_ca("", 1).error().code == Errc::Invalid);
    CHECK(generate_ca(std::string(200, 'x'), 1).error().code == Errc::Invalid);
    CHECK(generate_ca("CA", 0).error().code == Errc::Invalid);
    CHECK(generate_leaf(*ca, "x", {"bad name"}, 1).error().code == Errc::Invalid);
    CHECK(generate_leaf(*ca, "x", {""}, 1).error().code == Errc::Invalid);
    std::vector<std::string> many(kMaxAltNames + 1, "a.test");
    CHECK(generate_leaf(*ca, "x", many, 1).error().code == Errc::Invalid);
    KeyPair broken{"not a cert", ca->key_pem};
    auto r = generate_leaf(broken, "x", {"a.test"}, 1);
    REQUIRE(!r);
    CHECK(r.error().code == Errc::Tls);
    KeyPair nokey{ca->cert_pem, "not a key"};
    CHECK(!generate_leaf(nokey, "x", {"a.test"}, 1));
}

TEST_CASE("tls: key pairs are written with modes 0600/0644 and never overwritten silently") {
    TempDir dir;
    auto ca = generate_ca("CA", 1);
    REQUIRE(ca);
    auto leaf = generate_leaf(*ca, "h2.cftunnel.com", {"h2.cftunnel.com"}, 1);
    REQUIRE(leaf);
    std::string cert = dir.file("cert.pem");
    std::string key = dir.file("key.pem");
    REQUIRE(write_key_pair(*leaf, cert, key));
    CHECK(mode_of(key) == 0600);
    CHECK(mode_of(cert) == 0644);
    CHECK(slurp(cert) == leaf->cert_pem);
    CHECK(slurp(key) == leaf->key_pem);

    auto other = generate_leaf(*ca, "h2.cftunnel.com", {"h2.cftunnel.com"}, 1);
    REQUIRE(other);
    auto again = write_key_pair(*other, cert, key);
    REQUIRE(!again);
    CHECK(again.error().code == Errc::Exists);
    CHECK(slurp(key) == leaf->key_pem);  // untouched
    REQUIRE(write_key_pair(*other, cert, key, /*overwrite=*/true));
    CHECK(slurp(key) == other->key_pem);
    CHECK(slurp(cert) == other->cert_pem);
    CHECK(mode_of(key) == 0600);

    // The files load as a server context; the CA loads from a file for the client.
    ServerOptions so;
    so.cert_file = cert;
    so.key_file = key;
    auto sctx = Context::server(so);
    REQUIRE_MESSAGE(sctx, describe(sctx.error()));
    std::ofstream(dir.file("ca.pem")) << ca->cert_pem;
    ClientOptions co;
    co.ca_file = dir.file("ca.pem");
    auto cctx = Context::client(co);
    REQUIRE(cctx);
    CHECK(connects(*sctx, *cctx, "h2.cftunnel.com"));
}

TEST_CASE("tls: contexts refuse missing files, mismatched keys and client misuse") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto other = test::make_pki({"h2.cftunnel.com"});
    ServerOptions so;
    so.cert_pem = pki.leaf.cert_pem;
    so.key_pem = other.leaf.key_pem;
    auto mismatch = Context::server(so);
    if (mismatch) {
        // Debian's libwolfssl (the fallback build) skips the load-time check; the key still
        // cannot sign for the certificate, so no client gets through.
        CHECK(!connects(*mismatch, test::client_ctx(pki.ca), "h2.cftunnel.com"));
    } else {
        CHECK(mismatch.error().code == Errc::Tls);
    }
    so = {};
    so.cert_file = "/nonexistent/cert.pem";
    so.key_file = "/nonexistent/key.pem";
    CHECK(!Context::server(so));
    CHECK(Context::server(ServerOptions{}).error().code == Errc::Invalid);
    ClientOptions co;
    co.ca_file = "/nonexistent/ca.pem";
    CHECK(!Context::client(co));
    co = {};
    co.ca_pem = "garbage";
    CHECK(!Context::client(co));

    // Roles are not interchangeable.
    auto sctx = test::server_ctx(pki.leaf);
    auto cctx = test::client_ctx(pki.ca);
    CHECK(Session::client(sctx).error().code == Errc::Invalid);
    CHECK(Session::server(cctx).error().code == Errc::Invalid);
    // A verifying client needs a name to verify.
    CHECK(Session::client(cctx, "").error().code == Errc::Invalid);
}

TEST_CASE("tls: the system CA pool loads when no CA is given") {
    if (::access(kSystemCaFile, R_OK) != 0) {
        MESSAGE("no system CA bundle; skipped");
        return;
    }
    auto c = Context::client(ClientOptions{});
    REQUIRE_MESSAGE(c, describe(c.error()));
    CHECK(c->verifies_peer());
    // Our throwaway CA is not in it.
    auto pki = test::make_pki({"h2.cftunnel.com"});
    CHECK(!connects(test::server_ctx(pki.leaf), *c, "h2.cftunnel.com"));
}

namespace {

std::string pem_to_der(const std::string& pem) {
    std::string b64;
    for (size_t pos = 0; pos < pem.size();) {
        size_t eol = pem.find('\n', pos);
        if (eol == std::string::npos) {
            eol = pem.size();
        }
        std::string_view line(pem.data() + pos, eol - pos);
        if (line.rfind("-----", 0) != 0) {
            b64 += line;
        }
        pos = eol + 1;
    }
    auto der = base64_decode(b64);
    REQUIRE(der);
    return *der;
}

}  // namespace

TEST_CASE("tls: the iPAddress reader finds addresses and shrugs off truncated certificates") {
    auto pki = test::make_pki({"h2.cftunnel.com", "10.1.2.3", "fe80::1"});
    std::string der = pem_to_der(pki.leaf.cert_pem);
    std::string v4("\x0a\x01\x02\x03", 4);
    std::string v6(16, '\0');
    v6[0] = '\xfe';
    v6[1] = '\x80';
    v6[15] = '\x01';
    CHECK(cert_has_ip_san(der, v4));
    CHECK(cert_has_ip_san(der, v6));
    CHECK(!cert_has_ip_san(der, std::string("\x0a\x01\x02\x04", 4)));
    CHECK(!cert_has_ip_san(der, "abc"));
    CHECK(!cert_has_ip_san(pem_to_der(pki.ca.cert_pem), v4));  // no SAN at all
    for (size_t i = 0; i < der.size(); i++) {
        CHECK(!cert_has_ip_san(std::string_view(der).substr(0, i), v4));
    }
    for (size_t i = 0; i < der.size(); i++) {
        std::string bad = der;
        bad[i] = static_cast<char>(bad[i] ^ 0xff);
        (void)cert_has_ip_san(bad, v4);  // any answer, but an answer
    }
}

TEST_CASE("tls: library version is reported for logs") {
    std::string v = library_version();
    CHECK(v.rfind("5.", 0) == 0);  // wolfSSL 5.x, ours or Debian's
}
