#include "cfd/control/api.h"
#include "cfd/core/text.h"

#include <ctime>
#include <map>
#include <optional>
#include <vector>

#include "cfd/control/registrar.h"
#include "cfd/core/base64.h"
#include "cfd/core/json.h"
#include "cfd/core/log.h"

namespace cfd::control {

namespace {

using json::Value;

constexpr size_t kMaxName = 255;

ApiResponse reply(int status, const Value& v) {
    return ApiResponse{status, json::write(v)};
}

ApiResponse error(int status, std::string_view msg) {
    Value v = Value::object();
    v.set("error", Value::string(std::string(msg)));
    return reply(status, v);
}

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '%') {
            if (i + 2 >= s.size()) {
                return std::nullopt;
            }
            int h = hex_digit(s[i + 1]);
            int l = hex_digit(s[i + 2]);
            if (h < 0 || l < 0) {
                return std::nullopt;
            }
            out.push_back(static_cast<char>(h * 16 + l));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

struct Target {
    std::vector<std::string> segs;
    std::map<std::string, std::string> query;
};

std::optional<Target> parse_target(std::string_view t) {
    Target out;
    size_t q = t.find('?');
    std::string_view path = t.substr(0, q);
    if (q != std::string_view::npos) {
        std::string_view qs = t.substr(q + 1);
        while (!qs.empty()) {
            size_t amp = qs.find('&');
            std::string_view kv = qs.substr(0, amp);
            size_t eq = kv.find('=');
            auto k = percent_decode(kv.substr(0, eq));
            auto v = percent_decode(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
            if (!k || !v) {
                return std::nullopt;
            }
            out.query[*k] = *v;
            qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
        }
    }
    while (!path.empty()) {
        if (path[0] == '/') {
            path.remove_prefix(1);
            continue;
        }
        size_t sl = path.find('/');
        auto seg = percent_decode(path.substr(0, sl));
        if (!seg) {
            return std::nullopt;
        }
        out.segs.push_back(*seg);
        path = sl == std::string_view::npos ? std::string_view() : path.substr(sl);
    }
    return out;
}

bool flag(const Target& t, const char* name) {
    auto it = t.query.find(name);
    return it != t.query.end() && (it->second == "1" || it->second == "true");
}

Value time_or_null(store::Micros t) {
    return t == 0 ? Value() : Value::string(rfc3339_micros(t));
}

Value connection_json(const store::Connection& c) {
    Value v = Value::object();
    v.set("id", Value::string(c.conn_id.str()));
    v.set("connector_id", Value::string(c.connector_id.str()));
    v.set("index", Value::number(c.conn_index));
    v.set("location", Value::string(c.location));
    v.set("version", Value::string(c.version));
    v.set("arch", Value::string(c.arch));
    v.set("origin_ip", Value::string(c.origin_ip));
    v.set("opened_at", Value::string(rfc3339_micros(c.opened_at)));
    return v;
}

}  // namespace

std::string rfc3339_micros(store::Micros t) {
    time_t secs = static_cast<time_t>(t / 1'000'000);
    long us = static_cast<long>(t % 1'000'000);
    if (us < 0) {
        us += 1'000'000;
        secs -= 1;
    }
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
    return buf;
}

std::string tunnel_token(const store::Tunnel& t) {
    Value v = Value::object();
    v.set("a", Value::string(t.account_tag));
    v.set("s", Value::string(base64_encode(t.secret)));
    v.set("t", Value::string(t.id.str()));
    return base64_encode(json::write(v));
}

std::string Api::account_tag() {
    if (!account_tag_.empty()) {
        return account_tag_;
    }
    if (auto all = store_.list_tunnels(true); all && !all->empty()) {
        account_tag_ = all->front().account_tag;
        return account_tag_;
    }
    // 32 hex digits, like Cloudflare's account tags.
    uint8_t raw[16];
    random_bytes(raw, sizeof raw);
    static const char kHex[] = "0123456789abcdef";
    for (uint8_t b : raw) {
        account_tag_.push_back(kHex[b >> 4]);
        account_tag_.push_back(kHex[b & 15]);
    }
    return account_tag_;
}

ApiResponse Api::handle(const ApiRequest& req) {
    constexpr std::string_view kBearer = "Bearer ";
    std::string_view auth = req.authorization;
    if (token_.empty() || auth.substr(0, kBearer.size()) != kBearer ||
        !secrets_equal(auth.substr(kBearer.size()), token_)) {
        return error(401, "missing or invalid API token");
    }
    return route(req);
}

ApiResponse Api::route(const ApiRequest& req) {
    auto target = parse_target(req.target);
    if (!target) {
        return error(400, "malformed request target");
    }
    const auto& s = target->segs;
    std::string_view m = req.method;
    if (s.size() < 2 || s[0] != "v1") {
        return error(404, "no such endpoint");
    }
    auto find = [&](const std::string& key, store::Tunnel* out) -> std::optional<ApiResponse> {
        auto t = store_.find_tunnel(key);
        if (!t) {
            if (t.error().code == Errc::NotFound) {
                return error(404, "tunnel " + key + " not found");
            }
            return error(500, "store: " + t.error().message());
        }
        *out = std::move(*t);
        return std::nullopt;
    };

    if (s[1] == "tunnels") {
        if (s.size() == 2 && m == "POST") {
            auto body = json::parse(req.body);
            if (!body || !body->is_object()) {
                return error(400, "body must be a JSON object");
            }
            std::string name = body->get_string("name");
            if (name.empty() || name.size() > kMaxName) {
                return error(400, "a tunnel needs a name of 1 to 255 bytes");
            }
            std::string secret(32, '\0');
            random_bytes(secret.data(), secret.size());
            auto t = store_.create_tunnel(name, account_tag(), secret);
            if (!t) {
                if (t.error().code == Errc::Exists) {
                    return error(409, "a tunnel named " + name + " already exists");
                }
                return error(500, "store: " + t.error().message());
            }
            log::info("Created tunnel", {{"tunnelID", t->id.str()}, {"name", t->name}});
            Value v = Value::object();
            v.set("id", Value::string(t->id.str()));
            v.set("name", Value::string(t->name));
            v.set("account_tag", Value::string(t->account_tag));
            v.set("secret", Value::string(base64_encode(t->secret)));
            v.set("created_at", Value::string(rfc3339_micros(t->created_at)));
            return reply(201, v);
        }
        if (s.size() == 2 && m == "GET") {
            auto all = store_.list_tunnels(flag(*target, "include_deleted"));
            if (!all) {
                return error(500, "store: " + all.error().message());
            }
            Value arr = Value::array();
            for (const auto& t : *all) {
                Value v = Value::object();
                v.set("id", Value::string(t.id.str()));
                v.set("name", Value::string(t.name));
                v.set("created_at", Value::string(rfc3339_micros(t.created_at)));
                v.set("deleted_at", time_or_null(t.deleted_at));
                size_t n = 0;
                if (t.deleted_at == 0) {
                    if (auto cs = store_.list_connections(t.id); cs) {
                        n = cs->size();
                    }
                }
                v.set("connections", Value::number(static_cast<double>(n)));
                arr.push(std::move(v));
            }
            return reply(200, arr);
        }
        if (s.size() < 3) {
            return error(405, "method not allowed");
        }
        store::Tunnel t;
        if (auto e = find(s[2], &t)) {
            return *e;
        }
        if (s.size() == 3 && m == "GET") {
            auto cs = store_.list_connections(t.id);
            if (!cs) {
                return error(500, "store: " + cs.error().message());
            }
            // Connectors in order of their first connection.
            std::vector<Uuid> order;
            std::map<Uuid, std::vector<const store::Connection*>> by;
            for (const auto& c : *cs) {
                if (!by.count(c.connector_id)) {
                    order.push_back(c.connector_id);
                }
                by[c.connector_id].push_back(&c);
            }
            Value arr = Value::array();
            for (const Uuid& id : order) {
                const auto& rows = by[id];
                store::Micros first = rows.front()->opened_at;
                Value edges = Value::object();
                std::map<std::string, int> counts;
                Value conns = Value::array();
                for (const auto* c : rows) {
                    first = std::min(first, c->opened_at);
                    counts[c->location]++;
                    Value cv = Value::object();
                    cv.set("id", Value::string(c->conn_id.str()));
                    cv.set("index", Value::number(c->conn_index));
                    cv.set("location", Value::string(c->location));
                    cv.set("opened_at", Value::string(rfc3339_micros(c->opened_at)));
                    conns.push(std::move(cv));
                }
                for (const auto& [loc, n] : counts) {
                    edges.set(loc, Value::number(n));
                }
                Value v = Value::object();
                v.set("id", Value::string(id.str()));
                v.set("created_at", Value::string(rfc3339_micros(first)));
                v.set("arch", Value::string(rows.front()->arch));
                v.set("version", Value::string(rows.front()->version));
                v.set("origin_ip", Value::string(rows.front()->origin_ip));
                v.set("edges", std::move(edges));
                v.set("connections", std::move(conns));
                arr.push(std::move(v));
            }
            Value v = Value::object();
            v.set("id", Value::string(t.id.str()));
            v.set("name", Value::string(t.name));
            v.set("created_at", Value::string(rfc3339_micros(t.created_at)));
            v.set("connectors", std::move(arr));
            return reply(200, v);
        }
        if (s.size() == 3 && m == "DELETE") {
            auto cs = store_.list_connections(t.id);
            if (!cs) {
                return error(500, "store: " + cs.error().message());
            }
            if (!cs->empty() && !flag(*target, "force")) {
                return error(409, "tunnel has " + std::to_string(cs->size()) + " live connections");
            }
            if (auto st = store_.delete_tunnel(t.id); !st) {
                return error(500, "store: " + st.error().message());
            }
            log::info("Deleted tunnel", {{"tunnelID", t.id.str()}, {"name", t.name}});
            return ApiResponse{204, ""};
        }
        if (s.size() == 4 && s[3] == "token" && m == "GET") {
            Value v = Value::object();
            v.set("token", Value::string(tunnel_token(t)));
            return reply(200, v);
        }
        if (s.size() == 4 && s[3] == "connections" && m == "GET") {
            auto cs = store_.list_connections(t.id);
            if (!cs) {
                return error(500, "store: " + cs.error().message());
            }
            Value arr = Value::array();
            for (const auto& c : *cs) {
                arr.push(connection_json(c));
            }
            return reply(200, arr);
        }
        if (s.size() == 4 && s[3] == "connections" && m == "DELETE") {
            std::optional<Uuid> connector;
            if (auto it = target->query.find("connector_id"); it != target->query.end()) {
                auto u = Uuid::parse(it->second);
                if (!u) {
                    return error(400, "connector_id is not a UUID");
                }
                connector = *u;
            }
            auto n = store_.cleanup_connections(t.id, connector);
            if (!n) {
                return error(500, "store: " + n.error().message());
            }
            Value v = Value::object();
            v.set("removed", Value::number(*n));
            return reply(200, v);
        }
        return error(404, "no such endpoint");
    }

    if (s[1] == "routes") {
        if (s.size() == 2 && m == "POST") {
            auto body = json::parse(req.body);
            if (!body || !body->is_object()) {
                return error(400, "body must be a JSON object");
            }
            auto host = store::normalize_hostname(body->get_string("hostname"));
            if (!host) {
                return error(400, "invalid hostname");
            }
            store::Tunnel t;
            if (auto e = find(body->get_string("tunnel"), &t)) {
                return *e;
            }
            const Value* ow = body->get("overwrite");
            bool overwrite = ow && ow->type() == Value::Type::Bool && ow->as_bool();
            if (auto st = store_.add_route(*host, t.id, overwrite); !st) {
                if (st.error().code == Errc::Exists) {
                    return error(409, *host + " is already routed to another tunnel");
                }
                return error(500, "store: " + st.error().message());
            }
            log::info("Added route", {{"hostname", *host}, {"tunnelID", t.id.str()}});
            Value v = Value::object();
            v.set("hostname", Value::string(*host));
            v.set("tunnel_id", Value::string(t.id.str()));
            return reply(201, v);
        }
        if (s.size() == 2 && m == "GET") {
            auto rs = store_.list_routes();
            if (!rs) {
                return error(500, "store: " + rs.error().message());
            }
            Value arr = Value::array();
            for (const auto& r : *rs) {
                Value v = Value::object();
                v.set("hostname", Value::string(r.hostname));
                v.set("tunnel_id", Value::string(r.tunnel_id.str()));
                arr.push(std::move(v));
            }
            return reply(200, arr);
        }
        if (s.size() == 3 && m == "DELETE") {
            auto host = store::normalize_hostname(s[2]);
            if (!host) {
                return error(400, "invalid hostname");
            }
            if (auto st = store_.delete_route(*host); !st) {
                if (st.error().code == Errc::NotFound) {
                    return error(404, "no route for " + *host);
                }
                return error(500, "store: " + st.error().message());
            }
            return ApiResponse{204, ""};
        }
        return error(404, "no such endpoint");
    }
    return error(404, "no such endpoint");
}

}  // namespace cfd::control
