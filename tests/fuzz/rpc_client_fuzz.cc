// cfd::rpc::RegistrationClient (the connector's registration RPC) fed arbitrary bytes as the
// edge's replies, in three pieces, after it sent Bootstrap and the three calls. The edge is the
// untrusted side for a connector pointed at a hostile or broken server.
//
// Checks: every event answers a question we asked, once; outstanding() only shrinks; what the
// client writes is whole Cap'n Proto frames; a failed session stays failed; the same bytes fed
// whole and cut in three give the same events, replies and state; no CFD_BUG.
//
// Input: [split a u16][split b u16][policy][bytes...]
//   policy bit 0: small limits (4 questions, 64-byte texts, 8 KiB messages)
//   policy bit 1: register only (no unregister / update calls)
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cfd/rpc/client.h"
#include "cfd/rpc/frame.h"
#include "fuzz_util.h"

namespace {

using namespace cfd::rpc;

void check_output(const std::string& out) {
    FrameReader r(FrameLimits{512, SIZE_MAX});
    std::string_view in = out;
    Frame f;
    while (!in.empty()) {
        auto got = r.read(in, f);
        FUZZ_REQUIRE(got);
    }
    FUZZ_REQUIRE(r.buffered() == 0);
}

uint32_t question_of(const ClientEvent& ev) {
    return std::visit([](const auto& e) { return e.question; }, ev);
}

RegisterRequest sample() {
    RegisterRequest r;
    r.auth.account_tag = "5ab4e9dfbd435d24068829fda0077963";
    r.auth.tunnel_secret = std::string(32, 'k');
    r.conn_index = 1;
    r.options.client.features = {"serialized_headers"};
    r.options.client.version = "2026.11.0";
    r.options.client.arch = "linux_amd64";
    return r;
}

std::string describe(const std::vector<ClientEvent>& events) {
    std::string out;
    for (const ClientEvent& ev : events) {
        out += std::to_string(ev.index()) + ":" + std::to_string(question_of(ev));
        if (const auto* r = std::get_if<Registered>(&ev)) {
            out += "," + r->details.location_name;
        } else if (const auto* f = std::get_if<Refused>(&ev)) {
            out += "," + f->error.cause;
        } else if (const auto* c = std::get_if<CallFailed>(&ev)) {
            out += "," + c->reason;
        }
        out += ";";
    }
    return out;
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
    if ((policy & 1) != 0) {
        limits.max_questions = 4;
        limits.max_text_bytes = 64;
        limits.max_message_bytes = 8192;  // update_local_configuration() needs 4 KiB + config
    }
    RegistrationClient c(limits);
    std::string out;
    std::set<uint32_t> asked;
    c.start(out);
    auto q = c.register_connection(sample(), out);
    FUZZ_REQUIRE(q);
    asked.insert(*q);
    if ((policy & 2) == 0) {
        auto u = c.unregister_connection(out);
        FUZZ_REQUIRE(u);
        asked.insert(*u);
        auto cfg = c.update_local_configuration("{}", out);
        FUZZ_REQUIRE(cfg);
        asked.insert(*cfg);
    }
    check_output(out);

    size_t c1 = cfd::fuzz::cut(a, bytes.size());
    size_t c2 = cfd::fuzz::cut(b, bytes.size());
    if (c1 > c2) {
        std::swap(c1, c2);
    }
    std::string_view pieces[3] = {bytes.substr(0, c1), bytes.substr(c1, c2 - c1), bytes.substr(c2)};
    std::set<uint32_t> answered;
    std::vector<ClientEvent> all_events;
    size_t outstanding = c.outstanding();
    bool failed = false;
    for (std::string_view piece : pieces) {
        std::vector<ClientEvent> events;
        auto st = c.feed(piece, out, events);
        for (const ClientEvent& ev : events) {
            uint32_t id = question_of(ev);
            FUZZ_REQUIRE(asked.count(id) == 1);
            FUZZ_REQUIRE(answered.insert(id).second);
        }
        all_events.insert(all_events.end(), events.begin(), events.end());
        FUZZ_REQUIRE(c.outstanding() <= outstanding);
        outstanding = c.outstanding();
        if (!st) {
            FUZZ_REQUIRE(c.closed());
            failed = true;
            break;
        }
        if (c.closed()) {
            break;
        }
    }
    {
        // The same bytes in one piece: the same events, replies and state.
        RegistrationClient one(limits);
        std::string one_out;
        one.start(one_out);
        CFD_CHECK(one.register_connection(sample(), one_out));
        if ((policy & 2) == 0) {
            CFD_CHECK(one.unregister_connection(one_out));
            CFD_CHECK(one.update_local_configuration("{}", one_out));
        }
        std::vector<ClientEvent> one_events;
        bool one_ok = static_cast<bool>(one.feed(bytes, one_out, one_events));
        FUZZ_REQUIRE(one_ok == !failed);
        FUZZ_REQUIRE(one.closed() == c.closed());
        FUZZ_REQUIRE(one_out == out);
        FUZZ_REQUIRE(describe(one_events) == describe(all_events));
        FUZZ_REQUIRE(one.outstanding() == c.outstanding());
    }
    if (failed) {
        std::vector<ClientEvent> events;
        FUZZ_REQUIRE(!c.feed(std::string_view("\0\0\0\0\1\0\0\0", 8), out, events));
        FUZZ_REQUIRE(events.empty());
    }
    if (!c.closed()) {
        c.close(out);
        FUZZ_REQUIRE(c.closed());
    }
    check_output(out);
    cfd::fuzz::require_no_bug();
    return 0;
}
