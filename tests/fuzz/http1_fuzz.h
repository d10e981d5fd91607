// Drives an HTTP/1.1 parser (request or response) over a fuzzer input the way a connection
// does, checking the invariants parser.h promises on every step. Shared by http1_request_fuzz
// and http1_response_fuzz.
//
// Input layout: [split a u16][split b u16][flags][limits][payload...]. The payload is fed in up
// to three pieces cut at a and b, so that every token boundary gets split somewhere, and again
// in one piece: both runs must report the same heads, body bytes, ends and error.
//   flags bit 0: small limits (chosen by the limits byte), so that 414/431 paths are reached
//   flags bit 1: call finish() after the last piece (the peer closed its side)
//   flags bit 2: after Upgrade, resume_after_upgrade() and go on parsing HTTP
//   flags bit 3: feed body bytes at most 7 at a time (the owner's flow control)
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/http1/parser.h"
#include "fuzz_util.h"

namespace cfd::fuzz {

inline http1::Limits pick_limits(uint8_t flags, uint8_t lim) {
    http1::Limits l;
    if ((flags & 1) != 0) {
        l.max_header_bytes = 64 + size_t(lim & 0x0f) * 64;  // 64 .. 1024
        l.max_headers = 1 + size_t(lim >> 4);               // 1 .. 16
        l.max_target_bytes = 16 + size_t(lim & 0x30) * 4;   // 16 .. 208
        l.max_chunk_ext_bytes = 8 + size_t(lim >> 6) * 16;  // 8 .. 56
    }
    return l;
}

// What a parser may hold, from the limits alone. Each message's strings hold at most a head
// section's worth of bytes each (method, target, path, authority, upgrade protocol, the
// accumulators) plus the header fields and the trailer fields, each one section; a string's
// capacity is at most twice its size plus the small-string buffer; header vectors hold at most
// max_headers entries, at most doubled by growth. Generous, but independent of the input size:
// anything that grows with the input (bodies, pipelined messages) breaks it.
inline size_t memory_bound(const http1::Limits& l) {
    size_t strings = 7 * 2 + 2 * 2 * (l.max_headers + 1);  // count of strings that may exist
    size_t bytes = 2 * (8 * l.max_header_bytes) + strings * 32;
    size_t vectors = 2 * 2 * (l.max_headers + 1) * sizeof(http1::Header);
    return bytes + vectors;
}

// What a parser reported, independent of how its input was split: heads, body bytes merged,
// message ends, the error. Two runs over the same bytes cut differently must agree on it.
struct Transcript {
    std::string text;
    std::string body;

