#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "cfd/control/api.h"
#include "cfd/control/registrar.h"
#include "cfd/core/base64.h"
#include "cfd/core/json.h"
#include "cfd/store/store.h"

using namespace cfd;
using namespace cfd::control;

namespace {

struct TempStore {
    std::string dir;
    std::unique_ptr<store::Store> st;
    TempStore() {
        char tmpl[] = "/tmp/cfd-control-XXXXXX";
        dir = mkdtemp(tmpl);
        auto s = store::open_store("sqlite:" + dir + "/edge.db");
        REQUIRE(s);
        st = std::move(*s);
    }
    ~TempStore() { std::system(("rm -rf " + dir).c_str()); }
};

rpc::RegisterRequest request_for(const store::Tunnel& t, const Uuid& connector, uint8_t idx = 0) {
    rpc::RegisterRequest r;
    r.auth.account_tag = t.account_tag;
    r.auth.tunnel_secret = t.secret;
    r.tunnel_id = t.id;
    r.conn_index = idx;
    r.options.client.client_id = connector;
    r.options.client.version = "2026.11.0";
    r.options.client.arch = "linux_amd64";
    r.options.origin_local_ip = std::string("\x0a\x00\x00\x07", 4);
    return r;
}

ApiResponse call(Api& api, std::string_view method, std::string_view target,
                 std::string_view body = "", std::string_view auth = "Bearer tok") {
    return api.handle(ApiRequest{method, target, auth, body});
}

json::Value parse(const ApiResponse& r) {
    auto v = json::parse(r.body);
    REQUIRE(v);
    return *v;
}

}  // namespace

TEST_CASE("control: secrets compare by content and length") {
    CHECK(secrets_equal("abc", "abc"));
    CHECK(!secrets_equal("abc", "abd"));
    CHECK(!secrets_equal("abc", "abcd"));
    CHECK(secrets_equal("", ""));
    CHECK(ip_from_bytes(std::string("\x0a\x00\x00\x07", 4)) == "10.0.0.7");
    CHECK(ip_from_bytes("xyz") == "");
}

TEST_CASE("control: registrar accepts good credentials and writes the connection row") {
    TempStore ts;
    auto t = ts.st->create_tunnel("t1", "acct", std::string(32, '\x11'));
    REQUIRE(t);
    RegistrarOptions o;
    o.location = "MCI";
    o.edge_id = Uuid::random();
    Registrar reg(*ts.st, o);
    REQUIRE(reg.heartbeat());
    Uuid connector = Uuid::random();
    Decision d = reg.register_connection(request_for(*t, connector, 2), "203.0.113.9");
    REQUIRE(d.ok);
    CHECK(d.details.location_name == "MCI");
    CHECK(!d.details.uuid.is_nil());
    auto rows = ts.st->list_connections(t->id);
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].conn_id == d.details.uuid);
    CHECK((*rows)[0].connector_id == connector);
    CHECK((*rows)[0].conn_index == 2);
    CHECK((*rows)[0].location == "MCI");
    CHECK((*rows)[0].origin_ip == "203.0.113.9");
    CHECK((*rows)[0].arch == "linux_amd64");
    // Without a peer address the connector's reported local IP is used.
    Decision d2 = reg.register_connection(request_for(*t, connector, 3), "");
    REQUIRE(d2.ok);
    CHECK(d2.row.origin_ip == "10.0.0.7");
    CHECK(reg.live_connections() == 2);
    reg.connection_closed(d.details.uuid);
    CHECK(ts.st->list_connections(t->id)->size() == 1);
    reg.shutdown();
    CHECK(ts.st->list_connections(t->id)->empty());
}

TEST_CASE("control: registrar refuses a wrong secret, a wrong account and an unknown tunnel") {
    TempStore ts;
    auto t = ts.st->create_tunnel("t1", "acct", std::string(32, '\x11'));
    REQUIRE(t);
    Registrar reg(*ts.st, RegistrarOptions{"DFW", Uuid::random(), 100});
    REQUIRE(reg.heartbeat());
    auto r = request_for(*t, Uuid::random());
    r.auth.tunnel_secret[5] ^= 1;
    Decision d = reg.register_connection(r, "");
    CHECK(!d.ok);
    CHECK(d.error.cause == kCauseBadSecret);
    CHECK(!d.error.should_retry);
    r = request_for(*t, Uuid::random());
    r.auth.account_tag = "other";
    CHECK(reg.register_connection(r, "").error.cause == kCauseBadSecret);
    r = request_for(*t, Uuid::random());
    r.tunnel_id = Uuid::random();
    d = reg.register_connection(r, "");
    CHECK(d.error.cause == kCauseUnknownTunnel);
    // A deleted tunnel is unknown.
    REQUIRE(ts.st->delete_tunnel(t->id));
    CHECK(reg.register_connection(request_for(*t, Uuid::random()), "").error.cause ==
          kCauseUnknownTunnel);
    CHECK(reg.live_connections() == 0);
}

