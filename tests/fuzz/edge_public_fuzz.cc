// The edge's public client sessions, which take bytes straight from the network: a PublicSession
// (HTTP/1.1) or a PublicH2Session (HTTP/2) driven as the worker's socket glue drives it, with a
// router and two in-memory tunnel connections (FakeTunnel, a StreamTarget double, one per
// connector) whose streams are answered by the input too: responses, body bytes within a stream
// window, ends, closes with any code (REFUSED_STREAM and others, so that retries run), room for
// the request body, and events nested inside the session's own calls into the tunnel (as a
// TunnelConn delivers them from inside write_body(), consume(), reset_stream(), open_stream()).
//
// Checks (any violation aborts):
//   - the StreamTarget contract, seen from the tunnel: no call on a stream after the session
//     reset it or was told of its close (one that closed while its user was already null, the
//     session letting go of it, is ignored as real targets do), users are the session or null,
//     no request body
//     on a stream opened without one, no body after its end, consume() never more than was
//     delivered;
//   - PublicIo: nothing sent once the session closed or aborted; an HTTP/2 session sends only
//     while writable() (public_h2_session.h);
//   - output bounded by input: client bytes, tunnel bytes, and a fixed allowance per request;
//   - PublicH2Session::held_bytes() within one tunnel stream window (plus an answer of the
//     edge's own) per open stream;
//   - idle() only when no tunnel stream still points at the session;
//   - once the session is destroyed no tunnel stream points at it, and the in-flight and
//     connection gauges are back to zero; no CFD_BUG.
//
// Input: [mode][routes][ops...]
//   mode bit 0:     HTTP/2 (else HTTP/1.1)
//   mode bit 1:     small limits (HTTP/1.1: 512-byte input hold, 1 KiB heads; HTTP/2: 4 streams,
//                   1 KiB request hold, 1 KiB header lists)
//   mode bits 2-3:  request-body room of a new tunnel stream: unlimited, 0, 100, 70000 bytes
//   mode bit 4:     tunnel stream window 1 KiB (else 64 KiB)
//   mode bit 5:     the client came in clear ("http") and every host is redirected to HTTPS
//   mode bit 6:     PublicIo starts not writable
//   mode bit 7:     each tunnel takes at most 2 streams at once (Busy beyond)
//   routes:         four 2-bit answers the router cycles through, one per route() call:
//                   0 Ok, 1 UnknownHost, 2 NoConnector, 3 Wait
//   ops: the high nibble picks, the low nibble is an argument (k); "stream k" is the k-th
//   stream still open on the tunnels, modulo their number.
//     0x0k L     feed the next (k << 8 | L) bytes      0xFk   feed the next k + 1 bytes
//     0x1k       client EOF                            0x2k   drain()
//     0x3k       route_again(k & 1), when waiting      0x4k   writable = k & 1 (on_writable())
//     0x5k S H   response on stream k: status S & 15 (table), end S & 16, headers H (bits)
//     0x6k L     response bytes on stream k (L < 128: L, else (L - 127) * 512; window-capped)
//     0x7k       response end on stream k              0x8k C close stream k, code C (table)
//     0x9k R     room on stream k: R * 64 more (0: unlimited), and its room event
//     0xAk       refuse the next k opens (Busy)        0xBk A  arm an event nested in the next
//                                                             call into a tunnel (below)
//     0xCk       serve stream k: 200 "hello", end, close
//     0xDk       PublicIo refuses the next send()      0xEk L  as 0x0k
//   nested (0xBk A): k & 3: 0 close the stream called on (code A), 1 its room event, 2 A bytes
//   on it, 3 close stream A (another one, maybe).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/edge/https_redirect.h"
#include "cfd/edge/public_h2_session.h"
#include "cfd/edge/public_session.h"
#include "cfd/edge/stats.h"
#include "cfd/edge/stream_target.h"
#include "fuzz_util.h"

