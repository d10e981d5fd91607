// TLS toward origins, sans I/O: OriginTls against an in-memory wolfSSL server, the server name
// taken from a request head, and TCP keep-alive on origin sockets.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../tls/tls_test_util.h"
#include "cfd/connector/origin.h"
#include "connector/origin_tls.h"

using namespace cfd;
using namespace cfd::connector;

namespace {

struct Exchange {
    bool ok = false;
    std::string client_plain;  // what the client decrypted
    std::string detail;        // the client's failure
};

// Runs a handshake between `client` and a server session, then one request/response.
Exchange run(OriginTls& client, tls::Session& server) {
    Exchange ex;
    std::string plain;
    for (int round = 0; round < 20; round++) {
        auto out = client.pending_output();
        if (!out.empty()) {
            REQUIRE(server.feed(out));
            client.consume_output(out.size());
        }
        auto s = server.handshake();
        std::string_view back = server.pending_output();
        std::string copy(back);
        server.consume_output(back.size());
        if (!copy.empty()) {
            if (auto f = client.feed(copy, plain); !f) {
                ex.detail = client.detail();
                return ex;
            }
        }
        if (!s) {
            ex.detail = "server: " + tls::describe(s.error());
            return ex;
        }
        if (client.handshake_done() && *s == tls::HandshakeStep::Done) {
            break;
        }
    }
    REQUIRE(client.handshake_done());
    auto w = client.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(w);
    CHECK(*w == 27);
    auto out = client.pending_output();
    REQUIRE(server.feed(out));
    client.consume_output(out.size());
    char buf[256];
    auto r = server.read(buf, sizeof(buf));
    REQUIRE(r);
    CHECK(std::string_view(buf, *r) == "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(server.write("HTTP/1.1 204 No Content\r\n\r\n"));
    std::string reply(server.pending_output());
    server.consume_output(reply.size());
    REQUIRE(client.feed(reply, plain));
    ex.client_plain = plain;
    ex.ok = true;
    return ex;
}

tls::Context verifying(const std::string& ca_pem) {
    tls::ClientOptions o;
    o.ca_pem = ca_pem;
    auto c = tls::Context::client(o);
    REQUIRE(c);
    return std::move(*c);
}

}  // namespace

TEST_CASE("origin tls: verified against the CA pool, the name checked") {
    auto pki = tls::test::make_pki({"origin.test", "127.0.0.1"});
    tls::Context sctx = tls::test::server_ctx(pki.leaf);
    tls::Context cctx = verifying(pki.ca.cert_pem);

    SUBCASE("the right name") {
        auto c = OriginTls::start(cctx, "origin.test");
        REQUIRE(c);
        CHECK(c->server_name() == "origin.test");
        auto s = tls::Session::server(sctx);
        REQUIRE(s);
        Exchange ex = run(*c, *s);
        CHECK_MESSAGE(ex.ok, ex.detail);
        CHECK(ex.client_plain == "HTTP/1.1 204 No Content\r\n\r\n");
        CHECK(c->describe().find("TLS") != std::string::npos);
    }
    SUBCASE("an address literal checks the certificate's addresses") {
        auto c = OriginTls::start(cctx, "127.0.0.1");
        REQUIRE(c);
        auto s = tls::Session::server(sctx);
        REQUIRE(s);
        CHECK(run(*c, *s).ok);
    }
    SUBCASE("originServerName that the certificate does not carry fails") {
        auto c = OriginTls::start(cctx, "other.test");
        REQUIRE(c);
        auto s = tls::Session::server(sctx);
        REQUIRE(s);
        Exchange ex = run(*c, *s);
        CHECK_FALSE(ex.ok);
        CHECK(ex.detail.starts_with("tls handshake: "));
    }
    SUBCASE("a CA pool without the origin's CA fails") {
        auto other = tls::test::make_pki({"origin.test"});
        tls::Context wrong = verifying(other.ca.cert_pem);
        auto c = OriginTls::start(wrong, "origin.test");
        REQUIRE(c);
        auto s = tls::Session::server(sctx);
        REQUIRE(s);
        Exchange ex = run(*c, *s);
        CHECK_FALSE(ex.ok);
        CHECK(!ex.detail.empty());
    }
    SUBCASE("noTLSVerify accepts any certificate and name") {
        tls::ClientOptions o;
        o.insecure_skip_verify = true;
        auto insecure = tls::Context::client(o);
        REQUIRE(insecure);
        auto c = OriginTls::start(*insecure, "other.test");
        REQUIRE(c);
        auto s = tls::Session::server(sctx);
        REQUIRE(s);
        CHECK(run(*c, *s).ok);
    }
}

// wolfSSL reports a name mismatch for an address literal even when the chain is not trusted
// either; the callback that accepts an iPAddress SAN must not accept the chain with it.
TEST_CASE("origin tls: an address literal signed by an untrusted CA fails") {
    auto pki = tls::test::make_pki({"origin.test", "127.0.0.1"});
    tls::Context sctx = tls::test::server_ctx(pki.leaf);
    auto other = tls::test::make_pki({"origin.test"});
    tls::Context wrong = verifying(other.ca.cert_pem);
    auto c = OriginTls::start(wrong, "127.0.0.1");
    REQUIRE(c);
    auto s = tls::Session::server(sctx);
    REQUIRE(s);
    Exchange ex = run(*c, *s);
    CHECK_FALSE(ex.ok);
}

TEST_CASE("origin tls: nothing is written before the handshake; close_notify is Closed") {
    auto pki = tls::test::make_pki({"origin.test"});
    tls::Context sctx = tls::test::server_ctx(pki.leaf);
    tls::Context cctx = verifying(pki.ca.cert_pem);
    auto c = OriginTls::start(cctx, "origin.test");
    REQUIRE(c);
    CHECK_FALSE(c->pending_output().empty());  // the ClientHello
    auto w = c->write("early");
    REQUIRE(w);
    CHECK(*w == 0);
    auto s = tls::Session::server(sctx);
    REQUIRE(s);
    REQUIRE(run(*c, *s).ok);
    s->shutdown();
    std::string bye(s->pending_output());
    std::string plain;
    auto f = c->feed(bye, plain);
    REQUIRE_FALSE(f);
    CHECK(f.error().code == Errc::Closed);
    CHECK(c->detail().empty());  // an orderly end is not a failure
}

TEST_CASE("origin tls: the server name of a request head is its Host without the port") {
    CHECK(sni_from_request_head("GET / HTTP/1.1\r\nHost: App.Example.com\r\nA: b\r\n") ==
          "app.example.com");
    CHECK(sni_from_request_head("GET / HTTP/1.1\r\nx: y\r\nhost:  a.example:8443 \r\n") ==
          "a.example");
    CHECK(sni_from_request_head("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n") == "::1");
    CHECK(sni_from_request_head("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n") == "10.0.0.1");
    CHECK(sni_from_request_head("GET / HTTP/1.1\r\nX-Host: a\r\n").empty());
    // The request line is never a header, whatever it holds.
    CHECK(sni_from_request_head("GET host:x HTTP/1.1\r\n").empty());
}

TEST_CASE("origin: tcpKeepAlive sets SO_KEEPALIVE, TCP_KEEPIDLE and TCP_KEEPINTVL") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    auto get = [fd](int level, int name) {
        int v = -1;
        socklen_t len = sizeof(v);
        REQUIRE(::getsockopt(fd, level, name, &v, &len) == 0);
        return v;
    };
    CHECK(get(SOL_SOCKET, SO_KEEPALIVE) == 0);
    REQUIRE(set_tcp_keep_alive(fd, Millis(7000)));
    CHECK(get(SOL_SOCKET, SO_KEEPALIVE) == 1);
    CHECK(get(IPPROTO_TCP, TCP_KEEPIDLE) == 7);
    CHECK(get(IPPROTO_TCP, TCP_KEEPINTVL) == 7);
    REQUIRE(set_tcp_keep_alive(fd, Millis(1500)));  // whole seconds, rounded up
    CHECK(get(IPPROTO_TCP, TCP_KEEPIDLE) == 2);
    REQUIRE(set_tcp_keep_alive(fd, Millis(0)));  // Go's default
    CHECK(get(IPPROTO_TCP, TCP_KEEPIDLE) == 15);
    ::close(fd);
}
