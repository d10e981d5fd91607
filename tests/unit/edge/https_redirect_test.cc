#include <doctest/doctest.h>

#include "cfd/edge/https_redirect.h"

using namespace cfd;
using namespace cfd::edge;

TEST_CASE("edge: https-redirect matches exact names and one-label wildcards, any case or port") {
    auto r = HttpsRedirect::create({"www.example.com", "*.example.org"}, 443);
    REQUIRE(r);
    CHECK(!r->empty());
    CHECK(r->applies("www.example.com"));
    CHECK(r->applies("WWW.Example.COM:80"));
    CHECK(r->applies("www.example.com."));
    CHECK(!r->applies("example.com"));
    CHECK(!r->applies("a.www.example.com"));
    CHECK(r->applies("a.example.org"));
    CHECK(!r->applies("example.org"));
    CHECK(!r->applies("a.b.example.org"));
    CHECK(!r->applies(""));
    auto all = HttpsRedirect::create({"*"}, 443);
    REQUIRE(all);
    CHECK(all->applies("anything.test"));
    CHECK(HttpsRedirect().empty());
    CHECK(!HttpsRedirect().applies("www.example.com"));
    CHECK(!HttpsRedirect::create({""}, 443));
    CHECK(!HttpsRedirect::create({"a/b"}, 443));
}

TEST_CASE("edge: https-redirect locations keep the path and query, and name a non-default port") {
    auto r = HttpsRedirect::create({"*"}, 443);
    REQUIRE(r);
    CHECK(r->location("Www.Example.com:8080", "/a/b?c=d") == "https://www.example.com/a/b?c=d");
    CHECK(r->location("[::1]:80", "/") == "https://[::1]/");
    CHECK(r->location("x.test", "*") == "https://x.test/");
    auto p = HttpsRedirect::create({"*"}, 8443);
    REQUIRE(p);
    CHECK(p->location("x.test:8080", "/p") == "https://x.test:8443/p");
    CHECK(HttpsRedirect::status_for("GET") == 301);
    CHECK(HttpsRedirect::status_for("HEAD") == 301);
    CHECK(HttpsRedirect::status_for("POST") == 308);
}
