// Mutated messages: whatever the bytes, the parser ends in a result (never a hang or crash),
// keeps its memory within the limits, and gives the same transcript however the input is cut.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cfd/http1/parser.h"
#include "drive.h"

using namespace cfd::http1;
using cfd::http1::test::drive;

namespace {

// A small deterministic generator (xorshift64*), so that a failure reproduces.
struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 2685821657736338717ull;
    }
    size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

const char* const kSeeds[] = {
    "GET /a?b HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nRAW",
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
};

const char kAlphabet[] = {'\r', '\n', ' ', '\t', ':', '\0', ';', ',', '0', 'F', 'a', '\x7f',
                          '\x80', '-', '/', 'H'};

std::string mutate(Rng& rng, std::string s) {
    size_t edits = 1 + rng.below(4);
    for (size_t e = 0; e < edits && !s.empty(); ++e) {
        size_t at = rng.below(s.size());
        char c = kAlphabet[rng.below(sizeof(kAlphabet))];
        switch (rng.below(4)) {
        case 0: s[at] = c; break;
        case 1: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        case 2: s.erase(at, 1); break;
        default: s.insert(at, s.substr(rng.below(s.size()), rng.below(12))); break;
        }
    }
    return s;
}

template <class P>
void check_mutations(uint64_t seed, int rounds) {
    Rng rng{seed};
    for (int i = 0; i < rounds; ++i) {
        std::string in = mutate(rng, kSeeds[rng.below(std::size(kSeeds))]);
        if (!std::is_same_v<P, RequestParser> && in.size() > 4) {
            in.replace(0, 4, "HTTP");  // steer toward response status lines
        }
        INFO("round ", i, " input: ", in);
        P whole;
        std::string want = drive(whole, {in}, true);
        // Three random cuts, then byte at a time.
        std::vector<std::string_view> pieces;
        std::string_view rest = in;
        for (int k = 0; k < 3 && !rest.empty(); ++k) {
            size_t n = rng.below(rest.size() + 1);
            pieces.push_back(rest.substr(0, n));
            rest.remove_prefix(n);
        }
        pieces.push_back(rest);
        P cut;
        REQUIRE(drive(cut, pieces, true) == want);
        REQUIRE(cut.memory_used() < 4 * Limits{}.max_header_bytes);
        std::vector<std::string_view> bytes;
        for (size_t b = 0; b < in.size(); ++b) {
            bytes.push_back(std::string_view(in).substr(b, 1));
        }
        P single;
        REQUIRE(drive(single, bytes, true) == want);
    }
}

}  // namespace

TEST_CASE("http1: mutated requests give one transcript however they are split") {
    check_mutations<RequestParser>(0x9e3779b97f4a7c15ull, 3000);
}

TEST_CASE("http1: mutated responses give one transcript however they are split") {
    check_mutations<ResponseParser>(0x2545f4914f6cdd1dull, 3000);
}
