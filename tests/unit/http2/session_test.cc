#include <doctest/doctest.h>

#include "h2_peer.h"

using namespace cfd::http2;
using namespace cfd::http2::test;

TEST_CASE("http2: a request with headers and a body, and a response streamed back") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request({{":method", "POST"},
                                 {":scheme", "https"},
                                 {":authority", "app.example.com"},
                                 {":path", "/upload?x=1"},
                                 {"content-type", "text/plain"},
                                 {"x-trace", "abc"}},
                                true);
    CHECK(id == 1);
    client.write(id, "hello, ", false);
    REQUIRE(pump(client, server));
    client.write(id, "origin", true);
    REQUIRE(pump(client, server));

    REQUIRE(server.requests.size() == 1);
    StreamRec& req = server.streams[id];
    CHECK(header_value(req.headers, ":method") == "POST");
    CHECK(header_value(req.headers, ":path") == "/upload?x=1");
    CHECK(header_value(req.headers, ":authority") == "app.example.com");
    CHECK(header_value(req.headers, "x-trace") == "abc");
    CHECK(req.headers.front().is_pseudo());
    CHECK(!req.headers.back().is_pseudo());
    CHECK(req.body == "hello, origin");
    CHECK(req.ended);
    CHECK(!req.closed);

    // The response goes out in pieces, as the origin produces them.
    REQUIRE(
        server.session->submit_response(id, 200, std::vector<HeaderView>{{"server", "t"}}, true));
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].status == 200);
    CHECK(header_value(client.streams[id].headers, "server") == "t");
    CHECK(!client.streams[id].ended);
    server.write(id, "part one;");
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].body == "part one;");
    server.write(id, "part two", true);
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].body == "part one;part two");
    CHECK(client.streams[id].ended);
    CHECK(client.streams[id].closed);
    CHECK(client.streams[id].close_code == kNoError);
    CHECK(server.streams[id].closed);
    CHECK(client.session->stream_count() == 0);
    CHECK(server.session->stream_count() == 0);
    CHECK(client.recv_errors == 0);
    CHECK(server.recv_errors == 0);
}

TEST_CASE("http2: a request without a body and a response without a body") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    server.on_request_hook = [&](int32_t id) {
        CHECK(server.streams[id].ended);
        REQUIRE(server.session->submit_response(id, 204, {}, false));
    };
    int32_t id = client.request(get_request("/empty"), false);
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].status == 204);
    CHECK(client.streams[id].ended);
    CHECK(client.streams[id].body.empty());
    CHECK(client.streams[id].close_code == kNoError);
    CHECK(client.settings_seen == 1);
    CHECK(server.settings_seen == 1);
}

TEST_CASE("http2: 100 concurrent streams each get their own body back") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    // Echo: respond when the request is complete, with the request body reversed.
    server.on_end_hook = [&](int32_t id) {
        StreamRec& r = server.streams[id];
        REQUIRE(server.session->submit_response(id, 200, {}, true));
        std::string reply(r.body.rbegin(), r.body.rend());
        server.write(id, reply, true);
    };
    std::vector<int32_t> ids;
    for (int i = 0; i < 100; i++) {
        ids.push_back(client.request(post_request("/s" + std::to_string(i)), true));
    }
    for (int i = 0; i < 100; i++) {
        client.write(ids[i], "body-" + std::to_string(i) + std::string(i * 37, 'x'), true);
    }
    REQUIRE(pump(client, server));
    CHECK(server.requests.size() == 100);
    for (int i = 0; i < 100; i++) {
        std::string sent = "body-" + std::to_string(i) + std::string(i * 37, 'x');
        StreamRec& r = client.streams[ids[i]];
        CHECK(r.status == 200);
        CHECK(r.body == std::string(sent.rbegin(), sent.rend()));
        CHECK(r.closed);
        CHECK(r.close_code == kNoError);
        CHECK(header_value(server.streams[ids[i]].headers, ":path") == "/s" + std::to_string(i));
    }
    CHECK(client.session->stream_count() == 0);
    CHECK(server.session->stream_count() == 0);
}

