// `cfdtunnel tunnel create|route dns|list|info|delete|cleanup|token` and `cfdtunnel login`:
// clients of an edge's management API (see api_client.h), printing what cloudflared prints.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cfd/config/options.h"
#include "cfd/connector/credentials.h"
#include "cfd/core/base64.h"
#include "cfd/core/log.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "cli/tunnel_format.h"

namespace cfd::cli {
namespace {

// Flags every API command takes.
struct ApiFlags {
    std::string api;
    std::string token;
    std::string output;

    void add_to(config::OptionSet& set) {
        set.add_string("api", &api, "management API URL (env CFDTUNNEL_API)");
        set.add_string("api-token", &token, "management API token (env CFDTUNNEL_API_TOKEN)");
        set.add_string("output", &output, "output format: json, or the default table");
        set.add_alias("o", "output");
    }
};

int usage_error(const std::string& msg) {
    std::fprintf(stderr, "cfdtunnel: %s\n", msg.c_str());
    return kExitUsage;
}

int failure(const std::string& msg) {
    std::fprintf(stderr, "cfdtunnel: %s\n", msg.c_str());
    return kExitFailure;
}

// Parses argv into `set`; positionals out. Prints usage for --help.
bool parse(config::OptionSet& set, int argc, char** argv, const char* synopsis,
           std::vector<std::string>* positionals, int* rc) {
    bool help = false;
    set.add_bool("help", &help, "this text");
    set.add_alias("h", "help");
    auto args = set.split(argc, argv, 1);
    if (!args) {
        *rc = usage_error(args.error().str());
        return false;
    }
    if (auto r = set.apply_args(*args); !r) {
        *rc = usage_error(r.error().str());
        return false;
    }
    if (help) {
        std::printf("usage: cfdtunnel %s\n\n%s", synopsis, set.usage().c_str());
        *rc = kExitOk;
        return false;
    }
    *positionals = args->positionals;
    return true;
}

struct Api {
    ApiEndpoint endpoint;

