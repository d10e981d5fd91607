#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "cfd/store/store.h"

using namespace cfd;
using namespace cfd::store;

namespace {
struct TempDb {
    std::string dir;
    TempDb() {
        char tmpl[] = "/tmp/cfd-store-XXXXXX";
        dir = mkdtemp(tmpl);
    }
    ~TempDb() { std::system(("rm -rf " + dir).c_str()); }
    std::string spec() const { return "sqlite:" + dir + "/edge.db"; }
};

Connection conn(const Uuid& tunnel, const Uuid& connector, int index, const char* loc,
                const Uuid& edge) {
    Connection c;
    c.conn_id = Uuid::random();
    c.tunnel_id = tunnel;
    c.connector_id = connector;
    c.conn_index = index;
    c.location = loc;
    c.edge_id = edge;
    c.version = "2026.11.0";
    c.arch = "linux_amd64";
    c.origin_ip = "127.0.0.1";
    c.opened_at = now_micros();
    return c;
}
}  // namespace

TEST_CASE("store: tunnels are created once per live name, found by name or id, deleted") {
    TempDb tmp;
    auto s = open_store(tmp.spec());
    REQUIRE(s);
    Store& st = **s;
    std::string secret(32, '\x07');
    auto t = st.create_tunnel("mytunnel", "acct", secret);
    REQUIRE(t);
    CHECK(t->secret == secret);
    CHECK(!t->id.is_nil());
    auto dup = st.create_tunnel("mytunnel", "acct", secret);
    REQUIRE(!dup);
    CHECK(dup.error().code == Errc::Exists);
    CHECK(st.find_tunnel("mytunnel")->id == t->id);
    CHECK(st.find_tunnel(t->id.str())->name == "mytunnel");
    CHECK(st.find_tunnel("other").error().code == Errc::NotFound);
    REQUIRE(st.delete_tunnel(t->id));
    CHECK(!st.get_tunnel(t->id));
    CHECK(st.delete_tunnel(t->id).error().code == Errc::NotFound);
    CHECK(st.list_tunnels(false)->empty());
    CHECK(st.list_tunnels(true)->size() == 1);
    // The name is free again once deleted.
    CHECK(st.create_tunnel("mytunnel", "acct", secret));
}

TEST_CASE("store: routes resolve exact names first, then one-label wildcards") {
    TempDb tmp;
    auto s = open_store(tmp.spec());
    REQUIRE(s);
    Store& st = **s;
    auto a = st.create_tunnel("a", "acct", std::string(32, 'a'));
    auto b = st.create_tunnel("b", "acct", std::string(32, 'b'));
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(st.add_route("App.Example.com", a->id, false));
    REQUIRE(st.add_route("*.example.com", b->id, false));
    CHECK(st.add_route("app.example.com", a->id, false));  // same route again is fine
    CHECK(st.add_route("app.example.com", b->id, false).error().code == Errc::Exists);
    CHECK(**st.resolve("APP.example.com") == a->id);
    CHECK(**st.resolve("other.example.com") == b->id);
    CHECK(!*st.resolve("deep.other.example.com"));
    CHECK(!*st.resolve("example.com"));
    CHECK(!*st.resolve("bad host"));
    CHECK(!st.add_route("bad..host", a->id, false));
    REQUIRE(st.delete_route("app.example.com"));
    CHECK(**st.resolve("app.example.com") == b->id);
    CHECK(st.delete_route("app.example.com").error().code == Errc::NotFound);
    REQUIRE(st.delete_tunnel(b->id));
    CHECK(!*st.resolve("other.example.com"));
    CHECK(st.list_routes()->empty());
}

TEST_CASE("store: two edge processes share connections; a silent edge's rows lapse") {
    TempDb tmp;
    auto dfw_store = open_store(tmp.spec());
    auto mci_store = open_store(tmp.spec());
    auto impatient = open_store(tmp.spec(), 1);  // a reader with a 1 µs lease
    REQUIRE(dfw_store);
    REQUIRE(mci_store);
    REQUIRE(impatient);
    Store& dfw = **dfw_store;
    auto t = dfw.create_tunnel("t", "acct", std::string(32, 't'));
    REQUIRE(t);
    Uuid edge1 = Uuid::random(), edge2 = Uuid::random(), connector = Uuid::random();
    REQUIRE(dfw.heartbeat(edge1, "DFW"));
    REQUIRE((*mci_store)->heartbeat(edge2, "MCI"));
    for (int i = 0; i < 4; ++i) {
        Store& st = i % 2 ? **mci_store : dfw;
        REQUIRE(st.add_connection(conn(t->id, connector, i, i % 2 ? "MCI" : "DFW",
                                       i % 2 ? edge2 : edge1)));
    }
    auto live = dfw.list_connections(t->id);
    REQUIRE(live);
    CHECK(live->size() == 4);
    CHECK((*live)[1].location == "MCI");
    CHECK((*live)[1].version == "2026.11.0");
    // Wait (bounded) until the clock passes the 1 µs lease: nothing is live for that reader.
    Micros start = now_micros();
    while (now_micros() < start + 3) {
    }
    CHECK((*impatient)->list_connections(t->id)->empty());
    CHECK((*mci_store)->list_connections(t->id)->size() == 4);
    REQUIRE(dfw.forget_edge(edge2));
    CHECK(dfw.list_connections(t->id)->size() == 2);
    auto removed = dfw.cleanup_connections(t->id, connector);
    REQUIRE(removed);
    CHECK(*removed == 2);
    CHECK(dfw.list_connections(t->id)->empty());
}

TEST_CASE("store: bad specs and paths are clear errors") {
    CHECK(!open_store("postgres://x"));
    CHECK(!open_store("sqlite:"));
    CHECK(!open_store("sqlite:/nonexistent/dir/edge.db"));
}

TEST_CASE("store: tunnels another process of a location holds (a restart in progress)") {
    TempDb tmp;
    auto s = open_store(tmp.spec());
    REQUIRE(s);
    Store& st = **s;
    auto t1 = st.create_tunnel("one", "acct", std::string(32, '1'));
    auto t2 = st.create_tunnel("two", "acct", std::string(32, '2'));
    REQUIRE(t1);
    REQUIRE(t2);
    Uuid old_dfw = Uuid::random(), new_dfw = Uuid::random(), mci = Uuid::random();
    REQUIRE(st.heartbeat(old_dfw, "DFW"));
    REQUIRE(st.heartbeat(new_dfw, "DFW"));
    REQUIRE(st.heartbeat(mci, "MCI"));
    REQUIRE(st.add_connection(conn(t1->id, Uuid::random(), 0, "DFW", old_dfw)));
    REQUIRE(st.add_connection(conn(t2->id, Uuid::random(), 0, "MCI", mci)));
    REQUIRE(st.add_connection(conn(t2->id, Uuid::random(), 1, "DFW", new_dfw)));
    auto moving = st.tunnels_at("DFW", new_dfw);
    REQUIRE(moving);
    REQUIRE(moving->size() == 1);  // t2 is already here, and MCI's rows are another location
    CHECK((*moving)[0] == t1->id);
    CHECK(st.tunnels_at("DFW", old_dfw)->size() == 1);
    CHECK(st.tunnels_at("SEA", new_dfw)->empty());
    REQUIRE(st.forget_edge(old_dfw));
    CHECK(st.tunnels_at("DFW", new_dfw)->empty());
}
