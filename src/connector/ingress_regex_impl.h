// Private to the path regex: the syntax tree the parser builds and the compiler consumes.
#pragma once

#include <bitset>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::connector::regex_impl {

using ByteSet = std::bitset<256>;

struct Node {
    enum class Kind : uint8_t { Set, Empty, Begin, End, Concat, Alt, Repeat };
    Kind kind = Kind::Empty;
    ByteSet set;             // Set: the bytes it accepts (case folded already under (?i))
    std::vector<Node> kids;  // Concat and Alt: the parts; Repeat: the one repeated node
    int min = 0;             // Repeat
    int max = 0;             // Repeat; -1 for no upper bound
};

// Parses Go (RE2) syntax as ingress_regex.h describes; the error names the offset.
Result<Node, std::string> parse(std::string_view pattern);

}  // namespace cfd::connector::regex_impl
