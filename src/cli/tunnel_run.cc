// `cfdtunnel tunnel run [flags] [NAME-or-ID]`: the connector (DESIGN.md story 4).
//
// Options come from the [connector] section of the config file (--config, else
// ~/.cfdtunnel/config.ini, else /etc/cfdtunnel/config.ini when present) and from flags of the
// same names, flags winning. Ingress rules come from the same file's [ingress "..."] sections,
// or --url alone makes one catch-all rule.
//
// This (main) thread is the control thread: it starts the Connector's reactors, then runs a
// small reactor of its own that serves --metrics (/ready, /healthcheck, /metrics) and, between
// turns, takes SIGTERM/SIGINT (blocked in every thread, taken here with sigtimedwait).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cfd/config/ini.h"
#include "cfd/config/options.h"
#include "cfd/connector/connector.h"
#include "cfd/connector/credentials.h"
#include "cfd/connector/ingress.h"
#include "cfd/connector/metrics.h"
#include "cfd/connector/rule_router.h"
#include "cfd/control/http_server.h"
#include "cfd/core/log.h"
#include "cfd/core/prometheus.h"
#include "cfd/core/sd_notify.h"
#include "cfd/reactor/reactor.h"
#include "cfd/core/version.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "cli/connector_config.h"

namespace cfd::cli {

namespace {

constexpr const char* kSynopsis = "tunnel run [flags] [NAME-or-ID]";
constexpr const char* kDefaultEdge = "127.0.0.1:7844";
// cloudflared's default metrics address and its fallbacks, tried in order when --metrics is not
// given (several connectors on one host each find a port).
constexpr const char* kDefaultMetricsHost = "localhost";
constexpr uint16_t kDefaultMetricsPort = 20241;
constexpr uint16_t kDefaultMetricsPorts = 5;  // 20241..20245
// How long one control-loop turn waits for metrics traffic before it looks for a signal: the
// bound on how late a SIGTERM starts the drain.
constexpr Millis kControlTick{100};

struct RunFlags {
    std::string config;
    std::string credentials_file;
    std::string token;
    std::vector<std::string> edges;
    std::string cacert;
    int64_t ha_connections = 4;
    std::string url;
    Millis grace_period{30000};
    Millis silence_timeout{10000};
    std::string loglevel = "info";
    std::string output = "text";
    int64_t workers = 0;
    std::string edge_server_name{tls::kTunnelServerName};
    std::string metrics;
    std::string api;
    std::string api_token;
    bool help = false;
};

void add_flags(config::OptionSet& set, RunFlags& f) {
    set.add_string("credentials-file", &f.credentials_file, "the tunnel's credentials file");
    set.add_alias("cred-file", "credentials-file");
    set.add_string("token", &f.token, "the tunnel's token instead of a credentials file");
    set.add_list("edge", &f.edges,
                 "edge address host:port, repeatable; entries alternate between locations "
                 "(default 127.0.0.1:7844)");
    set.add_string("cacert", &f.cacert, "CA file that signed the edge's certificate");
    set.add_int("ha-connections", &f.ha_connections, 1, 64, "connections to the edge");
    set.add_string("url", &f.url, "the origin, when the config file has no ingress rules");
    set.add_duration("grace-period", &f.grace_period,
                     "how long a stopping connector lets requests finish");
    set.add_duration("silence-timeout", &f.silence_timeout,
                     "redial a connection on which the edge sent nothing, not even a PING, for "
                     "this long (default 10s; 0: never)");
    set.add_string("loglevel", &f.loglevel, "debug, info, warn, error or fatal");
    set.add_string("output", &f.output, "log format: text or json");
    set.add_int("workers", &f.workers, 0, 1024, "reactor threads (0: one per CPU)");
    set.add_string("edge-server-name", &f.edge_server_name,
                   "TLS server name the edge's certificate must carry");
    set.add_string("metrics", &f.metrics,
                   "address of /ready, /healthcheck and /metrics (default localhost:20241, "
                   "then 20242..20245 when taken)");
    set.add_string("api", &f.api, "management API, to find a tunnel by name");
    set.add_string("api-token", &f.api_token, "management API token");
}

int usage_error(const std::string& msg) {
    std::fprintf(stderr, "cfdtunnel tunnel run: %s\n", msg.c_str());
    return kExitUsage;
}

int failure(const std::string& msg) {
    log::error(msg);
    return kExitFailure;
}

// The tunnel's ID for a positional NAME-or-ID: a UUID as it is, a name through the API.
Result<Uuid, std::string> resolve_tunnel(const RunFlags& f, const std::string& ref) {
    if (auto u = Uuid::parse(ref)) {
        return *u;
    }
    auto api = find_api(f.api, f.api_token);
    if (!api) {
        return "'" + ref + "' is not a tunnel ID, and finding it by name needs the management "
               "API: " + api.error();
    }
    auto r = api_call(*api, "GET", "/v1/tunnels/" + path_escape(ref), nullptr);
    if (!r) {
        return r.error();
    }
    if (r->status == 404) {
        return "no tunnel named or with ID '" + ref + "'";
    }
    if (!r->ok()) {
        return r->error_text();
    }
    const json::Value* id = r->body.get("id");
    if (id == nullptr || !id->is_string()) {
        return std::string("the management API answered without the tunnel's id");
    }
    auto u = Uuid::parse(id->as_string());
    if (!u) {
        return std::string("the management API answered a malformed tunnel id");
    }
    return *u;
}

Result<connector::Credentials, std::string> load_credentials(const RunFlags& f,
                                                             const std::vector<std::string>& pos) {
    if (!f.token.empty()) {
        auto c = connector::parse_token(f.token);
        if (!c) {
            return "--token: " + c.error().message();
        }
        return *c;
    }
    std::string path = f.credentials_file;
    if (path.empty()) {
        if (pos.empty()) {
            return std::string("give the tunnel's NAME or ID, --credentials-file or --token");
        }
        auto id = resolve_tunnel(f, pos[0]);
        if (!id) {
            return id.error();
        }
        std::vector<std::string> candidates;
        if (!home_dir().empty()) {
            candidates.push_back(home_dir() + "/.cfdtunnel/" + id->str() + ".json");
        }
        candidates.push_back("/etc/cfdtunnel/" + id->str() + ".json");
        for (const std::string& c : candidates) {
            if (file_exists(c)) {
                path = c;
                break;
            }
        }
        if (path.empty()) {
            return "no credentials file for tunnel " + id->str() + " (looked for " +
                   candidates.front() + "); give --credentials-file";
        }
    }
    auto c = connector::read_credentials_file(path);
    if (!c) {
        return path + ": " + c.error().message();
    }
    return *c;
}

Result<std::unique_ptr<connector::Router>, std::string> load_router(
    const RunFlags& f, const std::optional<config::IniFile>& file) {
    if (file && connector::Ingress::present(*file)) {
        if (!f.url.empty()) {
            return std::string("--url and ingress rules in the config file exclude each other");
        }
        auto in = connector::Ingress::from_file(*file);
        if (!in) {
            return in.error().str();
        }
        auto r = connector::RuleRouter::create(std::move(*in));
        if (!r) {
            return r.error();
        }
        return std::unique_ptr<connector::Router>(std::move(*r));
    }
    std::string url = f.url;
    if (url.empty()) {
        log::warn("No ingress rules were defined in the config file nor with --url: every "
                  "request is answered 503");
        url = "http_status:503";
    }
    auto in = connector::Ingress::from_url(url);
    if (!in) {
        return "--url: " + in.error().str();
    }
    auto r = connector::RuleRouter::create(std::move(*in));
    if (!r) {
        return "--url: " + r.error();
    }
    return std::unique_ptr<connector::Router>(std::move(*r));
}

const char* signal_name(int sig) { return sig == SIGINT ? "interrupt" : "terminated"; }

// GET answers of the metrics server, from the connector's counters (control thread).
class MetricsRoutes final : public control::HttpRoutes {
public:
    explicit MetricsRoutes(const connector::Connector& c) : c_(c) {}
    control::HttpReply get(std::string_view path) override {
        if (path == "/healthcheck") {
            return {200, "text/plain; charset=utf-8", "OK\n"};
        }
        if (path == "/ready") {
            auto a = connector::ready_answer(c_.metrics_snapshot());
            return {a.status, "application/json", std::move(a.body)};
        }
        if (path == "/metrics") {
            return {200, std::string(prom::kContentType),
                    connector::render_metrics(c_.metrics_snapshot())};
        }
        return {404, "text/plain; charset=utf-8", "404 page not found\n"};
    }

private:
    const connector::Connector& c_;
};

// The metrics server: on `flag` when given (failing to bind it is an error naming it), else on
// the first free port of localhost:20241..20245. Null, with a warning, when every default port
// is taken: the tunnel itself works without it.
Result<std::unique_ptr<control::HttpServer>, std::string> open_metrics(
    reactor::Reactor& r, const std::string& flag, control::HttpRoutes& routes) {
    if (!flag.empty()) {
        auto a = net::SockAddr::parse(flag);
        if (!a) {
            return "--metrics " + flag + ": " + a.error().message();
        }
        auto s = control::HttpServer::open(r, *a, routes);
        if (!s) {
            return "--metrics " + flag + ": cannot listen: " + s.error().message();
        }
        return std::move(*s);
    }
    std::string first;
    for (uint16_t i = 0; i < kDefaultMetricsPorts; i++) {
        std::string addr = std::string(kDefaultMetricsHost) + ":" +
                           std::to_string(kDefaultMetricsPort + i);
        auto a = net::SockAddr::parse(addr);
        if (!a) {
            return "metrics address " + addr + ": " + a.error().message();
        }
        auto s = control::HttpServer::open(r, *a, routes);
        if (s) {
            if (i > 0) {
                log::info("Default metrics address " + first + " is in use: using " + addr);
            }
            return std::move(*s);
        }
        if (i == 0) {
            first = addr;
        }
        log::debug("Cannot listen on a default metrics address",
                   {{"address", addr}, {"error", s.error().message()}});
    }
    log::warn("Every default metrics address (localhost:20241..20245) is in use: no metrics "
              "server; give --metrics ADDRESS");
    return std::unique_ptr<control::HttpServer>();
}

int run_tunnel_run(int argc, char** argv) {
    RunFlags f;
    config::OptionSet set;
    add_flags(set, f);
    set.add_string("config", &f.config, "config file ([connector] section, ingress rules)");
    set.add_bool("help", &f.help, "this text");
    set.add_alias("h", "help");
    auto args = set.split(argc, argv, 1);
    if (!args) {
        return usage_error(args.error().str());
    }
    auto loaded = load_connector_config(find_connector_config(*args));
    if (!loaded) {
        return usage_error(loaded.error());
    }
    std::optional<config::IniFile> file = std::move(*loaded);
    if (file) {
        if (auto r = set.apply_file(*file, "connector"); !r) {
            return usage_error(r.error().str());
        }
    }
    if (auto r = set.apply_args(*args); !r) {
        return usage_error(r.error().str());
    }
    if (f.help) {
        std::printf("usage: cfdtunnel %s\n\n%s", kSynopsis, set.usage().c_str());
        return kExitOk;
    }
    log::Level level;
    if (!log::parse_level(f.loglevel, &level)) {
        return usage_error("--loglevel: expected debug, info, warn, error or fatal");
    }
    log::Format format;
    if (!log::parse_format(f.output, &format)) {
        return usage_error("--output: expected text or json");
    }
    log::set_level(level);
    log::set_format(format);
    if (args->positionals.size() > 1) {
        return usage_error("at most one NAME-or-ID");
    }

    auto creds = load_credentials(f, args->positionals);
    if (!creds) {
        return failure(creds.error());
    }
    if (!f.cacert.empty() && !file_exists(f.cacert)) {
        return usage_error("--cacert: " + f.cacert + " does not exist");
    }
    if (f.edges.empty()) {
        f.edges.push_back(kDefaultEdge);
    }
    std::vector<net::SockAddr> edges;
    for (const std::string& e : f.edges) {
        auto a = net::SockAddr::parse(e);
        if (!a) {
            return usage_error("--edge " + e + ": " + a.error().message());
        }
        edges.push_back(*a);
    }
    auto router = load_router(f, file);
    if (!router) {
        return usage_error(router.error());  // the ingress rules are configuration
    }

    connector::ConnectorOptions opts;
    opts.creds = *creds;
    opts.connector_id = Uuid::random();
    opts.edges = edges;
    opts.ha_connections = static_cast<uint32_t>(f.ha_connections);
    opts.workers = static_cast<uint32_t>(f.workers);
    opts.ca_file = f.cacert;
    opts.server_name = f.edge_server_name;
    opts.silence_timeout = f.silence_timeout;
    opts.router = router->get();

    std::string_view arch = connector::build_arch();
    arch.remove_prefix(arch.find('_') + 1);
    log::info("Starting tunnel", {{"tunnelID", creds->tunnel_id.str()}});
    log::info(std::string("Version ") + kVersion);
    log::info("GOOS: linux, Arch: " + std::string(arch));
    log::info("Generated Connector ID: " + opts.connector_id.str());

    // Signals are taken synchronously by this (control) thread; the reactor threads inherit
    // the mask, so none of them is ever interrupted.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    connector::Connector conn(opts);
    MetricsRoutes routes(conn);
    // Declared before the reactor, so destroyed after it: the server must outlive the
    // reactor's last callbacks.
    std::unique_ptr<control::HttpServer> metrics;
    reactor::ReactorOptions cro;
    cro.log_features = false;
    cro.buf_count = 64;
    cro.max_objects = 256;
    cro.sq_entries = 64;
    cro.cq_entries = 256;
    auto control = reactor::Reactor::create(cro);
    if (!control) {
        return failure("cannot create the control reactor: " + control.error().message());
    }
    // Bound before any connection is made: a wrong --metrics fails fast.
    auto m = open_metrics(**control, f.metrics, routes);
    if (!m) {
        return failure(m.error());
    }
    metrics = std::move(*m);
    if (metrics) {
        log::info("Starting metrics server on " + metrics->local().str() + "/metrics");
    }
    // One control-loop turn: serve metrics traffic for up to kControlTick, then take a pending
    // signal without waiting (0 when none).
    auto turn = [&]() -> int {
        (*control)->run_once(kControlTick);
        timespec zero{0, 0};
        int s = sigtimedwait(&sigs, nullptr, &zero);
        return s > 0 ? s : 0;
    };
    // Ends the metrics server and the control reactor (before the connector's cores go away:
    // the routes read them).
    auto stop_control = [&]() {
        if (metrics) {
            metrics->close();
        }
        (*control)->request_stop();
        (*control)->run();
    };

    if (auto s = conn.start(); !s) {
        stop_control();
        return failure("cannot start the connector: " + tls::describe(s.error()));
    }
    const auto& stats = conn.stats();
    const int total = static_cast<int>(opts.ha_connections);
    // systemd (Type=notify) hears READY=1 when /ready would first answer 200: a connection is
    // registered. STATUS= follows the registered count; -1: nothing reported yet.
    int reported = -1;
    auto notify_connections = [&]() {
        int now = stats.registered.load(std::memory_order_relaxed);
        if (now == reported || (reported < 0 && now == 0)) {
            return;
        }
        std::string status = "STATUS=Connected " + std::to_string(now) + " of " +
                             std::to_string(total) + " connections";
        sd_notify_or_warn(reported < 0 ? "READY=1\n" + status : status);
        reported = now;
    };
    int sig = 0;
    for (;;) {
        sig = turn();
        if (sig > 0) {
            break;
        }
        notify_connections();
        if (stats.ever_registered.load() == 0 && stats.permanent_refusals.load() >= total) {
            stop_control();
            conn.stop();
            return failure("The edge refused every connection of this tunnel and asked not to "
                           "retry (see the errors above): check the credentials; exiting");
        }
    }
    log::info(std::string("Initiating graceful shutdown due to signal ") + signal_name(sig) +
              " ...");
    sd_notify_or_warn("STOPPING=1\nSTATUS=Draining: finishing in-flight requests");
    conn.drain();
    auto deadline = std::chrono::steady_clock::now() + f.grace_period;
    while (stats.closed_for_good.load() < total) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            log::warn("Grace period over: closing the connections that are left");
            break;
        }
        sig = turn();
        if (sig > 0) {
            log::warn(std::string("Second signal ") + signal_name(sig) + ": exiting now");
            std::fflush(nullptr);
            ::_exit(kExitFailure);
        }
    }
    stop_control();
    conn.stop();
    log::info("Tunnel server stopped");
    return kExitOk;
}

}  // namespace

CFD_COMMAND(tunnel_run, "tunnel run", "run a connector for a tunnel", run_tunnel_run);

}  // namespace cfd::cli
