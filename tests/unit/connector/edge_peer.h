// An edge made of the real pieces, sans I/O, for the connector's tests: a TLS server session
// (certificate from a throwaway CA), an HTTP/2 CLIENT session that opens the control stream and
// proxied requests, and an rpc::RegistrationServer that accepts or refuses registrations.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cfd/connector/tunnel_session.h"
#include "cfd/http2/session.h"
#include "cfd/rpc/server.h"
#include "cfd/tls/certgen.h"
#include "cfd/tls/context.h"
#include "cfd/tls/session.h"
#include "../tunnel_pki.h"

namespace cfd::connector::test {

inline const cfd::test::TunnelPki& pki() { return cfd::test::tunnel_pki(); }

inline tls::Context client_ctx() {
    tls::ClientOptions o;
    o.ca_pem = pki().ca.cert_pem;
    auto c = tls::Context::client(o);
    REQUIRE(c);
    return std::move(*c);
}

inline tls::Context server_ctx() {
    tls::ServerOptions o;
    o.cert_pem = pki().leaf.cert_pem;
    o.key_pem = pki().leaf.key_pem;
    auto c = tls::Context::server(o);
    REQUIRE(c);
    return std::move(*c);
}

inline TunnelIdentity sample_identity(uint8_t index = 0) {
    TunnelIdentity id;
    id.account_tag = "5ab4e9dfbd435d24068829fda0077963";
    id.secret = std::string("\x01\x02secret\xff\x00", 10);
    id.tunnel_id = Uuid::parse("610a53bd-ed0c-4afe-92b5-ca0238153410").value();
    id.connector_id = Uuid::parse("71490dec-190f-4652-a70a-cd001fe6fdcf").value();
    id.conn_index = index;
    id.origin_local_ip = std::string("\x7f\x00\x00\x01", 4);
    return id;
}

struct EdgeStream {
    int status = 0;
    http2::Headers headers;
    std::string body;
    bool ended = false;
    bool closed = false;
    uint32_t close_code = 0xffffffff;
    std::string out;  // request body to send
    size_t out_off = 0;
    bool out_end = false;
};

class EdgePeer : public http2::Handler {
public:
    // accept: answer registrations with `details`; otherwise refuse with `refusal`.
    std::optional<rpc::ConnectionDetails> accept;
    rpc::ConnectionError refusal{"Unauthorized: Invalid tunnel secret", 0, false};

    EdgePeer() : ctx_(server_ctx()) {
        auto s = tls::Session::server(ctx_);
        REQUIRE(s);
        tls.emplace(std::move(*s));
        rpc::ConnectionDetails d;
        d.uuid = Uuid::parse("0f0e0d0c-0b0a-4908-8706-050403020100").value();
        d.location_name = "DFW";
        accept = d;
    }

    // In slices, reading the plaintext after each: TLS takes a bounded amount of input at once.
    void feed(std::string_view bytes) {
        while (!bytes.empty()) {
            size_t n = std::min<size_t>(bytes.size(), 16384);
            feed_slice(bytes.substr(0, n));
            bytes.remove_prefix(n);
        }
    }
    void feed_slice(std::string_view bytes) {
        if (handshake_failed || !tls->feed(bytes)) {
            return;
        }
        if (!h2) {
            auto h = tls->handshake();
            if (!h) {
                handshake_failed = true;
                return;
            }
            if (*h == tls::HandshakeStep::NeedMore) {
                return;
            }
            auto s = http2::Session::create(http2::Role::Client, *this);
            REQUIRE(s);
            h2 = std::move(*s);
            if (open_control) {
                std::vector<http2::HeaderView> hv{{":method", "GET"},
                                                  {":scheme", "https"},
                                                  {":authority", "h2.cftunnel.com"},
                                                  {":path", "/"},
                                                  {http2::kUpgradeHeader, "control-stream"}};
                auto id = h2->submit_request(hv, true);
                REQUIRE(id);
                control_id = *id;
            }
        }
        char buf[16384];
        for (;;) {
            auto r = tls->read(buf, sizeof(buf));
            if (!r) {
                tls_closed = true;
                return;
            }
            if (*r == 0) {
                break;
            }
            if (!h2->recv(std::string_view(buf, *r))) {
                h2_errors++;
            }
        }
    }

    void pump() {
        if (!h2) {
            return;
        }
        std::string& plain = plain_pending;
        for (;;) {
            auto n = h2->send(plain, 1 << 20);
            REQUIRE(n);
            if (plain.empty()) {
                return;
            }
            auto w = tls->write(plain);
            REQUIRE(w);
            plain.erase(0, *w);
            if (*w == 0) {
                return;  // over TLS's watermark: the rest goes next time
            }
        }
    }

