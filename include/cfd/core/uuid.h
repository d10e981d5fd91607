// 16-byte UUIDs: tunnel IDs, connector IDs, connection IDs. Random ones are version 4.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/result.h"

namespace cfd {

struct Uuid {
    std::array<uint8_t, 16> bytes{};

    static Uuid random();
    // Accepts the canonical 8-4-4-4-12 form (either case) and 32 bare hex digits.
    static Result<Uuid> parse(std::string_view s);
    // From 16 raw bytes, as carried in Cap'n Proto Data fields.
    static Result<Uuid> from_bytes(std::string_view raw);

    std::string str() const;  // lower-case canonical form
    std::string_view raw() const {
        return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
    }
    bool is_nil() const;
    friend bool operator==(const Uuid&, const Uuid&) = default;
    friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

// Fills `out` from the kernel's CSPRNG (getrandom); never fails silently.
void random_bytes(void* out, size_t n);

}  // namespace cfd
