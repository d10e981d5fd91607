// PublicH2Session, sans I/O: a real HTTP/2 client session (http2::Session, client role) talks
// to it through bytes; behind it, real TunnelConns with connector-like peers (edge_test_util.h),
// directly or through another core's relay (public_doubles.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cfd/edge/public_h2_session.h"
#include "cfd/edge/relay.h"
#include "cfd/edge/routes.h"
#include "cfd/edge/stats.h"
#include "cfd/http2/session.h"
#include "edge_test_util.h"
#include "public_doubles.h"

using namespace cfd;
using namespace cfd::edge;
using namespace cfd::edge::test;

namespace {

// A stream as the public client sees it.
struct ClientStream {
    int status = 0;
    http2::Headers headers;
    bool got_response = false;
    std::string body;  // kept up to 1 MiB
    uint64_t body_bytes = 0;
    Fnv hash;
    bool ended = false;
    bool closed = false;
    uint32_t close_code = 0;
    // Request body source: queued bytes, then generated ones.
    std::string up;
    uint64_t gen_seed = 0;
    uint64_t gen_left = 0;
    uint64_t gen_pos = 0;
    bool up_end = false;
};

// The public client: an HTTP/2 client with small receive windows, so that responses larger
// than them need the edge to keep up with WINDOW_UPDATEs.
class H2Client : public http2::Handler {
public:
    std::unique_ptr<http2::Session> h2;
    std::map<int32_t, ClientStream> streams;
    bool got_goaway = false;
    uint32_t goaway_code = 0;

    H2Client() {
        http2::Settings st;
        st.stream_window = 65535;
        st.connection_window = 65535;
        auto s = http2::Session::create(http2::Role::Client, *this, st);
        REQUIRE(s);
        h2 = std::move(*s);
    }

    int32_t request(std::string_view method, std::string_view path, bool has_body = false,
                    std::string_view authority = "app.example.com",
                    std::vector<http2::HeaderView> extra = {}) {
        std::vector<http2::HeaderView> hv = {
            {":method", method}, {":scheme", "https"}, {":authority", authority}, {":path", path}};
        hv.insert(hv.end(), extra.begin(), extra.end());
        auto id = h2->submit_request(hv, has_body);
        REQUIRE(id);
        streams[*id];
        return *id;
    }
    void write(int32_t id, std::string_view bytes, bool end) {
        auto& s = streams[id];
        s.up.append(bytes);
        s.up_end = end;
        REQUIRE(h2->resume_data(id));
    }
    void upload(int32_t id, uint64_t seed, uint64_t n) {
        auto& s = streams[id];
        s.gen_seed = seed;
        s.gen_left = n;
        s.up_end = true;
        REQUIRE(h2->resume_data(id));
    }

    void on_request(int32_t, http2::Headers&&, bool) override {}
    void on_response(int32_t id, int status, http2::Headers&& headers, bool end) override {
        auto& s = streams[id];
        s.status = status;
        s.headers = std::move(headers);
        s.got_response = true;
        s.ended = s.ended || end;
    }
    void on_data(int32_t id, std::string_view bytes) override {
        auto& s = streams[id];
        s.body_bytes += bytes.size();
        s.hash.add(bytes);
        if (s.body.size() < (1 << 20)) {
            s.body.append(bytes);
        }
        h2->consume(id, bytes.size());
    }
    void on_stream_end(int32_t id) override { streams[id].ended = true; }
    void on_stream_close(int32_t id, uint32_t code) override {
        auto& s = streams[id];
        s.closed = true;
        s.close_code = code;
    }
    http2::BodyChunk on_body_ready(int32_t id, size_t max) override {
        auto& s = streams[id];
        size_t have = s.up.size();
        if (have == 0) {
            have = static_cast<size_t>(std::min<uint64_t>(s.gen_left, max));
        }
        size_t n = std::min(have, max);
        bool end = s.up_end && n == s.up.size() + s.gen_left;
        return {n, end};
    }
    void on_body_copy(int32_t id, std::span<char> dest) override {
        auto& s = streams[id];
        if (!s.up.empty()) {
            std::memcpy(dest.data(), s.up.data(), dest.size());
            s.up.erase(0, dest.size());
            return;
        }
        for (char& c : dest) {
            c = gen_byte(s.gen_seed, s.gen_pos++);
        }
        s.gen_left -= dest.size();
    }
    void on_goaway(int32_t, uint32_t code) override {
        got_goaway = true;
        goaway_code = code;
    }
};

// The public side around the session: the client, the socket (Io) and the glue's rules (feed
// only while wants_input(); the client reads only while the socket is writable).
struct Front {
    Io io;
    H2Client client;
    EdgeStats stats;
    std::unique_ptr<PublicH2Session> pub;
    std::string to_pub;  // client bytes the glue has not fed yet (recv paused)
    size_t max_held = 0;
    size_t max_queue = 0;