TEST_CASE("control: the connector limit counts distinct connectors across edges") {
    TempStore ts;
    auto t = ts.st->create_tunnel("t1", "acct", std::string(32, '\x11'));
    REQUIRE(t);
    Registrar dfw(*ts.st, RegistrarOptions{"DFW", Uuid::random(), 2});
    Registrar mci(*ts.st, RegistrarOptions{"MCI", Uuid::random(), 2});
    REQUIRE(dfw.heartbeat());
    REQUIRE(mci.heartbeat());
    Uuid a = Uuid::random(), b = Uuid::random(), c = Uuid::random();
    CHECK(dfw.register_connection(request_for(*t, a, 0), "").ok);
    CHECK(mci.register_connection(request_for(*t, a, 1), "").ok);
    CHECK(mci.register_connection(request_for(*t, b, 0), "").ok);
    // More connections of known connectors are fine; a third connector is not.
    CHECK(dfw.register_connection(request_for(*t, b, 1), "").ok);
    Decision d = dfw.register_connection(request_for(*t, c, 0), "");
    CHECK(!d.ok);
    CHECK(d.error.cause.find("limit") != std::string::npos);
    CHECK(d.error.should_retry);
    // Once connector b is gone from both edges, c fits.
    REQUIRE(ts.st->cleanup_connections(t->id, b));
    CHECK(dfw.register_connection(request_for(*t, c, 0), "").ok);
}

TEST_CASE("control api: bearer token is required") {
    TempStore ts;
    Api api(*ts.st, "tok");
    CHECK(call(api, "GET", "/v1/tunnels", "", "").status == 401);
    CHECK(call(api, "GET", "/v1/tunnels", "", "Bearer tok2").status == 401);
    CHECK(call(api, "GET", "/v1/tunnels", "", "Basic tok").status == 401);
    ApiResponse r = call(api, "GET", "/v1/tunnels");
    CHECK(r.status == 200);
    CHECK(r.body == "[]");
    CHECK(parse(call(api, "GET", "/v1/nothing", "", "x")).get_string("error") != "");
}

