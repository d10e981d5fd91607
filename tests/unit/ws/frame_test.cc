// RFC 6455 framing: the RFC's own examples, every split of a mixed transcript, hostile input.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cfd/ws/frame.h"

using namespace cfd;
using namespace cfd::ws;

namespace {

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) {
        s.push_back(static_cast<char>(c));
    }
    return s;
}

// Decodes `chunks` one after the other; the events as text, data payloads concatenated per
// message ("D:<op>:<payload>|" when a message ends).
std::string transcript(Decoder& d, const std::vector<std::string_view>& chunks) {
    std::string out;
    std::string msg;
    for (std::string_view in : chunks) {
        for (;;) {
            Event e = d.next(in, msg);
            if (e == Event::NeedMore) {
                REQUIRE(in.empty());
                break;
            }
            if (e == Event::Data) {
                if (d.message_done()) {
                    out += "D:" + std::to_string(int(d.message_opcode())) + ":" + msg + "|";
                    msg.clear();
                }
                continue;
            }
            if (e == Event::Ping) {
                out += "PING:" + std::string(d.control()) + "|";
            } else if (e == Event::Pong) {
                out += "PONG:" + std::string(d.control()) + "|";
            } else if (e == Event::Close) {
                out += "CLOSE:" + std::to_string(d.close_code()) + ":" +
                       std::string(d.close_reason()) + "|";
            } else {
                out += "ERR:" + std::to_string(d.error_code()) + "|";
                return out;
            }
        }
    }
    return out;
}

std::string decode_all(Role r, std::string_view wire, DecoderLimits l = {}) {
    Decoder d(r, l);
    return transcript(d, {wire});
}

const std::array<uint8_t, 4> kKey{0x37, 0xfa, 0x21, 0x3d};

}  // namespace

TEST_CASE("ws: the examples of RFC 6455 section 5.7") {
    std::string hello_unmasked = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
    std::string hello_masked =
        bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
    CHECK(decode_all(Role::Client, hello_unmasked) == "D:1:Hello|");
    CHECK(decode_all(Role::Server, hello_masked) == "D:1:Hello|");
    CHECK(decode_all(Role::Client, bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c,
                                          0x6f})) == "D:1:Hello|");
    CHECK(decode_all(Role::Client, bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f})) ==
          "PING:Hello|");
    CHECK(decode_all(Role::Server, bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d,
                                          0x51, 0x58})) == "PONG:Hello|");

    std::string out;
    encode_frame(out, Opcode::Text, "Hello", true, nullptr);
    CHECK(out == hello_unmasked);
    out.clear();
    encode_frame(out, Opcode::Text, "Hello", true, &kKey);
    CHECK(out == hello_masked);

    // 256 bytes: 16-bit length; 64 KiB: 64-bit length.
    out.clear();
    encode_frame(out, Opcode::Binary, std::string(256, 'x'), true, nullptr);
    CHECK(out.substr(0, 4) == bytes({0x82, 0x7e, 0x01, 0x00}));
    CHECK(out.size() == 4 + 256);
    out.clear();
    encode_frame(out, Opcode::Binary, std::string(65536, 'y'), true, nullptr);
    CHECK(out.substr(0, 10) == bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}));
    CHECK(decode_all(Role::Client, out) == "D:2:" + std::string(65536, 'y') + "|");
}