    void start(PublicRouter& router) {
        PublicH2Options o;
        o.stats = &stats;
        auto s = PublicH2Session::create(router, io, o);
        REQUIRE(s);
        pub = std::move(*s);
        pub->set_client("203.0.113.7", "https");
    }
    // One step each way; true when any byte moved.
    bool exchange() {
        bool moved = false;
        auto n = client.h2->send(to_pub, 1 << 20);
        REQUIRE(n);
        if (!to_pub.empty() && pub && pub->wants_input()) {
            std::string b;
            b.swap(to_pub);
            pub->feed(b);
            moved = true;
        }
        if (pub) {
            max_held = std::max(max_held, pub->held_bytes());
        }
        max_queue = std::max(max_queue, io.out.size());
        if (io.is_writable && !io.out.empty()) {
            std::string o;
            o.swap(io.out);
            (void)client.h2->recv(o);
            moved = true;
        }
        return moved;
    }
    void set_writable(bool w) {
        io.is_writable = w;
        if (w && pub) {
            pub->on_writable();
        }
    }
};

// Runs everything until quiet: the client, each tunnel link, the mailboxes between cores.
void run(Front& f, std::vector<Replica*> links, Bus* bus = nullptr) {
    for (int i = 0; i < 20000; i++) {
        bool moved = false;
        for (Replica* l : links) {
            REQUIRE(pump(*l->edge, l->conn));
        }
        if (bus != nullptr) {
            moved = bus->deliver() || moved;
        }
        moved = f.exchange() || moved;
        if (!moved) {
            for (Replica* l : links) {
                REQUIRE(pump(*l->edge, l->conn));
            }
            bool again = (bus != nullptr && bus->deliver());
            again = f.exchange() || again;
            if (!again) {
                return;
            }
        }
    }
    FAIL("no quiet after 20000 rounds");
}

// One connector behind the session, directly or through another core (relayed).
struct Rig {
    Replica a;
    Router router;
    Bus bus;
    Front f;

    explicit Rig(bool relayed = false, TunnelOptions o = {}) : a(o) {
        router.table.add("app.example.com", Uuid::random());
        router.conn = a.edge.get();
        bus.conn = a.edge.get();
        if (relayed) {
            router.relay = &bus.client;
        }
        f.start(router);
    }
    // The session goes first: its destructor resets streams still open, through the bus.
    ~Rig() { f.pub.reset(); }
    void run() { ::run(f, {&a}, &bus); }
    Connector& conn() { return a.conn; }
};

struct PairRig {
    Replica a, b;
    PairRouter router;
    Front f;
    PairRig() {
        router.table.add("app.example.com", Uuid::random());
        router.r[0] = &a;
        router.r[1] = &b;
        f.start(router);
        b.conn.on_end_hook = [this](int32_t id) {
            b.conn.respond(id, 200, {{"Content-Length", "6"}}, true);
            b.conn.write(id, "from b", true);
        };
    }
    ~PairRig() { f.pub.reset(); }
    void run() { ::run(f, {&a, &b}); }
};

std::string_view header(const ClientStream& s, std::string_view name) {
    return http2::header_value(s.headers, name);
}

}  // namespace