    Result<ApiResponse, std::string> call(std::string_view method, const std::string& path,
                                          const json::Value* body = nullptr) const {
        return api_call(endpoint, method, path, body);
    }
};

Result<Api, std::string> connect_api(const ApiFlags& f) {
    auto e = find_api(f.api, f.token);
    if (!e) {
        return e.error();
    }
    return Api{*e};
}

// GET /v1/tunnels/{ref}: the tunnel's detail, or a sentence naming what went wrong.
Result<json::Value, std::string> get_tunnel(const Api& api, const std::string& ref) {
    auto r = api.call("GET", "/v1/tunnels/" + path_escape(ref));
    if (!r) {
        return r.error();
    }
    if (r->status == 404) {
        return "no tunnel named or with ID '" + ref + "'";
    }
    if (!r->ok()) {
        return r->error_text();
    }
    return std::move(r->body);
}

std::string default_credentials_dir() {
    return home_dir() + "/.cfdtunnel";
}

int print_json(const json::Value& v) {
    std::printf("%s\n", json::write(v).c_str());
    return kExitOk;
}

// ---- tunnel create ---------------------------------------------------------------------

struct CreateResult {
    std::string id;
    std::string credentials_path;
};

Result<CreateResult, std::string> create_tunnel(const Api& api, const std::string& name,
                                                std::string credentials_path) {
    json::Value body = json::Value::object();
    body.set("name", json::Value::string(name));
    auto r = api.call("POST", "/v1/tunnels", &body);
    if (!r) {
        return r.error();
    }
    if (r->status == 409) {
        return "a tunnel named '" + name + "' already exists";
    }
    if (!r->ok()) {
        return "cannot create tunnel: " + r->error_text();
    }
    connector::Credentials c;
    c.account_tag = r->body.get_string("account_tag");
    auto secret = base64_decode(r->body.get_string("secret"));
    auto id = Uuid::parse(r->body.get_string("id"));
    if (!secret || !id || c.account_tag.empty()) {
        return std::string("the API's answer lacks the tunnel's ID, account tag or secret");
    }
    c.secret = std::move(*secret);
    c.tunnel_id = *id;
    if (credentials_path.empty()) {
        std::string dir = default_credentials_dir();
        ::mkdir(dir.c_str(), 0700);
        credentials_path = dir + "/" + id->str() + ".json";
    }
    auto w = connector::write_credentials_file(c, credentials_path);
    if (!w) {
        return "tunnel " + id->str() + " was created, but its credentials file " +
               credentials_path + " could not be written (" + w.error().message() +
               "); `cfdtunnel tunnel token --cred-file PATH " + name + "` writes it again";
    }
    return CreateResult{id->str(), credentials_path};
}

struct Routed {
    std::string tunnel_id;
};

Result<Routed, std::string> route_dns(const Api& api, const std::string& tunnel,
                                      const std::string& hostname, bool overwrite) {
    json::Value body = json::Value::object();
    body.set("hostname", json::Value::string(hostname));
    body.set("tunnel", json::Value::string(tunnel));
    body.set("overwrite", json::Value::boolean(overwrite));
    auto r = api.call("POST", "/v1/routes", &body);
    if (!r) {
        return r.error();
    }
    if (r->status == 409) {
        return hostname + " is already routed to another tunnel (use --overwrite-dns)";
    }
    if (r->status == 404) {
        return "no tunnel named or with ID '" + tunnel + "'";
    }
    if (!r->ok()) {
        return "cannot route " + hostname + ": " + r->error_text();
    }
    return Routed{r->body.get_string("tunnel_id")};
}

int run_create(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    std::string credentials_file, name, url, hostname;
    // Flags handed on to `tunnel run` by the one-command form.
    std::vector<std::string> edges;
    std::string cacert, ha, metrics, loglevel, server_name, cfg;
    api_flags.add_to(set);
    set.add_string("credentials-file", &credentials_file,
                   "where to write the credentials (default ~/.cfdtunnel/<id>.json)");
    set.add_alias("cred-file", "credentials-file");
    set.add_string("name", &name, "tunnel name (one-command form: create, route and run)");
    set.add_string("url", &url, "one-command form: the origin to serve");
    set.add_string("hostname", &hostname, "one-command form: the hostname to route");
    set.add_list("edge", &edges, "one-command form: edge address for `tunnel run`");
    set.add_string("cacert", &cacert, "one-command form: CA of the edge for `tunnel run`");
    set.add_string("ha-connections", &ha, "one-command form: connections for `tunnel run`");
    set.add_string("metrics", &metrics, "one-command form: metrics address for `tunnel run`");
    set.add_string("loglevel", &loglevel, "one-command form: log level for `tunnel run`");
    set.add_string("edge-server-name", &server_name, "one-command form: TLS name of the edge");
    set.add_string("config", &cfg, "one-command form: connector config file");
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel create NAME | tunnel create --name N --url U --hostname H",
               &pos, &rc)) {
        return rc;
    }
    bool one_command = !name.empty();
    if (!one_command) {
        if (pos.size() != 1) {
            return usage_error("tunnel create needs exactly one NAME");
        }
        name = pos[0];
    } else if (!pos.empty()) {
        return usage_error("give the name either as NAME or as --name, not both");
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    auto created = create_tunnel(*api, name, credentials_file);
    if (!created) {
        return failure(created.error());
    }
    std::printf("Tunnel credentials written to %s. Keep this file secret: it lets a connector "
                "run this tunnel. To revoke these credentials, delete the tunnel.\n\nCreated "
                "tunnel %s with id %s\n",
                created->credentials_path.c_str(), name.c_str(), created->id.c_str());
    if (!one_command) {
        return kExitOk;
    }
    if (!hostname.empty()) {
        auto routed = route_dns(*api, created->id, hostname, false);
        if (!routed) {
            return failure(routed.error());
        }
        log::info("Added route " + hostname + " which will route to this tunnel",
                  {{"tunnelID", created->id}});
    }
    if (url.empty()) {
        return kExitOk;
    }
    // Run the connector in this process, as cloudflared's one-command form does.
    std::vector<std::string> run_args{"run", "--credentials-file", created->credentials_path,
                                      "--url", url};
    for (const std::string& e : edges) {
        run_args.insert(run_args.end(), {"--edge", e});
    }
    auto pass = [&](const char* flag, const std::string& v) {
        if (!v.empty()) {
            run_args.insert(run_args.end(), {flag, v});
        }
    };
    pass("--cacert", cacert);
    pass("--ha-connections", ha);
    pass("--metrics", metrics);
    pass("--loglevel", loglevel);
    pass("--edge-server-name", server_name);
    pass("--config", cfg);
    run_args.push_back(created->id);
    for (const Command& c : commands()) {
        if (c.name == "tunnel run") {
            std::vector<char*> av;
            for (std::string& a : run_args) {
                av.push_back(a.data());
            }
            av.push_back(nullptr);
            return c.fn(static_cast<int>(run_args.size()), av.data());
        }
    }
    return failure("this build has no `tunnel run`");
}
CFD_COMMAND(tunnel_create, "tunnel create", "create a tunnel and write its credentials file",
            run_create);

// ---- tunnel route dns ------------------------------------------------------------------

int run_route_dns(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    bool overwrite = false;
    api_flags.add_to(set);
    set.add_bool("overwrite-dns", &overwrite, "move the hostname from another tunnel");
    set.add_alias("f", "overwrite-dns");
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel route dns TUNNEL HOSTNAME", &pos, &rc)) {
        return rc;
    }
    if (pos.size() != 2) {
        return usage_error("tunnel route dns needs TUNNEL and HOSTNAME");
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    auto routed = route_dns(*api, pos[0], pos[1], overwrite);
    if (!routed) {
        return failure(routed.error());
    }
    log::info("Added route " + pos[1] + " which will route to this tunnel",
              {{"tunnelID", routed->tunnel_id}});
    return kExitOk;
}
CFD_COMMAND(tunnel_route_dns, "tunnel route dns", "route a hostname to a tunnel", run_route_dns);

// ---- tunnel route list / delete ----------------------------------------------------------

int run_route_list(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    api_flags.add_to(set);
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel route list", &pos, &rc)) {
        return rc;
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    auto r = api->call("GET", "/v1/routes");
    if (!r) {
        return failure(r.error());
    }
    if (!r->ok()) {
        return failure(r->error_text());
    }
    if (api_flags.output == "json") {
        return print_json(r->body);
    }
    std::vector<std::vector<std::string>> rows{{"HOSTNAME", "TUNNEL ID"}};
    for (const json::Value& route : r->body.items()) {
        rows.push_back({route.get_string("hostname"), route.get_string("tunnel_id")});
    }
    std::fputs(format_table(rows).c_str(), stdout);
    return kExitOk;
}
CFD_COMMAND(tunnel_route_list, "tunnel route list", "list hostname routes", run_route_list);

int run_route_delete(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    api_flags.add_to(set);
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel route delete HOSTNAME", &pos, &rc)) {
        return rc;
    }
    if (pos.size() != 1) {
        return usage_error("tunnel route delete needs HOSTNAME");
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    auto r = api->call("DELETE", "/v1/routes/" + path_escape(pos[0]));
    if (!r) {
        return failure(r.error());
    }
    if (r->status == 404) {
        return failure("no route for " + pos[0]);
    }
    if (!r->ok()) {
        return failure(r->error_text());
    }
    return kExitOk;
}
CFD_COMMAND(tunnel_route_delete, "tunnel route delete", "remove a hostname route",
            run_route_delete);

// ---- tunnel list / info ------------------------------------------------------------------

int run_list(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    bool deleted = false;
    api_flags.add_to(set);
    set.add_bool("show-deleted", &deleted, "include deleted tunnels");
    set.add_alias("d", "show-deleted");
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel list", &pos, &rc)) {
        return rc;
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    auto r = api->call("GET", deleted ? "/v1/tunnels?include_deleted=1" : "/v1/tunnels");
    if (!r) {
        return failure(r.error());
    }
    if (!r->ok()) {
        return failure(r->error_text());
    }
    std::vector<json::Value> detailed;
    for (const json::Value& t : r->body.items()) {
        const json::Value* del = t.get("deleted_at");
        if (del != nullptr && !del->is_null()) {
            detailed.push_back(t);  // a deleted tunnel has no connections to detail
            continue;
        }
        auto d = get_tunnel(*api, t.get_string("id"));
        detailed.push_back(d ? std::move(*d) : t);
    }
    if (api_flags.output == "json") {
        json::Value arr = json::Value::array();
        for (json::Value& t : detailed) {
            arr.push(std::move(t));
        }
        return print_json(arr);
    }
    std::fputs(format_list(detailed).c_str(), stdout);
    return kExitOk;
}
CFD_COMMAND(tunnel_list, "tunnel list", "list tunnels and their connections", run_list);

int run_info(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    api_flags.add_to(set);
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel info NAME-or-ID", &pos, &rc)) {
        return rc;
    }
    if (pos.size() != 1) {
        return usage_error("tunnel info needs a tunnel name or ID");
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    auto t = get_tunnel(*api, pos[0]);
    if (!t) {
        return failure(t.error());
    }
    if (api_flags.output == "json") {
        return print_json(*t);
    }
    std::fputs(format_info(*t).c_str(), stdout);
    return kExitOk;
}
CFD_COMMAND(tunnel_info, "tunnel info", "show a tunnel's connectors", run_info);

// ---- tunnel delete / cleanup / token -------------------------------------------------------

int run_delete(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    bool force = false;
    api_flags.add_to(set);
    set.add_bool("force", &force, "delete even while connectors are connected");
    set.add_alias("f", "force");
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel delete [-f] NAME-or-ID...", &pos, &rc)) {
        return rc;
    }
    if (pos.empty()) {
        return usage_error("tunnel delete needs a tunnel name or ID");
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    for (const std::string& ref : pos) {
        auto r = api->call("DELETE", "/v1/tunnels/" + path_escape(ref) + (force ? "?force=1" : ""));
        if (!r) {
            return failure(r.error());
        }
        if (r->status == 404) {
            return failure("no tunnel named or with ID '" + ref + "'");
        }
        if (r->status == 409) {
            return failure("cannot delete tunnel " + ref + ": " + r->error_text() +
                           "; stop its connectors, run `cfdtunnel tunnel cleanup " + ref +
                           "`, or use -f");
        }
        if (!r->ok()) {
            return failure(r->error_text());
        }
        log::info("Deleted tunnel", {{"tunnel", ref}});
    }
    return kExitOk;
}
CFD_COMMAND(tunnel_delete, "tunnel delete", "delete a tunnel", run_delete);

int run_cleanup(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    std::string connector_id;
    api_flags.add_to(set);
    set.add_string("connector-id", &connector_id, "remove only this connector's connections");
    set.add_alias("c", "connector-id");
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel cleanup [--connector-id ID] NAME-or-ID...", &pos, &rc)) {
        return rc;
    }
    if (pos.empty()) {
        return usage_error("tunnel cleanup needs a tunnel name or ID");
    }
    if (!connector_id.empty() && !Uuid::parse(connector_id)) {
        return usage_error("--connector-id is not a UUID: " + connector_id);
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    for (const std::string& ref : pos) {
        std::string path = "/v1/tunnels/" + path_escape(ref) + "/connections";
        if (!connector_id.empty()) {
            path += "?connector_id=" + connector_id;
        }
        auto r = api->call("DELETE", path);
        if (!r) {
            return failure(r.error());
        }
        if (r->status == 404) {
            return failure("no tunnel named or with ID '" + ref + "'");
        }
        if (!r->ok()) {
            return failure(r->error_text());
        }
        const json::Value* n = r->body.get("removed");
        log::info("Cleaned up connections",
                  {{"tunnel", ref}, {"removed", static_cast<long>(n ? n->as_number() : 0)}});
    }
    return kExitOk;
}
CFD_COMMAND(tunnel_cleanup, "tunnel cleanup", "remove stale connection records", run_cleanup);

int run_token(int argc, char** argv) {
    config::OptionSet set;
    ApiFlags api_flags;
    std::string cred_file;
    api_flags.add_to(set);
    set.add_string("cred-file", &cred_file, "also write the credentials to this file (0400)");
    set.add_alias("credentials-file", "cred-file");
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "tunnel token [--cred-file PATH] NAME-or-ID", &pos, &rc)) {
        return rc;
    }
    if (pos.size() != 1) {
        return usage_error("tunnel token needs a tunnel name or ID");
    }
    auto api = connect_api(api_flags);
    if (!api) {
        return failure(api.error());
    }
    auto r = api->call("GET", "/v1/tunnels/" + path_escape(pos[0]) + "/token");
    if (!r) {
        return failure(r.error());
    }
    if (r->status == 404) {
        return failure("no tunnel named or with ID '" + pos[0] + "'");
    }
    if (!r->ok()) {
        return failure(r->error_text());
    }
    std::string token = r->body.get_string("token");
    auto creds = connector::parse_token(token);
    if (!creds) {
        return failure("the API sent a malformed token");
    }
    if (!cred_file.empty()) {
        if (auto w = connector::write_credentials_file(*creds, cred_file); !w) {
            return failure("cannot write " + cred_file + ": " + w.error().message());
        }
        return kExitOk;
    }
    std::printf("%s\n", token.c_str());
    return kExitOk;
}
CFD_COMMAND(tunnel_token, "tunnel token", "print a tunnel's token", run_token);

