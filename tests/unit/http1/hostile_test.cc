// Malformed and hostile requests: each gets a clear error naming the status the edge answers
// with, whatever way the bytes are split.
#include <doctest/doctest.h>

#include <string>

#include "cfd/http1/parser.h"
#include "drive.h"

using namespace cfd::http1;
using cfd::http1::test::check_all_splits;
using cfd::http1::test::drive_whole;

namespace {

struct Case {
    const char* name;
    std::string in;
    int status;
    const char* reason;
    // llhttp built with LLHTTP_STRICT_MODE catches a few faults itself, with its own words.
    const char* strict_reason = nullptr;
};

// The transcript's last event, e.g. "ERROR[400 duplicate Content-Length]".
std::string last_event(const std::string& t) {
    size_t at = t.rfind("ERROR[");
    return at == std::string::npos ? t : t.substr(at);
}

std::string error_of(int status, const char* reason) {
    return "ERROR[" + std::to_string(status) + " " + reason + "]";
}

const std::string kPost = "POST / HTTP/1.1\r\nHost: a.example\r\n";
const std::string kChunkedPost = kPost + "Transfer-Encoding: chunked\r\n\r\n";

}  // namespace

TEST_CASE("http1: hostile requests are refused with their status, at every split") {
    const Case cases[] = {
        {"CL then TE", kPost + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         400, "Content-Length with Transfer-Encoding"},
        {"TE then CL", kPost + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
         400, "Content-Length with Transfer-Encoding"},
        {"duplicate different CL", kPost + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
         400, "duplicate Content-Length"},
        {"duplicate equal CL", kPost + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400,
         "duplicate Content-Length"},
        {"CL list", kPost + "Content-Length: 3, 3\r\n\r\nabc", 400, "invalid Content-Length"},
        {"negative CL", kPost + "Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"},
        {"CL overflow", kPost + "Content-Length: 99999999999999999999999\r\n\r\n", 400,
         "invalid Content-Length"},
        {"bad method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method"},
        {"lowercase method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method"},
        {"bad version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"},
        {"bad protocol name", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400, "malformed message"},
        {"unsupported version", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505,
         "HTTP version not supported"},
        {"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505,
         "HTTP version not supported"},
        {"HTTP/0.9", "GET /\r\n\r\n", 400, "HTTP/0.9 is not supported"},
        {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400,
         "invalid header name", "invalid character in header"},
        {"space before colon on CL", kPost + "Content-Length : 3\r\n\r\nabc", 400,
         "invalid character in header"},
        {"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400,
         "invalid header name"},
        {"invalid character in name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400,
         "invalid character in header"},
        {"NUL in header value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 36),
         400, "invalid character in header"},
        {"NUL in header name", std::string("GET / HTTP/1.1\r\nHost: a\r\nX\0: ab\r\n\r\n", 36),
         400, "invalid character in header"},
        {"CTL in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400,
         "invalid character in header"},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400,
         "obs-fold line folding"},
        {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400,
         "obs-fold line folding"},
        {"obs-fold hiding chunked", kPost + "Transfer-Encoding: \r\n chunked\r\n\r\n0\r\n\r\n",
         400, "obs-fold line folding"},
        {"bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400,
         "bare LF line ending"},
        {"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400,
         "bare LF line ending"},
        {"bare LF between headers", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400,
         "invalid character in header"},
        {"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "malformed message"},
        {"huge chunk size", kChunkedPost + "FFFFFFFFFFFFFFFFFF\r\n", 400, "invalid chunk size"},
        {"chunk size with 0x", kChunkedPost + "0x3\r\nabc\r\n0\r\n\r\n", 400,
         "invalid chunk size"},
        {"chunk data without CRLF", kChunkedPost + "3\r\nabcX\r\n0\r\n\r\n", 400,
         "invalid chunk size", "malformed chunk"},
        {"invalid chunk extension", kChunkedPost + "3;\x01\r\nabc\r\n0\r\n\r\n", 400,
         "malformed chunk"},
        {"chunk extension ended by bare LF", kChunkedPost + "3;a\nabc\r\n0\r\n\r\n", 400,
         "malformed chunk"},
        {"bare LF ending the trailers", kChunkedPost + "0\r\nX: 1\r\n\n", 400,
         "bare LF line ending"},
        {"bare LF ending the last chunk", kChunkedPost + "0\r\n\n", 400, "bare LF line ending"},
        {"obs-fold in trailers", kChunkedPost + "0\r\nX: 1\r\n 2\r\n\r\n", 400,
         "obs-fold line folding"},
        {"Content-Length as a trailer", kChunkedPost + "0\r\nContent-Length: 5\r\n\r\n", 400,
         "forbidden trailer field"},
        {"TE gzip", kPost + "Transfer-Encoding: gzip\r\n\r\nabc", 501,
         "unsupported Transfer-Encoding"},
        {"TE gzip, chunked", kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
         "unsupported Transfer-Encoding"},
        {"TE chunked, gzip", kPost + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400,
         "invalid Transfer-Encoding"},
        {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         "Transfer-Encoding in an HTTP/1.0 request"},
        {"missing Host", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400, "missing Host header"},
        {"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
         "duplicate Host header"},
        {"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host header"},
        {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400,
         "invalid Host header"},
        {"relative target", "GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request target"},
        {"asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request target"},
        {"CONNECT to a path", "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400,
         "invalid CONNECT target"},
        {"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed message"},
        {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505,
         "HTTP/2 preface on an HTTP/1.1 connection"},
    };
    for (const Case& c : cases) {
        INFO(std::string(c.name));
        std::string t = check_all_splits<RequestParser>(c.in);
        if (c.strict_reason != nullptr && last_event(t) == error_of(c.status, c.strict_reason)) {
            continue;
        }
        CHECK(last_event(t) == error_of(c.status, c.reason));
    }
}

