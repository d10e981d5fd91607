// Durations as cloudflared writes them: "30s", "1m30s", "500ms", "2h", "1h2m3.5s".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "cfd/core/result.h"

namespace cfd {

using Millis = std::chrono::milliseconds;

// Units: ns us ms s m h (Go's time.ParseDuration, rounded to milliseconds). A bare "0" is zero.
// Negative durations and overflow are refused.
Result<Millis> parse_duration(std::string_view s);
std::string format_duration(Millis d);  // "1m30s", "500ms", "0s"

}  // namespace cfd
