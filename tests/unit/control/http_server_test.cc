// The small read-only HTTP server's exchange logic, without sockets: requests in, bytes out.
#include <doctest/doctest.h>

#include "cfd/control/http_server.h"

using namespace cfd;
using namespace cfd::control;

namespace {

struct Routes : HttpRoutes {
    std::vector<std::string> paths;
    HttpReply get(std::string_view path) override {
        paths.emplace_back(path);
        if (path == "/ok") {
            return {200, "text/plain", "fine\n"};
        }
        return {404, "text/plain", "none\n"};
    }
};

std::string feed(HttpExchange& x, std::string_view in) {
    std::string out;
    x.feed(in, out);
    return out;
}

}  // namespace

TEST_CASE("http server: GET answers from the routes, keep-alive and pipelining") {
    Routes r;
    HttpExchange x(r, {});
    std::string out = feed(x, "GET /ok?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /no");
    CHECK(out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(out.find("Content-Length: 5\r\n") != std::string::npos);
    CHECK(out.find("Content-Type: text/plain\r\n") != std::string::npos);
    CHECK(out.find("Cache-Control: no-store\r\n") != std::string::npos);
    CHECK(out.size() >= 5);
    CHECK(out.substr(out.size() - 5) == "fine\n");
    CHECK(!x.closing());
    // The rest of the second request arrives later, in pieces.
    CHECK(feed(x, " HTTP/1.1\r\nHo").empty());
    out = feed(x, "st: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(out.find("HTTP/1.1 200 OK\r\n", 10) != std::string::npos);
    CHECK(r.paths == std::vector<std::string>{"/ok", "/no", "/ok"});
    CHECK(x.requests() == 3);
    CHECK(!x.closing());
}

TEST_CASE("http server: only GET; Connection: close and HTTP/1.0 end the connection") {
    Routes r;
    HttpExchange x(r, {});
    std::string out = feed(x, "POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    CHECK(out.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
    CHECK(out.find("Allow: GET\r\n") != std::string::npos);
    CHECK(r.paths.empty());
    CHECK(!x.closing());
    out = feed(x, "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    CHECK(out.find("Connection: close\r\n") != std::string::npos);
    CHECK(x.closing());
    CHECK(feed(x, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n").empty());

    HttpExchange old(r, {});
    out = feed(old, "GET /ok HTTP/1.0\r\n\r\n");
    CHECK(out.find(" 200 ") != std::string::npos);
    CHECK(old.closing());
}

TEST_CASE("http server: bounded heads and bodies, malformed requests") {
    Routes r;
    HttpServerLimits l;
    l.max_header_bytes = 256;
    l.max_body_bytes = 8;
    {
        HttpExchange x(r, l);
        std::string out = feed(x, "GET /ok HTTP/1.1\r\nHost: a\r\nX: " + std::string(400, 'a'));
        CHECK(out.find(" 431 ") != std::string::npos);
        CHECK(x.closing());
    }
    {
        HttpExchange x(r, l);
        std::string out = feed(x, "GET /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n");
        CHECK(out.find(" 413 ") != std::string::npos);
        CHECK(x.closing());
    }
    {
        HttpExchange x(r, l);
        std::string out = feed(x, "GET /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "20\r\n" + std::string(32, 'b'));
        CHECK(out.find(" 413 ") != std::string::npos);
        CHECK(x.closing());
    }
    {
        HttpExchange x(r, l);
        std::string out = feed(x, "GARBAGE\r\n\r\n");
        CHECK(out.find(" 400 ") != std::string::npos);
        CHECK(x.closing());
    }
    CHECK(r.paths.empty());
}
