// Writes the checked-in seed inputs of every fuzz target (tests/fuzz/corpus/NAME/), each with
// the control bytes its target expects in front (see each *_fuzz.cc). Binary seeds come from
// the project's own encoders: the RPC client and server, an HTTP/2 client session, a wolfSSL
// ClientHello. Run by `make fuzz-seeds`; the output is small and meant to be committed.
//
//   make_seeds DIR
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cfd/http2/session.h"
#include "cfd/http2/tunnel_headers.h"
#include "cfd/rpc/client.h"
#include "cfd/rpc/server.h"
#include "cfd/tls/context.h"
#include "cfd/tls/session.h"

using namespace cfd;

namespace {

std::string g_dir;
int g_written = 0;

void put(const std::string& target, const std::string& name, std::string_view ctl,
         std::string_view body) {
    std::string path = g_dir + "/" + target + "/" + name;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(ctl.data(), std::streamsize(ctl.size()));
    f.write(body.data(), std::streamsize(body.size()));
    if (!f) {
        std::fprintf(stderr, "make_seeds: cannot write %s (does the directory exist?)\n",
                     path.c_str());
        std::exit(1);
    }
    ++g_written;
}

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) {
        s.push_back(static_cast<char>(c));
    }
    return s;
}

// [a u16][b u16][flags][limits]
std::string h1(int a, int b, int flags, int lim) {
    return bytes({a & 255, a >> 8, b & 255, b >> 8, flags, lim});
}

