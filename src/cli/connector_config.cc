#include "cli/connector_config.h"

#include <sys/stat.h>

#include "cli/api_client.h"

namespace cfd::cli {

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string find_connector_config(const config::Args& args) {
    for (const auto& [k, v] : args.flags) {
        if (k == "config") {
            return v;
        }
    }
    std::string home = home_dir();
    if (!home.empty() && file_exists(home + "/.cfdtunnel/config.ini")) {
        return home + "/.cfdtunnel/config.ini";
    }
    if (file_exists("/etc/cfdtunnel/config.ini")) {
        return "/etc/cfdtunnel/config.ini";
    }
    return {};
}

Result<std::optional<config::IniFile>, std::string> load_connector_config(const std::string& path) {
    if (path.empty()) {
        return std::optional<config::IniFile>();
    }
    auto ini = config::IniFile::load(path);
    if (!ini) {
        return ini.error().str();
    }
    if (auto r = config::check_sections(*ini, {"connector", "originRequest", "ingress"}); !r) {
        return r.error().str();
    }
    return std::optional<config::IniFile>(std::move(*ini));
}

}  // namespace cfd::cli
