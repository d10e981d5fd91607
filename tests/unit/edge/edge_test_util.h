// A connector-like peer built from the real pieces (tls::Session client, http2::Session in the
// server role, rpc::RegistrationClient), an edge-side owner that records TunnelConn events, and
// an in-memory pump between them.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cfd/edge/tunnel_conn.h"
#include "cfd/http2/session.h"
#include "cfd/http2/tunnel_headers.h"
#include "cfd/rpc/client.h"
#include "cfd/tls/certgen.h"
#include "cfd/tls/context.h"
#include "cfd/tls/session.h"
#include "../test_bytes.h"
#include "../tunnel_pki.h"

namespace cfd::edge::test {

using cfd::test::Fnv;
using cfd::test::gen_byte;
using cfd::test::gen_hash;

inline const cfd::test::TunnelPki& pki() { return cfd::test::tunnel_pki(); }
inline const tls::Context& server_ctx() {
    static tls::Context c = [] {
        tls::ServerOptions o;
        o.cert_pem = pki().leaf.cert_pem;
        o.key_pem = pki().leaf.key_pem;
        auto r = tls::Context::server(o);
        REQUIRE(r);
        return std::move(*r);
    }();
    return c;
}
inline const tls::Context& client_ctx() {
    static tls::Context c = [] {
        tls::ClientOptions o;
        o.ca_pem = pki().ca.cert_pem;
        auto r = tls::Context::client(o);
        REQUIRE(r);
        return std::move(*r);
    }();
    return c;
}

// A proxied stream as the connector sees it.
struct OriginStream {
    http2::Headers request;
    std::string body;  // kept up to 1 MiB
    uint64_t body_bytes = 0;
    Fnv hash;
    bool ended = false;
    bool closed = false;
    uint32_t close_code = 0;
    uint64_t pending_consume = 0;
    // response body source: queued bytes then generated ones
    std::string out;
    uint64_t gen_seed = 0;
    uint64_t gen_left = 0;
    uint64_t gen_pos = 0;
    bool out_end = false;
};

// The connector: TLS client, HTTP/2 server, RPC client. `respond` decides each request.
class Connector : public http2::Handler {
public:
    Connector() {
        auto s = tls::Session::client(client_ctx());
        REQUIRE(s);
        tls.emplace(std::move(*s));
    }

    // --- the pieces
    std::optional<tls::Session> tls;
    std::unique_ptr<http2::Session> h2;
    rpc::RegistrationClient rpc;
    std::string rpc_out;  // waiting for the control stream's body
    int32_t control_sid = -1;
    bool control_deferred = false;
    std::vector<rpc::ClientEvent> rpc_events;
    std::map<int32_t, OriginStream> streams;
    std::vector<int32_t> requests;
    bool auto_consume = true;
    bool answer_pings = true;  // false: stop reading (a silent peer)
    rpc::RegisterRequest reg;
    std::function<void(int32_t)> on_request_hook;
    std::function<void(int32_t)> on_end_hook;

    void set_request(std::string_view account, std::string_view secret, const Uuid& tunnel) {
        reg.auth.account_tag = std::string(account);
        reg.auth.tunnel_secret = std::string(secret);
        reg.tunnel_id = tunnel;
        reg.conn_index = 0;
        reg.options.client.client_id = Uuid::random();
        reg.options.client.version = "2026.11.0";
        reg.options.client.arch = "linux_amd64";
        reg.options.origin_local_ip = std::string("\x7f\x00\x00\x01", 4);
    }

    // Called once TLS is up.
    void start_h2() {
        http2::Settings st;
        st.stream_window = 65535;
        auto s = http2::Session::create(http2::Role::Server, *this, st);
        REQUIRE(s);
        h2 = std::move(*s);
    }

