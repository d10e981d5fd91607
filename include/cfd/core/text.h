// ASCII text helpers shared by every protocol layer (header names, hostnames, hex).
#pragma once

#include <string>
#include <string_view>

namespace cfd {

inline char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view s);
// Case-insensitive ASCII comparison (header names, hostnames).
bool iequals(std::string_view a, std::string_view b);
// 0..15 for a hex digit of either case, -1 otherwise.
int hex_digit(char c);

}  // namespace cfd
