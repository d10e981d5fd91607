// The embedded store: one SQLite file shared by every edge process on a box.
#include <chrono>

#include "cfd/core/log.h"
#include "cfd/store/store.h"
#include "sqlite_db.h"

namespace cfd::store {

Micros now_micros() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

Result<std::string> normalize_hostname(std::string_view host) {
    std::string out;
    out.reserve(host.size());
    if (host.empty() || host.size() > 253) {
        return Err{Errc::Invalid, 0, "hostname length"};
    }
    size_t start = 0;
    if (host.substr(0, 2) == "*.") {
        out = "*.";
        start = 2;
    }
    bool label_empty = true;
    for (size_t i = start; i < host.size(); ++i) {
        char c = host[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok || (c == '.' && label_empty)) {
            return Err{Errc::Invalid, 0, "hostname character"};
        }
        label_empty = c == '.';
        out.push_back(c);
    }
    if (label_empty) {
        return Err{Errc::Invalid, 0, "hostname ends with a dot"};
    }
    return out;
}

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS tunnels(
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    account_tag TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS tunnels_live_name ON tunnels(name) WHERE deleted_at = 0;
CREATE TABLE IF NOT EXISTS routes(
    hostname TEXT PRIMARY KEY,
    tunnel_id BLOB NOT NULL,
    created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS edges(
    edge_id BLOB PRIMARY KEY,
    location TEXT NOT NULL,
    seen_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS connections(
    conn_id BLOB PRIMARY KEY,
    tunnel_id BLOB NOT NULL,
    connector_id BLOB NOT NULL,
    conn_index INTEGER NOT NULL,
    location TEXT NOT NULL,
    edge_id BLOB NOT NULL,
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    origin_ip TEXT NOT NULL,
    opened_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS connections_tunnel ON connections(tunnel_id);
)sql";

constexpr const char* kTunnelCols = "id, name, account_tag, secret, created_at, deleted_at";

Tunnel tunnel_from(const Statement& s) {
    Tunnel t;
    if (auto id = Uuid::from_bytes(s.blob(0))) {
        t.id = *id;
    }
    t.name = s.text(1);
    t.account_tag = s.text(2);
    t.secret = s.blob(3);
    t.created_at = s.integer(4);
    t.deleted_at = s.integer(5);
    return t;
}

Uuid uuid_col(const Statement& s, int col) {
    auto u = Uuid::from_bytes(s.blob(col));
    return u ? *u : Uuid{};
}

// Every row of `st`, each turned into a T by `row`.
template <class T, class F>
Result<std::vector<T>> collect(Result<Statement>& st, F row) {
    if (!st) {
        return st.error();
    }
    std::vector<T> out;
    for (;;) {
        auto more = st->step();
        if (!more) {
            return more.error();
        }
        if (!*more) {
            return out;
        }
        out.push_back(row(*st));
    }
}

class SqliteStore final : public Store {
public:
    SqliteStore(Db db, Micros lease) : db_(std::move(db)), lease_(lease) {}

    Result<Tunnel> create_tunnel(std::string_view name, std::string_view account_tag,
                                 std::string_view secret) override {
        Tunnel t;
        t.id = Uuid::random();
        t.name = std::string(name);
        t.account_tag = std::string(account_tag);
        t.secret = std::string(secret);
        t.created_at = now_micros();
        auto st = db_.prepare("INSERT INTO tunnels(id, name, account_tag, secret, created_at)"
                              " VALUES(?, ?, ?, ?, ?)");
        if (!st) {
            return st.error();
        }
        st->bind_blob(1, t.id.raw()).bind(2, name).bind(3, account_tag).bind_blob(4, secret);
        st->bind(5, t.created_at);
        if (auto r = st->run(); !r) {
            return r.error().code == Errc::Exists ? Err{Errc::Exists, 0, "tunnel name taken"}
                                                  : Err{r.error()};
        }
        return t;
    }

    Result<Tunnel> get_tunnel(const Uuid& id) override {
        auto st = db_.prepare(std::string("SELECT ") + kTunnelCols +
                              " FROM tunnels WHERE id = ? AND deleted_at = 0");
        if (!st) {
            return st.error();
        }
        st->bind_blob(1, id.raw());
        return one_tunnel(*st);
    }

    Result<Tunnel> find_tunnel(std::string_view name_or_id) override {
        if (auto id = Uuid::parse(name_or_id)) {
            if (auto t = get_tunnel(*id)) {
                return t;
            }
        }
        auto st = db_.prepare(std::string("SELECT ") + kTunnelCols +
                              " FROM tunnels WHERE name = ? AND deleted_at = 0");
        if (!st) {
            return st.error();
        }
        st->bind(1, name_or_id);
        return one_tunnel(*st);
    }

    Result<std::vector<Tunnel>> list_tunnels(bool include_deleted) override {
        auto st = db_.prepare(std::string("SELECT ") + kTunnelCols + " FROM tunnels" +
                              (include_deleted ? "" : " WHERE deleted_at = 0") +
                              " ORDER BY created_at");
        return collect<Tunnel>(st, tunnel_from);
    }

    Status delete_tunnel(const Uuid& id) override {
        if (auto s = db_.exec("BEGIN IMMEDIATE"); !s) {
            return s;
        }
        Status s = delete_tunnel_rows(id);
        if (auto c = db_.exec(s ? "COMMIT" : "ROLLBACK"); !c && s) {
            return c;
        }
        return s;
    }

    Status add_route(std::string_view hostname, const Uuid& tunnel_id, bool overwrite) override {
        auto host = normalize_hostname(hostname);
        if (!host) {
            return host.error();
        }
        auto st = db_.prepare(overwrite ? "INSERT OR REPLACE INTO routes(hostname, tunnel_id,"
                                          " created_at) VALUES(?, ?, ?)"
                                        : "INSERT INTO routes(hostname, tunnel_id, created_at)"
                                          " VALUES(?, ?, ?)");
        if (!st) {
            return st.error();
        }
        st->bind(1, *host).bind_blob(2, tunnel_id.raw()).bind(3, now_micros());
        auto r = st->run();
        if (!r && r.error().code == Errc::Exists) {
            // The same route again is not an error (cloudflared's behaviour).
            auto cur = resolve_exact(*host);
            if (cur && *cur && **cur == tunnel_id) {
                return {};
            }
            return Err{Errc::Exists, 0, "hostname routed to another tunnel"};
        }
        return r;
    }

    Status delete_route(std::string_view hostname) override {
        auto host = normalize_hostname(hostname);
        if (!host) {
            return host.error();
        }
        auto st = db_.prepare("DELETE FROM routes WHERE hostname = ?");
        if (!st) {
            return st.error();
        }
        st->bind(1, *host);
        if (auto r = st->run(); !r) {
            return r;
        }
        if (db_.changes() == 0) {
            return Err{Errc::NotFound, 0, "no such route"};
        }
        return {};
    }

    Result<std::vector<Route>> list_routes() override {
        auto st = db_.prepare("SELECT hostname, tunnel_id, created_at FROM routes"
                              " ORDER BY hostname");
        return collect<Route>(st, [](const Statement& r) {
            return Route{r.text(0), uuid_col(r, 1), r.integer(2)};
        });
    }

    Result<std::optional<Uuid>> resolve(std::string_view hostname) override {
        auto host = normalize_hostname(hostname);
        if (!host) {
            return std::optional<Uuid>{};
        }
        auto exact = resolve_exact(*host);
        if (!exact || *exact) {
            return exact;
        }
        size_t dot = host->find('.');
        if (dot == std::string::npos || host->substr(0, 2) == "*.") {
            return std::optional<Uuid>{};
        }
        return resolve_exact("*" + host->substr(dot));
    }

    Status add_connection(const Connection& c) override {
        auto st = db_.prepare(
            "INSERT OR REPLACE INTO connections(conn_id, tunnel_id, connector_id, conn_index,"
            " location, edge_id, version, arch, origin_ip, opened_at)"
            " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (!st) {
            return st.error();
        }
        st->bind_blob(1, c.conn_id.raw()).bind_blob(2, c.tunnel_id.raw());
        st->bind_blob(3, c.connector_id.raw()).bind(4, int64_t{c.conn_index});
        st->bind(5, c.location).bind_blob(6, c.edge_id.raw()).bind(7, c.version);
        st->bind(8, c.arch).bind(9, c.origin_ip).bind(10, c.opened_at);
        return st->run();
    }

    Status remove_connection(const Uuid& conn_id) override {
        auto st = db_.prepare("DELETE FROM connections WHERE conn_id = ?");
        if (!st) {
            return st.error();
        }
        st->bind_blob(1, conn_id.raw());
        return st->run();
    }

    Result<std::vector<Connection>> list_connections(const Uuid& tunnel_id) override {
        auto st = db_.prepare(
            "SELECT c.conn_id, c.tunnel_id, c.connector_id, c.conn_index, c.location, c.edge_id,"
            " c.version, c.arch, c.origin_ip, c.opened_at FROM connections c"
            " JOIN edges e ON e.edge_id = c.edge_id"
            " WHERE c.tunnel_id = ? AND e.seen_at >= ? ORDER BY c.opened_at, c.conn_index");
        if (st) {
            st->bind_blob(1, tunnel_id.raw()).bind(2, now_micros() - lease_);
        }
        return collect<Connection>(st, [](const Statement& r) {
            Connection c;
            c.conn_id = uuid_col(r, 0);
            c.tunnel_id = uuid_col(r, 1);
            c.connector_id = uuid_col(r, 2);
            c.conn_index = static_cast<int>(r.integer(3));
            c.location = r.text(4);
            c.edge_id = uuid_col(r, 5);
            c.version = r.text(6);
            c.arch = r.text(7);
            c.origin_ip = r.text(8);
            c.opened_at = r.integer(9);
            return c;
        });
    }

    Result<std::vector<Uuid>> tunnels_at(std::string_view location,
                                         const Uuid& except_edge) override {
        auto st = db_.prepare(
            "SELECT DISTINCT c.tunnel_id FROM connections c JOIN edges e ON e.edge_id = c.edge_id"
            " WHERE c.location = ? AND c.edge_id != ? AND e.seen_at >= ?");
        if (st) {
            st->bind(1, location).bind_blob(2, except_edge.raw()).bind(3, now_micros() - lease_);
        }
        return collect<Uuid>(st, [](const Statement& r) { return uuid_col(r, 0); });
    }

    Result<int> cleanup_connections(const Uuid& tunnel_id,
                                    const std::optional<Uuid>& connector_id) override {
        auto st = db_.prepare(connector_id ? "DELETE FROM connections WHERE tunnel_id = ?"
                                             " AND connector_id = ?"
                                           : "DELETE FROM connections WHERE tunnel_id = ?");
        if (!st) {
            return st.error();
        }
        st->bind_blob(1, tunnel_id.raw());
        if (connector_id) {
            st->bind_blob(2, connector_id->raw());
        }
        if (auto r = st->run(); !r) {
            return r.error();
        }
        return db_.changes();
    }

    Status heartbeat(const Uuid& edge_id, std::string_view location) override {
        auto st = db_.prepare("INSERT OR REPLACE INTO edges(edge_id, location, seen_at)"
                              " VALUES(?, ?, ?)");
        if (!st) {
            return st.error();
        }
        Micros now = now_micros();
        st->bind_blob(1, edge_id.raw()).bind(2, location).bind(3, now);
        if (auto r = st->run(); !r) {
            return r;
        }
        // Rows of edges silent for four leases are garbage: whoever heartbeats sweeps them.
        auto gc = db_.prepare("DELETE FROM connections WHERE edge_id IN"
                              " (SELECT edge_id FROM edges WHERE seen_at < ?)");
        if (!gc) {
            return gc.error();
        }
        gc->bind(1, now - 4 * lease_);
        if (auto r = gc->run(); !r) {
            return r;
        }
        auto ge = db_.prepare("DELETE FROM edges WHERE seen_at < ?");
        if (!ge) {
            return ge.error();
        }
        ge->bind(1, now - 4 * lease_);
        return ge->run();
    }

    Status forget_edge(const Uuid& edge_id) override {
        for (const char* sql : {"DELETE FROM connections WHERE edge_id = ?",
                                "DELETE FROM edges WHERE edge_id = ?"}) {
            auto st = db_.prepare(sql);
            if (!st) {
                return st.error();
            }
            st->bind_blob(1, edge_id.raw());
            if (auto r = st->run(); !r) {
                return r;
            }
        }
        return {};
    }

    Status init() { return db_.exec_at_start(kSchema); }

private:
    Result<Tunnel> one_tunnel(Statement& st) {
        auto row = st.step();
        if (!row) {
            return row.error();
        }
        if (!*row) {
            return Err{Errc::NotFound, 0, "no such tunnel"};
        }
        return tunnel_from(st);
    }

    Result<std::optional<Uuid>> resolve_exact(const std::string& host) {
        auto st = db_.prepare("SELECT r.tunnel_id FROM routes r JOIN tunnels t ON t.id ="
                              " r.tunnel_id WHERE r.hostname = ? AND t.deleted_at = 0");
        if (!st) {
            return st.error();
        }
        st->bind(1, host);
        auto row = st->step();
        if (!row) {
            return row.error();
        }
        if (!*row) {
            return std::optional<Uuid>{};
        }
        return std::optional<Uuid>{uuid_col(*st, 0)};
    }

    Status delete_tunnel_rows(const Uuid& id) {
        auto st = db_.prepare("UPDATE tunnels SET deleted_at = ? WHERE id = ? AND deleted_at = 0");
        if (!st) {
            return st.error();
        }
        st->bind(1, now_micros()).bind_blob(2, id.raw());
        if (auto r = st->run(); !r) {
            return r;
        }
        if (db_.changes() == 0) {
            return Err{Errc::NotFound, 0, "no such tunnel"};
        }
        for (const char* sql : {"DELETE FROM routes WHERE tunnel_id = ?",
                                "DELETE FROM connections WHERE tunnel_id = ?"}) {
            auto d = db_.prepare(sql);
            if (!d) {
                return d.error();
            }
            d->bind_blob(1, id.raw());
            if (auto r = d->run(); !r) {
                return r;
            }
        }
        return {};
    }

    Db db_;
    Micros lease_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_store(std::string_view spec, Micros lease) {
    constexpr std::string_view kSqlite = "sqlite:";
    if (spec.substr(0, kSqlite.size()) != kSqlite || spec.size() == kSqlite.size()) {
        return Err{Errc::Invalid, 0, "store must be sqlite:PATH"};
    }
    auto db = Db::open(std::string(spec.substr(kSqlite.size())));
    if (!db) {
        return db.error();
    }
    auto s = std::make_unique<SqliteStore>(std::move(*db), lease);
    if (auto r = s->init(); !r) {
        return r.error();
    }
    return std::unique_ptr<Store>(std::move(s));
}

}  // namespace cfd::store
