// Bodies pass through the parser without being buffered: the caller decides how many bytes
// it takes per call, and body views point into the caller's input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "cfd/http1/parser.h"
#include "cfd/http1/writer.h"

using namespace cfd::http1;

namespace {

// Deterministic body bytes: byte i of the body.
char body_byte(uint64_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

std::string make_body(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) {
        s[i] = body_byte(i);
    }
    return s;
}

}  // namespace

TEST_CASE("http1: caller takes part of the body, feeds the rest later, bytes arrive once") {
    std::string body = make_body(5000);
    for (bool chunked : {false, true}) {
        std::string wire;
        if (chunked) {
            REQUIRE(write_request_head(wire, "POST", "/u", "a.example", {}, Framing::chunked()));
            for (size_t off = 0; off < body.size(); off += 700) {
                write_chunk(wire, std::string_view(body).substr(off, 700));
            }
            REQUIRE(write_last_chunk(wire));
        } else {
            REQUIRE(write_request_head(wire, "POST", "/u", "a.example", {},
                                       Framing::content_length(body.size())));
            wire += body;
        }
        wire += "GET /next HTTP/1.1\r\nHost: a.example\r\n\r\n";

        // The next hop has room for a few bytes at a time: feed only that much.
        for (size_t room : {1, 3, 64, 699, 701, 4096}) {
            INFO("chunked=", chunked, " room=", room);
            RequestParser p;
            std::string_view in = wire;
            std::string got;
            int heads = 0;
            int done = 0;
            size_t calls = 0;
            while (done < 2) {
                REQUIRE(++calls < 100000);  // progress, not a hang
                bool in_body = heads == 1 && done == 0;
                std::string_view slice = in_body ? in.substr(0, room) : in;
                Step s = p.feed(slice);
                REQUIRE(p.consumed() <= slice.size());
                if (s == Step::Body) {
                    REQUIRE(p.body().size() <= room);
                    REQUIRE(p.body().data() >= slice.data());
                    REQUIRE(p.body().data() + p.body().size() <= slice.data() + p.consumed());
                    got += p.body();
                } else if (s == Step::HeadDone) {
                    ++heads;
                } else if (s == Step::MessageDone) {
                    ++done;
                } else {
                    REQUIRE(s == Step::NeedMore);
                    REQUIRE(p.consumed() == slice.size());
                }
                in.remove_prefix(p.consumed());
            }
            CHECK(heads == 2);
            CHECK(p.head().path == "/next");
            CHECK(got == body);
            CHECK(in.empty());
        }
    }
}

TEST_CASE("http1: pausing mid-body holds nothing; resuming later continues in order") {
    std::string wire = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789";
    RequestParser p;
    std::string_view in = wire;
    REQUIRE(p.feed(in) == Step::HeadDone);
    in.remove_prefix(p.consumed());
    REQUIRE(p.feed(in.substr(0, 4)) == Step::Body);
    CHECK(p.body() == "0123");
    in.remove_prefix(p.consumed());
    // The next hop is full: the caller keeps "456789" in its own buffer and stops. Later it
    // moves those bytes elsewhere (a new buffer) and feeds them.
    std::string later(in);
    REQUIRE(p.feed(later) == Step::Body);
    CHECK(p.body() == "456789");
    CHECK(p.body().data() == later.data());
    CHECK(p.feed("") == Step::MessageDone);
}

TEST_CASE("http1: a 10 MiB chunked body streams through with bounded parser memory") {
    constexpr uint64_t kTotal = 10u << 20;
    constexpr size_t kChunk = 64 * 1024 + 17;  // not a divisor of the recv size
    constexpr size_t kRecv = 16 * 1024;        // what one provided buffer holds

    RequestParser p;
    std::string head;
    REQUIRE(write_request_head(head, "POST", "/big", "a.example", {{"X-Test", "1"}},
                               Framing::chunked()));
    REQUIRE(p.feed(head) == Step::HeadDone);
    REQUIRE(p.consumed() == head.size());
    size_t head_memory = p.memory_used();

    uint64_t produced = 0;
    uint64_t received = 0;
    uint64_t mismatches = 0;
    std::string pending;  // wire bytes generated but not yet "received"
    bool finished = false;
    bool done = false;
    std::string recv_buf;
    while (!done) {
        // Produce wire bytes lazily so the test itself stays small.
        while (pending.size() < kRecv && !finished) {
            if (produced < kTotal) {
                size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, kTotal - produced));
                write_chunk_header(pending, n);
                for (size_t i = 0; i < n; ++i) {
                    pending.push_back(body_byte(produced + i));
                }
                pending += kCrlf;
                produced += n;
            } else {
                REQUIRE(write_last_chunk(pending, {{"X-Sum", "ok"}}));
                finished = true;
            }
        }
        recv_buf.assign(pending, 0, std::min(kRecv, pending.size()));
        pending.erase(0, recv_buf.size());
        REQUIRE(!recv_buf.empty());
        std::string_view in = recv_buf;
        for (;;) {
            Step s = p.feed(in);
            if (s == Step::Body) {
                for (char c : p.body()) {
                    mismatches += c != body_byte(received++);
                }
            } else if (s == Step::MessageDone) {
                done = true;
            } else {
                REQUIRE(s == Step::NeedMore);
            }
            in.remove_prefix(p.consumed());
            if (s == Step::NeedMore || s == Step::MessageDone) {
                break;
            }
        }
        // Nothing body-sized is ever kept: only the head and small accumulators.
        REQUIRE(p.memory_used() <= head_memory + 256);
    }
    CHECK(received == kTotal);
    CHECK(mismatches == 0);
    REQUIRE(p.trailers().size() == 1);
    CHECK(p.trailers()[0].value == "ok");
}
