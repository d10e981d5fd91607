#include <doctest/doctest.h>

#include "cfd/core/json.h"
#include "cli/api_client.h"
#include "cli/tunnel_format.h"

using namespace cfd;
using namespace cfd::cli;

TEST_CASE("cli: tunnel info prints DESIGN.md story 8's table exactly") {
    auto t = json::parse(R"({"id":"610a53bd-ed0c-4afe-92b5-ca0238153410","name":"mytunnel",
        "created_at":"2021-03-26T19:29:34.291328Z","connectors":[{
        "id":"71490dec-190f-4652-a70a-cd001fe6fdcf","created_at":"2021-03-26T19:29:47.5Z",
        "arch":"linux_amd64","version":"2026.11.0","origin_ip":"104.13.170.35",
        "edges":{"MCI":2,"DFW":2}}]})");
    REQUIRE(t);
    CHECK(format_info(*t) ==
          "NAME:     mytunnel\n"
          "ID:       610a53bd-ed0c-4afe-92b5-ca0238153410\n"
          "CREATED:  2021-03-26 19:29:34.291328 +0000 UTC\n"
          "\n"
          "CONNECTOR ID                         CREATED              ARCHITECTURE VERSION    "
          "ORIGIN IP     EDGE\n"
          "71490dec-190f-4652-a70a-cd001fe6fdcf 2021-03-26T19:29:47Z linux_amd64  2026.11.0  "
          "104.13.170.35 2xDFW, 2xMCI\n");
}

TEST_CASE("cli: tunnel list sums connections per location") {
    auto a = json::parse(R"({"id":"a","name":"one","created_at":"2021-03-26T19:29:34Z",
        "connectors":[{"edges":{"DFW":2}},{"edges":{"DFW":1,"AMS":1}}]})");
    auto b = json::parse(R"({"id":"b","name":"two","created_at":"2021-03-27T00:00:00Z",
        "connectors":[]})");
    REQUIRE(a);
    REQUIRE(b);
    std::string out = format_list({*a, *b});
    CHECK(out.find("ID NAME CREATED              CONNECTIONS\n") != std::string::npos);
    CHECK(out.find("a  one  2021-03-26T19:29:34Z 1xAMS, 3xDFW\n") != std::string::npos);
    CHECK(out.find("b  two  2021-03-27T00:00:00Z \n") != std::string::npos);
    CHECK(format_list({}).find("No tunnels") == 0);
}

TEST_CASE("cli: API URLs") {
    auto a = parse_api_url("http://127.0.0.1:7845/");
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 7845);
    auto b = parse_api_url("[::1]:9000");
    REQUIRE(b);
    CHECK(b->host == "::1");
    CHECK(b->port == 9000);
    auto c = parse_api_url("localhost");
    REQUIRE(c);
    CHECK(c->port == 7845);
    CHECK(!parse_api_url("https://x:1"));
    CHECK(!parse_api_url("http://x:99999"));
    CHECK(!parse_api_url("http://x:"));
    CHECK(!parse_api_url("http://:80"));
    CHECK(path_escape("a.example.com") == "a.example.com");
    CHECK(path_escape("my tunnel/x") == "my%20tunnel%2Fx");
}
