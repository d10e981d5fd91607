// The connector's configuration file, shared by `tunnel run` and `tunnel ingress ...`: which
// file (--config, else ~/.cfdtunnel/config.ini, else /etc/cfdtunnel/config.ini) and its load,
// with every section checked (a misspelt one is an error, not ignored).
#pragma once

#include <optional>
#include <string>

#include "cfd/config/ini.h"
#include "cfd/config/options.h"
#include "cfd/core/result.h"

namespace cfd::cli {

bool file_exists(const std::string& path);

// --config when given (it must then exist), else the first default that exists, else "".
std::string find_connector_config(const config::Args& args);

// The file at `path` (none when `path` is empty), its sections checked. Errors name the file,
// line and key or section.
Result<std::optional<config::IniFile>, std::string> load_connector_config(const std::string& path);

}  // namespace cfd::cli