// ---- login -------------------------------------------------------------------------------

int run_login(int argc, char** argv) {
    config::OptionSet set;
    std::string api, token;
    set.add_string("api", &api, "management API URL, e.g. http://127.0.0.1:7845");
    set.add_string("token", &token, "management API token (the edge's api-token file)");
    std::vector<std::string> pos;
    int rc = 0;
    if (!parse(set, argc, argv, "login --api URL --token TOKEN", &pos, &rc)) {
        return rc;
    }
    if (api.empty() || token.empty()) {
        return usage_error("login needs --api and --token");
    }
    auto e = parse_api_url(api);
    if (!e) {
        return usage_error(e.error());
    }
    e->token = token;
    auto probe = api_call(*e, "GET", "/v1/tunnels", nullptr);
    if (!probe) {
        return failure(probe.error());
    }
    std::string dir = default_credentials_dir();
    ::mkdir(dir.c_str(), 0700);
    std::string path = dir + "/cli.ini";
    std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
        return failure("cannot write " + tmp + ": " + std::strerror(errno));
    }
    ::fchmod(fileno(f), 0600);
    std::fprintf(f, "# written by `cfdtunnel login`\n[cli]\napi = %s\ntoken = %s\n", api.c_str(),
                 token.c_str());
    if (std::fclose(f) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
        return failure("cannot write " + path + ": " + std::strerror(errno));
    }
    std::printf("Logged in to %s; settings saved in %s\n", api.c_str(), path.c_str());
    return kExitOk;
}
CFD_COMMAND(login, "login", "save the management API's address and token", run_login);

}  // namespace
}  // namespace cfd::cli