    void respond(int32_t id, int status, std::vector<http2::HeaderPair> headers, bool has_body) {
        std::string ser = http2::serialize_user_headers(headers);
        std::vector<http2::HeaderView> hv = {{http2::kResponseHeaders, ser},
                                             {http2::kResponseMeta, http2::kMetaOrigin}};
        REQUIRE(h2->submit_response(id, status, hv, has_body));
    }
    void write(int32_t id, std::string_view bytes, bool end) {
        auto& s = streams[id];
        s.out.append(bytes);
        s.out_end = end;
        REQUIRE(h2->resume_data(id));
    }
    void consume_all(int32_t id) {
        auto& s = streams[id];
        h2->consume(id, s.pending_consume);
        s.pending_consume = 0;
    }

    void on_request(int32_t id, http2::Headers&& headers, bool end) override {
        if (http2::classify_stream(headers) == http2::StreamKind::Control) {
            control_sid = id;
            REQUIRE(h2->submit_response(id, 200, {}, true));
            rpc.start(rpc_out);
            REQUIRE(rpc.register_connection(reg, rpc_out));
            return;
        }
        auto& s = streams[id];
        s.request = std::move(headers);
        s.ended = end;
        requests.push_back(id);
        if (on_request_hook) {
            on_request_hook(id);
        }
    }
    void on_response(int32_t, int, http2::Headers&&, bool) override {}
    void on_data(int32_t id, std::string_view bytes) override {
        if (id == control_sid) {
            h2->consume(id, bytes.size());
            std::string out;
            REQUIRE(rpc.feed(bytes, out, rpc_events));
            rpc_out += out;
            kick_control();
            return;
        }
        auto& s = streams[id];
        s.body_bytes += bytes.size();
        s.hash.add(bytes);
        if (s.body.size() < (1 << 20)) {
            s.body.append(bytes);
        }
        if (auto_consume) {
            h2->consume(id, bytes.size());
        } else {
            s.pending_consume += bytes.size();
        }
    }
    void on_stream_end(int32_t id) override {
        streams[id].ended = true;
        if (on_end_hook) {
            on_end_hook(id);
        }
    }
    void on_stream_close(int32_t id, uint32_t code) override {
        auto& s = streams[id];
        s.closed = true;
        s.close_code = code;
    }
    http2::BodyChunk on_body_ready(int32_t id, size_t max) override {
        if (id == control_sid) {
            if (rpc_out.empty()) {
                control_deferred = true;
                return {};
            }
            return {std::min(max, rpc_out.size()), false};
        }
        auto& s = streams[id];
        size_t have = s.out.size();
        if (have == 0) {
            have = static_cast<size_t>(std::min<uint64_t>(s.gen_left, max));
        }
        size_t n = std::min(have, max);
        bool end = s.out_end && n == s.out.size() + s.gen_left;
        return {n, end};
    }
    void on_body_copy(int32_t id, std::span<char> dest) override {
        if (id == control_sid) {
            std::memcpy(dest.data(), rpc_out.data(), dest.size());
            rpc_out.erase(0, dest.size());
            return;
        }
        auto& s = streams[id];
        if (!s.out.empty()) {
            std::memcpy(dest.data(), s.out.data(), dest.size());
            s.out.erase(0, dest.size());
            return;
        }
        for (char& c : dest) {
            c = gen_byte(s.gen_seed, s.gen_pos++);
        }
        s.gen_left -= dest.size();
    }
    void kick_control() {
        if (control_deferred && !rpc_out.empty()) {
            control_deferred = false;
            REQUIRE(h2->resume_data(control_sid));
        }
    }

