// cfd::http1::RequestParser on arbitrary bytes, fed in up to three pieces (see http1_fuzz.h
// for the input layout). Checks: consumed() never exceeds the input, body bytes are lent from
// the input and never exceed Content-Length, memory_used() stays within a bound computed from
// the limits alone, Error and Upgrade are final, the parser never stalls, no CFD_BUG fires, and
// the same bytes fed whole and cut in three give the same transcript (heads, body, ends, error).
//
// Input: [split a u16][split b u16][flags][limits][HTTP bytes...]
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "cfd/http1/parser.h"
#include "fuzz_util.h"
#include "http1_fuzz.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input in(data, size);
    uint16_t a = in.u16();
    uint16_t b = in.u16();
    uint8_t flags = in.byte();
    uint8_t lim = in.byte();
    cfd::http1::Limits limits = cfd::fuzz::pick_limits(flags, lim);

    std::string_view payload = in.rest();
    auto nothing = [](cfd::http1::RequestParser&) {};
    cfd::http1::RequestParser split(limits);
    std::string a_run = cfd::fuzz::drive_http1(split, limits, a, b, flags, payload, nothing);
    cfd::http1::RequestParser whole(limits);
    std::string b_run = cfd::fuzz::drive_http1(whole, limits, 0, 0, flags, payload, nothing);
    if (!cfd::fuzz::same_outcome(a_run, b_run)) {
        std::fprintf(stderr, "split:\n%s\nwhole:\n%s\n", a_run.c_str(), b_run.c_str());
        FUZZ_REQUIRE(!"the same bytes cut differently parse differently");
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
