// cfd::tls::peek_sni, the SNI peek a server runs on a connection's first bytes before any TLS
// state exists, on arbitrary bytes. The bytes are the peer's; the peek must never read past
// them, and the decision must be stable: once a prefix of the bytes gives an answer (a name,
// no name, or not-a-ClientHello), the whole input gives the same one.
//
// Checks: a found name is 1..255 bytes, lower case, without a trailing dot; the peek answers
// within kMaxClientHelloBytes; a prefix's answer is the whole input's answer; no CFD_BUG.
//
// Input: [cut u16][bytes...]  the prefix is bytes[0, cut % (size + 1))
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "cfd/tls/client_hello.h"
#include "fuzz_util.h"

namespace {

using cfd::tls::SniPeek;

void check_answer(const cfd::Result<SniPeek>& r, size_t size) {
    if (!r) {
        FUZZ_REQUIRE(r.error().code == cfd::Errc::Protocol);
        return;
    }
    if (r->status == SniPeek::Status::Found) {
        const std::string& n = r->name;
        FUZZ_REQUIRE(!n.empty() && n.size() <= cfd::tls::kMaxHostName);
        FUZZ_REQUIRE(n.back() != '.');
        for (char c : n) {
            FUZZ_REQUIRE(!(c >= 'A' && c <= 'Z'));
        }
    } else {
        FUZZ_REQUIRE(r->name.empty());
    }
    if (r->status == SniPeek::Status::NeedMore) {
        FUZZ_REQUIRE(size < cfd::tls::kMaxClientHelloBytes);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input in(data, size);
    uint16_t c = in.u16();
    std::string_view bytes = in.rest();
    // Exact-size heap copies (a std::string has room after its end), so that ASan sees any
    // read past the bytes received so far.
    std::unique_ptr<char[]> whole(new char[bytes.size()]);
    std::memcpy(whole.get(), bytes.data(), bytes.size());
    auto full = cfd::tls::peek_sni(std::string_view(whole.get(), bytes.size()));
    check_answer(full, bytes.size());

    size_t n = cfd::fuzz::cut(c, bytes.size());
    std::unique_ptr<char[]> prefix(new char[n]);
    std::memcpy(prefix.get(), bytes.data(), n);
    auto part = cfd::tls::peek_sni(std::string_view(prefix.get(), n));
    check_answer(part, n);
    if (!part) {
        FUZZ_REQUIRE(!full);  // not a ClientHello in a prefix: not one in the whole either
    } else if (part->status != SniPeek::Status::NeedMore) {
        FUZZ_REQUIRE(full);
        FUZZ_REQUIRE(full->status == part->status);
        FUZZ_REQUIRE(full->name == part->name);
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
