// A server-role cfd::http2::Session (the connector's side of a tunnel connection) fed a valid
// client preface (connection magic and an empty SETTINGS frame) followed by arbitrary bytes, in
// two pieces, with send() drained after each. The handler answers requests, sends bodies and
// consumes (or withholds) what it receives as the policy byte says, so that flow control,
// responses and resets all run.
//
// Checks: events arrive in a legal order for each stream (request before data, nothing after
// close, close at most once); received body bytes not yet consumed never exceed the receive
// window; each send() stays within its watermark plus one frame or header block; a session
// that failed stops producing output after a bounded number of send() calls; no CFD_BUG.
//
// Input: [policy][settings][cut u16][frames...]
//   policy bits 0-1: respond 0 never, 1 headers only, 2 with a body, 3 with a body and trailers
//   policy bit 2:    never consume() received bytes (windows stay closed)
//   policy bit 3:    reset every second request (rst_stream CANCEL)
//   policy bit 4:    send a PING and a GOAWAY after the first piece
//   settings bit 0:  small settings (4 streams, 65535 windows, 256-byte header lists, 8 fields)
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/http2/session.h"
#include "fuzz_util.h"

namespace {

using namespace cfd::http2;

constexpr std::string_view kMagic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr char kEmptySettings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
constexpr size_t kBodyBytes = 40000;  // more than one DATA frame and the default window

struct StreamState {
    bool requested = false;
    bool ended = false;  // peer's END_STREAM
    bool closed = false;
    size_t body_left = 0;  // our response body still to send
    size_t promised = 0;   // promised by on_body_ready, not yet copied
};

class FuzzHandler : public Handler {
public:
    FuzzHandler(uint8_t policy, const Settings& settings) : policy_(policy), settings_(settings) {}

    Session* session = nullptr;

    void on_request(int32_t id, Headers&& headers, bool end_stream) override {
        StreamState& s = streams_[id];
        FUZZ_REQUIRE(!s.requested && !s.closed);
        FUZZ_REQUIRE(id > 0 && id % 2 == 1);  // client-initiated
        FUZZ_REQUIRE(headers.size() <= settings_.max_header_fields);
        s.requested = true;
        (void)end_stream;  // on_stream_end() follows at once when set
        ++requests_;
        if ((policy_ & 8) != 0 && requests_ % 2 == 0) {
            (void)session->rst_stream(id, kCancel);
            return;
        }
        unsigned mode = policy_ & 3u;
        if (mode == 0) {
            return;
        }
        std::vector<HeaderView> h = {{"content-type", "text/plain"}, {"x-fuzz", "1"}};
        bool has_body = mode >= 2;
        if (has_body) {
            s.body_left = kBodyBytes;
        }
        (void)session->submit_response(id, 200, h, has_body);
        if (mode == 3) {
            std::vector<HeaderView> t = {{"x-trailer", "done"}};
            (void)session->submit_trailers(id, t);
        }
    }
    void on_response(int32_t, int, Headers&&, bool) override {
        FUZZ_REQUIRE(!"on_response in the server role");
    }
    void on_trailers(int32_t id, Headers&& trailers) override {
        StreamState& s = known(id);
        FUZZ_REQUIRE(!s.ended);
        FUZZ_REQUIRE(trailers.size() <= settings_.max_header_fields);
    }
    void on_data(int32_t id, std::string_view bytes) override {
        StreamState& s = known(id);
        FUZZ_REQUIRE(!s.ended);
        FUZZ_REQUIRE(!bytes.empty());
        // What waits for consume() is bounded by the window we advertised (or HTTP/2's default
        // before the peer has our SETTINGS).
        size_t window = size_t(std::max<int32_t>(settings_.stream_window, 65535));
        FUZZ_REQUIRE(session->unconsumed(id) <= window);
        if ((policy_ & 4) == 0) {
            session->consume(id, bytes.size());
        }
    }
    void on_stream_end(int32_t id) override {
        StreamState& s = known(id);
        FUZZ_REQUIRE(!s.ended);
        s.ended = true;
    }
    void on_stream_close(int32_t id, uint32_t) override {
        // A stream refused before its request was delivered (a header block over the limits)
        // closes without on_request.
        StreamState& s = streams_[id];
        FUZZ_REQUIRE(!s.closed);
        s.closed = true;
    }
    BodyChunk on_body_ready(int32_t id, size_t max_bytes) override {
        StreamState& s = known(id);
        FUZZ_REQUIRE(s.promised == 0);
        size_t n = std::min(s.body_left, max_bytes);
        s.promised = n;
        return BodyChunk{n, n == s.body_left};
    }
    void on_body_copy(int32_t id, std::span<char> dest) override {
        StreamState& s = known(id);
        FUZZ_REQUIRE(dest.size() == s.promised);
        for (size_t i = 0; i < dest.size(); ++i) {
            dest[i] = static_cast<char>('a' + i % 26);
        }
        s.body_left -= dest.size();
        s.promised = 0;
    }

private:
    StreamState& known(int32_t id) {
        auto it = streams_.find(id);
        FUZZ_REQUIRE(it != streams_.end() && it->second.requested && !it->second.closed);
        return it->second;
    }