    int32_t request(std::vector<http2::HeaderView> headers, std::string body = {},
                    bool end = true) {
        bool has_body = !body.empty() || !end;
        auto id = h2->submit_request(headers, has_body);
        REQUIRE(id);
        EdgeStream& s = streams[*id];
        s.out = std::move(body);
        s.out_end = end;
        return *id;
    }
    void write(int32_t id, std::string_view bytes, bool end) {
        EdgeStream& s = streams[id];
        s.out.append(bytes);
        s.out_end = end;
        REQUIRE(h2->resume_data(id));
    }

    // http2::Handler
    void on_request(int32_t, http2::Headers&&, bool) override { FAIL("edge got a request"); }
    void on_response(int32_t id, int status, http2::Headers&& headers, bool end) override {
        EdgeStream& s = streams[id];
        s.status = status;
        s.headers = std::move(headers);
        s.ended = end;
    }
    void on_data(int32_t id, std::string_view bytes) override {
        h2->consume(id, bytes.size());
        if (id == control_id) {
            std::vector<rpc::ServerEvent> evs;
            if (!rpc.feed(bytes, control_out, evs)) {
                rpc_errors++;
            }
            for (auto& ev : evs) {
                if (auto* reg = std::get_if<rpc::RegisterCall>(&ev)) {
                    registrations.push_back(reg->request);
                    if (accept) {
                        REQUIRE(rpc.accept_registration(reg->id, *accept, control_out));
                    } else {
                        REQUIRE(rpc.refuse_registration(reg->id, refusal, control_out));
                    }
                } else if (auto* un = std::get_if<rpc::UnregisterCall>(&ev)) {
                    unregistrations++;
                    REQUIRE(rpc.complete(un->id, control_out));
                }
            }
            (void)h2->resume_data(control_id);
            return;
        }
        streams[id].body.append(bytes);
    }
    void on_stream_end(int32_t id) override { streams[id].ended = true; }
    void on_stream_close(int32_t id, uint32_t code) override {
        EdgeStream& s = streams[id];
        s.closed = true;
        s.close_code = code;
    }
    http2::BodyChunk on_body_ready(int32_t id, size_t max) override {
        if (id == control_id) {
            return {std::min(max, control_out.size()), false};
        }
        EdgeStream& s = streams[id];
        size_t n = std::min(max, s.out.size() - s.out_off);
        return {n, s.out_end && n == s.out.size() - s.out_off};
    }
    void on_body_copy(int32_t id, std::span<char> dest) override {
        if (id == control_id) {
            std::memcpy(dest.data(), control_out.data(), dest.size());
            control_out.erase(0, dest.size());
            return;
        }
        EdgeStream& s = streams[id];
        std::memcpy(dest.data(), s.out.data() + s.out_off, dest.size());
        s.out_off += dest.size();
    }

    bool open_control = true;
    std::string plain_pending;
    tls::Context ctx_;
    std::optional<tls::Session> tls;
    std::unique_ptr<http2::Session> h2;
    rpc::RegistrationServer rpc;
    int32_t control_id = 0;
    std::string control_out;
    std::vector<rpc::RegisterRequest> registrations;
    int unregistrations = 0;
    int rpc_errors = 0;
    int h2_errors = 0;
    bool tls_closed = false;
    bool handshake_failed = false;
    std::map<int32_t, EdgeStream> streams;
};

// Moves bytes between the connector's session and the edge until neither has anything to say.
// `between` runs after each round (the proxy's origin side, in the proxy tests). False when
// that took more than `max_rounds`: a livelock fails instead of hanging.
template <class F>
bool pump(TunnelSession& conn, EdgePeer& edge, F between, int max_rounds = 10000) {
    for (int i = 0; i < max_rounds; i++) {
        size_t moved = 0;
        REQUIRE(conn.pump());
        auto out = conn.pending_output();
        if (!out.empty()) {
            std::string copy(out);
            conn.consume_output(copy.size());
            edge.feed(copy);
            moved += copy.size();
        }
        edge.pump();
        auto back = edge.tls->pending_output();
        if (!back.empty()) {
            std::string copy(back);
            edge.tls->consume_output(copy.size());
            if (conn.state() != TunnelSession::State::Closed) {
                (void)conn.feed(copy);
            }
            moved += copy.size();
        }
        moved += between();
        if (moved == 0) {
            return true;
        }
    }
    return false;
}

inline bool pump(TunnelSession& conn, EdgePeer& edge) {
    return pump(conn, edge, [] { return size_t(0); });
}

}  // namespace cfd::connector::test
