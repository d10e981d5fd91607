// Responses from origins, as the connector parses them.
#include <doctest/doctest.h>

#include <string>

#include "cfd/http1/parser.h"
#include "drive.h"

using namespace cfd::http1;
using cfd::http1::test::check_all_splits;
using cfd::http1::test::drive;
using cfd::http1::test::drive_whole;
using namespace std::string_view_literals;

namespace {

void after_head(ResponseParser& p) { p.set_request_method("HEAD"); }
void after_connect(ResponseParser& p) { p.set_request_method("CONNECT"); }

}  // namespace

TEST_CASE("http1: response with Content-Length, split at every byte") {
    std::string t = check_all_splits<ResponseParser>(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(t ==
          "HEAD[200 OK v=1.1 body=length cl=5 ka=1 up=0 proto= hdrs=Content-Type:text/plain|"
          "Content-Length:5|]BODY[hello]DONE[ka=1 trailers=]");
}

TEST_CASE("http1: chunked response with trailers, split at every byte") {
    std::string t = check_all_splits<ResponseParser>(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Grpc-Status\r\n\r\n"
        "3\r\nabc\r\n4\r\ndefg\r\n0\r\nGrpc-Status: 0\r\n\r\n");
    CHECK(t ==
          "HEAD[200 OK v=1.1 body=chunked cl=0 ka=1 up=0 proto= hdrs=Transfer-Encoding:chunked|"
          "Trailer:Grpc-Status|]BODY[abcdefg]DONE[ka=1 trailers=Grpc-Status:0|]");
}

TEST_CASE("http1: response without length runs until EOF") {
    std::string t = check_all_splits<ResponseParser>(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n", true);
    CHECK(t ==
          "HEAD[200 OK v=1.1 body=until-eof cl=0 ka=0 up=0 proto= "
          "hdrs=Content-Type:text/event-stream|]BODY[data: 1\n\ndata: 2\n\n]DONE[ka=0]EOF");
    std::string u = check_all_splits<ResponseParser>("HTTP/1.0 200 OK\r\n\r\nold", true);
    CHECK(u ==
          "HEAD[200 OK v=1.0 body=until-eof cl=0 ka=0 up=0 proto= hdrs=]BODY[old]DONE[ka=0]EOF");
}

TEST_CASE("http1: a HEAD response has no body even with Content-Length") {
    std::string t = check_all_splits<ResponseParser>(
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        false, after_head);
    CHECK(t ==
          "HEAD[200 OK v=1.1 body=none cl=1000 ka=1 up=0 proto= hdrs=Content-Length:1000|]"
          "DONE[ka=1 trailers=]"
          "HEAD[404 Not Found v=1.1 body=none cl=0 ka=1 up=0 proto= hdrs=Content-Length:0|]"
          "DONE[ka=1 trailers=]");
}

TEST_CASE("http1: 204 and 304 have no body") {
    std::string t = check_all_splits<ResponseParser>(
        "HTTP/1.1 204 No Content\r\n\r\n"
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: \"x\"\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    CHECK(t ==
          "HEAD[204 No Content v=1.1 body=none cl=0 ka=1 up=0 proto= hdrs=]DONE[ka=1 trailers=]"
          "HEAD[304 Not Modified v=1.1 body=none cl=42 ka=1 up=0 proto= "
          "hdrs=Content-Length:42|ETag:\"x\"|]DONE[ka=1 trailers=]"
          "HEAD[200 OK v=1.1 body=length cl=2 ka=1 up=0 proto= hdrs=Content-Length:2|]BODY[ok]"
          "DONE[ka=1 trailers=]");
}

TEST_CASE("http1: 1xx interim responses, then the final one") {
    std::string_view in =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    std::string t = check_all_splits<ResponseParser>(in);
    CHECK(t ==
          "HEAD[100 Continue v=1.1 body=none cl=0 ka=1 up=0 proto= hdrs=]DONE[ka=1 trailers=]"
          "HEAD[103 Early Hints v=1.1 body=none cl=0 ka=1 up=0 proto= "
          "hdrs=Link:</s.css>; rel=preload|]DONE[ka=1 trailers=]"
          "HEAD[200 OK v=1.1 body=length cl=2 ka=1 up=0 proto= hdrs=Content-Length:2|]BODY[ok]"
          "DONE[ka=1 trailers=]");
    ResponseParser p;
    REQUIRE(p.feed(in) == Step::HeadDone);
    CHECK(p.head().interim());
}

TEST_CASE("http1: 101 Switching Protocols, then raw bytes") {
    std::string t = check_all_splits<ResponseParser>(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi\x88\x00"sv);
    CHECK(t ==
          std::string("HEAD[101 Switching Protocols v=1.1 body=none cl=0 ka=0 up=1 "
                      "proto=websocket hdrs=Upgrade:websocket|Connection:Upgrade|"
                      "Sec-WebSocket-Accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=|]UPGRADE[\x81\x02hi") +
              std::string("\x88\x00]", 3));
    // Without the Upgrade headers a 101 still ends HTTP on this connection.
    std::string u = drive_whole<ResponseParser>("HTTP/1.1 101 Switching Protocols\r\n\r\nRAW");
    CHECK(u.substr(u.find("UPGRADE")) == "UPGRADE[RAW]");
}

TEST_CASE("http1: 2xx to CONNECT is a tunnel, an error status is not") {
    std::string t = check_all_splits<ResponseParser>(
        "HTTP/1.1 200 Connection Established\r\n\r\nRAW", false, after_connect);
    CHECK(t.substr(t.find("UPGRADE")) == "UPGRADE[RAW]");
    std::string u = drive_whole<ResponseParser>(
        "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno", false,
        after_connect);
    CHECK(u.find("BODY[no]DONE[ka=1") != std::string::npos);
}

TEST_CASE("http1: response keep-alive follows Connection and the version") {
    auto ka = [](std::string_view in) {
        ResponseParser p;
        REQUIRE(p.feed(in) == Step::HeadDone);
        return p.head().keep_alive;
    };
    CHECK(ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    CHECK(!ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    CHECK(!ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    CHECK(ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"));
}

TEST_CASE("http1: broken responses are 502 with a reason") {
    struct Case {
        const char* name;
        std::string in;
        const char* reason;
    };
    const Case cases[] = {
        {"CL with TE",
         "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "Content-Length with Transfer-Encoding"},
        {"duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         "duplicate Content-Length"},
        {"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
         "unsupported Transfer-Encoding in response"},
        {"four digit status", "HTTP/1.1 2000 OK\r\n\r\n", "invalid status line"},
        {"letters for status", "HTTP/1.1 abc OK\r\n\r\n", "invalid status line"},
        {"status 099", "HTTP/1.1 099 Low\r\n\r\n", "invalid response status"},
        {"HTTP/2 status line", "HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version in response"},
        {"garbage", "SSH-2.0-OpenSSH_9.2\r\n", "malformed message"},
        {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
         "obs-fold line folding"},
        {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF line ending"},
        {"huge headers", "HTTP/1.1 200 OK\r\nX: " + std::string(40000, 'x') + "\r\n\r\n",
         "header section too large"},
    };
    for (const Case& c : cases) {
        INFO(std::string(c.name));
        std::string t = drive_whole<ResponseParser>(c.in);
        CHECK(t.substr(t.find("ERROR")) == "ERROR[502 " + std::string(c.reason) + "]");
    }
}

TEST_CASE("http1: a response cut short by EOF is an error, not a success") {
    ResponseParser p;
    std::string t = drive(p, {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"}, true);
    CHECK(t.substr(t.find("ERROR")) == "ERROR[502 origin closed the connection mid-response]");
    ResponseParser q;
    std::string u =
        drive(q, {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"}, true);
    CHECK(u.substr(u.find("ERROR")) == "ERROR[502 origin closed the connection mid-response]");
    ResponseParser r;
    CHECK(r.feed("HTTP/1.1 200") == Step::NeedMore);
    CHECK(r.finish() == Step::Error);
    CHECK(r.error().status == 502);
}