TEST_CASE("http2: trailers follow the body in both directions") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request(post_request(), true);
    client.write(id, "abc");
    // Submitted while the body is still open: they must wait for its last byte.
    REQUIRE(client.session->submit_trailers(id, std::vector<HeaderView>{{"x-checksum", "1"}}));
    REQUIRE(pump(client, server));
    CHECK(!server.streams[id].got_trailers);
    CHECK(!server.streams[id].ended);
    client.write(id, "def", true);
    REQUIRE(pump(client, server));
    CHECK(server.streams[id].body == "abcdef");
    REQUIRE(server.streams[id].got_trailers);
    CHECK(header_value(server.streams[id].trailers, "x-checksum") == "1");
    CHECK(server.streams[id].ended);

    REQUIRE(server.session->submit_response(id, 200, {}, true));
    server.write(id, "reply", true);
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].body == "reply");
    CHECK(!client.streams[id].got_trailers);
    CHECK(client.streams[id].close_code == kNoError);
}

TEST_CASE("http2: response trailers after a finished body source") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    REQUIRE(server.session->submit_response(id, 200, {}, true));
    server.write(id, "grpc-ish", false);
    REQUIRE(server.session->submit_trailers(id, std::vector<HeaderView>{{"grpc-status", "0"}}));
    server.write(id, "", true);
    REQUIRE(pump(client, server));
    StreamRec& r = client.streams[id];
    CHECK(r.body == "grpc-ish");
    REQUIRE(r.got_trailers);
    CHECK(header_value(r.trailers, "grpc-status") == "0");
    CHECK(r.ended);
    CHECK(r.close_code == kNoError);
}

TEST_CASE("http2: PING is acknowledged with its opaque data") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    REQUIRE(pump(client, server));
    REQUIRE(client.session->ping(0x0102030405060708ull));
    REQUIRE(client.session->ping(42));
    REQUIRE(pump(client, server));
    REQUIRE(client.ping_acks.size() == 2);
    CHECK(client.ping_acks[0] == 0x0102030405060708ull);
    CHECK(client.ping_acks[1] == 42);
    CHECK(server.ping_acks.empty());
}

TEST_CASE("http2: RST_STREAM from the client mid-upload reaches the server") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request(post_request(), true);
    client.write(id, "first half");
    REQUIRE(pump(client, server));
    CHECK(server.streams[id].body == "first half");
    REQUIRE(client.session->rst_stream(id, kCancel));
    REQUIRE(pump(client, server));
    CHECK(server.streams[id].closed);
    CHECK(server.streams[id].close_code == kCancel);
    CHECK(client.streams[id].closed);
    CHECK(client.streams[id].close_code == kCancel);
    CHECK(server.session->stream_count() == 0);
    CHECK(client.session->stream_count() == 0);
}

TEST_CASE("http2: RST_STREAM from the server mid-download reaches the client") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    REQUIRE(server.session->submit_response(id, 200, {}, true));
    server.write(id, "partial");
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].body == "partial");
    REQUIRE(server.session->rst_stream(id, kInternalError));
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].closed);
    CHECK(client.streams[id].close_code == kInternalError);
    CHECK(!client.streams[id].ended);
    CHECK(server.streams[id].close_code == kInternalError);
}

TEST_CASE("http2: a request reset before it was sent is closed with the owner's code") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t id = client.request(get_request(), false);
    REQUIRE(client.session->rst_stream(id, kCancel));
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].closed);
    CHECK(client.streams[id].close_code == kCancel);
    CHECK(server.requests.empty());
    CHECK(client.session->stream_count() == 0);
}

TEST_CASE("http2: GOAWAY names the last stream; requests after it are refused") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t a = client.request(post_request(), true);
    int32_t b = client.request(post_request(), true);
    REQUIRE(pump(client, server));
    REQUIRE(server.requests.size() == 2);
    REQUIRE(server.session->goaway());
    REQUIRE(pump(client, server));
    REQUIRE(client.goaways.size() == 1);
    CHECK(client.goaways[0].first == b);
    CHECK(client.goaways[0].second == kNoError);

    // A stream opened after the GOAWAY never leaves: refused, safe to retry elsewhere.
    int32_t c = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    CHECK(client.streams[c].closed);
    CHECK(client.streams[c].close_code == kRefusedStream);
    CHECK(server.requests.size() == 2);

    // Streams in flight run to their end; then the session is over on both sides.
    CHECK(server.session->want_read());
    for (int32_t id : {a, b}) {
        client.write(id, "done", true);
        REQUIRE(pump(client, server));
        REQUIRE(server.session->submit_response(id, 200, {}, false));
    }
    REQUIRE(pump(client, server));
    CHECK(client.streams[a].close_code == kNoError);
    CHECK(client.streams[b].close_code == kNoError);
    CHECK(server.streams[b].body == "done");
    CHECK(!server.session->want_read());
    CHECK(!server.session->want_write());
    CHECK(!client.session->want_read());
    CHECK(!client.session->want_write());
}

