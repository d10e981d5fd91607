// `cfdtunnel tunnel ingress validate` and `cfdtunnel tunnel ingress rule URL`: the connector's
// ingress rules checked without running it, as cloudflared's namesakes do. Both read the file
// `tunnel run` would (--config, else ~/.cfdtunnel/config.ini, else /etc/cfdtunnel/config.ini),
// or a single --url rule.
#include <cstdio>
#include <optional>
#include <string>

#include "cfd/config/options.h"
#include "cfd/connector/ingress.h"
#include "cli/command.h"
#include "cli/connector_config.h"

namespace cfd::cli {
namespace {

struct Loaded {
    connector::Ingress ingress;
    std::string source;
};

// Parses the flags, then the rules; prints what went wrong and sets `rc` when it fails.
std::optional<Loaded> load_rules(int argc, char** argv, const char* synopsis, size_t positionals,
                                 std::vector<std::string>* pos, int* rc) {
    std::string config_path, url;
    bool help = false;
    config::OptionSet set;
    set.add_string("config", &config_path, "connector configuration file");
    set.add_string("url", &url, "check this single catch-all rule instead of a file");
    set.add_bool("help", &help, "this text");
    auto args = set.split(argc, argv, 1);  // argv[0] is the command's last word
    if (args) {
        if (auto r = set.apply_args(*args); !r) {
            std::fprintf(stderr, "cfdtunnel: %s\n", r.error().str().c_str());
            *rc = kExitUsage;
            return std::nullopt;
        }
    }
    if (!args) {
        std::fprintf(stderr, "cfdtunnel: %s\n", args.error().str().c_str());
        *rc = kExitUsage;
        return std::nullopt;
    }
    if (help || args->positionals.size() != positionals) {
        std::printf("usage: cfdtunnel %s\n\n%s", synopsis, set.usage().c_str());
        *rc = help ? kExitOk : kExitUsage;
        return std::nullopt;
    }
    *pos = args->positionals;
    if (!url.empty()) {
        auto in = connector::Ingress::from_url(url);
        if (!in) {
            std::fprintf(stderr, "Validation failed: --url: %s\n", in.error().str().c_str());
            *rc = kExitUsage;
            return std::nullopt;
        }
        return Loaded{std::move(*in), "--url " + url};
    }
    std::string path = find_connector_config(*args);
    if (path.empty()) {
        std::fprintf(stderr, "Validation failed: no configuration file (give --config FILE, or "
                             "create ~/.cfdtunnel/config.ini or /etc/cfdtunnel/config.ini)\n");
        *rc = kExitUsage;
        return std::nullopt;
    }
    auto file = load_connector_config(path);
    if (!file) {
        std::fprintf(stderr, "Validation failed: %s\n", file.error().c_str());
        *rc = kExitUsage;
        return std::nullopt;
    }
    if (!connector::Ingress::present(**file)) {
        std::fprintf(stderr, "Validation failed: %s has no [ingress \"NAME\"] rules\n",
                     path.c_str());
        *rc = kExitUsage;
        return std::nullopt;
    }
    auto in = connector::Ingress::from_file(**file);
    if (!in) {
        std::fprintf(stderr, "Validation failed: %s\n", in.error().str().c_str());
        *rc = kExitUsage;
        return std::nullopt;
    }
    return Loaded{std::move(*in), path};
}

int run_validate(int argc, char** argv) {
    std::vector<std::string> pos;
    int rc = kExitOk;
    auto l = load_rules(argc, argv, "tunnel ingress validate [--config FILE | --url URL]", 0,
                        &pos, &rc);
    if (!l) {
        return rc;
    }
    std::printf("Validating rules from %s\n%sOK\n", l->source.c_str(),
                l->ingress.describe().c_str());
    return kExitOk;
}

int run_rule(int argc, char** argv) {
    std::vector<std::string> pos;
    int rc = kExitOk;
    auto l = load_rules(argc, argv, "tunnel ingress rule [--config FILE | --url URL] URL", 1,
                        &pos, &rc);
    if (!l) {
        return rc;
    }
    auto i = l->ingress.match_url(pos[0]);
    if (!i) {
        std::fprintf(stderr, "cfdtunnel: %s\n", i.error().c_str());
        return kExitUsage;
    }
    const connector::Rule& r = l->ingress.rule(*i);
    std::printf("Using rules from %s\nMatched rule #%zu \"%s\"\n", l->source.c_str(), *i + 1,
                r.name.c_str());
    if (!r.hostname.empty()) {
        std::printf("\thostname: %s\n", r.hostname.c_str());
    }
    if (r.path) {
        std::printf("\tpath: %s\n", r.path->source().c_str());
    }
    std::printf("\tservice: %s\n", r.service.text().c_str());
    return kExitOk;
}

}  // namespace

CFD_COMMAND(tunnel_ingress_validate, "tunnel ingress validate",
            "check the connector's ingress rules without running it", run_validate);
CFD_COMMAND(tunnel_ingress_rule, "tunnel ingress rule",
            "which ingress rule would serve a URL", run_rule);

}  // namespace cfd::cli