TEST_CASE("edge h2: a GET and its body through the tunnel, direct and relayed") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(relayed);
        r.conn().on_end_hook = [&](int32_t id) {
            r.conn().respond(id, 200,
                             {{"Content-Type", "text/plain"},
                              {"Content-Length", "11"},
                              {"Connection", "close"},
                              {"Keep-Alive", "timeout=5"}},
                             true);
            r.conn().write(id, "hello world", true);
        };
        int32_t id = r.f.client.request("GET", "/hello?x=1", false, "app.example.com",
                                        {{"accept", "text/plain"}, {"cookie", "a=b"}});
        r.run();
        const ClientStream& s = r.f.client.streams[id];
        CHECK(s.status == 200);
        CHECK(s.body == "hello world");
        CHECK(s.ended);
        CHECK(header(s, "content-type") == "text/plain");
        CHECK(header(s, "content-length") == "11");
        CHECK(http2::find_header(s.headers, "keep-alive") == nullptr);
        REQUIRE(r.conn().requests.size() == 1);
        const auto& req = r.conn().streams[r.conn().requests[0]].request;
        CHECK(http2::header_value(req, ":path") == "/hello?x=1");
        CHECK(http2::header_value(req, ":authority") == "app.example.com");
        CHECK(http2::header_value(req, ":method") == "GET");
        CHECK(http2::header_value(req, "accept") == "text/plain");
        CHECK(http2::header_value(req, "cf-connecting-ip") == "203.0.113.7");
        CHECK(http2::header_value(req, "x-forwarded-proto") == "https");
        CHECK(r.conn().streams[r.conn().requests[0]].ended);
        CHECK(r.a.edge->open_streams() == 0);
        CHECK(r.f.pub->open_streams() == 0);
        CHECK(r.f.pub->idle());
        CHECK(!r.f.io.closed_after_flush);
        // Counted as PublicSession counts.
        CHECK(r.f.stats.requests.load() == 1);
        CHECK(r.f.stats.responses(200) == 1);
        CHECK(r.f.stats.concurrent.load() == 0);
        CHECK(r.f.stats.public_connections.load() == 1);
        CHECK(r.f.stats.request_bytes.load() > 0);
        CHECK(r.f.stats.response_bytes.load() > 11);
        r.f.pub.reset();
        CHECK(r.f.stats.public_connections.load() == 0);
    }
}

TEST_CASE("edge h2: a POST larger than every window, flow-controlled both ways") {
    TunnelOptions o;
    o.h2.stream_window = 65535;
    o.stream_send_buffer = 16384;
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(relayed, o);
        constexpr uint64_t kUp = 3 << 20;
        constexpr uint64_t kDown = 3 << 20;
        r.conn().auto_consume = false;  // the connector reads nothing at first
        r.conn().on_end_hook = [&](int32_t id) {
            r.conn().respond(id, 200, {}, true);
            auto& s = r.conn().streams[id];
            s.gen_seed = 3;
            s.gen_left = kDown;
            s.out_end = true;
            REQUIRE(r.conn().h2->resume_data(id));
        };
        int32_t id = r.f.client.request("POST", "/up", true);
        r.f.client.upload(id, 5, kUp);
        r.run();
        // Stalled: the connector's window is shut, the client holds the rest of its body.
        REQUIRE(r.conn().requests.size() == 1);
        int32_t cid = r.conn().requests[0];
        uint64_t stalled_at = r.conn().streams[cid].body_bytes;
        CHECK(stalled_at < kUp);
        CHECK(r.f.client.streams[id].gen_left > kUp / 2);
        r.conn().auto_consume = true;
        r.conn().consume_all(cid);
        r.run();
        auto& up = r.conn().streams[cid];
        CHECK(up.body_bytes == kUp);
        CHECK(up.hash.h == gen_hash(5, kUp));
        CHECK(up.ended);
        const ClientStream& s = r.f.client.streams[id];
        CHECK(s.status == 200);
        CHECK(s.body_bytes == kDown);
        CHECK(s.hash.h == gen_hash(3, kDown));
        CHECK(s.ended);
        // One tunnel stream window (plus a relay window) held here at most, never the body.
        CHECK(r.f.max_held <= 65535 + (64 << 10));
        CHECK(r.bus.max_bytes <= 65535 + (64 << 10));
        CHECK(r.a.edge->open_streams() == 0);
    }
}