void http1_seeds() {
    const std::string rq = "http1_request_fuzz";
    put(rq, "get", h1(5, 30, 0, 0),
        "GET /a?b=1 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n");
    put(rq, "post_length", h1(40, 60, 2, 0),
        "POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello");
    put(rq, "chunked_trailers", h1(70, 90, 8 | 2, 0),
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n"
        "X-Sum: 1\r\n\r\n");
    put(rq, "pipelined_small_limits", h1(20, 45, 1, 0x35),
        "GET / HTTP/1.1\r\nHost: h\r\n\r\nHEAD /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        "OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    put(rq, "websocket_upgrade", h1(50, 100, 4, 0),
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        "\x81\x05hello");
    put(rq, "connect", h1(10, 25, 0, 0),
        "CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\nExpect: 100-continue\r\n"
        "\r\nraw");

    // [method] then the same control bytes; method 0 GET, 1 HEAD, 2 CONNECT, 3 POST, +4 rotate
    const std::string rs = "http1_response_fuzz";
    auto m = [](int method) { return bytes({method}); };
    put(rs, "ok_length", m(0) + h1(10, 40, 0, 0),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
    put(rs, "head_no_body", m(1) + h1(5, 20, 0, 0),
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    put(rs, "connect_tunnel", m(2) + h1(12, 30, 0, 0),
        "HTTP/1.1 200 Connection established\r\n\r\nraw bytes");
    put(rs, "chunked_interim", m(3) + h1(30, 60, 8 | 2, 0),
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-T: y\r\n\r\n");
    put(rs, "until_eof", m(0) + h1(8, 16, 2, 0),
        "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until the end");
    put(rs, "switching_then_pipelined", m(4) + h1(20, 50, 4 | 1, 0x44),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
}

void text_seeds() {
    // json_fuzz: [limits]; 0x0f keeps the default depth and size
    const std::string j = "json_fuzz";
    put(j, "credentials", "\x0f",
        R"({"AccountTag":"5ab4e9dfbd435d24068829fda0077963","TunnelSecret":"a2V5",)"
        R"("TunnelID":"610a53bd-ed0c-4afe-92b5-ca0238153410","Endpoint":""})");
    put(j, "mixed", "\x0f",
        R"( [1, -2.5e3, 0.1, true, false, null, "a\u00e9\ud83d\ude00\n\"", {"k": [[]], "k": {}}] )");
    put(j, "deep_small_limits", "\x13", R"([[[[{"a":[1]}]]]])");
    put(j, "numbers", "\x0f", "[9007199254740993,1e308,-0,123456789012345678,5e-324]");

    // ini_fuzz: INI text, then "\0\0" and argv words separated by "\0"
    const std::string i = "ini_fuzz";
    put(i, "edge", "",
        "; sample\n[edge]\nname = e1\nworkers = 8\nverbose = yes\ngrace-period = 1m30s\n"
        "origin = http://a\norigin = http://b\n\n[tls \"example.com\"]\ncert = /x.pem\n");
    std::string with_args = "[edge]\nworkers=2\n" + std::string("\0\0", 2);
    const char* words[] = {"--workers", "3",        "-w=4", "--verbose", "--grace-period=500ms",
                           "--origin",  "http://c", "--",   "pos"};
    for (const char* w : words) {
        with_args += w;
        with_args.push_back('\0');
    }
    with_args.pop_back();
    put(i, "with_args", "", with_args);
    put(i, "errors", "", "[edge]\nworkers = 99999\nunknown = 1\n[broken\nkey without equals\n");
    put(i, "multiline", "",
        "[connector]\norigin = http://a\n  continued\nname: colon\n# comment\n[connector]\n"
        "name = again\n");
}

rpc::RegisterRequest sample_request() {
    rpc::RegisterRequest r;
    r.auth.account_tag = "5ab4e9dfbd435d24068829fda0077963";
    r.auth.tunnel_secret = std::string(32, 'k');
    r.tunnel_id = Uuid::parse("610a53bd-ed0c-4afe-92b5-ca0238153410").value();
    r.conn_index = 1;
    r.options.client.client_id = Uuid::parse("71490dec-190f-4652-a70a-cd001fe6fdcf").value();
    r.options.client.features = {"serialized_headers", "allow_remote_config"};
    r.options.client.version = "2026.11.0";
    r.options.client.arch = "linux_amd64";
    r.options.origin_local_ip = std::string("\x7f\0\0\1", 4);
    return r;
}

void rpc_seeds() {
    using namespace cfd::rpc;
    RegistrationClient c;
    std::string c2s;
    c.start(c2s);
    CFD_CHECK(c.register_connection(sample_request(), c2s));
    std::string hello = c2s;  // Bootstrap + registerConnection
    CFD_CHECK(c.unregister_connection(c2s));
    CFD_CHECK(c.update_local_configuration(R"({"ingress":[]})", c2s));

    // The server's answers: registration accepted, unregister done, config update failed.
    RegistrationServer s;
    std::string s2c;
    std::vector<ServerEvent> events;
    CFD_CHECK(s.feed(c2s, s2c, events));
    for (auto& e : events) {
        if (auto* r = std::get_if<RegisterCall>(&e)) {
            ConnectionDetails d;
            d.location_name = "LHR";
            d.uuid = r->request.tunnel_id;
            CFD_CHECK(s.accept_registration(r->id, d, s2c));
        } else if (auto* u = std::get_if<UnregisterCall>(&e)) {
            CFD_CHECK(s.complete(u->id, s2c));
        } else if (auto* u2 = std::get_if<UpdateConfigCall>(&e)) {
            CFD_CHECK(s.fail(u2->id, "not now", s2c));
        }
    }
    // The client finishes its questions and closes (Finish, Release, Abort).
    std::vector<ClientEvent> cev;
    CFD_CHECK(c.feed(s2c, c2s, cev));
    c.close(c2s);

    std::string refused;
    {
        RegistrationServer s2;
        std::vector<ServerEvent> ev2;
        CFD_CHECK(s2.feed(hello, refused, ev2));
        for (auto& e : ev2) {
            if (auto* r = std::get_if<RegisterCall>(&e)) {
                CFD_CHECK(s2.refuse_registration(
                    r->id, ConnectionError{"Unauthorized: bad secret", 0, false}, refused));
            }
        }
    }
    // rpc_server_fuzz / rpc_client_fuzz: [a u16][b u16][policy]; rpc_frame_fuzz: [a][b][limits]
    put("rpc_server_fuzz", "register", bytes({0x10, 0, 0x40, 0, 0}), hello);
    put("rpc_server_fuzz", "all_calls", bytes({0x30, 0, 0x90, 0, 0x02}), c2s);
    put("rpc_server_fuzz", "all_calls_small", bytes({0x07, 0, 0x77, 0x01, 0x0d}), c2s);
    put("rpc_frame_fuzz", "messages", bytes({0x03, 0, 0x50, 0, 0}), c2s);
    put("rpc_frame_fuzz", "replies_small_limits", bytes({0x09, 0, 0x11, 0, 0xf7}), s2c);
    put("rpc_client_fuzz", "accepted", bytes({0x08, 0, 0x40, 0, 0}), s2c);
    put("rpc_client_fuzz", "refused", bytes({0x05, 0, 0x20, 0, 0x01}), refused);
}

struct BodyHandler : http2::Handler {
    size_t left = 300;
    void on_request(int32_t, http2::Headers&&, bool) override {}
    void on_response(int32_t, int, http2::Headers&&, bool) override {}
    void on_data(int32_t, std::string_view) override {}
    void on_stream_end(int32_t) override {}
    void on_stream_close(int32_t, uint32_t) override {}
    http2::BodyChunk on_body_ready(int32_t, size_t max) override {
        size_t n = std::min(left, max);
        return {n, n == left};
    }
    void on_body_copy(int32_t, std::span<char> d) override {
        std::memset(d.data(), 'b', d.size());
        left -= d.size();
    }
};

std::string drain(http2::Session& s) {
    std::string all;
    for (;;) {
        std::string out;
        auto n = s.send(out);
        if (!n || *n == 0) {
            return all;
        }
        all += out;
    }
}

void http2_seeds() {
    BodyHandler h;
    auto created = http2::Session::create(http2::Role::Client, h);
    CFD_CHECK(created);
    http2::Session& s = **created;
    // The target sends the connection magic itself: keep the client's SETTINGS and what follows.
    std::string first = drain(s).substr(24);
    std::vector<http2::HeaderView> get = {
        {":method", "GET"},
        {":scheme", "https"},
        {":authority", "app.example.com"},
        {":path", "/"},
        {"cf-cloudflared-proxy-connection-upgrade", "control-stream"}};
    std::vector<http2::HeaderView> post = {{":method", "POST"},
                                           {":scheme", "https"},
                                           {":authority", "app.example.com"},
                                           {":path", "/up"},
                                           {"content-type", "text/plain"}};
    CFD_CHECK(s.submit_request(get, false));
    std::string req1 = drain(s);
    auto id = s.submit_request(post, true);
    CFD_CHECK(id);
    std::string req2 = drain(s);
    CFD_CHECK(s.ping(42));
    CFD_CHECK(s.rst_stream(*id, http2::kCancel));
    std::string ctl = drain(s);
    CFD_CHECK(s.goaway(http2::kNoError));
    std::string bye = drain(s);
    // http2_server_fuzz: [policy][settings][cut u16]
    const std::string t = "http2_server_fuzz";
    put(t, "get_respond_body", bytes({0x02, 0x00, 0x20, 0x00}), first + req1);
    put(t, "post_trailers", bytes({0x03, 0x00, 0x30, 0x00}), first + req1 + req2);
    put(t, "no_consume_small", bytes({0x06, 0x01, 0x40, 0x00}), first + req2 + ctl);
    put(t, "reset_ping_goaway", bytes({0x19, 0x00, 0x10, 0x00}), first + req1 + req2 + ctl + bye);

    // http2_tunnel_headers_fuzz: the serialized headers alone
    const std::string th = "http2_tunnel_headers_fuzz";
    put(th, "origin_headers", "",
        http2::serialize_user_headers({{"Content-Type", "text/html; charset=utf-8"},
                                       {"Set-Cookie", "a=1"},
                                       {"Set-Cookie", "b=2"},
                                       {"X-Empty", ""}}));
    put(th, "padded", "", "Q29udGVudC1UeXBl:dGV4dC9wbGFpbg==;eA:eQ==");
}

std::string client_hello(std::string_view name, std::vector<std::string> alpn) {
    tls::ClientOptions o;
    o.insecure_skip_verify = true;
    o.alpn = std::move(alpn);
    auto ctx = tls::Context::client(o);
    CFD_CHECK(ctx);
    auto cli = tls::Session::client(*ctx, name);
    CFD_CHECK(cli);
    (void)cli->handshake();
    return std::string(cli->pending_output());
}

void tls_seeds() {
    // tls_client_hello_fuzz: [cut u16]
    const std::string t = "tls_client_hello_fuzz";
    std::string alpn = client_hello("App.Example.COM", {"h2", "http/1.1"});
    std::string tunnel = client_hello("h2.cftunnel.com", {});
    put(t, "alpn", bytes({0x40, 0x00}), alpn);
    put(t, "tunnel", bytes({0x05, 0x00}), tunnel);
    // The same hello cut into records of 100 bytes.
    std::string msg = tunnel.substr(5);
    std::string split;
    for (size_t off = 0; off < msg.size(); off += 100) {
        size_t n = std::min<size_t>(100, msg.size() - off);
        split += bytes({0x16, 0x03, 0x01, int(n >> 8), int(n & 0xff)});
        split += msg.substr(off, n);
    }
    put(t, "split_records", bytes({0xa0, 0x00}), split);
}


// edge_public_fuzz: [mode][routes][ops...]; 0x0k L feeds the next (k << 8 | L) bytes.
std::string feed_op(std::string_view b) {
    CFD_CHECK(b.size() < 4096);
    return bytes({int(b.size() >> 8), int(b.size() & 0xff)}) + std::string(b);
}

void edge_public_seeds() {
    const std::string t = "edge_public_fuzz";
    const std::string get = "GET /a?b=1 HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n";
    const std::string post =
        "POST /up HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 300\r\n"
        "Expect: 100-continue\r\n\r\n" +
        std::string(300, 'p');
    // Served (200, length 5), then a chunked response in pieces, then EOF.
    put(t, "h1_get_pipelined", bytes({0x00, 0x00}),
        feed_op(get) + bytes({0xc0}) + feed_op(get) +
            bytes({0x50, 0x00, 0x02, 0x60, 100, 0x60, 0x90, 0x70, 0x80, 0x00, 0x10}));
    // 100 bytes of room per stream: the body waits for room events.
    put(t, "h1_post_room", bytes({0x08, 0x00}),
        feed_op(post) + bytes({0x90, 0x01, 0x90, 0x00, 0xc0, 0x10}));
    // Refused on the first connector, served by the second.
    put(t, "h1_post_refused_retry", bytes({0x00, 0x00}),
        feed_op(post) + bytes({0x80, 0x01, 0xc0}) + feed_op(get) +
            bytes({0x80, 0x04, 0x10}));
    // Wait, then routed; unknown host; no connector.
    put(t, "h1_wait_unknown_noconn", bytes({0x00, 0x93}),
        feed_op(get) + bytes({0x30, 0xc0}) + feed_op(get) + feed_op(get) + bytes({0x20}));
    put(t, "h1_websocket", bytes({0x00, 0x00}),
        feed_op("GET /ws HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n\x81\x05hello") +
            bytes({0x50, 0x00, 0x00, 0x60, 0x20}) + feed_op("\x81\x02hi") +
            bytes({0x10, 0x70, 0x80, 0x00}));
    // Small limits, a slow client (not writable), a nested close inside write_body.
    put(t, "h1_small_unwritable_nested", bytes({0x42 | 0x10, 0x00}),
        feed_op(post) + bytes({0xb0, 0x01, 0x9f, 0x00, 0x50, 0x00, 0x01, 0x61, 0xff, 0x41,
                               0x70, 0x10}));

    // A client's bytes from its first: HPACK state runs through the connection, so each seed
    // gets a session of its own.
    std::vector<http2::HeaderView> hget = {{":method", "GET"},
                                           {":scheme", "https"},
                                           {":authority", "app.example.com"},
                                           {":path", "/"},
                                           {"accept", "*/*"}};
    std::vector<http2::HeaderView> hpost = {{":method", "POST"},
                                            {":scheme", "https"},
                                            {":authority", "app.example.com"},
                                            {":path", "/up"},
                                            {"content-type", "text/plain"}};
    struct Client {
        BodyHandler h;
        std::unique_ptr<http2::Session> s;
        std::string preface;
        Client() {
            auto created = http2::Session::create(http2::Role::Client, h);
            CFD_CHECK(created);
            s = std::move(*created);
            preface = drain(*s);  // magic, SETTINGS
        }
        std::string request(const std::vector<http2::HeaderView>& hv, bool body) {
            CFD_CHECK(s->submit_request(hv, body));
            return drain(*s);  // HEADERS (and DATA, 300 bytes, END_STREAM)
        }
    };
    Client c1;
    std::string preface = c1.preface;
    std::string req1 = c1.request(hget, false);
    std::string req2 = c1.request(hpost, true);
    CFD_CHECK(c1.s->ping(7));
    std::string ping = drain(*c1.s);
    CFD_CHECK(c1.s->goaway(http2::kNoError));
    std::string bye = drain(*c1.s);
    Client c2;
    std::string post_only = c2.preface + c2.request(hpost, true);
    put(t, "h2_get", bytes({0x01, 0x00}),
        feed_op(preface + req1) + bytes({0xc0, 0x20}));
    put(t, "h2_get_post_body", bytes({0x01, 0x00}),
        feed_op(preface + req1 + req2) +
            bytes({0x51, 0x00, 0x02, 0x61, 0x90, 0x71, 0x81, 0x00, 0xc0}) + feed_op(ping) +
            feed_op(bye));
    put(t, "h2_refused_retry_room", bytes({0x09, 0x00}),
        feed_op(post_only) + bytes({0x80, 0x02, 0x90, 0x00, 0xc0, 0x10}));
    put(t, "h2_small_unwritable_wait", bytes({0x53, 0x03}),
        bytes({0x41}) + feed_op(preface + req1 + req2) +
            bytes({0x40, 0x31, 0xb2, 0x40, 0x50, 0x00, 0x03, 0x61, 0xff, 0x41, 0x10}));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    g_dir = argv[1];
    http1_seeds();
    text_seeds();
    rpc_seeds();
    http2_seeds();
    tls_seeds();
    edge_public_seeds();
    std::printf("make_seeds: %d seeds written under %s\n", g_written, g_dir.c_str());
    return 0;
}