namespace {

using namespace cfd;
using namespace cfd::edge;

constexpr size_t kUnlimited = SIZE_MAX;
// EDGE_PUBLIC_FUZZ_TRACE=1: print the ops and what the session sends (to check a seed).
bool g_trace = false;
// Output the edge may produce for one request with no byte from the tunnel: an answer of its
// own, whose host and path an HTTP/2 client can name with one HPACK index each (up to the
// 4 KiB dynamic table), and its framing.
constexpr uint64_t kPerRequestOut = 20 << 10;

const std::string& filler() {
    static const std::string s(70000, 'd');
    return s;
}

struct FakeStream {
    int32_t sid = 0;
    void* user = nullptr;
    bool has_body = false;
    bool live = true;        // neither closed nor reset yet
    bool responded = false;  // response head delivered
    bool ended = false;      // response end delivered
    bool body_end = false;   // the request body's end was taken
    bool wants_room = false;
    bool reset = false;  // by the session
    bool told = false;   // its close event reached the session
    size_t room = kUnlimited;  // request-body bytes it still takes
    uint64_t delivered = 0;    // response bytes lent to the user
    uint64_t consumed = 0;     // ... and given back with consume()
};

struct Config {
    size_t window = 64 << 10;
    size_t initial_room = kUnlimited;
    size_t max_streams = kUnlimited;
};

class World;

// One connector's tunnel connection: streams in memory, events pushed by World.
class FakeTunnel final : public StreamTarget {
public:
    FakeTunnel(World& w, uint8_t index) : w_(w) { id.bytes[0] = static_cast<uint8_t>(index + 1); }

    [[nodiscard]] Result<int32_t> open_stream(const StreamRequest& req, void* user) override;
    size_t write_body(int32_t sid, std::string_view bytes, bool end) override;
    void consume(int32_t sid, size_t n) override;
    void reset_stream(int32_t sid, uint32_t code) override;
    void* stream_user(int32_t sid) const override {
        auto it = streams.find(sid);
        return it == streams.end() || !it->second.live ? nullptr : it->second.user;
    }
    void set_stream_user(int32_t sid, void* user) override;

    size_t live_count() const {
        return static_cast<size_t>(std::count_if(streams.begin(), streams.end(),
                                                 [](const auto& e) { return e.second.live; }));
    }

    Uuid id;
    std::map<int32_t, FakeStream> streams;  // every stream ever opened (node-stable)

private:
    // The stream a call names: one this tunnel opened, not closed or reset yet. Null for one
    // that closed while no user was set: the session had begun to let go of it (set its user to
    // null, then consume, reset) and the close came in between, nested in one of those calls,
    // or its destructor forgot every stream first; real targets ignore calls on an unknown id.
    // A call after a reset, or after a close the session was told of, breaks the contract.
    FakeStream* live(int32_t sid);

    World& w_;
    int32_t next_sid_ = 1;
};

// The router, the tunnels, and the stream events.
class World : public PublicRouter {
public:
    World(const Config& c, uint8_t routes) : cfg(c), routes_(routes) {}

    RouteResult route(std::string_view, std::span<const Uuid> avoid) override {
        unsigned kind = (routes_ >> (2 * (route_calls_++ % 4))) & 3u;
        switch (kind) {
        case 1: return {RouteResult::Kind::UnknownHost, nullptr, {}};
        case 2: return {RouteResult::Kind::NoConnector, nullptr, {}};
        case 3: return {RouteResult::Kind::Wait, nullptr, {}};
        default: break;
        }
        // The first connector not avoided, else any (another of its connections may serve).
        for (FakeTunnel* t : {&a, &b}) {
            if (std::find(avoid.begin(), avoid.end(), t->id) == avoid.end()) {
                return {RouteResult::Kind::Ok, t, t->id};
            }
        }
        return {RouteResult::Kind::Ok, &a, a.id};
    }
    void on_retry() override { retries++; }

    // The k-th stream still open, over both tunnels.
    std::pair<FakeTunnel*, FakeStream*> pick(unsigned k) {
        size_t n = a.live_count() + b.live_count();
        if (n == 0) {
            return {nullptr, nullptr};
        }
        size_t i = k % n;
        for (FakeTunnel* t : {&a, &b}) {
            for (auto& [sid, s] : t->streams) {
                if (s.live && i-- == 0) {
                    return {t, &s};
                }
            }
        }
        return {nullptr, nullptr};
    }