    void flush_body() {
        if (!body.empty()) {
            text += "BODY[" + std::to_string(body.size()) + ":" + body + "]";
            body.clear();
        }
    }
};

inline void describe_headers(std::string& out, const http1::Headers& hs) {
    for (const http1::Header& h : hs) {
        out += h.name + ":" + h.value + "|";
    }
}

inline void describe_common(std::string& out, const http1::MessageHead& h) {
    out += " v" + std::to_string(h.version_major) + "." + std::to_string(h.version_minor) +
           " body=" + http1::body_kind_name(h.body) + " cl=" + std::to_string(h.content_length) +
           " ka=" + std::to_string(h.keep_alive) + " up=" + std::to_string(h.upgrade) +
           " proto=" + h.upgrade_protocol + " hdrs=";
    describe_headers(out, h.headers);
}

inline std::string describe(const http1::RequestHead& h) {
    std::string out = "REQ[" + h.method + " " + h.target + " path=" + h.path +
                      " auth=" + h.authority + " expect=" + std::to_string(h.expect_continue);
    describe_common(out, h);
    return out + "]";
}

inline std::string describe(const http1::ResponseHead& h) {
    std::string out = "RESP[" + std::to_string(h.status) + " " + h.reason;
    describe_common(out, h);
    return out + "]";
}

template <class P> void record(const P& p, http1::Step s, Transcript& tr) {
    using http1::Step;
    if (s == Step::NeedMore) {
        return;
    }
    if (s == Step::Body) {
        tr.body += p.body();
        return;
    }
    tr.flush_body();
    switch (s) {
    case Step::HeadDone: tr.text += describe(p.head()); break;
    case Step::MessageDone:
        tr.text += "DONE[ka=" + std::to_string(p.keep_alive()) + " trailers=";
        describe_headers(tr.text, p.trailers());
        tr.text += "]";
        break;
    case Step::Upgrade: tr.text += "UPGRADE"; break;
    case Step::Closed: tr.text += "CLOSED"; break;
    case Step::Error:
        tr.text += "ERROR[" + std::to_string(p.error().status) + " " + p.error().reason + "]";
        break;
    case Step::NeedMore:
    case Step::Body: break;
    }
}

// Whether two transcripts of the same bytes agree. One known difference is let through: the
// request-target length (414) is checked when llhttp hands over the target, which it does at
// the end of each feed or of the target; so a long target followed by a bad byte in the same
// feed is reported as 400 when whole and 414 when cut (both refuse the request; reported to
// the http1 owner).
inline bool same_outcome(const std::string& a, const std::string& b) {
    if (a == b) {
        return true;
    }
    size_t ea = a.rfind("ERROR[");
    size_t eb = b.rfind("ERROR[");
    if (ea == std::string::npos || eb == std::string::npos || ea != eb ||
        a.compare(0, ea, b, 0, eb) != 0) {
        return false;
    }
    return a.compare(ea, 10, "ERROR[414 ") == 0 || b.compare(eb, 10, "ERROR[414 ") == 0;
}

struct Http1Tracker {
    http1::BodyKind kind = http1::BodyKind::None;
    uint64_t declared = 0;  // Content-Length of the current message
    uint64_t body = 0;      // body bytes of the current message so far
    bool in_message = false;
};

// One event of `p` after feeding `in` (the bytes handed to this feed() call).
template <class P>
void check_step(const P& p, http1::Step s, std::string_view in, Http1Tracker& t, size_t bound) {
    using http1::BodyKind;
    using http1::Step;
    FUZZ_REQUIRE(p.consumed() <= in.size());
    FUZZ_REQUIRE(p.memory_used() <= bound);
    switch (s) {
    case Step::HeadDone:
        t.kind = p.head().body;
        t.declared = p.head().content_length;
        t.body = 0;
        t.in_message = true;
        break;
    case Step::Body:
        FUZZ_REQUIRE(t.in_message);
        FUZZ_REQUIRE(!p.body().empty());
        // Lent, never copied: the body lies within the bytes this call consumed.
        FUZZ_REQUIRE(p.body().data() >= in.data());
        FUZZ_REQUIRE(p.body().data() + p.body().size() <= in.data() + p.consumed());
        FUZZ_REQUIRE(t.kind != BodyKind::None);
        t.body += p.body().size();
        if (t.kind == BodyKind::Length) {
            FUZZ_REQUIRE(t.body <= t.declared);
        }
        break;
    case Step::MessageDone:
        FUZZ_REQUIRE(t.in_message);
        if (t.kind == BodyKind::Length) {
            FUZZ_REQUIRE(t.body == t.declared);
        }
        if (t.kind == BodyKind::None) {
            FUZZ_REQUIRE(t.body == 0);
        }
        t.in_message = false;
        break;
    case Step::Upgrade:
    case Step::Closed: t.in_message = false; break;
    case Step::Error:
        FUZZ_REQUIRE(p.error().status >= 400 && p.error().status <= 599);
        FUZZ_REQUIRE(p.error().reason != nullptr && p.error().reason[0] != '\0');
        break;
    case Step::NeedMore:
        FUZZ_REQUIRE(p.consumed() == in.size());  // NeedMore: all input consumed
        break;
    }
}

// Runs a payload through `p` (built with `limits`), cut at `a` and `b`. `before_message` is
// called before each new message may start (the response parser sets the request method
// there). Stops when the input is used up, or at Error, or at an Upgrade that is not resumed.
// Returns the transcript of what the parser reported.
template <class P, class BeforeMessage>
std::string drive_http1(P& p, const http1::Limits& limits, uint16_t a, uint16_t b, uint8_t flags,
                        std::string_view payload, BeforeMessage before_message) {
    using http1::Step;
    Transcript tr;

    size_t c1 = cut(a, payload.size());
    size_t c2 = cut(b, payload.size());
    if (c1 > c2) {
        std::swap(c1, c2);
    }
    std::string_view pieces[3] = {payload.substr(0, c1), payload.substr(c1, c2 - c1),
                                  payload.substr(c2)};
    const bool resume = (flags & 4) != 0;
    const bool trickle = (flags & 8) != 0;
    const size_t bound = memory_bound(limits);

    Http1Tracker t;
    before_message(p);
    bool dead = false;  // Error or an Upgrade not resumed: the rest is not HTTP
    for (std::string_view in : pieces) {
        // Events that consume nothing in a row; a parser that never says NeedMore hangs us.
        int idle = 0;
        while (!dead) {
            std::string_view fed = in;
            if (trickle && t.in_message && fed.size() > 7) {
                fed = fed.substr(0, 7);
            }
            Step s = p.feed(fed);
            check_step(p, s, fed, t, bound);
            record(p, s, tr);
            in.remove_prefix(p.consumed());
            idle = p.consumed() == 0 ? idle + 1 : 0;
            FUZZ_REQUIRE(idle < 8);
            if (s == Step::NeedMore) {
                if (in.empty()) {
                    break;  // this piece is used up
                }
                continue;  // trickling: feed the next few bytes
            }
            if (s == Step::Error) {
                // Final: every later call fails the same way and consumes nothing.
                FUZZ_REQUIRE(p.feed(in) == Step::Error);
                FUZZ_REQUIRE(p.consumed() == 0);
                dead = true;
                break;
            }
            if (s == Step::Upgrade) {
                FUZZ_REQUIRE(p.feed(in) == Step::Upgrade);
                FUZZ_REQUIRE(p.consumed() == 0);
                if (!resume) {
                    dead = true;
                    break;
                }
                p.resume_after_upgrade();
                before_message(p);
                continue;
            }
            if (s == Step::MessageDone) {
                before_message(p);
            }
        }
        if (dead) {
            tr.flush_body();
            return tr.text;
        }
    }
    if ((flags & 2) != 0) {
        // The peer closed: finish() ends the message or fails, then keeps saying so.
        for (int i = 0; i < 8; ++i) {
            Step s = p.finish();
            check_step(p, s, {}, t, bound);
            record(p, s, tr);
            FUZZ_REQUIRE(s != Step::Body && s != Step::HeadDone);
            if (s == Step::Closed || s == Step::Error || s == Step::Upgrade) {
                break;
            }
            FUZZ_REQUIRE(s == Step::MessageDone);
            FUZZ_REQUIRE(i < 7);  // finish() must reach Closed or Error
        }
    }
    tr.flush_body();
    return tr.text;
}

}  // namespace cfd::fuzz