TEST_CASE("http2: graceful shutdown: notice, then the final GOAWAY") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int32_t a = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    REQUIRE(server.session->shutdown_notice());
    // A request racing the notice (sent before the client saw it) is still served.
    int32_t b = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    REQUIRE(client.goaways.size() == 1);
    CHECK(client.goaways[0].first == 0x7fffffff);
    CHECK(server.requests.size() == 2);
    // After any GOAWAY the client opens nothing new.
    int32_t c = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    CHECK(client.streams[c].close_code == kRefusedStream);
    CHECK(server.requests.size() == 2);
    REQUIRE(server.session->goaway());
    REQUIRE(pump(client, server));
    REQUIRE(client.goaways.size() == 2);
    CHECK(client.goaways[1].first == b);
    for (int32_t id : {a, b}) {
        REQUIRE(server.session->submit_response(id, 200, {}, false));
    }
    REQUIRE(pump(client, server));
    CHECK(client.streams[b].status == 200);
    CHECK(!server.session->want_read());
    CHECK(!client.session->want_read());
    CHECK(!client.session->shutdown_notice());  // a server's move
}

TEST_CASE("http2: terminate sends GOAWAY and ends the session at once") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    client.request(post_request(), true);
    REQUIRE(pump(client, server));
    REQUIRE(server.session->terminate(kEnhanceYourCalm));
    REQUIRE(pump(client, server));
    REQUIRE(client.goaways.size() == 1);
    CHECK(client.goaways[0].second == kEnhanceYourCalm);
    CHECK(!server.session->want_read());
    CHECK(!server.session->want_write());
}

TEST_CASE("http2: the tunnel's control stream never ends and carries bytes both ways") {
    Peer edge(Role::Client);
    Peer connector(Role::Server);
    connector.on_request_hook = [&](int32_t id) {
        CHECK(header_value(connector.streams[id].headers,
                           "cf-cloudflared-proxy-connection-upgrade") == "control-stream");
        REQUIRE(connector.session->submit_response(id, 200, {}, true));
    };
    int32_t id = edge.request({{":method", "GET"},
                               {":scheme", "https"},
                               {":authority", "h2.cftunnel.com"},
                               {":path", "/"},
                               {"cf-cloudflared-proxy-connection-upgrade", "control-stream"}},
                              true);
    REQUIRE(pump(edge, connector));
    CHECK(edge.streams[id].status == 200);
    // The RPC: the connector calls, the edge answers, several times, on the same stream.
    for (int round = 0; round < 5; round++) {
        std::string call = "call-" + std::to_string(round);
        std::string ret = "return-" + std::to_string(round);
        connector.write(id, call);
        REQUIRE(pump(edge, connector));
        CHECK(edge.streams[id].body.ends_with(call));
        edge.write(id, ret);
        REQUIRE(pump(edge, connector));
        CHECK(connector.streams[id].body.ends_with(ret));
    }
    CHECK(!edge.streams[id].ended);
    CHECK(!connector.streams[id].ended);
    CHECK(!edge.streams[id].closed);
    CHECK(edge.session->stream_count() == 1);
    CHECK(connector.session->stream_count() == 1);
    CHECK(edge.session->want_read());
    CHECK(connector.session->want_read());
}

TEST_CASE("http2: stream user data is the owner's handle") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    int tag_a = 0;
    int tag_b = 0;
    int32_t id = client.request(get_request(), false, &tag_a);
    CHECK(client.session->stream_user_data(id) == &tag_a);
    server.on_request_hook = [&](int32_t sid) {
        CHECK(server.session->stream_user_data(sid) == nullptr);
        server.session->set_stream_user_data(sid, &tag_b);
    };
    REQUIRE(pump(client, server));
    CHECK(server.session->stream_user_data(id) == &tag_b);
    CHECK(server.session->stream_count() == 1);
    REQUIRE(server.session->submit_response(id, 200, {}, false));
    REQUIRE(pump(client, server));
    CHECK(server.session->stream_user_data(id) == nullptr);
    CHECK(client.session->stream_user_data(id) == nullptr);
}

