#include "cfd/core/numbers.h"

namespace cfd {

bool parse_uint(std::string_view s, uint64_t max, uint64_t* out) {
    if (s.empty() || s.size() > 19) {  // 19 digits cannot overflow uint64_t
        return false;
    }
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

}  // namespace cfd
