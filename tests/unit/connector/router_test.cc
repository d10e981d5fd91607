// Origin services: --url parsing of our own, and ingress rules turned into OriginServices.
#include <doctest/doctest.h>

#include "cfd/config/ini.h"
#include "cfd/connector/origin.h"
#include "cfd/connector/rule_router.h"

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
    CHECK((*r)->route("tls.example.com", "/")->kind == OriginService::Kind::Unsupported);
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
