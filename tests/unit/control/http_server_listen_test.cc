// control::HttpServer on a real reactor: the listener's SO_REUSEPORT choice (the edge's metrics
// listener sets it, so that a replacing edge binds the address before this one stops; the
// connector's does not, so that a taken port is an error and it tries the next one).
#include <doctest/doctest.h>

#include <cerrno>

#include "../../uring/uring_util.h"
#include "cfd/control/http_server.h"

using namespace cfd;
using namespace cfd::test;

namespace {

struct Routes : control::HttpRoutes {
    control::HttpReply get(std::string_view) override { return {200, "text/plain", "ok\n"}; }
};

}  // namespace

TEST_CASE("http server: reuse_port lets a second server bind the address; without it, EADDRINUSE" *
          doctest::skip(!cfd::reactor::uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    Routes routes;
    auto any = net::SockAddr::parse("127.0.0.1:0");
    REQUIRE(any);
    control::HttpServerLimits shared;
    shared.reuse_port = true;
    auto a = control::HttpServer::open(*r, *any, routes, shared);
    REQUIRE(a);
    net::SockAddr addr = (*a)->local();
    REQUIRE(addr.port() != 0);

    auto b = control::HttpServer::open(*r, addr, routes, shared);
    CHECK(b);
    auto c = control::HttpServer::open(*r, addr, routes);  // default: no SO_REUSEPORT
    REQUIRE(!c);
    CHECK(c.error().sys == EADDRINUSE);

    (*a)->close();
    if (b) {
        (*b)->close();
    }
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}