    uint8_t policy_;
    Settings settings_;
    std::map<int32_t, StreamState> streams_;
    unsigned requests_ = 0;
};

// Drains send() as the reactor would, checking each call's size bound. Returns the bytes out.
size_t drain(Session& s, const Settings& settings) {
    constexpr size_t kHigh = 16 << 10;
    size_t total = 0;
    for (int i = 0; i < 256; ++i) {
        std::string out;
        auto n = s.send(out, kHigh);
        if (!n) {
            return total;
        }
        FUZZ_REQUIRE(*n == out.size());
        FUZZ_REQUIRE(out.size() <= kHigh + 16384 + 9 + settings.max_send_header_block + 4096);
        if (*n == 0) {
            return total;
        }
        total += *n;
    }
    // A session that never runs out of output, with the peer silent, would spin a reactor.
    FUZZ_REQUIRE(!"send() never ran dry");
    return total;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input in(data, size);
    uint8_t policy = in.byte();
    uint8_t set_bits = in.byte();
    uint16_t c = in.u16();
    std::string_view bytes = in.rest();

    Settings settings;
    if ((set_bits & 1) != 0) {
        settings.max_concurrent_streams = 4;
        settings.stream_window = 65535;
        settings.connection_window = 65535;
        settings.max_header_list_bytes = 256;
        settings.max_header_fields = 8;
        settings.max_continuations = 2;
        settings.max_outbound_ack = 8;
        settings.reset_burst = 4;
        settings.max_empty_data_frames = 4;
    }
    FuzzHandler h(policy, settings);
    auto created = Session::create(Role::Server, h, settings);
    FUZZ_REQUIRE(created);
    std::unique_ptr<Session> s = std::move(*created);
    h.session = s.get();
    FUZZ_REQUIRE(s->role() == Role::Server);
    drain(*s, settings);

    std::string preface(kMagic);
    preface.append(kEmptySettings, sizeof kEmptySettings);
    FUZZ_REQUIRE(s->recv(preface));  // a valid preface is always accepted
    drain(*s, settings);

    size_t cut = cfd::fuzz::cut(c, bytes.size());
    std::string_view pieces[2] = {bytes.substr(0, cut), bytes.substr(cut)};
    uint64_t fed = preface.size();
    bool failed = false;
    for (int i = 0; i < 2 && !failed; ++i) {
        auto st = s->recv(pieces[i]);
        if (st) {
            fed += pieces[i].size();
            FUZZ_REQUIRE(s->stats().bytes_in == fed);
        } else {
            failed = true;
        }
        drain(*s, settings);
        if (i == 0 && (policy & 16) != 0 && !failed) {
            (void)s->ping(0x0102030405060708ull);
            (void)s->goaway(kNoError);
            drain(*s, settings);
        }
    }
    if (failed) {
        // The session is over: nothing more is read, and the GOAWAY went out in the drain.
        FUZZ_REQUIRE(!s->recv(std::string_view(kEmptySettings, sizeof kEmptySettings)));
        FUZZ_REQUIRE(drain(*s, settings) == 0);
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
