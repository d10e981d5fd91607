// Origin services: --url parsing of our own, and ingress rules turned into OriginServices.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "cfd/config/ini.h"
#include "cfd/connector/origin.h"
#include "cfd/connector/rule_router.h"
#include "cfd/tls/certgen.h"

using namespace cfd;
using namespace cfd::connector;

TEST_CASE("origin: parse_origin_url knows http, http_status and hello_world") {
    auto h = parse_origin_url("http://127.0.0.1:8080");
    REQUIRE(h);
    CHECK(h->kind == OriginService::Kind::Http);
    CHECK(h->addr.str() == "127.0.0.1:8080");
    auto d = parse_origin_url("http://127.0.0.1");
    REQUIRE(d);
    CHECK(d->addr.port() == 80);
    auto s = parse_origin_url("http_status:404");
    REQUIRE(s);
    CHECK(s->kind == OriginService::Kind::HttpStatus);
    CHECK(s->status == 404);
    CHECK(parse_origin_url("hello_world")->kind == OriginService::Kind::HelloWorld);
    CHECK(!parse_origin_url("http_status:99"));
    CHECK(!parse_origin_url("http_status:4x4"));
    CHECK(!parse_origin_url("ftp://x"));
    CHECK(!parse_origin_url("http://"));
}

TEST_CASE("rule router: first matching rule's service, resolved once") {
    auto ini = config::IniFile::parse("[ingress \"api\"]\n"
                                      "hostname = api.example.com\n"
                                      "service = http://127.0.0.1:8000\n"
                                      "httpHostHeader = internal\n"
                                      "[ingress \"hello\"]\n"
                                      "hostname = hello.example.com\n"
                                      "service = hello_world\n"
                                      "[ingress \"sock\"]\n"
                                      "hostname = sock.example.com\n"
                                      "service = unix:/run/app.sock\n"
                                      "[ingress \"tls\"]\n"
                                      "hostname = tls.example.com\n"
                                      "service = https://127.0.0.1:8443\n"
                                      "[ingress \"default\"]\n"
                                      "service = http_status:404\n",
                                      "config.ini");
    REQUIRE(ini);
    auto in = Ingress::from_file(*ini);
    REQUIRE_MESSAGE(in, (in ? "" : in.error().str()));
    auto r = RuleRouter::create(std::move(*in));
    REQUIRE(r);
    const OriginService* api = (*r)->route("api.example.com", "/v1");
    REQUIRE(api != nullptr);
    CHECK(api->kind == OriginService::Kind::Http);
    CHECK(api->addr.str() == "127.0.0.1:8000");
    CHECK(api->host_header == "internal");
    CHECK(api->pool_key == 0);
    CHECK((*r)->route("hello.example.com", "/")->kind == OriginService::Kind::HelloWorld);
    const OriginService* sock = (*r)->route("sock.example.com", "/");
    CHECK(sock->kind == OriginService::Kind::Http);
    CHECK(sock->addr.family() == AF_UNIX);
    const OriginService* tls = (*r)->route("tls.example.com", "/");
    CHECK(tls->kind == OriginService::Kind::Http);
    CHECK(tls->use_tls);
    CHECK(tls->tls_ctx != nullptr);
    CHECK(tls->server_name == "127.0.0.1");
    CHECK_FALSE(sock->use_tls);
    const OriginService* other = (*r)->route("nope.example.com", "/");
    CHECK(other->kind == OriginService::Kind::HttpStatus);
    CHECK(other->status == 404);
    CHECK(other->pool_key == 4);
}

TEST_CASE("rule router: --url is one catch-all rule") {
    auto in = Ingress::from_url("http://127.0.0.1:9000");
    REQUIRE(in);
    auto r = RuleRouter::create(std::move(*in));
    REQUIRE(r);
    CHECK((*r)->route("any.host", "/x")->addr.str() == "127.0.0.1:9000");
    CHECK((*r)->route("", "")->addr.port() == 9000);
}

namespace {

std::unique_ptr<RuleRouter> router_of(const std::string& text) {
    auto ini = config::IniFile::parse(text, "config.ini");
    REQUIRE(ini);
    auto in = Ingress::from_file(*ini);
    REQUIRE_MESSAGE(in, (in ? "" : in.error().str()));
    auto r = RuleRouter::create(std::move(*in));
    REQUIRE_MESSAGE(r, (r ? "" : r.error()));
    return std::move(*r);
}

// A PEM CA in a temporary file, removed with the object.
struct CaFile {
    CaFile() {
        char tmpl[] = "/tmp/cfd-ca-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        auto ca = tls::generate_ca("router test CA", 1);
        REQUIRE(ca);
        std::ofstream(path) << ca->cert_pem;
    }
    ~CaFile() { std::remove(path.c_str()); }
    std::string path;
};

}  // namespace

TEST_CASE("rule router: every HTTP origin option reaches the origin service") {
    auto r = router_of(R"([ingress "a"]
service = http://127.0.0.1:8000
connectTimeout = 3s
tlsTimeout = 4s
tcpKeepAlive = 5s
keepAliveConnections = 6
keepAliveTimeout = 7s
httpHostHeader = internal.example
disableChunkedEncoding = true
)");
    const OriginService& a = r->service(0);
    CHECK(a.connect_timeout == Millis(3000));
    CHECK(a.tcp_keep_alive == Millis(5000));
    CHECK(a.max_idle == 6);
    CHECK(a.idle_timeout == Millis(7000));
    CHECK(a.host_header == "internal.example");
    CHECK(a.disable_chunked_encoding);
    CHECK_FALSE(a.use_tls);  // tlsTimeout has nothing to bound on http://
    CHECK(r->tls_contexts() == 0);

    auto d = router_of("[ingress \"d\"]\nservice = https://127.0.0.1\n");
    const OriginService& def = d->service(0);
    CHECK(def.addr.port() == 443);
    CHECK(def.tls_timeout == Millis(10000));
    CHECK(def.tcp_keep_alive == Millis(30000));
    CHECK(def.connect_timeout == Millis(30000));
    CHECK(def.max_idle == 100);
    CHECK(def.idle_timeout == Millis(90000));
    CHECK_FALSE(def.disable_chunked_encoding);
    CHECK(def.tls_ctx->verifies_peer());  // verification is on by default
}