TEST_CASE("edge h2: 100 concurrent streams, each its own tunnel stream, bodies intact") {
    Rig r;
    constexpr int kStreams = 100;
    constexpr uint64_t kBody = 40000;
    size_t peak = 0;
    r.conn().on_end_hook = [&](int32_t) {
        peak = std::max(peak, r.a.edge->open_streams());
        if (r.conn().requests.size() < kStreams) {
            return;  // every stream stays open until all have arrived
        }
        for (int32_t cid : r.conn().requests) {
            auto& s = r.conn().streams[cid];
            std::string_view path = http2::header_value(s.request, ":path");
            uint64_t seed = std::stoull(std::string(path.substr(1)));
            r.conn().respond(cid, 200, {{"Content-Length", std::to_string(kBody)}}, true);
            s.gen_seed = seed;
            s.gen_left = kBody;
            s.out_end = true;
            REQUIRE(r.conn().h2->resume_data(cid));
        }
    };
    std::vector<int32_t> ids;
    for (int i = 0; i < kStreams; i++) {
        ids.push_back(r.f.client.request("GET", "/" + std::to_string(i + 1)));
    }
    r.run();
    CAPTURE(r.a.edge->close_reason());
    CHECK(r.a.edge->registered());
    CHECK(peak == kStreams);
    CHECK(r.conn().requests.size() == kStreams);
    for (int i = 0; i < kStreams; i++) {
        const ClientStream& s = r.f.client.streams[ids[static_cast<size_t>(i)]];
        CAPTURE(i);
        CHECK(s.status == 200);
        CHECK(s.body_bytes == kBody);
        CHECK(s.hash.h == gen_hash(static_cast<uint64_t>(i + 1), kBody));
    }
    CHECK(r.f.stats.requests.load() == kStreams);
    CHECK(r.f.stats.responses(200) == kStreams);
    CHECK(r.f.stats.concurrent.load() == 0);
    CHECK(r.f.pub->open_streams() == 0);
}

TEST_CASE("edge h2: the edge's own answers: 404, 530 (1033), 501 for CONNECT") {
    Rig r;
    int32_t a = r.f.client.request("GET", "/", false, "nowhere.example.org");
    r.run();
    CHECK(r.f.client.streams[a].status == 404);
    CHECK(r.f.client.streams[a].body.find("nowhere.example.org") != std::string::npos);
    CHECK(header(r.f.client.streams[a], "content-type") == "text/plain; charset=utf-8");

    r.router.conn = nullptr;
    int32_t b = r.f.client.request("GET", "/", false);
    int32_t h = r.f.client.request("HEAD", "/", false);
    r.run();
    CHECK(r.f.client.streams[b].status == 530);
    CHECK(r.f.client.streams[b].body.find("Error 1033") != std::string::npos);
    CHECK(r.f.client.streams[h].status == 530);
    CHECK(r.f.client.streams[h].body.empty());  // HEAD: no body
    CHECK(r.f.client.streams[h].ended);

    const http2::HeaderView connect[] = {{":method", "CONNECT"},
                                         {":authority", "app.example.com:443"}};
    auto c = r.f.client.h2->submit_request(connect, false);
    REQUIRE(c);
    r.run();
    CHECK(r.f.client.streams[*c].status == 501);
    CHECK(r.f.stats.errors_of(ErrorCause::UnknownHost) == 1);
    CHECK(r.f.stats.errors_of(ErrorCause::NoConnector) == 2);
    CHECK(r.f.stats.errors_of(ErrorCause::Unsupported) == 1);
    CHECK(r.conn().requests.empty());
    CHECK(!r.f.io.closed_after_flush);  // answers end streams, not the connection
}