TEST_CASE("http2: actions in the wrong role or on unknown streams are errors") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    CHECK(!server.session->submit_request(get_request(), false));
    CHECK(!client.session->submit_response(1, 200, {}, false));
    auto r = server.session->submit_response(7, 200, {}, false);
    REQUIRE(!r);
    CHECK(r.error().code == cfd::Errc::NotFound);
    CHECK(!server.session->rst_stream(7, kCancel));
    CHECK(!server.session->resume_data(7));
    REQUIRE(pump(client, server));
    int32_t id = client.request(get_request(), false);
    REQUIRE(pump(client, server));
    CHECK(!server.session->submit_response(id, 99, {}, false));
    CHECK(!server.session->submit_response(id, 1000, {}, false));
    server.session->consume(99, 10);  // unknown stream: ignored
    CHECK(std::string(error_code_name(kRefusedStream)) == "REFUSED_STREAM");
    CHECK(std::string(error_code_name(0x99)) == "UNKNOWN");
}

TEST_CASE("http2: the client keeps requests beyond the server's stream limit queued") {
    Settings s;
    s.max_concurrent_streams = 10;
    Peer client(Role::Client);
    Peer server(Role::Server, s);
    REQUIRE(pump(client, server));  // the client learns the limit
    std::vector<int32_t> ids;
    for (int i = 0; i < 25; i++) {
        ids.push_back(client.request(post_request(), true));
    }
    REQUIRE(pump(client, server));
    CHECK(server.requests.size() == 10);
    // Finishing streams lets the queued ones go, never more than 10 at once.
    server.on_end_hook = [&](int32_t id) {
        REQUIRE(server.session->submit_response(id, 200, {}, false));
    };
    for (int round = 0; round < 10 && server.requests.size() < 25; round++) {
        std::vector<int32_t> open = server.requests;
        for (int32_t id : open) {
            if (!client.streams[id].closed) {
                client.write(id, "x", true);
            }
        }
        REQUIRE(pump(client, server));
        CHECK(server.session->stream_count() <= 10);
    }
    CHECK(server.requests.size() == 25);
}

TEST_CASE("http2: outgoing names are lower-cased and connection-specific fields dropped") {
    Peer client(Role::Client);
    Peer server(Role::Server);
    // As an HTTP/1.1 request would arrive at the edge.
    int32_t id = client.request({{":method", "GET"},
                                 {":scheme", "https"},
                                 {":authority", "app.example.com"},
                                 {":path", "/"},
                                 {"Cf-Cloudflared-Proxy-Connection-Upgrade", "websocket"},
                                 {"Connection", "keep-alive, Upgrade"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"Upgrade", "websocket"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"TE", "trailers"},
                                 {"te", "gzip"},
                                 {"X-Mixed-Case", "Value Kept"}},
                                false);
    REQUIRE(pump(client, server));
    REQUIRE(server.requests.size() == 1);
    const Headers& h = server.streams[id].headers;
    CHECK(header_value(h, "cf-cloudflared-proxy-connection-upgrade") == "websocket");
    CHECK(header_value(h, "x-mixed-case") == "Value Kept");
    CHECK(header_value(h, "te") == "trailers");
    CHECK(find_header(h, "connection") == nullptr);
    CHECK(find_header(h, "keep-alive") == nullptr);
    CHECK(find_header(h, "upgrade") == nullptr);
    CHECK(find_header(h, "transfer-encoding") == nullptr);
    CHECK(h.size() == 7);
    // And on a response.
    REQUIRE(server.session->submit_response(
        id, 200, std::vector<HeaderView>{{"Content-Type", "text/plain"}, {"Connection", "close"}},
        false));
    REQUIRE(pump(client, server));
    CHECK(client.streams[id].status == 200);
    CHECK(header_value(client.streams[id].headers, "content-type") == "text/plain");
    CHECK(find_header(client.streams[id].headers, "connection") == nullptr);
    CHECK(client.streams[id].close_code == kNoError);
}

TEST_CASE("http2: the edge closing gracefully lets its open streams finish") {
    Peer edge(Role::Client);
    Peer connector(Role::Server);
    int32_t id = edge.request(get_request(), false);
    REQUIRE(pump(edge, connector));
    REQUIRE(edge.session->goaway());
    REQUIRE(pump(edge, connector));
    REQUIRE(connector.goaways.size() == 1);
    CHECK(connector.goaways[0].first == 0);  // the connector opened no streams
    CHECK(edge.session->want_read());        // a response is still due
    REQUIRE(connector.session->submit_response(id, 200, {}, true));
    connector.write(id, "last words", true);
    REQUIRE(pump(edge, connector));
    CHECK(edge.streams[id].body == "last words");
    CHECK(edge.streams[id].close_code == kNoError);
    CHECK(!edge.session->want_read());
    CHECK(!edge.session->want_write());
    CHECK(!connector.session->want_read());
}
