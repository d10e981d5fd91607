// SHA-1 against FIPS 180 vectors, the accept key against RFC 6455's example, and the client's
// side of the opening handshake.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "cfd/core/base64.h"
#include "cfd/http1/parser.h"
#include "cfd/ws/handshake.h"

using namespace cfd;
using namespace cfd::ws;

namespace {

std::string hex(const std::array<uint8_t, 20>& d) {
    std::string s;
    char b[3];
    for (uint8_t c : d) {
        std::snprintf(b, sizeof(b), "%02x", c);
        s += b;
    }
    return s;
}

http1::ResponseHead parse(std::string_view text) {
    http1::ResponseParser p;
    REQUIRE(p.feed(text) == http1::Step::HeadDone);
    return p.head();
}

}  // namespace

TEST_CASE("ws: SHA-1 of the FIPS 180 examples") {
    CHECK(hex(sha1("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(hex(sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    // 56 bytes: the padding spills into a second block.
    CHECK(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK(hex(sha1("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
                   "pqklmnopqrlmnopqrsmnopqrstnopqrstu")) ==
          "a49b2446a02c645bf419f995b67091253a04a259");
    CHECK(hex(sha1(std::string(1000000, 'a'))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    CHECK(hex(sha1("The quick brown fox jumps over the lazy dog")) ==
          "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

TEST_CASE("ws: accept key of RFC 6455's example, and fresh client keys") {
    CHECK(accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    std::string a = new_client_key();
    std::string b = new_client_key();
    CHECK(a.size() == 24);
    CHECK(a != b);
    auto raw = base64_decode(a);
    REQUIRE(raw);
    CHECK(raw->size() == 16);
}

TEST_CASE("ws: the client's request and the check of the server's 101") {
    std::string req;
    REQUIRE(write_client_request(req, "ssh.example.com", "/", "dGhlIHNhbXBsZSBub25jZQ=="));
    http1::RequestParser rp;
    auto st = rp.feed(req);
    CHECK((st == http1::Step::HeadDone || st == http1::Step::Upgrade));
    CHECK(rp.head().authority == "ssh.example.com");
    CHECK(rp.head().upgrade);
    CHECK(*http1::find_header(rp.head().headers, "sec-websocket-version") == "13");
    // Header injection through the host is refused.
    std::string bad;
    CHECK_FALSE(write_client_request(bad, "a\r\nX: y", "/", "k"));

    const char* why = "";
    auto ok = parse(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    CHECK(check_server_response(ok, "dGhlIHNhbXBsZSBub25jZQ==", &why));
    CHECK_FALSE(check_server_response(ok, "AAAAAAAAAAAAAAAAAAAAAA==", &why));
    CHECK(std::string(why).find("Accept") != std::string::npos);
    auto no_upgrade = parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    CHECK_FALSE(check_server_response(no_upgrade, "dGhlIHNhbXBsZSBub25jZQ==", &why));
    CHECK(std::string(why).find("101") != std::string::npos);
    auto no_conn = parse(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    CHECK_FALSE(check_server_response(no_conn, "dGhlIHNhbXBsZSBub25jZQ==", &why));
}