    // Feeds ciphertext from the edge.
    void feed(std::string_view bytes) {
        if (!answer_pings) {
            return;
        }
        REQUIRE(tls->feed(bytes));
        if (!tls->handshake_done()) {
            auto hs = tls->handshake();
            REQUIRE(hs);
            if (*hs != tls::HandshakeStep::Done) {
                return;
            }
            start_h2();
        }
        char buf[16384];
        for (;;) {
            auto n = tls->read(buf, sizeof buf);
            if (!n) {
                closed_by_edge = true;
                return;
            }
            if (*n == 0) {
                break;
            }
            REQUIRE(h2->recv(std::string_view(buf, *n)));
        }
    }
    // Produces ciphertext for the edge.
    void flush() {
        if (!tls->handshake_done()) {
            auto hs = tls->handshake();
            REQUIRE(hs);
            if (*hs == tls::HandshakeStep::Done && !h2) {
                start_h2();
            }
        }
        if (!h2) {
            return;
        }
        kick_control();
        // Frames TLS did not take yet (its output is over the high-water mark) wait in `held_`.
        for (int i = 0; i < 64; i++) {
            if (held_.empty()) {
                auto n = h2->send(held_);
                REQUIRE(n);
                if (held_.empty()) {
                    break;
                }
            }
            auto w = tls->write(held_);
            REQUIRE(w);
            held_.erase(0, *w);
            if (!held_.empty()) {
                break;
            }
        }
    }
    bool closed_by_edge = false;
    std::string held_;
};

// The edge's side: records TunnelConn events; answers registrations when told.
struct EdgeStream {
    int status = 0;
    std::vector<http2::HeaderPair> headers;
    bool got_response = false;
    std::string body;
    uint64_t body_bytes = 0;
    Fnv hash;
    uint64_t pending_consume = 0;
    bool ended = false;
    bool closed = false;
    uint32_t close_code = 0;
    int room_events = 0;
};

class EdgeOwner : public TunnelEvents {
public:
    std::vector<std::pair<rpc::CallId, rpc::RegisterRequest>> registers;
    int unregisters = 0;
    std::map<int32_t, EdgeStream> streams;
    bool auto_consume = true;
    std::function<void(TunnelConn&, int32_t)> on_room_hook;

    void on_register(TunnelConn&, rpc::CallId id, const rpc::RegisterRequest& req) override {
        registers.emplace_back(id, req);
    }
    void on_unregister(TunnelConn&) override { unregisters++; }
    void on_response(TunnelConn&, int32_t sid, int status, std::vector<http2::HeaderPair>&& headers,
                     bool end) override {
        auto& s = streams[sid];
        s.status = status;
        s.headers = std::move(headers);
        s.got_response = true;
        s.ended = end;
    }
    void on_data(TunnelConn& t, int32_t sid, std::string_view bytes) override {
        auto& s = streams[sid];
        s.body_bytes += bytes.size();
        s.hash.add(bytes);
        if (s.body.size() < (1 << 20)) {
            s.body.append(bytes);
        }
        if (auto_consume) {
            t.consume(sid, bytes.size());
        } else {
            s.pending_consume += bytes.size();
        }
    }
    void on_stream_end(TunnelConn&, int32_t sid) override { streams[sid].ended = true; }
    void on_stream_close(TunnelConn&, int32_t sid, uint32_t code) override {
        auto& s = streams[sid];
        s.closed = true;
        s.close_code = code;
    }
    void on_body_room(TunnelConn& t, int32_t sid) override {
        streams[sid].room_events++;
        if (on_room_hook) {
            on_room_hook(t, sid);
        }
    }
};

// Moves ciphertext both ways until quiet; false on a livelock. At most kPumpSlice bytes go
// each way per round, as a socket's receive buffer would hand them over (a TLS session refuses
// to buffer much more than that unread).
inline constexpr size_t kPumpSlice = 64 << 10;
inline bool pump(TunnelConn& edge, Connector& c, int max_rounds = 100000) {
    for (int i = 0; i < max_rounds; i++) {
        size_t moved = 0;
        c.flush();
        auto co = c.tls->pending_output();
        if (!co.empty()) {
            std::string bytes(co.substr(0, kPumpSlice));
            c.tls->consume_output(bytes.size());
            edge.feed(bytes);
            moved += bytes.size();
        }
        edge.flush();
        auto eo = edge.pending_output();
        if (!eo.empty()) {
            std::string bytes(eo.substr(0, kPumpSlice));
            edge.consume_output(bytes.size());
            c.feed(bytes);
            moved += bytes.size();
        }
        if (moved == 0) {
            return true;
        }
    }
    return false;
}

inline TimePoint t0() {
    return TimePoint{} + std::chrono::hours(1);
}

}  // namespace cfd::edge::test