    static StreamSink* sink_of(const FakeStream& s) { return static_cast<StreamSink*>(s.user); }

    // Events, in the order an HTTP/2 client session delivers them (as TunnelConn and
    // StreamRouter do: a stream without user has its bytes released at once).
    void response(FakeTunnel& t, FakeStream& s, int status, std::vector<http2::HeaderPair> hs,
                  bool end) {
        if (!s.live || s.responded) {
            return;
        }
        s.responded = true;
        for (const auto& [n, v] : hs) {
            tunnel_in += n.size() + v.size();
        }
        tunnel_in += 64;
        if (StreamSink* k = sink_of(s)) {
            k->on_tunnel_response(t, s.sid, status, std::move(hs), end);
        }
        if (end) {
            this->end(t, s);  // the session's END_STREAM follows at once
        }
    }
    void data(FakeTunnel& t, FakeStream& s, size_t n) {
        if (!s.live || !s.responded || s.ended) {
            return;
        }
        uint64_t open = s.delivered - s.consumed;
        n = std::min<size_t>(n, cfg.window - static_cast<size_t>(open));
        if (n == 0) {
            return;
        }
        s.delivered += n;
        tunnel_in += n;
        if (StreamSink* k = sink_of(s)) {
            k->on_tunnel_data(t, s.sid, std::string_view(filler()).substr(0, n));
        } else {
            s.consumed += n;
        }
    }
    void end(FakeTunnel& t, FakeStream& s) {
        if (!s.live || !s.responded || s.ended) {
            return;
        }
        s.ended = true;
        tunnel_in += 16;
        if (StreamSink* k = sink_of(s)) {
            k->on_tunnel_end(t, s.sid);
        }
    }
    void close(FakeTunnel& t, FakeStream& s, uint32_t code) {
        if (!s.live) {
            return;
        }
        s.live = false;
        tunnel_in += 16;
        StreamSink* k = sink_of(s);
        s.user = nullptr;  // the last event: the user is forgotten first
        if (k != nullptr) {
            s.told = true;
            k->on_tunnel_close(t, s.sid, code);
        }
    }
    void room(FakeTunnel& t, FakeStream& s) {
        if (!s.live || !s.wants_room) {
            return;
        }
        s.wants_room = false;
        if (StreamSink* k = sink_of(s)) {
            k->on_tunnel_room(t, s.sid);
        }
    }

    static uint32_t code_of(uint8_t c) {
        constexpr uint32_t kCodes[8] = {http2::kNoError,       http2::kRefusedStream,
                                        http2::kRefusedStream, http2::kCancel,
                                        http2::kInternalError, http2::kProtocolError,
                                        http2::kStreamClosed,  0xdeadbeef};
        return kCodes[c & 7];
    }

    // The armed nested event, fired from inside the next call into a tunnel on (t, s); `s` may
    // be closed already (reset_stream), and then only the "another stream" kind fires.
    void nested(FakeTunnel& t, FakeStream* s) {
        if (!armed_) {
            return;
        }
        armed_ = false;
        switch (nested_kind_ & 3) {
        case 0:
            if (s != nullptr) {
                close(t, *s, code_of(nested_arg_));
            }
            break;
        case 1:
            if (s != nullptr) {
                room(t, *s);
            }
            break;
        case 2:
            if (s != nullptr) {
                data(t, *s, nested_arg_);
            }
            break;
        default:
            if (auto [ot, os] = pick(nested_arg_); os != nullptr) {
                close(*ot, *os, code_of(nested_arg_ >> 3));
            }
            break;
        }
    }
    void arm(uint8_t kind, uint8_t arg) {
        armed_ = true;
        nested_kind_ = kind;
        nested_arg_ = arg;
    }