TEST_CASE("ws: a mixed transcript decodes the same at every split, and byte by byte") {
    // Client frames (masked), as a server receives them: a fragmented binary message with a
    // ping between its fragments, a 16-bit-length frame, an empty message, a pong, a close.
    std::string wire;
    std::array<uint8_t, 4> k2{0x01, 0x80, 0xfe, 0x7f};
    encode_frame(wire, Opcode::Binary, "frag-one/", false, &kKey);
    encode_frame(wire, Opcode::Ping, "are you there", true, &k2);
    encode_frame(wire, Opcode::Continuation, "frag-two/", false, &k2);
    encode_frame(wire, Opcode::Continuation, "end", true, &kKey);
    std::string big(300, '\0');
    for (size_t i = 0; i < big.size(); i++) {
        big[i] = static_cast<char>(i * 7);
    }
    encode_frame(wire, Opcode::Binary, big, true, &k2);
    encode_frame(wire, Opcode::Text, "", true, &kKey);
    encode_frame(wire, Opcode::Pong, "", true, &kKey);
    encode_frame(wire, Opcode::Close, bytes({0x03, 0xe8}) + "bye", true, &k2);
    std::string expect = "D:2:frag-one/|";  // placeholder, replaced below
    Decoder whole(Role::Server);
    expect = transcript(whole, {wire});
    CHECK(expect == "PING:are you there|D:2:frag-one/frag-two/end|D:2:" + big +
                        "|D:1:|PONG:|CLOSE:1000:bye|");

    for (size_t cut = 0; cut <= wire.size(); cut++) {
        Decoder d(Role::Server);
        std::string_view w = wire;
        std::string got = transcript(d, {w.substr(0, cut), w.substr(cut)});
        REQUIRE_MESSAGE(got == expect, "split at " << cut);
    }
    for (size_t a = 0; a < 40; a++) {
        for (size_t b = a; b < 60; b++) {
            Decoder d(Role::Server);
            std::string_view w = wire;
            std::string got = transcript(d, {w.substr(0, a), w.substr(a, b - a), w.substr(b)});
            REQUIRE_MESSAGE(got == expect, "splits at " << a << ", " << b);
        }
    }
    Decoder d(Role::Server);
    std::vector<std::string_view> ones;
    for (size_t i = 0; i < wire.size(); i++) {
        ones.push_back(std::string_view(wire).substr(i, 1));
    }
    CHECK(transcript(d, ones) == expect);
}

TEST_CASE("ws: the encoder of each role round-trips through the other role's decoder") {
    Encoder client(Role::Client);
    Encoder server(Role::Server);
    std::string c2s;
    std::string s2c;
    std::string payload(70000, 'p');
    client.frame(c2s, Opcode::Binary, payload);
    client.frame(c2s, Opcode::Binary, payload);
    server.frame(s2c, Opcode::Binary, payload);
    client.close(c2s, kCloseNormal, "done");
    server.close(s2c, kCloseGoingAway);
    // Client frames are masked with fresh keys: the two identical frames differ on the wire.
    CHECK((static_cast<uint8_t>(c2s[1]) & 0x80) != 0);
    size_t frame_len = 2 + 8 + 4 + payload.size();
    CHECK(c2s.substr(10, 4) != c2s.substr(frame_len + 10, 4));
    CHECK((static_cast<uint8_t>(s2c[1]) & 0x80) == 0);
    CHECK(decode_all(Role::Server, c2s) ==
          "D:2:" + payload + "|D:2:" + payload + "|CLOSE:1000:done|");
    CHECK(decode_all(Role::Client, s2c) == "D:2:" + payload + "|CLOSE:1001:|");
    // A Close without a code reads as 1005.
    std::string bare;
    server.close(bare, kCloseNoStatus);
    CHECK(decode_all(Role::Client, bare) == "CLOSE:1005:|");
    // The reason is cut to fit a control frame.
    std::string longr;
    server.close(longr, kCloseNormal, std::string(300, 'r'));
    CHECK(longr.size() == 2 + 125);
    CHECK(decode_all(Role::Client, longr) == "CLOSE:1000:" + std::string(123, 'r') + "|");
}

