// cfd::json::parse on arbitrary text, with small limits picked by the first byte so that the
// depth and size refusals are reached. Whatever parses must survive a round trip: parse(write(v))
// succeeds and equals v, and writing it again gives the same text (write is canonical).
//
// Input: [limits][JSON text...]  limits bits 0-3: max depth 0..15 (or the default when 15),
//                                bits 4-7: max size in 256-byte steps (or the default when 0)
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cfd/core/json.h"
#include "fuzz_util.h"

namespace {

using cfd::json::Value;

bool same(const Value& a, const Value& b) {
    if (a.type() != b.type()) {
        return false;
    }
    switch (a.type()) {
    case Value::Type::Null: return true;
    case Value::Type::Bool: return a.as_bool() == b.as_bool();
    case Value::Type::Number:
        // parse() refuses what is not finite; -0 is written as 0, which compares equal.
        return a.as_number() == b.as_number();
    case Value::Type::String: return a.as_string() == b.as_string();
    case Value::Type::Array:
        if (a.items().size() != b.items().size()) {
            return false;
        }
        for (size_t i = 0; i < a.items().size(); ++i) {
            if (!same(a.items()[i], b.items()[i])) {
                return false;
            }
        }
        return true;
    case Value::Type::Object:
        if (a.members().size() != b.members().size()) {
            return false;
        }
        for (size_t i = 0; i < a.members().size(); ++i) {
            if (a.members()[i].first != b.members()[i].first ||
                !same(a.members()[i].second, b.members()[i].second)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

// Depth of nesting as the parser counts it (a scalar at the top is depth 0).
int depth(const Value& v) {
    int d = 0;
    for (const Value& item : v.items()) {
        d = std::max(d, 1 + depth(item));
    }
    for (const auto& m : v.members()) {
        d = std::max(d, 1 + depth(m.second));
    }
    return d;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input in(data, size);
    uint8_t lim = in.byte();
    std::string_view text = in.rest();

    cfd::json::Limits limits;
    if ((lim & 0x0f) != 0x0f) {
        limits.max_depth = lim & 0x0f;
    }
    if ((lim >> 4) != 0) {
        limits.max_bytes = size_t(lim >> 4) * 256;
    }

    auto v = cfd::json::parse(text, limits);
    if (!v) {
        FUZZ_REQUIRE(v.error().code == cfd::Errc::Invalid);
        cfd::fuzz::require_no_bug();
        return 0;
    }
    FUZZ_REQUIRE(text.size() <= limits.max_bytes);
    FUZZ_REQUIRE(depth(*v) <= limits.max_depth);

    std::string once = cfd::json::write(*v);
    // Written text may be longer than the input (escapes, 17-digit numbers): no size limit here.
    cfd::json::Limits relaxed;
    relaxed.max_bytes = SIZE_MAX;
    relaxed.max_depth = limits.max_depth;
    auto again = cfd::json::parse(once, relaxed);
    FUZZ_REQUIRE(again);
    FUZZ_REQUIRE(same(*v, *again));
    FUZZ_REQUIRE(cfd::json::write(*again) == once);
    cfd::fuzz::require_no_bug();
    return 0;
}