    Config cfg;
    FakeTunnel a{*this, 0};
    FakeTunnel b{*this, 1};
    void* sink = nullptr;  // the session under test, as a stream user
    unsigned refuse_opens = 0;
    uint64_t tunnel_in = 0;  // bytes the tunnels delivered (counted for the output bound)
    uint64_t retries = 0;

private:
    uint8_t routes_;
    unsigned route_calls_ = 0;
    bool armed_ = false;
    uint8_t nested_kind_ = 0;
    uint8_t nested_arg_ = 0;
};

FakeStream* FakeTunnel::live(int32_t sid) {
    auto it = streams.find(sid);
    FUZZ_REQUIRE(it != streams.end());  // a stream this tunnel opened
    if (!it->second.live) {
        FUZZ_REQUIRE(!it->second.reset && !it->second.told);
        return nullptr;
    }
    return &it->second;
}

Result<int32_t> FakeTunnel::open_stream(const StreamRequest& req, void* user) {
    FUZZ_REQUIRE(user != nullptr && user == w_.sink);
    FUZZ_REQUIRE(req.connector != nullptr && *req.connector == id);  // routed here
    if (w_.refuse_opens > 0 || live_count() >= w_.cfg.max_streams) {
        if (w_.refuse_opens > 0) {
            w_.refuse_opens--;
        }
        return Err{Errc::Busy, 0, "fake tunnel full"};
    }
    int32_t sid = next_sid_;
    next_sid_ += 2;
    FakeStream& s = streams[sid];
    s.sid = sid;
    s.user = user;
    s.has_body = req.has_body;
    s.room = w_.cfg.initial_room;
    // A TunnelConn flushes here: the new stream may be gone before the caller knows its id.
    w_.nested(*this, &s);
    return sid;
}

size_t FakeTunnel::write_body(int32_t sid, std::string_view bytes, bool end) {
    FakeStream* sp = live(sid);
    if (sp == nullptr) {
        return 0;
    }
    FakeStream& s = *sp;
    FUZZ_REQUIRE(s.has_body);   // a stream opened without a body never gets one
    FUZZ_REQUIRE(!s.body_end);  // nothing after the body's end
    size_t take = std::min(bytes.size(), s.room);
    if (s.room != kUnlimited) {
        s.room -= take;
    }
    if (take == bytes.size()) {
        s.body_end = end;
    } else {
        s.wants_room = true;
    }
    w_.nested(*this, &s);
    return take;
}

void FakeTunnel::consume(int32_t sid, size_t n) {
    FakeStream* sp = live(sid);
    if (sp == nullptr) {
        return;
    }
    FakeStream& s = *sp;
    FUZZ_REQUIRE(s.consumed + n <= s.delivered);  // never more than was lent
    s.consumed += n;
    w_.nested(*this, &s);
}

void FakeTunnel::reset_stream(int32_t sid, uint32_t) {
    FakeStream* sp = live(sid);
    if (sp == nullptr) {
        return;
    }
    FakeStream& s = *sp;
    s.live = false;  // no event for it any more
    s.reset = true;
    s.user = nullptr;
    w_.nested(*this, nullptr);
}

void FakeTunnel::set_stream_user(int32_t sid, void* user) {
    FUZZ_REQUIRE(user == nullptr || user == w_.sink);
    if (FakeStream* s = live(sid)) {
        s->user = user;
    }
}

class FuzzIo final : public PublicIo {
public:
    explicit FuzzIo(bool h2) : h2_(h2) {}

    bool send(std::string_view bytes) override {
        FUZZ_REQUIRE(!closed && !aborted);     // nothing after the session ended
        FUZZ_REQUIRE(!h2_ || is_writable);      // HTTP/2 writes only while writable
        if (refuse_next) {
            refuse_next = false;
            return false;
        }
        out_bytes += bytes.size();
        if (g_trace) {
            std::fprintf(stderr, "<< %zu bytes: %.*s\n", bytes.size(),
                         static_cast<int>(std::min<size_t>(bytes.size(), 160)), bytes.data());
        }
        return true;
    }
    bool writable() const override { return is_writable; }
    void close_after_flush() override { closed = true; }
    void abort() override { aborted = true; }

