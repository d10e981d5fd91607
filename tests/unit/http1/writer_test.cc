// Serializers, checked by parsing their output back.
#include <doctest/doctest.h>

#include <string>

#include "cfd/http1/hop_by_hop.h"
#include "cfd/http1/parser.h"
#include "cfd/http1/writer.h"
#include "drive.h"

using namespace cfd::http1;
using cfd::http1::test::drive_whole;

namespace {

struct Parsed {
    RequestHead head;
    std::string body;
    Headers trailers;
    int messages = 0;
};

Parsed parse_request(std::string_view in) {
    RequestParser p;
    Parsed out;
    for (;;) {
        Step s = p.feed(in);
        in.remove_prefix(p.consumed());
        if (s == Step::HeadDone) {
            out.head = p.head();
        } else if (s == Step::Body) {
            out.body += p.body();
        } else if (s == Step::MessageDone) {
            out.trailers = p.trailers();
            ++out.messages;
        } else {
            REQUIRE(s == Step::NeedMore);
            return out;
        }
    }
}

}  // namespace

TEST_CASE("http1: request serializer output parses back to the same head and body") {
    Headers hs = {{"User-Agent", "cfdtunnel"}, {"Accept", "*/*"}, {"X-Empty", ""},
                  {"Cookie", "a=1"}, {"Cookie", "b=2"}};
    SUBCASE("no body") {
        std::string out;
        REQUIRE(write_request_head(out, "GET", "/a?b=c", "a.example:8443", hs, Framing::none()));
        Parsed p = parse_request(out);
        CHECK(p.messages == 1);
        CHECK(p.head.method == "GET");
        CHECK(p.head.path == "/a?b=c");
        CHECK(p.head.authority == "a.example:8443");
        CHECK(p.head.body == BodyKind::None);
        Headers want = {{"Host", "a.example:8443"}};
        want.insert(want.end(), hs.begin(), hs.end());
        CHECK(p.head.headers == want);
    }
    SUBCASE("Content-Length body") {
        std::string out;
        REQUIRE(write_request_head(out, "POST", "/up", "a.example", hs,
                                   Framing::content_length(11)));
        out += "hello world";
        Parsed p = parse_request(out);
        CHECK(p.head.body == BodyKind::Length);
        CHECK(p.head.content_length == 11);
        CHECK(p.body == "hello world");
    }
    SUBCASE("chunked body with trailers") {
        std::string out;
        REQUIRE(write_request_head(out, "PUT", "/f", "a.example", hs, Framing::chunked()));
        write_chunk(out, "hello ");
        write_chunk(out, "");  // must not end the body
        write_chunk(out, "world");
        REQUIRE(write_last_chunk(out, {{"X-Sum", "42"}}));
        Parsed p = parse_request(out);
        CHECK(p.head.body == BodyKind::Chunked);
        CHECK(p.body == "hello world");
        CHECK(p.trailers == Headers{{"X-Sum", "42"}});
    }
    SUBCASE("framing and Host among the headers are the writer's, not the caller's") {
        Headers sneaky = {{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"},
                          {"host", "evil.example"}, {"X-Ok", "1"}};
        std::string out;
        REQUIRE(write_request_head(out, "POST", "/", "a.example", sneaky,
                                   Framing::content_length(2)));
        out += "ok";
        Parsed p = parse_request(out);
        CHECK(p.head.authority == "a.example");
        CHECK(p.head.headers ==
              Headers{{"Host", "a.example"}, {"X-Ok", "1"}, {"Content-Length", "2"}});
        CHECK(p.body == "ok");
    }
}

TEST_CASE("http1: a parsed head written again parses to the same transcript") {
    std::string_view in =
        "POST /x?y HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r\nX-B: two words\r\n"
        "Content-Length: 3\r\n\r\nabc";
    Parsed first = parse_request(in);
    std::string out;
    REQUIRE(write_request_head(out, first.head));
    out += first.body;
    CHECK(out == in);
    CHECK(drive_whole<RequestParser>(out) == drive_whole<RequestParser>(in));
}

TEST_CASE("http1: chunked framing round-trips for sizes around hex digit boundaries") {
    std::string framed;
    std::string body;
    for (size_t n : {1, 9, 10, 15, 16, 17, 255, 256, 4095, 4096, 65537}) {
        std::string data(n, static_cast<char>('a' + n % 26));
        write_chunk(framed, data);
        body += data;
    }
    std::string sized;
    write_chunk_header(sized, 255);
    CHECK(sized == "ff\r\n");
    REQUIRE(write_last_chunk(framed, {{"Grpc-Status", "0"}, {"Grpc-Message", "ok"}}));
    std::string wire;
    REQUIRE(write_request_head(wire, "POST", "/c", "a", {}, Framing::chunked()));
    wire += framed;
    Parsed p = parse_request(wire);
    CHECK(p.body == body);
    CHECK(p.trailers == Headers{{"Grpc-Status", "0"}, {"Grpc-Message", "ok"}});
    std::string last;
    REQUIRE(write_last_chunk(last));
    CHECK(last == "0\r\n\r\n");
}

TEST_CASE("http1: response head with the standard reason phrase") {
    std::string out;
    REQUIRE(write_response_head(out, 404, {{"Content-Type", "text/html"}},
                                Framing::content_length(3)));
    CHECK(out == "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\n");
    out.clear();
    REQUIRE(write_response_head(out, 200, {{"Connection", "keep-alive"}, {"X", "y"}},
                                Framing::chunked(), true));
    CHECK(out ==
          "HTTP/1.1 200 OK\r\nX: y\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    out.clear();
    REQUIRE(write_response_head(out, 599, {}, Framing::none()));
    CHECK(out == "HTTP/1.1 599 \r\n\r\n");
    CHECK(reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(reason_phrase(101) == "Switching Protocols");
    CHECK(!write_response_head(out, 1000, {}, Framing::none()));
    CHECK(!write_response_head(out, 99, {}, Framing::none()));

    std::string wire;
    REQUIRE(write_response_head(wire, 201, {{"Location", "/n/1"}}, Framing::content_length(2)));
    wire += "ok";
    CHECK(drive_whole<ResponseParser>(wire) ==
          "HEAD[201 Created v=1.1 body=length cl=2 ka=1 up=0 proto= hdrs=Location:/n/1|"
          "Content-Length:2|]BODY[ok]DONE[ka=1 trailers=]");
}

TEST_CASE("http1: writers refuse header injection and leave the output as it was") {
    std::string out = "kept";
    CHECK(write_request_head(out, "GET", "/", "a", {{"X", "a\r\nEvil: 1"}}, Framing::none())
              .error()
              .code == cfd::Errc::Invalid);
    CHECK(!write_request_head(out, "GET", "/", "a", {{"X Y", "1"}}, Framing::none()));
    CHECK(!write_request_head(out, "GET", "/", "a", {{"", "1"}}, Framing::none()));
    CHECK(!write_request_head(out, "GET /", "/", "a", {}, Framing::none()));
    CHECK(!write_request_head(out, "GET", "/a b", "a", {}, Framing::none()));
    CHECK(!write_request_head(out, "GET", "", "a", {}, Framing::none()));
    CHECK(!write_request_head(out, "GET", "/", "a\r\nX: 1", {}, Framing::none()));
    CHECK(!write_response_head(out, 200, {{"X", std::string("a\0b", 3)}}, Framing::none()));
    CHECK(!write_last_chunk(out, {{"X", "a\nb"}}));
    CHECK(!write_last_chunk(out, {{"Content-Length", "1"}}));
    CHECK(out == "kept");
}

TEST_CASE("http1: error responses the edge writes itself") {
    struct Case {
        uint16_t status;
        std::string_view text;
        bool keep_alive;
        std::string body;
    };
    const Case cases[] = {
        {400, "Bad request: invalid header name", false, "Bad request: invalid header name\n"},
        {404, "No tunnel serves this hostname.\n", true, "No tunnel serves this hostname.\n"},
        {431, "", false, "431 Request Header Fields Too Large\n"},
        {502, "The origin is unreachable.", true, "The origin is unreachable.\n"},
        {530, "error code: 1033", false, "error code: 1033\n"},
    };
    for (const Case& c : cases) {
        INFO(c.status);
        std::string out;
        write_error_response(out, c.status, c.text, c.keep_alive);
        ResponseParser p;
        std::string_view in = out;
        REQUIRE(p.feed(in) == Step::HeadDone);
        in.remove_prefix(p.consumed());
        CHECK(p.head().status == c.status);
        CHECK(p.head().reason == reason_phrase(c.status));
        CHECK(p.head().keep_alive == c.keep_alive);
        CHECK(*find_header(p.head().headers, "content-type") == "text/plain; charset=utf-8");
        REQUIRE(p.feed(in) == Step::Body);
        CHECK(p.body() == c.body);
        in.remove_prefix(p.consumed());
        CHECK(p.feed(in) == Step::MessageDone);
        CHECK(in.empty());
    }
    std::string html;
    write_error_response(html, 530, "<html>1033</html>", false, "text/html; charset=utf-8");
    CHECK(html.find("Content-Type: text/html; charset=utf-8\r\n") != std::string::npos);

    // A HEAD request gets the head alone: a body would be read as the next response.
    std::string head_only;
    write_error_response(head_only, 404, "not here", true, "text/plain", true);
    std::string t = drive_whole<ResponseParser>(head_only, false, +[](ResponseParser& q) {
        q.set_request_method("HEAD");
    });
    CHECK(t ==
          "HEAD[404 Not Found v=1.1 body=none cl=9 ka=1 up=0 proto= hdrs=Content-Type:text/plain|"
          "Cache-Control:no-store|Content-Length:9|]DONE[ka=1 trailers=]");
    CHECK(head_only.substr(head_only.size() - 4) == "\r\n\r\n");
}

TEST_CASE("http1: hop-by-hop headers and those named in Connection are stripped") {
    Headers hs = {
        {"Host", "a"},
        {"Connection", "keep-alive, X-Session"},
        {"Keep-Alive", "timeout=5"},
        {"X-Session", "secret"},
        {"Accept", "*/*"},
        {"Proxy-Connection", "keep-alive"},
        {"TE", "trailers"},
        {"Transfer-Encoding", "chunked"},
        {"upgrade", "websocket"},
        {"connection", "Upgrade"},
        {"X-Kept", "1"},
    };
    strip_hop_by_hop(hs);
    CHECK(hs == Headers{{"Host", "a"}, {"Accept", "*/*"}, {"X-Kept", "1"}});
    CHECK(is_hop_by_hop("KEEP-ALIVE"));
    CHECK(is_hop_by_hop("te"));
    CHECK(!is_hop_by_hop("Trailer-X"));
    CHECK(!is_hop_by_hop("Content-Length"));
    Headers none = {{"A", "1"}};
    strip_hop_by_hop(none);
    CHECK(none == Headers{{"A", "1"}});
}

TEST_CASE("http1: header lookup and token lists") {
    Headers hs = {{"Content-Type", "text/plain"}, {"X", "1"}, {"x", "2"}};
    REQUIRE(find_header(hs, "content-TYPE") != nullptr);
    CHECK(*find_header(hs, "x") == "1");
    CHECK(find_header(hs, "y") == nullptr);
    CHECK(count_headers(hs, "X") == 2);
    CHECK(has_token("keep-alive, Upgrade", "upgrade"));
    CHECK(has_token(" close ", "close"));
    CHECK(!has_token("closed", "close"));
    CHECK(!has_token("", "close"));
    CHECK(is_token("X-Forwarded-For"));
    CHECK(!is_token("X Y"));
    CHECK(!is_token(""));
    CHECK(is_field_value("a\tb \xc3\xa9"));
    CHECK(!is_field_value("a\rb"));
}
