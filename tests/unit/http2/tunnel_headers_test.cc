#include <doctest/doctest.h>

#include "cfd/http2/tunnel_headers.h"

using namespace cfd;
using namespace cfd::http2;

TEST_CASE("tunnel headers: stream kinds in cloudflared's order") {
    Headers plain{{":method", "GET"}, {":path", "/"}, {":authority", "app.example.com"}};
    CHECK(classify_stream(plain) == StreamKind::Http);
    Headers control{{":method", "GET"}, {std::string(kUpgradeHeader), "control-stream"}};
    CHECK(classify_stream(control) == StreamKind::Control);
    Headers ws{{":method", "GET"}, {std::string(kUpgradeHeader), "websocket"}};
    CHECK(classify_stream(ws) == StreamKind::Websocket);
    Headers cfg{{std::string(kUpgradeHeader), "update-configuration"}};
    CHECK(classify_stream(cfg) == StreamKind::Configuration);
    Headers tcp{{":authority", "db:5432"}, {std::string(kProxySrcHeader), "1.2.3.4"}};
    CHECK(classify_stream(tcp) == StreamKind::Tcp);
    Headers tcp_empty{{std::string(kProxySrcHeader), ""}};
    CHECK(classify_stream(tcp_empty) == StreamKind::Http);
}

TEST_CASE("tunnel headers: user headers serialize as unpadded base64 pairs") {
    std::vector<HeaderPair> h{{"Content-Type", "text/plain"}, {"Set-Cookie", "a=b; Path=/"},
                              {"X-Empty", ""}};
    std::string s = serialize_user_headers(h);
    CHECK(s == "Q29udGVudC1UeXBl:dGV4dC9wbGFpbg;U2V0LUNvb2tpZQ:YT1iOyBQYXRoPS8;WC1FbXB0eQ:");
    auto back = parse_user_headers(s);
    REQUIRE(back);
    CHECK(*back == h);
    CHECK(parse_user_headers("")->empty());
    CHECK(!parse_user_headers("nocolon"));
    CHECK(!parse_user_headers("!!:YQ"));
    CHECK(!parse_user_headers(":YQ"));
}

TEST_CASE("tunnel headers: control headers are never user headers") {
    CHECK(is_control_header(":status"));
    CHECK(is_control_header("cf-cloudflared-response-meta"));
    CHECK(is_control_header("cf-int-trace"));
    CHECK(is_control_header("cf-proxy-x"));
    CHECK(!is_control_header("content-type"));
    CHECK(!is_control_header("cf-ray"));
}
