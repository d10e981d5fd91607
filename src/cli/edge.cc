// `cfdtunnel edge`: an edge location. Options from the [edge] section of --config (default
// /etc/cfdtunnel/edge.ini, optional when absent), each also a flag; flags win.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cfd/config/ini.h"
#include "cfd/config/options.h"
#include "cfd/control/edge_server.h"
#include "cfd/core/log.h"
#include "cfd/tls/server_contexts.h"
#include "cli/command.h"

namespace cfd::cli {
namespace {

constexpr const char* kDefaultConfig = "/etc/cfdtunnel/edge.ini";

// [tls "NAME"] sections: `cert` and `key` (PEM files), optional `hostnames` (separated by
// commas or spaces; default: the certificate's DNS names). In file order.
Result<std::vector<tls::CertificatePair>, config::Diag> tls_sections(const config::IniFile& f) {
    std::vector<tls::CertificatePair> out;
    std::vector<int> first_line;
    std::string current;
    for (const config::Entry& e : f.entries()) {
        std::string kind;
        std::string name;
        if (!config::split_section(e.section, &kind, &name) || kind != "tls") {
            continue;
        }
        if (out.empty() || e.section != current) {
            current = e.section;
            tls::CertificatePair p;
            p.origin = f.name() + ":" + std::to_string(e.line) + ": [" + e.section + "]";
            out.push_back(std::move(p));
            first_line.push_back(e.line);
        }
        tls::CertificatePair& p = out.back();
        if (e.key == "cert") {
            p.cert_file = e.value;
        } else if (e.key == "key") {
            p.key_file = e.value;
        } else if (e.key == "hostnames") {
            std::string word;
            for (char c : e.value + ",") {
                if (c == ',' || c == ' ' || c == '\t') {
                    if (!word.empty()) {
                        p.names.push_back(std::move(word));
                    }
                    word.clear();
                } else {
                    word += c;
                }
            }
        } else {
            return config::Diag{f.name(), e.line, e.key,
                                "unknown key in [" + e.section + "] (expected cert, key, hostnames)"};
        }
    }
    for (size_t i = 0; i < out.size(); i++) {
        if (out[i].cert_file.empty() || out[i].key_file.empty()) {
            return config::Diag{f.name(), first_line[i], out[i].cert_file.empty() ? "cert" : "key",
                                "missing in this [tls] section"};
        }
    }
    return out;
}

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
    opts.add_string("https-listen", &cfg.https_listen,
                    "public HTTPS listener (default 0.0.0.0:443; only with certificates)");
    std::vector<std::string> tls_certs;
    std::vector<std::string> tls_keys;
    opts.add_list("tls-cert", &tls_certs,
                  "HTTPS certificate chain (PEM), serving its DNS names; repeatable, paired in "
                  "order with --tls-key; the first is the default");
    opts.add_list("tls-key", &tls_keys, "the private key (PEM) of the --tls-cert at its position");
    opts.add_list("https-redirect", &cfg.https_redirect,
                  "HOSTNAME (exact, *.domain or *): plain HTTP requests for it are redirected "
                  "to HTTPS (repeatable)");
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
    std::vector<tls::CertificatePair> file_certs;
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
        if (auto r = config::check_sections(*file, {"edge", "tls"}); !r) {
            std::fprintf(stderr, "cfdtunnel edge: %s\n", r.error().str().c_str());
            return kExitUsage;
        }
        auto sections = tls_sections(*file);
        if (!sections) {
            std::fprintf(stderr, "cfdtunnel edge: %s\n", sections.error().str().c_str());
            return kExitUsage;
        }
        file_certs = std::move(*sections);
        if (auto r = opts.apply_file(*file, "edge"); !r) {
            std::fprintf(stderr, "cfdtunnel edge: %s\n", r.error().str().c_str());
            return kExitUsage;
        }
    }
    if (auto r = opts.apply_args(*args); !r) {
        std::fprintf(stderr, "cfdtunnel edge: %s\n", r.error().str().c_str());
        return kExitUsage;
    }
    if (tls_certs.size() != tls_keys.size()) {
        std::fprintf(stderr,
                     "cfdtunnel edge: --tls-cert and --tls-key come in pairs (%zu certificates, "
                     "%zu keys)\n",
                     tls_certs.size(), tls_keys.size());
        return kExitUsage;
    }
    for (size_t i = 0; i < tls_certs.size(); i++) {
        cfg.certificates.push_back(
            {tls_certs[i], tls_keys[i], {}, "--tls-cert #" + std::to_string(i + 1)});
    }
    for (auto& c : file_certs) {
        cfg.certificates.push_back(std::move(c));
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
