#include <doctest/doctest.h>

#include "cfd/http1/parser.h"
#include "drive.h"

using namespace cfd::http1;
using cfd::http1::test::check_all_splits;
using cfd::http1::test::drive;
using cfd::http1::test::drive_whole;

TEST_CASE("http1: Host header split across two recv buffers") {
    RequestParser p;
    CHECK(p.feed("GET / HTTP/1.1\r\nHo") == Step::NeedMore);
    CHECK(p.feed("st: a.example\r\n\r\n") == Step::HeadDone);
    CHECK(p.head().authority == "a.example");  // copied out: the buffers are already gone
    CHECK(p.feed("") == Step::MessageDone);
    CHECK(p.keep_alive());
    CHECK(p.feed("") == Step::NeedMore);
}

TEST_CASE("http1: GET with several headers, split at every byte") {
    std::string_view in =
        "GET /search?q=a%20b HTTP/1.1\r\n"
        "Host: a.example\r\n"
        "User-Agent: curl/7.88.1\r\n"
        "Accept: */*\r\n"
        "X-Mixed-Case:  padded value \t\r\n"
        "Cookie: a=1\r\n"
        "Cookie: b=2\r\n"
        "\r\n";
    std::string t = check_all_splits<RequestParser>(in);
    CHECK(t ==
          "HEAD[GET /search?q=a%20b path=/search?q=a%20b auth=a.example expect=0 v=1.1 body=none "
          "cl=0 ka=1 up=0 proto= hdrs=Host:a.example|User-Agent:curl/7.88.1|Accept:*/*|"
          "X-Mixed-Case:padded value|Cookie:a=1|Cookie:b=2|]DONE[ka=1 trailers=]");
}

TEST_CASE("http1: POST with Content-Length body, split at every byte") {
    std::string_view in =
        "POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: 11\r\n\r\nhello world";
    std::string t = check_all_splits<RequestParser>(in);
    CHECK(t ==
          "HEAD[POST /upload path=/upload auth=a.example expect=0 v=1.1 body=length cl=11 ka=1 "
          "up=0 proto= hdrs=Host:a.example|Content-Length:11|]BODY[hello world]"
          "DONE[ka=1 trailers=]");
}

TEST_CASE("http1: chunked POST with extensions and trailers, split at every byte") {
    std::string_view in =
        "POST /c HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;name=value\r\nhello\r\n"
        "1\r\n \r\n"
        "A\r\n0123456789\r\n"
        "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
    std::string t = check_all_splits<RequestParser>(in);
    CHECK(t ==
          "HEAD[POST /c path=/c auth=a.example expect=0 v=1.1 body=chunked cl=0 ka=1 up=0 proto= "
          "hdrs=Host:a.example|Transfer-Encoding:chunked|]BODY[hello 0123456789]"
          "DONE[ka=1 trailers=X-Checksum:abc|X-Other:1|]");
}

TEST_CASE("http1: two pipelined requests, split at every byte") {
    std::string_view in =
        "POST /a HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\nabc"
        "GET /b HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n";
    std::string t = check_all_splits<RequestParser>(in);
    CHECK(t ==
          "HEAD[POST /a path=/a auth=a.example expect=0 v=1.1 body=length cl=3 ka=1 up=0 proto= "
          "hdrs=Host:a.example|Content-Length:3|]BODY[abc]DONE[ka=1 trailers=]"
          "HEAD[GET /b path=/b auth=b.example expect=0 v=1.1 body=none cl=0 ka=0 up=0 proto= "
          "hdrs=Host:b.example|Connection:close|]DONE[ka=0 trailers=]");
}

TEST_CASE("http1: pipelined requests stop after each message until fed again") {
    std::string_view in =
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    RequestParser p;
    REQUIRE(p.feed(in) == Step::HeadDone);
    CHECK(p.head().path == "/1");
    in.remove_prefix(p.consumed());
    REQUIRE(p.feed(in) == Step::MessageDone);
    CHECK(p.consumed() == 0);
    // The second request is untouched until the caller feeds again: head() is still /1.
    CHECK(p.head().path == "/1");
    CHECK(p.messages() == 1);
    REQUIRE(p.feed(in) == Step::HeadDone);
    CHECK(p.head().path == "/2");
    in.remove_prefix(p.consumed());
    CHECK(in.empty());
    CHECK(p.feed(in) == Step::MessageDone);
    CHECK(p.messages() == 2);
}

