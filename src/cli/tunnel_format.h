// How `tunnel info` and `tunnel list` print, as cloudflared prints them (DESIGN.md story 8).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/json.h"

namespace cfd::cli {

// Columns padded like Go's tabwriter (cell width + 1 space); `min_widths` may widen some.
std::string format_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<size_t>& min_widths = {});

// "2021-03-26T19:29:34.291328Z" -> "2021-03-26 19:29:34.291328 +0000 UTC" (Go's time.String()).
std::string long_time(std::string_view rfc3339);
// "2021-03-26T19:29:34.291328Z" -> "2021-03-26T19:29:34Z".
std::string short_time(std::string_view rfc3339);

// {"DFW":2,"MCI":2} -> "2xDFW, 2xMCI" (locations in name order).
std::string edge_summary(const json::Value& edges);

// The whole `tunnel info` text from GET /v1/tunnels/{id}.
std::string format_info(const json::Value& tunnel);
// `tunnel list` from the detail of each tunnel.
std::string format_list(const std::vector<json::Value>& tunnels);

}  // namespace cfd::cli