TEST_CASE("edge h2: a POST to an unknown host gets its answer, and its upload is stopped") {
    Rig r;
    int32_t id = r.f.client.request("POST", "/", true, "nowhere.example.org");
    r.f.client.upload(id, 9, 1 << 20);
    r.run();
    const ClientStream& s = r.f.client.streams[id];
    CHECK(s.status == 404);
    CHECK(s.ended);
    CHECK(s.closed);
    CHECK(s.close_code == http2::kNoError);          // RST_STREAM(NO_ERROR) after the answer
    CHECK(r.f.client.streams[id].gen_left > 0);      // the rest was never sent
    CHECK(r.f.pub->open_streams() == 0);
}

TEST_CASE("edge h2: a refused stream is retried on another connector, body and all") {
    PairRig r;
    r.a.conn.on_request_hook = [&](int32_t id) {
        REQUIRE(r.a.conn.h2->rst_stream(id, http2::kRefusedStream));
    };
    int32_t g = r.f.client.request("GET", "/x");
    int32_t p = r.f.client.request("POST", "/pay", true);
    r.f.client.write(p, "abc", true);
    r.run();
    CHECK(r.f.client.streams[g].status == 200);
    CHECK(r.f.client.streams[g].body == "from b");
    CHECK(r.f.client.streams[p].status == 200);
    CHECK(r.a.conn.requests.size() == 2);
    REQUIRE(r.b.conn.requests.size() == 2);
    bool saw_body = false;
    for (int32_t id : r.b.conn.requests) {
        saw_body = saw_body || r.b.conn.streams[id].body == "abc";
    }
    CHECK(saw_body);
    CHECK(r.router.retries == 2);
    CHECK(r.f.pub->retries() == 2);
}

TEST_CASE("edge h2: a POST reset after its body went out is not sent twice: 502") {
    PairRig r;
    r.a.conn.on_end_hook = [&](int32_t id) {
        REQUIRE(r.a.conn.h2->rst_stream(id, http2::kInternalError));
    };
    int32_t p = r.f.client.request("POST", "/pay", true);
    r.f.client.write(p, "abc", true);
    r.run();
    CHECK(r.f.client.streams[p].status == 502);
    CHECK(r.b.conn.requests.empty());
    CHECK(r.f.pub->retries() == 0);
}

TEST_CASE("edge h2: at most kMaxAttempts streams, then 502") {
    PairRig r;
    r.b.conn.on_end_hook = nullptr;
    for (Replica* x : {&r.a, &r.b}) {
        x->conn.on_request_hook = [x](int32_t id) {
            REQUIRE(x->conn.h2->rst_stream(id, http2::kRefusedStream));
        };
    }
    int32_t g = r.f.client.request("GET", "/");
    r.run();
    CHECK(r.f.client.streams[g].status == 502);
    CHECK(r.a.conn.requests.size() + r.b.conn.requests.size() == Upstream::kMaxAttempts);
}

TEST_CASE("edge h2: a slow client stops the connector; memory stays bounded; it resumes") {
    TunnelOptions o;
    o.h2.stream_window = 65535;
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(relayed, o);
        constexpr uint64_t kDown = 4 << 20;
        int32_t id = r.f.client.request("GET", "/big");
        r.run();
        REQUIRE(r.conn().requests.size() == 1);
        int32_t cid = r.conn().requests[0];
        // The client stops reading (its socket is not writable), then the response comes.
        r.f.set_writable(false);
        r.conn().respond(cid, 200, {}, true);
        auto& origin = r.conn().streams[cid];
        origin.gen_seed = 11;
        origin.gen_left = kDown;
        origin.out_end = true;
        REQUIRE(r.conn().h2->resume_data(cid));
        for (int round = 0; round < 50; round++) {
            r.run();
        }
        uint64_t left = r.conn().streams[cid].gen_left;
        size_t queue = r.f.io.out.size();
        for (int round = 0; round < 50; round++) {
            r.run();
        }
        CHECK(r.conn().streams[cid].gen_left == left);  // the connector is stopped
        CHECK(left > kDown / 2);
        CHECK(r.f.io.out.size() == queue);              // nothing written while not writable
        CHECK(r.f.pub->held_bytes() <= 65535 + (64 << 10));
        CHECK(!r.f.pub->wants_input());
        // It reads again, in bursts.
        for (int round = 0; round < 100000 && !r.f.client.streams[id].ended; round++) {
            r.f.set_writable(round % 3 != 0);
            r.run();
        }
        r.f.set_writable(true);
        r.run();
        const ClientStream& s = r.f.client.streams[id];
        CHECK(s.ended);
        CHECK(s.body_bytes == kDown);
        CHECK(s.hash.h == gen_hash(11, kDown));
        CHECK(r.f.max_held <= 65535 + (64 << 10));
        CHECK(r.f.max_queue <= (1 << 20));
    }
}

