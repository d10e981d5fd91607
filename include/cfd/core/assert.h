// The assertion taxonomy (Envoy's):
//   CFD_ASSERT(c)  debug-only invariant; compiled out with NDEBUG.
//   CFD_CHECK(c)   fatal in every build: the process cannot go on safely.
//   CFD_BUG(msg)   log, count, continue: a bug we survive.
// Never assert on peer or kernel input; handle it.
#pragma once

#include <cstdint>

namespace cfd {
[[noreturn]] void check_failed(const char* expr, const char* file, int line);
void bug_reported(const char* msg, const char* file, int line);
uint64_t bugs_reported();
}  // namespace cfd

#define CFD_CHECK(c)                                    \
    do {                                                \
        if (!(c)) [[unlikely]] {                        \
            ::cfd::check_failed(#c, __FILE__, __LINE__); \
        }                                               \
    } while (0)

#ifdef NDEBUG
#define CFD_ASSERT(c) \
    do {              \
    } while (0)
#else
#define CFD_ASSERT(c) CFD_CHECK(c)
#endif

#define CFD_BUG(msg) ::cfd::bug_reported((msg), __FILE__, __LINE__)