TEST_CASE("control api: tunnels are created, listed, shown, tokenised and deleted") {
    TempStore ts;
    Api api(*ts.st, "tok");
    ApiResponse r = call(api, "POST", "/v1/tunnels", R"({"name":"mytunnel"})");
    REQUIRE(r.status == 201);
    json::Value t = parse(r);
    std::string id = t.get_string("id");
    CHECK(Uuid::parse(id));
    CHECK(t.get_string("name") == "mytunnel");
    auto secret = base64_decode(t.get_string("secret"));
    REQUIRE(secret);
    CHECK(secret->size() == 32);
    CHECK(t.get_string("created_at").size() == 27);  // 2021-03-26T19:29:34.291328Z
    CHECK(call(api, "POST", "/v1/tunnels", R"({"name":"mytunnel"})").status == 409);
    CHECK(call(api, "POST", "/v1/tunnels", R"({"nam":1})").status == 400);
    CHECK(call(api, "POST", "/v1/tunnels", "not json").status == 400);
    // One account tag per store.
    json::Value t2 = parse(call(api, "POST", "/v1/tunnels", R"({"name":"second"})"));
    CHECK(t2.get_string("account_tag") == t.get_string("account_tag"));
    Api api2(*ts.st, "tok");
    CHECK(api2.account_tag() == t.get_string("account_tag"));

    json::Value list = parse(call(api, "GET", "/v1/tunnels"));
    REQUIRE(list.items().size() == 2);
    CHECK(list.items()[0].get("deleted_at")->is_null());
    CHECK(list.items()[0].get("connections")->as_number() == 0);

    // Connections from two edges show up grouped by connector.
    Registrar dfw(*ts.st, RegistrarOptions{"DFW", Uuid::random(), 100});
    Registrar mci(*ts.st, RegistrarOptions{"MCI", Uuid::random(), 100});
    REQUIRE(dfw.heartbeat());
    REQUIRE(mci.heartbeat());
    auto tun = ts.st->find_tunnel("mytunnel");
    REQUIRE(tun);
    Uuid connector = Uuid::random();
    for (uint8_t i = 0; i < 4; i++) {
        Registrar& reg = i % 2 ? mci : dfw;
        REQUIRE(reg.register_connection(request_for(*tun, connector, i), "198.51.100.4").ok);
    }
    json::Value info = parse(call(api, "GET", "/v1/tunnels/mytunnel"));
    CHECK(info.get_string("id") == id);
    REQUIRE(info.get("connectors")->items().size() == 1);
    const json::Value& c = info.get("connectors")->items()[0];
    CHECK(c.get_string("id") == connector.str());
    CHECK(c.get_string("origin_ip") == "198.51.100.4");
    CHECK(c.get("edges")->get("DFW")->as_number() == 2);
    CHECK(c.get("edges")->get("MCI")->as_number() == 2);
    CHECK(c.get("connections")->items().size() == 4);
    CHECK(parse(call(api, "GET", "/v1/tunnels/" + id)).get_string("name") == "mytunnel");
    CHECK(call(api, "GET", "/v1/tunnels/nope").status == 404);

    json::Value conns = parse(call(api, "GET", "/v1/tunnels/mytunnel/connections"));
    REQUIRE(conns.items().size() == 4);
    CHECK(conns.items()[0].get_string("connector_id") == connector.str());

    // The token carries a, s, t.
    json::Value tok = parse(call(api, "GET", "/v1/tunnels/mytunnel/token"));
    auto raw = base64_decode(tok.get_string("token"));
    REQUIRE(raw);
    auto tj = json::parse(*raw);
    REQUIRE(tj);
    CHECK(tj->get_string("t") == id);
    CHECK(tj->get_string("s") == t.get_string("secret"));
    CHECK(tj->get_string("a") == t.get_string("account_tag"));

    ApiResponse del = call(api, "DELETE", "/v1/tunnels/mytunnel");
    CHECK(del.status == 409);
    CHECK(parse(del).get_string("error") == "tunnel has 4 live connections");
    json::Value removed = parse(call(
        api, "DELETE", "/v1/tunnels/mytunnel/connections?connector_id=" + Uuid::random().str()));
    CHECK(removed.get("removed")->as_number() == 0);
    removed = parse(call(api, "DELETE", "/v1/tunnels/mytunnel/connections"));
    CHECK(removed.get("removed")->as_number() == 4);
    CHECK(call(api, "DELETE", "/v1/tunnels/mytunnel").status == 204);
    CHECK(call(api, "GET", "/v1/tunnels/mytunnel").status == 404);
    CHECK(parse(call(api, "GET", "/v1/tunnels")).items().size() == 1);
    CHECK(parse(call(api, "GET", "/v1/tunnels?include_deleted=1")).items().size() == 2);
    CHECK(call(api, "DELETE", "/v1/tunnels/second?force=1").status == 204);
}

TEST_CASE("control api: routes") {
    TempStore ts;
    Api api(*ts.st, "tok");
    std::string a = parse(call(api, "POST", "/v1/tunnels", R"({"name":"a"})")).get_string("id");
    REQUIRE(call(api, "POST", "/v1/tunnels", R"({"name":"b"})").status == 201);
    ApiResponse r =
        call(api, "POST", "/v1/routes", R"({"hostname":"App.Example.com","tunnel":"a"})");
    REQUIRE(r.status == 201);
    CHECK(parse(r).get_string("hostname") == "app.example.com");
    CHECK(parse(r).get_string("tunnel_id") == a);
    CHECK(
        call(api, "POST", "/v1/routes", R"({"hostname":"app.example.com","tunnel":"b"})").status ==
        409);
    CHECK(call(api, "POST", "/v1/routes",
               R"({"hostname":"app.example.com","tunnel":"b","overwrite":true})")
              .status == 201);
    CHECK(call(api, "POST", "/v1/routes", R"({"hostname":"x.example.com","tunnel":"zz"})").status ==
          404);
    CHECK(call(api, "POST", "/v1/routes", R"({"hostname":"bad host","tunnel":"a"})").status == 400);
    CHECK(call(api, "POST", "/v1/routes", R"({"hostname":"*.example.com","tunnel":"a"})").status ==
          201);
    json::Value list = parse(call(api, "GET", "/v1/routes"));
    CHECK(list.items().size() == 2);
    CHECK(call(api, "DELETE", "/v1/routes/%2A.example.com").status == 204);
    CHECK(call(api, "DELETE", "/v1/routes/app.example.com").status == 204);
    CHECK(call(api, "DELETE", "/v1/routes/app.example.com").status == 404);
    CHECK(call(api, "DELETE", "/v1/routes/%zz").status == 400);
    CHECK(parse(call(api, "GET", "/v1/routes")).items().empty());
}