TEST_CASE("edge h2: a client's RST_STREAM resets the tunnel stream, not the others") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(relayed);
        r.conn().on_request_hook = [&](int32_t cid) {
            r.conn().respond(cid, 200, {}, true);
            r.conn().write(cid, "partial", false);
        };
        int32_t a = r.f.client.request("GET", "/a");
        int32_t b = r.f.client.request("GET", "/b");
        r.run();
        REQUIRE(r.conn().requests.size() == 2);
        CHECK(r.f.client.streams[a].body == "partial");
        REQUIRE(r.f.client.h2->rst_stream(a, http2::kCancel));
        r.run();
        auto& ta = r.conn().streams[r.conn().requests[0]];
        auto& tb = r.conn().streams[r.conn().requests[1]];
        CHECK(ta.closed);
        CHECK(ta.close_code == http2::kCancel);
        CHECK(!tb.closed);
        CHECK(r.a.edge->open_streams() == 1);
        CHECK(r.f.pub->open_streams() == 1);
        r.conn().write(r.conn().requests[1], " and the end", true);
        r.run();
        CHECK(r.f.client.streams[b].body == "partial and the end");
        CHECK(r.f.client.streams[b].ended);
        CHECK(r.a.edge->open_streams() == 0);
        CHECK(r.f.stats.concurrent.load() == 0);
    }
}

TEST_CASE("edge h2: a tunnel stream lost after the head resets only that client stream") {
    Rig r;
    r.conn().on_request_hook = [&](int32_t cid) {
        r.conn().respond(cid, 200, {{"Content-Length", "100"}}, true);
        r.conn().write(cid, "part", false);
    };
    int32_t a = r.f.client.request("GET", "/a");
    r.run();
    REQUIRE(r.conn().requests.size() == 1);
    REQUIRE(r.conn().h2->rst_stream(r.conn().requests[0], http2::kInternalError));
    r.run();
    CHECK(r.f.client.streams[a].status == 200);
    CHECK(r.f.client.streams[a].closed);
    CHECK(r.f.client.streams[a].close_code == http2::kInternalError);
    CHECK(r.f.stats.errors_of(ErrorCause::Aborted) == 1);
    CHECK(!r.f.io.aborted);
    CHECK(!r.f.io.closed_after_flush);
    // The connection goes on serving.
    r.conn().on_request_hook = [&](int32_t cid) {
        r.conn().respond(cid, 204, {}, false);
    };
    int32_t b = r.f.client.request("GET", "/b");
    r.run();
    CHECK(r.f.client.streams[b].status == 204);
    CHECK(r.f.client.streams[b].ended);
}

TEST_CASE("edge h2: a tunnel stream reset before any response is a 502") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(relayed);
        r.conn().on_request_hook = [&](int32_t cid) {
            REQUIRE(r.conn().h2->rst_stream(cid, http2::kInternalError));
        };
        int32_t a = r.f.client.request("POST", "/", true);
        r.f.client.write(a, "x", true);
        r.run();
        CHECK(r.f.client.streams[a].status == 502);
        CHECK(r.f.client.streams[a].ended);
        CHECK(r.f.stats.errors_of(ErrorCause::BadGateway) == 1);
    }
}

