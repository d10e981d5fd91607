// cfd::http2::parse_user_headers, which reads the origin's headers a connector serializes into
// cf-cloudflared-response-headers ("base64(name):base64(value)" pairs joined by ';'), on
// arbitrary text, and the base64 codec under it. The edge runs this on every proxied response.
//
// Checks: whatever parses survives serialize_user_headers() and a second parse unchanged, and
// the serialized form is canonical (serializing again gives the same text); every parsed name
// is non-empty; base64 decode(encode(x)) == x with and without padding; no CFD_BUG.
//
// Input: [text...]
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/base64.h"
#include "cfd/http2/tunnel_headers.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    auto parsed = cfd::http2::parse_user_headers(text);
    if (parsed) {
        for (const auto& [name, value] : *parsed) {
            FUZZ_REQUIRE(!name.empty());
        }
        std::string once = cfd::http2::serialize_user_headers(*parsed);
        auto again = cfd::http2::parse_user_headers(once);
        FUZZ_REQUIRE(again);
        FUZZ_REQUIRE(*again == *parsed);
        FUZZ_REQUIRE(cfd::http2::serialize_user_headers(*again) == once);
        FUZZ_REQUIRE(once.find('=') == std::string::npos);  // no padding on the wire
    } else {
        FUZZ_REQUIRE(parsed.error().code == cfd::Errc::Protocol);
    }

    // The codec itself: any bytes round-trip, padded or not.
    for (bool pad : {false, true}) {
        std::string enc = cfd::base64_encode(text, pad);
        auto dec = cfd::base64_decode(enc);
        FUZZ_REQUIRE(dec);
        FUZZ_REQUIRE(*dec == text);
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