TEST_CASE("http1: leading empty lines between pipelined requests are skipped") {
    std::string t = drive_whole<RequestParser>(
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(t.find("GET /1") != std::string::npos);
    CHECK(t.find("GET /2") != std::string::npos);
    CHECK(t.find("ERROR") == std::string::npos);
}

TEST_CASE("http1: keep-alive rules of HTTP/1.0 and HTTP/1.1") {
    auto ka = [](std::string_view in) {
        RequestParser p;
        REQUIRE(p.feed(in) == Step::HeadDone);
        bool head_ka = p.head().keep_alive;
        REQUIRE(p.feed("") == Step::MessageDone);
        CHECK(p.keep_alive() == head_ka);
        return head_ka;
    };
    CHECK(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK(!ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    CHECK(!ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"));
    CHECK(!ka("GET / HTTP/1.0\r\n\r\n"));
    CHECK(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    CHECK(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    CHECK(!ka("GET / HTTP/1.0\r\nHost: a\r\nConnection: close\r\n\r\n"));
}

TEST_CASE("http1: after Connection: close, more bytes are refused, EOF is clean") {
    RequestParser p;
    std::string t = drive(p, {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}, true);
    CHECK(t.substr(t.size() - 3) == "EOF");
    RequestParser q;
    std::string u = drive(q, {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                              "GET / HTTP/1.1\r\nHost: a\r\n\r\n"});
    CHECK(u.substr(u.find("ERROR")) == "ERROR[400 data after the last message]");
}

TEST_CASE("http1: Expect: 100-continue is reported on HTTP/1.1 only") {
    RequestParser p;
    REQUIRE(p.feed("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                   "Content-Length: 4\r\n\r\n") == Step::HeadDone);
    CHECK(p.head().expect_continue);
    CHECK(p.head().body == BodyKind::Length);
    // The client waits for 100 before sending: no body byte is pending.
    CHECK(p.feed("") == Step::NeedMore);
    CHECK(p.feed("data") == Step::Body);
    CHECK(p.body() == "data");

    RequestParser q;
    REQUIRE(q.feed("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n") ==
            Step::HeadDone);
    CHECK(!q.head().expect_continue);
}

TEST_CASE("http1: request-target forms give path and authority") {
    auto head = [](std::string_view in) {
        RequestParser p;
        REQUIRE(p.feed(in) == Step::HeadDone);
        return p.head();
    };
    RequestHead a = head("GET http://b.example:8080/x?y HTTP/1.1\r\nHost: ignored\r\n\r\n");
    CHECK(a.authority == "b.example:8080");
    CHECK(a.path == "/x?y");
    CHECK(a.target == "http://b.example:8080/x?y");
    RequestHead b = head("GET https://b.example HTTP/1.1\r\nHost: b.example\r\n\r\n");
    CHECK(b.path == "/");
    RequestHead c = head("OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n");
    CHECK(c.path == "*");
    CHECK(c.authority == "a.example");
    RequestHead d = head("GET / HTTP/1.0\r\n\r\n");
    CHECK(d.authority.empty());
    CHECK(d.version_minor == 0);
}

TEST_CASE("http1: WebSocket upgrade hands the rest over as raw bytes") {
    std::string_view in =
        "GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n\x81\x05hello";
    std::string t = check_all_splits<RequestParser>(in);
    CHECK(t.find("up=1 proto=websocket") != std::string::npos);
    CHECK(t.find("ka=0") != std::string::npos);
    CHECK(t.substr(t.find("UPGRADE")) == "UPGRADE[\x81\x05hello]");

    RequestParser p;
    REQUIRE(p.feed(in) == Step::HeadDone);
    in.remove_prefix(p.consumed());
    REQUIRE(p.feed(in) == Step::Upgrade);
    CHECK(p.consumed() == 0);
    // Sticky: raw bytes are never parsed as HTTP.
    CHECK(p.feed(in) == Step::Upgrade);
    CHECK(p.consumed() == 0);
}

TEST_CASE("http1: a refused upgrade goes back to HTTP for the next request") {
    RequestParser p;
    std::string_view in =
        "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    REQUIRE(p.feed(in) == Step::HeadDone);
    in.remove_prefix(p.consumed());
    REQUIRE(p.feed(in) == Step::Upgrade);
    p.resume_after_upgrade();
    REQUIRE(p.feed(in) == Step::HeadDone);
    CHECK(p.head().path == "/next");
    CHECK(!p.head().upgrade);
}

TEST_CASE("http1: CONNECT takes an authority and switches to raw bytes") {
    std::string t = check_all_splits<RequestParser>(
        "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nRAW");
    CHECK(t ==
          "HEAD[CONNECT db.internal:5432 path= auth=db.internal:5432 expect=0 v=1.1 body=none "
          "cl=0 ka=0 up=1 proto= hdrs=Host:db.internal:5432|]UPGRADE[RAW]");
}

TEST_CASE("http1: EOF between requests is clean, mid-request it is an error") {
    RequestParser a;
    CHECK(a.finish() == Step::Closed);
    RequestParser b;
    CHECK(drive(b, {"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, true).find("EOF") != std::string::npos);
    RequestParser c;
    CHECK(c.feed("GET / HTTP/1.1\r\nHo") == Step::NeedMore);
    CHECK(c.finish() == Step::Error);
    CHECK(c.error().status == 400);
    RequestParser d;
    REQUIRE(d.feed("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab") ==
            Step::HeadDone);
    CHECK(d.feed("ab") == Step::Body);
    CHECK(d.finish() == Step::Error);
    CHECK(std::string(d.error().reason) == "connection closed mid-request");
}

TEST_CASE("http1: a parser moved mid-message carries on where it was") {
    RequestParser a;
    REQUIRE(a.feed("POST /m HTTP/1.1\r\nHost: a\r\nX-Long: ab") == Step::NeedMore);
    RequestParser b = std::move(a);
    REQUIRE(b.feed("cd\r\nContent-Length: 2\r\n\r\nok") == Step::HeadDone);
    CHECK(*find_header(b.head().headers, "x-long") == "abcd");
    std::vector<RequestParser> v;
    v.push_back(std::move(b));
    REQUIRE(v[0].feed("ok") == Step::Body);
    CHECK(v[0].body() == "ok");
    CHECK(v[0].feed("") == Step::MessageDone);
}
