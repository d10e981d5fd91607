#pragma once

namespace cfd {
inline constexpr const char* kVersion = "2026.11.0";
}
