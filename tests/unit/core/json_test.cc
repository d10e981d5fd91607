#include <doctest/doctest.h>

#include "cfd/core/json.h"

using namespace cfd;

TEST_CASE("json: credentials file round trip") {
    auto v = json::parse(R"({"AccountTag":"acct","TunnelSecret":"c2VjcmV0","TunnelID":"610a53bd-ed0c-4afe-92b5-ca0238153410"})");
    REQUIRE(v);
    CHECK(v->get_string("AccountTag") == "acct");
    CHECK(v->get_string("TunnelID") == "610a53bd-ed0c-4afe-92b5-ca0238153410");
    CHECK(v->get_string("Missing", "x") == "x");
    CHECK(json::write(*v) ==
          R"({"AccountTag":"acct","TunnelSecret":"c2VjcmV0","TunnelID":"610a53bd-ed0c-4afe-92b5-ca0238153410"})");
}

TEST_CASE("json: values, escapes and nesting") {
    auto v = json::parse(R"( {"a":[1,2.5,-3e2,true,false,null],"s":"q\"\\\n\u00e9\ud83d\ude00","o":{}} )");
    REQUIRE(v);
    const auto& a = v->get("a")->items();
    REQUIRE(a.size() == 6);
    CHECK(a[0].as_number() == 1);
    CHECK(a[1].as_number() == 2.5);
    CHECK(a[2].as_number() == -300);
    CHECK(a[3].as_bool());
    CHECK(a[5].is_null());
    CHECK(v->get_string("s") == "q\"\\\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(v->get("o")->is_object());
    json::Value out = json::Value::object();
    out.set("status", json::Value::number(200));
    out.set("connectorId", json::Value::string("x\ty"));
    CHECK(json::write(out) == R"({"status":200,"connectorId":"x\ty"})");
}

TEST_CASE("json: hostile input is refused, not crashed on") {
    CHECK(!json::parse(""));
    CHECK(!json::parse("{"));
    CHECK(!json::parse("{\"a\":}"));
    CHECK(!json::parse("[1,]"));
    CHECK(!json::parse("\"abc"));
    CHECK(!json::parse("\"\\ud800\""));
    CHECK(!json::parse("\"a\x01\""));
    CHECK(!json::parse("{} x"));
    CHECK(!json::parse("1e999"));
    CHECK(!json::parse(std::string(100, '[') + std::string(100, ']')));
    CHECK(json::parse(std::string(10, '[') + std::string(10, ']')));
    json::Limits small;
    small.max_bytes = 4;
    CHECK(!json::parse("[1,2,3]", small));
}