    bool is_writable = true;
    bool refuse_next = false;
    bool closed = false;
    bool aborted = false;
    uint64_t out_bytes = 0;

private:
    bool h2_;
};

std::vector<http2::HeaderPair> headers_of(uint8_t h) {
    static constexpr std::string_view kLengths[8] = {
        "0", "5", "16", "100", "1000", "70000", "x", "18446744073709551616"};
    std::vector<http2::HeaderPair> hs;
    if ((h & 1) != 0) {
        hs.emplace_back("content-length", std::string(kLengths[h >> 5]));
    }
    if ((h & 2) != 0) {
        hs.emplace_back("content-type", "text/plain");
    }
    if ((h & 4) != 0) {
        hs.emplace_back("connection", "close");
        hs.emplace_back("transfer-encoding", "chunked");
    }
    if ((h & 8) != 0) {
        hs.emplace_back((h & 16) != 0 ? "bad name" : "x-bad", "a\r\nb: c");
    }
    if ((h & 16) != 0) {
        hs.emplace_back("Content-Length", "5");
        hs.emplace_back("set-cookie", "a=1");
    }
    return hs;
}

int status_of(uint8_t s) {
    constexpr int kStatus[16] = {200, 200, 201, 204, 206, 301, 304, 404,
                                 500, 502, 101, 100, 999, 1000, 0, 200};
    return kStatus[s & 15];
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    g_trace = std::getenv("EDGE_PUBLIC_FUZZ_TRACE") != nullptr;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cfd::fuzz::Input in(data, size);
    uint8_t mode = in.byte();
    uint8_t routes = in.byte();
    bool h2 = (mode & 1) != 0;
    bool small = (mode & 2) != 0;

    Config cfg;
    constexpr size_t kRooms[4] = {kUnlimited, 0, 100, 70000};
    cfg.initial_room = kRooms[(mode >> 2) & 3];
    cfg.window = (mode & 16) != 0 ? 1024 : 64 << 10;
    cfg.max_streams = (mode & 128) != 0 ? 2 : kUnlimited;
    World w(cfg, routes);
    FuzzIo io(h2);
    io.is_writable = (mode & 64) == 0;
    EdgeStats stats;
    HttpsRedirect redirect;
    if ((mode & 32) != 0) {
        auto r = HttpsRedirect::create({"*"}, 8443);
        FUZZ_REQUIRE(r);
        redirect = std::move(*r);
    }

    std::unique_ptr<ClientSession> session;
    PublicH2Session* h2s = nullptr;
    uint32_t max_header_list = 64 << 10;
    if (h2) {
        PublicH2Options o;
        o.stats = &stats;
        o.https_redirect = &redirect;
        if (small) {
            o.h2.max_concurrent_streams = 4;
            o.h2.max_header_list_bytes = 1024;
            o.max_request_hold = 1024;
        }
        max_header_list = o.h2.max_header_list_bytes;
        auto created = PublicH2Session::create(w, io, o);
        FUZZ_REQUIRE(created);
        h2s = created->get();
        w.sink = static_cast<StreamSink*>(h2s);
        session = std::move(*created);
    } else {
        PublicOptions o;
        o.stats = &stats;
        o.https_redirect = &redirect;
        if (small) {
            o.max_input = 512;
            o.limits.max_header_bytes = 1024;
            o.limits.max_headers = 8;
            o.limits.max_target_bytes = 256;
        }
        auto s = std::make_unique<PublicSession>(w, io, o);
        w.sink = static_cast<StreamSink*>(s.get());
        session = std::move(s);
    }
    session->set_client("203.0.113.7", (mode & 32) != 0 ? "http" : "https");

    uint64_t fed = 0;
    bool eof = false;
    bool drained = false;
    auto feed = [&](size_t n) {
        std::string_view rest = in.rest();
        n = std::min(n, rest.size());
        std::string_view chunk = rest.substr(0, n);
        for (size_t i = 0; i < n; i++) {
            (void)in.byte();
        }
        // The glue reads only while the session wants input, and nothing after EOF.
        if (eof || session->closing() || !session->wants_input() || chunk.empty()) {
            return;
        }
        fed += chunk.size();
        session->feed(chunk);
    };

    for (int op = 0; op < 4096 && !in.rest().empty(); op++) {
        uint8_t b = in.byte();
        unsigned k = b & 15u;
        if (g_trace) {
            std::fprintf(stderr, "op %02x: streams %zu+%zu, closing %d, idle %d, waiting %d\n", b,
                         w.a.live_count(), w.b.live_count(), session->closing(), session->idle(),
                         session->waiting());
        }
        switch (b >> 4) {
        case 0x0:
        case 0xE: feed(k << 8 | in.byte()); break;
        case 0xF: feed(k + 1); break;
        case 0x1:
            if (!eof) {
                eof = true;
                session->feed_eof();
            }
            break;
        case 0x2:
            if (!drained) {
                drained = true;
                session->drain();
            }
            break;
        case 0x3:
            if (session->waiting()) {
                session->route_again((k & 1) != 0);
            }
            break;
        case 0x4: {
            bool was = io.is_writable;
            io.is_writable = (k & 1) != 0;
            if (!was && io.is_writable) {
                session->on_writable();
            }
            break;
        }
        case 0x5: {
            uint8_t st = in.byte();
            uint8_t hb = in.byte();
            if (auto [t, s] = w.pick(k); s != nullptr) {
                w.response(*t, *s, status_of(st), headers_of(hb), (st & 16) != 0);
            }
            break;
        }
        case 0x6: {
            uint8_t l = in.byte();
            size_t n = l < 128 ? l : size_t(l - 127) * 512;
            if (auto [t, s] = w.pick(k); s != nullptr) {
                w.data(*t, *s, n);
            }
            break;
        }
        case 0x7:
            if (auto [t, s] = w.pick(k); s != nullptr) {
                w.end(*t, *s);
            }
            break;
        case 0x8: {
            uint8_t c = in.byte();
            if (auto [t, s] = w.pick(k); s != nullptr) {
                w.close(*t, *s, World::code_of(c));
            }
            break;
        }
        case 0x9: {
            uint8_t r = in.byte();
            if (auto [t, s] = w.pick(k); s != nullptr) {
                if (s->room != kUnlimited) {
                    s->room = r == 0 ? kUnlimited : s->room + size_t(r) * 64;
                }
                w.room(*t, *s);
            }
            break;
        }
        case 0xA: w.refuse_opens = k; break;
        case 0xB: w.arm(static_cast<uint8_t>(k), in.byte()); break;
        case 0xC:
            if (auto [t, s] = w.pick(k); s != nullptr) {
                w.response(*t, *s, 200, {{"content-length", "5"}}, false);
                w.data(*t, *s, 5);
                w.end(*t, *s);
                if (!s->has_body || s->body_end) {
                    w.close(*t, *s, http2::kNoError);
                }
            }
            break;
        case 0xD: io.refuse_next = true; break;
        default: break;
        }

        // Invariants after every step.
        size_t users = 0;
        for (FakeTunnel* t : {&w.a, &w.b}) {
            for (const auto& [sid, s] : t->streams) {
                FUZZ_REQUIRE(s.user == nullptr || (s.live && s.user == w.sink));
                users += s.user != nullptr ? 1 : 0;
            }
        }
        if (session->idle()) {
            FUZZ_REQUIRE(users == 0);  // nothing in progress, yet a stream reports to it
        }
        uint64_t requests = stats.requests.load();
        FUZZ_REQUIRE(io.out_bytes <= 16 * (fed + w.tunnel_in) + kPerRequestOut * requests + 65536);
        if (h2s != nullptr) {
            size_t per_stream = cfg.window + 2 * size_t(max_header_list) + 1024;
            FUZZ_REQUIRE(h2s->held_bytes() <= h2s->open_streams() * per_stream);
        }
        cfd::fuzz::require_no_bug();
    }

    session.reset();
    // The session is gone: no stream may still report to it.
    for (FakeTunnel* t : {&w.a, &w.b}) {
        for (const auto& [sid, s] : t->streams) {
            FUZZ_REQUIRE(s.user == nullptr);
        }
    }
    FUZZ_REQUIRE(stats.concurrent.load() == 0);
    FUZZ_REQUIRE(stats.public_connections.load() == 0);
    cfd::fuzz::require_no_bug();
    return 0;
}