TEST_CASE("rule router: the name a TLS origin's certificate is checked against") {
    auto r = router_of(R"([ingress "url-host"]
hostname = a.example
service = https://localhost:8443
[ingress "osn"]
hostname = b.example
service = https://127.0.0.1:8443
originServerName = origin.internal
tlsTimeout = 2s
[ingress "unix-tls-bare"]
hostname = c.example
service = unix+tls:/run/app.sock
[ingress "unix-tls-hostheader"]
hostname = d.example
service = unix+tls:/run/app.sock
httpHostHeader = app.internal
[ingress "unix-tls-osn"]
hostname = e.example
service = unix+tls:/run/app.sock
httpHostHeader = app.internal
originServerName = cert.internal
[ingress "match"]
hostname = f.example
service = https://127.0.0.1:8443
originServerName = ignored.internal
matchSNItoHost = true
[ingress "default"]
service = http_status:404
)");
    CHECK(r->service(0).server_name == "localhost");
    CHECK_FALSE(r->service(0).sni_from_host);
    CHECK(r->service(1).server_name == "origin.internal");
    CHECK(r->service(1).tls_timeout == Millis(2000));
    CHECK(r->service(2).use_tls);
    CHECK(r->service(2).addr.family() == AF_UNIX);
    CHECK(r->service(2).sni_from_host);
    CHECK(r->service(2).server_name.empty());
    CHECK(r->service(3).server_name == "app.internal");
    CHECK(r->service(4).server_name == "cert.internal");
    CHECK(r->service(5).sni_from_host);
    // All verify against the system pool: one context for the six.
    CHECK(r->tls_contexts() == 1);
    CHECK(r->service(0).tls_ctx == r->service(5).tls_ctx);
}

TEST_CASE("rule router: one TLS context per distinct caPool and noTLSVerify") {
    CaFile ca1;
    CaFile ca2;
    auto r = router_of("[ingress \"a\"]\nhostname = a.example\nservice = https://127.0.0.1:1\n"
                       "caPool = " + ca1.path + "\n"
                       "[ingress \"b\"]\nhostname = b.example\nservice = https://127.0.0.1:2\n"
                       "caPool = " + ca1.path + "\n"
                       "[ingress \"c\"]\nhostname = c.example\nservice = https://127.0.0.1:3\n"
                       "caPool = " + ca2.path + "\n"
                       "[ingress \"d\"]\nhostname = d.example\nservice = https://127.0.0.1:4\n"
                       "noTLSVerify = true\ncaPool = " + ca1.path + "\n"
                       "[ingress \"e\"]\nhostname = e.example\nservice = unix+tls:/x.sock\n"
                       "noTLSVerify = true\n"
                       "[ingress \"f\"]\nservice = http://127.0.0.1:5\n");
    CHECK(r->tls_contexts() == 3);
    CHECK(r->service(0).tls_ctx == r->service(1).tls_ctx);
    CHECK(r->service(0).tls_ctx != r->service(2).tls_ctx);
    CHECK(r->service(3).tls_ctx == r->service(4).tls_ctx);
    CHECK_FALSE(r->service(3).tls_ctx->verifies_peer());
    CHECK(r->service(0).tls_ctx->verifies_peer());
    CHECK(r->service(5).tls_ctx == nullptr);
}

TEST_CASE("rule router: a caPool that cannot be read names the rule") {
    auto ini = config::IniFile::parse("[ingress \"api\"]\nservice = https://127.0.0.1:1\n"
                                      "caPool = /nonexistent/ca.pem\n",
                                      "config.ini");
    REQUIRE(ini);
    auto in = Ingress::from_file(*ini);
    REQUIRE(in);
    auto r = RuleRouter::create(std::move(*in));
    REQUIRE_FALSE(r);
    CHECK(r.error().find("ingress rule \"api\": caPool /nonexistent/ca.pem") == 0);

    // A file that holds no certificate is refused too, at start rather than per request.
    char tmpl[] = "/tmp/cfd-bad-ca-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "not a pem\n", 10) == 10);
    ::close(fd);
    auto ini2 = config::IniFile::parse(
        "[ingress \"x\"]\nservice = https://127.0.0.1:1\ncaPool = " + std::string(tmpl) + "\n",
        "config.ini");
    REQUIRE(ini2);
    auto in2 = Ingress::from_file(*ini2);
    REQUIRE(in2);
    auto r2 = RuleRouter::create(std::move(*in2));
    std::remove(tmpl);
    REQUIRE_FALSE(r2);
    CHECK(r2.error().find("ingress rule \"x\"") == 0);
}

TEST_CASE("rule router: tcp:// and ssh:// become byte-stream services, never pooled") {
    auto r = router_of("[ingress \"t\"]\nhostname = t.example\nservice = tcp://127.0.0.1:2222\n"
                       "[ingress \"d\"]\nservice = ssh://127.0.0.1\n");
    CHECK(r->service(0).kind == OriginService::Kind::Tcp);
    CHECK(r->service(0).addr.str() == "127.0.0.1:2222");
    CHECK(r->service(0).max_idle == 0);
    CHECK(r->service(1).kind == OriginService::Kind::Tcp);
    CHECK(r->service(1).addr.str() == "127.0.0.1:22");
}
