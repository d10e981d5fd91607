// `cfdtunnel edge`: an edge location. Options from the [edge] section of --config (default
// /etc/cfdtunnel/edge.ini, optional when absent), each also a flag; flags win.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "cfd/config/ini.h"
#include "cfd/config/options.h"
#include "cfd/control/edge_server.h"
#include "cfd/core/log.h"
#include "cli/command.h"

namespace cfd::cli {
namespace {

constexpr const char* kDefaultConfig = "/etc/cfdtunnel/edge.ini";

int run_edge_command(int argc, char** argv) {
    control::EdgeConfig cfg;
    std::string config_path = kDefaultConfig;
    std::string loglevel = "info";
    std::string output = "text";
    bool help = false;
    config::OptionSet opts;
    opts.add_string("config", &config_path, "INI file; section [edge]");
    opts.add_string("location", &cfg.location, "this edge location's name, e.g. DFW");
    opts.add_string("tunnel-listen", &cfg.tunnel_listen, "TLS listener for connectors");
    opts.add_string("http-listen", &cfg.http_listen, "public HTTP listener");
    opts.add_string("api-listen", &cfg.api_listen, "management API listener");
    opts.add_string("metrics", &cfg.metrics, "metrics listener (/metrics, /ready, /healthcheck)");
    opts.add_string("store", &cfg.store, "store: sqlite:PATH");
    opts.add_string("cert", &cfg.cert, "tunnel listener certificate (PEM); default: generated");
    opts.add_string("key", &cfg.key, "tunnel listener private key (PEM)");
    opts.add_int("workers", &cfg.workers, 0, 1024, "reactor threads (0: one per core)");
    opts.add_int("max-connectors-per-tunnel", &cfg.max_connectors_per_tunnel, 1, 1000000,
                 "distinct connectors one tunnel may run");
    opts.add_duration("grace-period", &cfg.grace_period,
                      "on SIGTERM, how long in-flight requests may take (default 30s)");
    opts.add_list("tcp-listen", &cfg.tcp_listen,
                  "ADDR=HOSTNAME: a raw TCP listener whose clients reach HOSTNAME's tcp:// or "
                  "ssh:// rule (repeatable)");
    opts.add_duration("ping-interval", &cfg.ping_interval,
                      "how often each tunnel connection is PINGed (default 5s)");
    opts.add_duration("ping-timeout", &cfg.ping_timeout,
                      "a PING not answered within this closes its connection (default 5s)");
    opts.add_duration("connector-wait", &cfg.connector_wait,
                      "how long a request waits for a connector moving here from the process "
                      "this one replaces (default 5s; 0: never)");
    opts.add_string("loglevel", &loglevel, "debug, info, warn, error, fatal");
    opts.add_string("output", &output, "log format: text or json");
    opts.add_bool("help", &help, "show this help");

    auto args = opts.split(argc, argv, 1);
    if (!args) {
        std::fprintf(stderr, "cfdtunnel edge: %s\n", args.error().str().c_str());
        return kExitUsage;
    }
    // --config first, so that the file's values come before the other flags.
    for (const auto& [name, value] : args->flags) {
        if (name == "config") {
            config_path = value;
        }
        if (name == "help") {
            help = true;
        }
    }
    if (help) {
        std::printf("usage: cfdtunnel edge [options]\n\n%s", opts.usage().c_str());
        return kExitOk;
    }
    if (!args->positionals.empty()) {
        std::fprintf(stderr, "cfdtunnel edge: unexpected argument %s\n",
                     args->positionals[0].c_str());
        return kExitUsage;
    }
    bool explicit_config = false;
    for (const auto& f : args->flags) {
        explicit_config = explicit_config || f.first == "config";
    }
    struct stat st {};
    if (explicit_config || ::stat(config_path.c_str(), &st) == 0) {
        auto file = config::IniFile::load(config_path);
        if (!file) {
            std::fprintf(stderr, "cfdtunnel edge: %s\n", file.error().str().c_str());
            return kExitUsage;
        }
        if (auto r = config::check_sections(*file, {"edge"}); !r) {
            std::fprintf(stderr, "cfdtunnel edge: %s\n", r.error().str().c_str());
            return kExitUsage;
        }
        if (auto r = opts.apply_file(*file, "edge"); !r) {
            std::fprintf(stderr, "cfdtunnel edge: %s\n", r.error().str().c_str());
            return kExitUsage;
        }
    }
    if (auto r = opts.apply_args(*args); !r) {
        std::fprintf(stderr, "cfdtunnel edge: %s\n", r.error().str().c_str());
        return kExitUsage;
    }
    log::Level lvl;
    if (!log::parse_level(loglevel, &lvl)) {
        std::fprintf(stderr, "cfdtunnel edge: --loglevel: unknown level %s\n", loglevel.c_str());
        return kExitUsage;
    }
    log::Format fmt;
    if (!log::parse_format(output, &fmt)) {
        std::fprintf(stderr, "cfdtunnel edge: --output: unknown format %s\n", output.c_str());
        return kExitUsage;
    }
    log::set_level(lvl);
    log::set_format(fmt);
    return control::run_edge(cfg);
}

}  // namespace

CFD_COMMAND(edge, "edge", "run an edge location", run_edge_command);

}  // namespace cfd::cli
