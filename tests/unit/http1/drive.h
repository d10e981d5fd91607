// Test helper: drives a parser over input pieces the way a connection does and writes what
// it saw as one string, so that different splits of the same bytes can be compared.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "cfd/http1/parser.h"

namespace cfd::http1::test {

inline std::string describe(const Headers& hs) {
    std::string s;
    for (const Header& h : hs) {
        s += h.name + ":" + h.value + "|";
    }
    return s;
}

inline std::string describe_common(const MessageHead& h) {
    return " v=" + std::to_string(h.version_major) + "." + std::to_string(h.version_minor) +
           " body=" + body_kind_name(h.body) + " cl=" + std::to_string(h.content_length) +
           " ka=" + std::to_string(h.keep_alive) + " up=" + std::to_string(h.upgrade) +
           " proto=" + h.upgrade_protocol + " hdrs=" + describe(h.headers);
}

inline std::string describe(const RequestHead& h) {
    return "HEAD[" + h.method + " " + h.target + " path=" + h.path + " auth=" + h.authority +
           " expect=" + std::to_string(h.expect_continue) + describe_common(h) + "]";
}

inline std::string describe(const ResponseHead& h) {
    return "HEAD[" + std::to_string(h.status) + " " + h.reason + describe_common(h) + "]";
}

// Feeds every piece, looping until NeedMore as a connection does. Body bytes are merged so
// that the transcript does not depend on how the input was split. After Upgrade, the raw
// bytes (rest of the piece and the later pieces) end the transcript.
template <class P>
std::string drive(P& p, const std::vector<std::string_view>& pieces, bool eof = false) {
    std::string out;
    std::string body;
    auto flush_body = [&] {
        if (!body.empty()) {
            out += "BODY[" + body + "]";
            body.clear();
        }
    };
    for (size_t i = 0; i < pieces.size(); ++i) {
        std::string_view in = pieces[i];
        for (;;) {
            Step s = p.feed(in);
            REQUIRE(p.consumed() <= in.size());
            if (s == Step::Body) {
                // Lent, not copied: the view lies in the bytes this call consumed.
                REQUIRE(!p.body().empty());
                REQUIRE(p.body().data() >= in.data());
                REQUIRE(p.body().data() + p.body().size() <= in.data() + p.consumed());
                body += p.body();
            }
            in.remove_prefix(p.consumed());
            if (s == Step::NeedMore) {
                REQUIRE(in.empty());
                break;
            }
            if (s == Step::Body) {
                continue;
            }
            flush_body();
            if (s == Step::HeadDone) {
                out += describe(p.head());
            } else if (s == Step::MessageDone) {
                out += "DONE[ka=" + std::to_string(p.keep_alive()) +
                       " trailers=" + describe(p.trailers()) + "]";
            } else if (s == Step::Upgrade) {
                std::string raw(in);
                for (size_t j = i + 1; j < pieces.size(); ++j) {
                    raw += pieces[j];
                }
                return out + "UPGRADE[" + raw + "]";
            } else if (s == Step::Error) {
                return out + "ERROR[" + std::to_string(p.error().status) + " " +
                       p.error().reason + "]";
            } else {
                FAIL("unexpected step " << step_name(s));
            }
        }
    }
    if (eof) {
        for (;;) {
            Step s = p.finish();
            if (s == Step::Body) {
                body += p.body();
                continue;
            }
            flush_body();
            if (s == Step::MessageDone) {
                out += "DONE[ka=" + std::to_string(p.keep_alive()) + "]";
                continue;
            }
            if (s == Step::HeadDone) {
                out += describe(p.head());
                continue;
            }
            if (s == Step::Error) {
                return out + "ERROR[" + std::to_string(p.error().status) + " " +
                       p.error().reason + "]";
            }
            REQUIRE(s == Step::Closed);
            return out + "EOF";
        }
    }
    flush_body();
    return out;
}

template <class P>
std::string drive_whole(std::string_view in, bool eof = false, void (*setup)(P&) = nullptr) {
    P p;
    if (setup != nullptr) {
        setup(p);
    }
    return drive(p, {in}, eof);
}

// The transcript must not depend on where the input is cut: every two-piece split and the
// byte-at-a-time feed give the one-piece transcript. `setup` prepares each new parser.
template <class P>
std::string check_all_splits(std::string_view in, bool eof = false,
                             void (*setup)(P&) = nullptr) {
    std::string whole = drive_whole<P>(in, eof, setup);
    for (size_t cut = 0; cut <= in.size(); ++cut) {
        P p;
        if (setup != nullptr) {
            setup(p);
        }
        std::string got = drive(p, {in.substr(0, cut), in.substr(cut)}, eof);
        INFO("split at ", cut);
        REQUIRE(got == whole);
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < in.size(); ++i) {
        bytes.push_back(in.substr(i, 1));
    }
    P p;
    if (setup != nullptr) {
        setup(p);
    }
    REQUIRE(drive(p, bytes, eof) == whole);
    return whole;
}

}  // namespace cfd::http1::test