TEST_CASE("http1: 40 KiB of headers is 431, at the limit it passes") {
    std::string big = "GET / HTTP/1.1\r\nHost: a\r\n";
    while (big.size() < 40 * 1024) {
        big += "X-Filler: " + std::string(4000, 'f') + "\r\n";
    }
    big += "\r\n";
    CHECK(drive_whole<RequestParser>(big) == "ERROR[431 header section too large]");

    // Byte at a time too: the limit counts bytes, not calls.
    RequestParser p;
    Step s = Step::NeedMore;
    size_t fed = 0;
    for (; fed < big.size() && s == Step::NeedMore; ++fed) {
        s = p.feed(std::string_view(big).substr(fed, 1));
    }
    CHECK(s == Step::Error);
    CHECK(p.error().status == 431);
    CHECK(fed == 32 * 1024 + 1);

    // Exactly max_header_bytes is accepted.
    Limits limits;
    std::string exact = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    exact += std::string(limits.max_header_bytes - exact.size() - 4, 'v');
    exact += "\r\n\r\n";
    REQUIRE(exact.size() == limits.max_header_bytes);
    RequestParser q(limits);
    CHECK(q.feed(exact) == Step::HeadDone);
    CHECK(q.memory_used() < 2 * limits.max_header_bytes);
}

TEST_CASE("http1: whitespace padding counts toward the header limit") {
    std::string pad = "GET / HTTP/1.1\r\nHost: a\r\nX:" + std::string(40 * 1024, ' ') + "v\r\n\r\n";
    CHECK(drive_whole<RequestParser>(pad) == "ERROR[431 header section too large]");
}

TEST_CASE("http1: 101 headers is 431, 100 pass") {
    auto with = [](int n) {
        std::string s = "GET / HTTP/1.1\r\nHost: a\r\n";
        for (int i = 1; i < n; ++i) {
            s += "X-" + std::to_string(i) + ": v\r\n";
        }
        return s + "\r\n";
    };
    CHECK(drive_whole<RequestParser>(with(101)) == "ERROR[431 too many header fields]");
    CHECK(drive_whole<RequestParser>(with(100)).find("ERROR") == std::string::npos);
}

TEST_CASE("http1: trailers are bounded like headers") {
    std::string many = kChunkedPost + "0\r\n";
    for (int i = 0; i < 101; ++i) {
        many += "T-" + std::to_string(i) + ": v\r\n";
    }
    many += "\r\n";
    CHECK(last_event(drive_whole<RequestParser>(many)) == "ERROR[431 too many header fields]");
    std::string large = kChunkedPost + "0\r\nT: " + std::string(40 * 1024, 'v') + "\r\n\r\n";
    CHECK(last_event(drive_whole<RequestParser>(large)) ==
          "ERROR[431 header section too large]");
}

TEST_CASE("http1: a target over the limit is 414") {
    std::string in = "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(drive_whole<RequestParser>(in) == "ERROR[414 request target too long]");
    Limits small;
    small.max_target_bytes = 10;
    RequestParser p(small);
    CHECK(p.feed("GET /123456789 HTTP/1.1\r\nHost: a\r\n\r\n") == Step::HeadDone);
    RequestParser q(small);
    CHECK(q.feed("GET /1234567890 HTTP/1.1\r\nHost: a\r\n\r\n") == Step::Error);
    CHECK(q.error().status == 414);
}

TEST_CASE("http1: chunk extensions are bounded") {
    std::string in = kChunkedPost + "3;x=" + std::string(5000, 'e') + "\r\nabc\r\n0\r\n\r\n";
    CHECK(last_event(drive_whole<RequestParser>(in)) == "ERROR[400 chunk extension too long]");
}

TEST_CASE("http1: after an error every call reports it and consumes nothing") {
    RequestParser p;
    REQUIRE(p.feed("G@T / HTTP/1.1\r\n\r\n") == Step::Error);
    CHECK(p.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == Step::Error);
    CHECK(p.consumed() == 0);
    CHECK(p.finish() == Step::Error);
    CHECK(p.error().to_error().sys == 400);
    CHECK(p.error().to_error().code == cfd::Errc::Protocol);
}