TEST_CASE("edge h2: HEAD and 304 have no body; an unusable status is a 502") {
    Rig r;
    r.conn().on_end_hook = [&](int32_t cid) {
        auto path = http2::header_value(r.conn().streams[cid].request, ":path");
        if (path == "/bad") {
            r.conn().respond(cid, 101, {}, true);
            return;
        }
        int status = path == "/304" ? 304 : 200;
        r.conn().respond(cid, status, {{"Content-Length", "5"}}, true);
        r.conn().write(cid, "hello", true);
    };
    int32_t h = r.f.client.request("HEAD", "/");
    int32_t n = r.f.client.request("GET", "/304");
    int32_t b = r.f.client.request("GET", "/bad");
    r.run();
    CHECK(r.f.client.streams[h].status == 200);
    CHECK(header(r.f.client.streams[h], "content-length") == "5");
    CHECK(r.f.client.streams[h].body.empty());
    CHECK(r.f.client.streams[h].ended);
    CHECK(r.f.client.streams[h].close_code == http2::kNoError);
    CHECK(r.f.client.streams[n].status == 304);
    CHECK(r.f.client.streams[n].body.empty());
    CHECK(r.f.client.streams[n].close_code == http2::kNoError);
    CHECK(r.f.client.streams[b].status == 502);
    CHECK(r.a.edge->open_streams() == 0);
}

TEST_CASE("edge h2: an early answer to an unfinished upload ends both streams") {
    Rig r;
    r.conn().on_request_hook = [&](int32_t cid) {
        r.conn().respond(cid, 413, {{"Content-Length", "4"}}, true);
        r.conn().write(cid, "big!", true);
    };
    int32_t id = r.f.client.request("POST", "/", true);
    r.f.client.write(id, "ab", false);
    r.run();
    const ClientStream& s = r.f.client.streams[id];
    CHECK(s.status == 413);
    CHECK(s.body == "big!");
    CHECK(s.closed);
    CHECK(s.close_code == http2::kNoError);
    CHECK(r.a.edge->open_streams() == 0);  // not left half-open on the tunnel
    CHECK(r.f.pub->open_streams() == 0);
}

TEST_CASE("edge h2: drain sends GOAWAY; streams in flight finish, then the connection closes") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(relayed);
        r.conn().on_request_hook = [&](int32_t cid) {
            r.conn().respond(cid, 200, {}, true);
            r.conn().write(cid, "one", false);
        };
        int32_t id = r.f.client.request("GET", "/");
        r.run();
        r.f.pub->drain();
        r.run();
        CHECK(r.f.client.got_goaway);
        CHECK(r.f.client.goaway_code == http2::kNoError);
        CHECK(!r.f.io.closed_after_flush);  // a stream is still in flight
        CHECK(!r.f.client.streams[id].ended);
        r.conn().write(r.conn().requests.at(0), "two", true);
        r.run();
        CHECK(r.f.client.streams[id].body == "onetwo");
        CHECK(r.f.client.streams[id].ended);
        CHECK(r.f.io.closed_after_flush);
        CHECK(!r.f.io.aborted);
        CHECK(r.f.pub->closing());
    }
    // An idle connection closes at once.
    Rig r;
    r.f.client.request("GET", "/nowhere", false, "nowhere.example.org");
    r.run();
    r.f.pub->drain();
    r.run();
    CHECK(r.f.client.got_goaway);
    CHECK(r.f.io.closed_after_flush);
}

TEST_CASE("edge h2: a garbage preface, or garbage later, ends in GOAWAY and a clean close") {
    Rig r;
    Io io;
    auto s = PublicH2Session::create(r.router, io);
    REQUIRE(s);
    (*s)->feed("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
    CHECK((*s)->closing());
    CHECK(io.closed_after_flush);
    CHECK(!io.aborted);
    CHECK(!io.out.empty());  // SETTINGS and GOAWAY
    CHECK(!(*s)->wants_input());
    (*s)->feed("more");  // ignored
    CHECK(r.conn().requests.empty());

    // A valid preface, then random frames: never a crash, never left open and silent.
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int round = 0; round < 100; round++) {
        Io io2;
        auto g = PublicH2Session::create(r.router, io2);
        REQUIRE(g);
        std::string junk = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        for (int i = 0; i < 300; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk.push_back(static_cast<char>(x));
        }
        (*g)->feed(junk);
        (*g)->feed_eof();
        r.run();
        CHECK((*g)->closing());
    }
    CHECK(r.a.edge->registered());
}

