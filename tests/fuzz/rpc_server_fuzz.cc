// cfd::rpc::RegistrationServer (the edge's registration RPC) fed arbitrary bytes, in three
// pieces, with the owner answering the calls it surfaces in ways the control byte picks. Cap'n
// Proto throws inside src/rpc on malformed messages; an exception escaping the module would
// terminate this (exception-free) target, and so counts as a crash.
//
// Checks: answers() stays within max_questions and pending_calls() within answers(); everything
// the server writes is whole Cap'n Proto frames; a call answered, canceled or answered twice
// yields NotFound on the next answer; a failed session stays failed; the same bytes fed whole
// and cut in three give the same replies and events; no CFD_BUG.
//
// Input: [split a u16][split b u16][policy][bytes...]
//   policy bits 0-1: answer calls at once: 0 accept/complete, 1 refuse/fail, 2 after the last
//                    piece, 3 never
//   policy bit 2:    small limits (4 questions, 4 features, 64-byte texts, 4 KiB messages)
//   policy bit 3:    answer a RegisterCall with complete() (wrong method) before the real answer
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cfd/rpc/frame.h"
#include "cfd/rpc/server.h"
#include "fuzz_util.h"

namespace {

using namespace cfd::rpc;

struct Owed {
    CallId id;
    bool is_register;
};

// Everything the server wrote must be whole frames: a peer reading it never waits forever.
void check_output(const std::string& out, const Limits& l) {
    FrameReader r(FrameLimits{512, SIZE_MAX});
    std::string_view in = out;
    Frame f;
    while (!in.empty()) {
        auto got = r.read(in, f);
        FUZZ_REQUIRE(got);
        FUZZ_REQUIRE(*got || in.empty());
    }
    FUZZ_REQUIRE(r.buffered() == 0);
    (void)l;
}

void answer(RegistrationServer& s, const Owed& c, bool refuse, bool wrong_first, std::string& out) {
    if (wrong_first && c.is_register) {
        // An answer that does not fit the method is refused and leaves the call owed.
        FUZZ_REQUIRE(!s.complete(c.id, out));
    }
    cfd::Status st;
    if (c.is_register) {
        if (refuse) {
            st =
                s.refuse_registration(c.id, ConnectionError{"Unauthorized: fuzz", 1000, true}, out);
        } else {
            ConnectionDetails d;
            d.location_name = "fuzz";
            st = s.accept_registration(c.id, d, out);
        }
    } else {
        st = refuse ? s.fail(c.id, "no", out) : s.complete(c.id, out);
    }
    if (s.closed()) {
        FUZZ_REQUIRE(!st);
        return;
    }
    FUZZ_REQUIRE(st);
    // Answered: the id is gone for good.
    auto again = s.fail(c.id, "twice", out);
    FUZZ_REQUIRE(!again && again.error().code == cfd::Errc::NotFound);
}

// Describes events for comparing two runs: kinds and call ids in order.
std::string describe(const std::vector<ServerEvent>& events) {
    std::string out;
    for (const ServerEvent& ev : events) {
        out += std::to_string(ev.index()) + ":";
        if (const auto* r = std::get_if<RegisterCall>(&ev)) {
            out += std::to_string(r->id) + "," + r->request.auth.account_tag;
        } else if (const auto* u = std::get_if<UnregisterCall>(&ev)) {
            out += std::to_string(u->id);
        } else if (const auto* c = std::get_if<UpdateConfigCall>(&ev)) {
            out += std::to_string(c->id) + "," + c->config;
        } else if (const auto* x = std::get_if<CallCanceled>(&ev)) {
            out += std::to_string(x->id);
        } else if (const auto* a = std::get_if<PeerAborted>(&ev)) {
            out += a->reason;
        }
        out += ";";
    }
    return out;
}

// The same bytes, whole and cut in three, with nobody answering: the same replies and events.
void check_split_invariance(const Limits& limits, const std::string_view (&pieces)[3],
                            std::string_view whole) {
    RegistrationServer one(limits);
    std::string out_one;
    std::vector<ServerEvent> ev_one;
    bool ok_one = static_cast<bool>(one.feed(whole, out_one, ev_one));

    RegistrationServer three(limits);
    std::string out_three;
    std::vector<ServerEvent> ev_three;
    bool ok_three = true;
    for (std::string_view piece : pieces) {
        if (three.closed()) {
            break;  // the peer aborted: what follows is never read
        }
        if (!three.feed(piece, out_three, ev_three)) {
            ok_three = false;
            break;
        }
    }
    FUZZ_REQUIRE(one.closed() == three.closed());
    FUZZ_REQUIRE(ok_one == ok_three);
    FUZZ_REQUIRE(out_one == out_three);
    FUZZ_REQUIRE(describe(ev_one) == describe(ev_three));
    FUZZ_REQUIRE(one.answers() == three.answers());
    FUZZ_REQUIRE(one.pending_calls() == three.pending_calls());
    FUZZ_REQUIRE(one.export_refs() == three.export_refs());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input ctl(data, size);
    uint16_t a = ctl.u16();
    uint16_t b = ctl.u16();
    uint8_t policy = ctl.byte();
    std::string_view bytes = ctl.rest();

    Limits limits;
    if ((policy & 4) != 0) {
        limits.max_questions = 4;
        limits.max_features = 4;
        limits.max_text_bytes = 64;
        limits.max_message_bytes = 4096;
    }
    const unsigned mode = policy & 3u;
    const bool wrong_first = (policy & 8) != 0;

    size_t c1 = cfd::fuzz::cut(a, bytes.size());
    size_t c2 = cfd::fuzz::cut(b, bytes.size());
    if (c1 > c2) {
        std::swap(c1, c2);
    }
    std::string_view pieces[3] = {bytes.substr(0, c1), bytes.substr(c1, c2 - c1), bytes.substr(c2)};

    check_split_invariance(limits, pieces, bytes);

    RegistrationServer s(limits);
    std::string out;
    std::vector<Owed> owed;
    std::vector<CallId> canceled;
    bool failed = false;
    for (std::string_view piece : pieces) {
        std::vector<ServerEvent> events;
        auto st = s.feed(piece, out, events);
        if (!st) {
            FUZZ_REQUIRE(s.closed());
            failed = true;
        }
        FUZZ_REQUIRE(s.answers() <= limits.max_questions);
        FUZZ_REQUIRE(s.pending_calls() <= s.answers());
        for (ServerEvent& ev : events) {
            if (auto* r = std::get_if<RegisterCall>(&ev)) {
                FUZZ_REQUIRE(r->request.options.client.features.size() <= limits.max_features);
                owed.push_back({r->id, true});
            } else if (auto* u = std::get_if<UnregisterCall>(&ev)) {
                owed.push_back({u->id, false});
            } else if (auto* c = std::get_if<UpdateConfigCall>(&ev)) {
                owed.push_back({c->id, false});
            } else if (auto* x = std::get_if<CallCanceled>(&ev)) {
                canceled.push_back(x->id);
                std::erase_if(owed, [&](const Owed& o) { return o.id == x->id; });
            } else if (std::holds_alternative<PeerAborted>(ev)) {
                FUZZ_REQUIRE(s.closed());
            }
        }
        for (CallId id : canceled) {
            auto r = s.complete(id, out);
            FUZZ_REQUIRE(!r);
        }
        canceled.clear();
        if (mode < 2) {
            for (const Owed& c : owed) {
                answer(s, c, mode == 1, wrong_first, out);
            }
            owed.clear();
        }
        if (failed) {
            break;
        }
    }
    if (mode == 2) {
        for (const Owed& c : owed) {
            answer(s, c, (policy & 16) != 0, wrong_first, out);
        }
    }
    if (failed) {
        // Final: nothing more is read.
        std::vector<ServerEvent> events;
        FUZZ_REQUIRE(!s.feed(std::string_view("\0\0\0\0\1\0\0\0", 8), out, events));
        FUZZ_REQUIRE(events.empty());
    }
    check_output(out, limits);
    if (!s.closed()) {
        s.abort("fuzz done", out);
        FUZZ_REQUIRE(s.closed());
        check_output(out, limits);
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