TEST_CASE("ws: hostile input is refused with the close code to send") {
    std::string f;
    // Masking the wrong way round.
    encode_frame(f, Opcode::Binary, "x", true, nullptr);
    CHECK(decode_all(Role::Server, f) == "ERR:1002|");
    f.clear();
    encode_frame(f, Opcode::Binary, "x", true, &kKey);
    CHECK(decode_all(Role::Client, f) == "ERR:1002|");

    // Reserved opcodes and bits.
    for (int op : {0x3, 0x7, 0xb, 0xf}) {
        CHECK(decode_all(Role::Client, bytes({0x80 | op, 0x00})) == "ERR:1002|");
    }
    CHECK(decode_all(Role::Client, bytes({0xc2, 0x00})) == "ERR:1002|");  // RSV1
    CHECK(decode_all(Role::Client, bytes({0x92, 0x00})) == "ERR:1002|");  // RSV3

    // Control frames: fragmented, or over 125 bytes.
    CHECK(decode_all(Role::Client, bytes({0x09, 0x00})) == "ERR:1002|");
    CHECK(decode_all(Role::Client, bytes({0x89, 0x7e, 0x00, 0x7e})) == "ERR:1002|");
    // Fragmentation out of order.
    CHECK(decode_all(Role::Client, bytes({0x80, 0x01, 'a'})) == "ERR:1002|");
    CHECK(decode_all(Role::Client, bytes({0x02, 0x01, 'a', 0x82, 0x01, 'b'})) == "ERR:1002|");
    // Lengths not in their shortest form, and a 64-bit length with the top bit.
    CHECK(decode_all(Role::Client, bytes({0x82, 0x7e, 0x00, 0x05})) == "ERR:1002|");
    CHECK(decode_all(Role::Client, bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff})) ==
          "ERR:1002|");
    CHECK(decode_all(Role::Client, bytes({0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0})) ==
          "ERR:1002|");
    // Close payloads: one byte, a code nobody may send.
    CHECK(decode_all(Role::Client, bytes({0x88, 0x01, 0x03})) == "ERR:1002|");
    CHECK(decode_all(Role::Client, bytes({0x88, 0x02, 0x03, 0xed})) == "ERR:1002|");  // 1005
    CHECK(decode_all(Role::Client, bytes({0x88, 0x02, 0x03, 0xe7})) == "ERR:1002|");  // 999
    CHECK(decode_all(Role::Client, bytes({0x88, 0x02, 0x0f, 0xa0})) == "CLOSE:4000:|");

    // Size limits: refused at the header, before any payload byte is read.
    DecoderLimits small;
    small.max_frame = 1000;
    small.max_message = 1500;
    std::string big;
    encode_frame(big, Opcode::Binary, std::string(1001, 'z'), true, nullptr);
    {
        Decoder d(Role::Client, small);
        std::string_view in = std::string_view(big).substr(0, 4);
        std::string out;
        CHECK(d.next(in, out) == Event::Error);
        CHECK(d.error_code() == kCloseTooBig);
        CHECK(out.empty());
        // Sticky.
        std::string_view more = "abc";
        CHECK(d.next(more, out) == Event::Error);
    }
    std::string frags;
    encode_frame(frags, Opcode::Binary, std::string(1000, 'a'), false, nullptr);
    encode_frame(frags, Opcode::Continuation, std::string(501, 'b'), true, nullptr);
    std::string got = decode_all(Role::Client, frags, small);
    CHECK(got == "ERR:1009|");
    // A 2^62-byte frame announced: no allocation, just the error.
    CHECK(decode_all(Role::Client, bytes({0x82, 0x7f, 0x40, 0, 0, 0, 0, 0, 0, 0})) ==
          "ERR:1009|");

    // After a Close the rest is ignored.
    std::string after;
    encode_frame(after, Opcode::Close, bytes({0x03, 0xe8}), true, nullptr);
    encode_frame(after, Opcode::Text, "late", true, nullptr);
    after += "garbage\xff";
    CHECK(decode_all(Role::Client, after) == "CLOSE:1000:|");
}

TEST_CASE("ws: close codes") {
    CHECK(close_code_valid(1000));
    CHECK(close_code_valid(1011));
    CHECK(close_code_valid(3000));
    CHECK(close_code_valid(4999));
    CHECK_FALSE(close_code_valid(1004));
    CHECK_FALSE(close_code_valid(1005));
    CHECK_FALSE(close_code_valid(1006));
    CHECK_FALSE(close_code_valid(1015));
    CHECK_FALSE(close_code_valid(2999));
    CHECK_FALSE(close_code_valid(5000));
}