TEST_CASE("edge h2: a request for an expected tunnel waits, its body held, then is served") {
    Rig r;
    WaitRouter wr(r.router);
    r.conn().on_end_hook = [&](int32_t cid) {
        r.conn().respond(cid, 200, {{"Content-Length", "2"}}, true);
        r.conn().write(cid, "ok", true);
    };
    Front f;
    f.start(wr);
    int32_t id = f.client.request("PUT", "/w", true);
    f.client.write(id, "hello", true);
    int32_t other = f.client.request("GET", "/w2");
    ::run(f, {&r.a});
    CHECK(f.pub->waiting());
    CHECK(!f.pub->idle());
    CHECK(!f.client.streams[id].got_response);
    f.pub->route_again(false);
    CHECK(f.pub->waiting());
    wr.arrived = true;
    f.pub->route_again(false);
    ::run(f, {&r.a});
    CHECK(!f.pub->waiting());
    CHECK(f.client.streams[id].status == 200);
    CHECK(f.client.streams[other].status == 200);
    REQUIRE(r.conn().requests.size() == 2);
    bool saw = false;
    for (int32_t cid : r.conn().requests) {
        saw = saw || r.conn().streams[cid].body == "hello";
    }
    CHECK(saw);

    // When the wait is over without a connection: 530.
    wr.arrived = false;
    int32_t late = f.client.request("GET", "/late");
    ::run(f, {&r.a});
    CHECK(f.pub->waiting());
    f.pub->route_again(true);
    ::run(f, {&r.a});
    CHECK(f.client.streams[late].status == 530);
    CHECK(!f.pub->waiting());
}

TEST_CASE("edge h2: destroying the session resets every tunnel stream still open") {
    for (bool relayed : {false, true}) {
        CAPTURE(relayed);
        Rig r(relayed);
        r.conn().on_request_hook = [&](int32_t cid) {
            r.conn().respond(cid, 200, {}, true);
            r.conn().write(cid, "x", false);
        };
        for (int i = 0; i < 5; i++) {
            r.f.client.request("GET", "/");
        }
        int32_t up = r.f.client.request("POST", "/", true);
        r.f.client.write(up, "partial", false);
        r.run();
        CHECK(r.a.edge->open_streams() == 6);
        CHECK(r.f.stats.concurrent.load() == 6);
        r.f.pub.reset();
        r.run();
        CHECK(r.a.edge->open_streams() == 0);
        CHECK(r.bus.client.open_streams() == 0);
        CHECK(r.bus.server.open_streams() == 0);
        for (int32_t cid : r.conn().requests) {
            CHECK(r.conn().streams[cid].close_code == http2::kCancel);
        }
        CHECK(r.f.stats.concurrent.load() == 0);
        CHECK(r.f.stats.public_connections.load() == 0);
    }
}

TEST_CASE("edge h2: the client's EOF with a stream open cuts the connection") {
    Rig r;
    r.conn().on_request_hook = [&](int32_t cid) {
        r.conn().respond(cid, 200, {}, true);
        r.conn().write(cid, "x", false);
    };
    r.f.client.request("GET", "/");
    r.run();
    CHECK(r.a.edge->open_streams() == 1);
    r.f.pub->feed_eof();
    r.run();
    CHECK(r.f.io.aborted);
    CHECK(r.a.edge->open_streams() == 0);

    Rig idle;
    idle.f.client.request("GET", "/", false, "nowhere.example.org");
    idle.run();
    idle.f.pub->feed_eof();
    CHECK(idle.f.io.closed_after_flush);
    CHECK(!idle.f.io.aborted);
}
