// Strict decimal parsing for ports, statuses and counts taken from configs, URLs and peers.
#pragma once

#include <cstdint>
#include <string_view>

namespace cfd {

// Digits only (no sign, no spaces, no empty string), at most `max`. False otherwise; `*out` is
// written only on success.
bool parse_uint(std::string_view s, uint64_t max, uint64_t* out);

}  // namespace cfd
