// cfd::http1::ResponseParser on arbitrary bytes, with the same checks as http1_request_fuzz.
// The first byte picks the method of the request being answered (HEAD responses have no body,
// a 2xx to CONNECT is a tunnel) and whether it changes for each pipelined response.
//
// Input: [method][split a u16][split b u16][flags][limits][HTTP bytes...]
//   method bits 0-1: GET, HEAD, CONNECT, POST; bit 2: next method for each later response
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "cfd/http1/parser.h"
#include "fuzz_util.h"
#include "http1_fuzz.h"

namespace {
constexpr const char* kMethods[4] = {"GET", "HEAD", "CONNECT", "POST"};
}

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input in(data, size);
    uint8_t method = in.byte();
    uint16_t a = in.u16();
    uint16_t b = in.u16();
    uint8_t flags = in.byte();
    uint8_t lim = in.byte();
    cfd::http1::Limits limits = cfd::fuzz::pick_limits(flags, lim);

    std::string_view payload = in.rest();
    const bool rotate = (method & 4) != 0;
    // The method of the request each response answers, in order: the same for both runs.
    auto methods = [&] {
        return [next = method & 3u, rotate](cfd::http1::ResponseParser& r) mutable {
            r.set_request_method(kMethods[next]);
            if (rotate) {
                next = (next + 1) & 3u;
            }
        };
    };
    cfd::http1::ResponseParser split(limits);
    std::string a_run = cfd::fuzz::drive_http1(split, limits, a, b, flags, payload, methods());
    cfd::http1::ResponseParser whole(limits);
    std::string b_run = cfd::fuzz::drive_http1(whole, limits, 0, 0, flags, payload, methods());
    if (!cfd::fuzz::same_outcome(a_run, b_run)) {
        std::fprintf(stderr, "split:\n%s\nwhole:\n%s\n", a_run.c_str(), b_run.c_str());
        FUZZ_REQUIRE(!"the same bytes cut differently parse differently");
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
