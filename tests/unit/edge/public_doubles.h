// The pieces around a PublicSession (or PublicH2Session) in the edge's unit tests: the tunnel
// connection's owner (it routes stream events to sessions and records registration calls), the
// client's side of the connection (what the session sent, whether it closed), a router over one
// connection, two cores' mailboxes (Bus), and two connectors of one tunnel (Replica,
// PairRouter).
#pragma once

#include <algorithm>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cfd/edge/messages.h"
#include "cfd/edge/public_session.h"
#include "cfd/edge/relay.h"
#include "cfd/edge/routes.h"
#include "cfd/edge/tunnel_conn.h"
#include "edge_test_util.h"

namespace cfd::edge::test {

struct Owner : StreamRouter {
    std::vector<rpc::CallId> calls;
    void on_register(TunnelConn&, rpc::CallId id, const rpc::RegisterRequest&) override {
        calls.push_back(id);
    }
};

struct Io : PublicIo {
    std::string out;
    bool is_writable = true;
    bool closed_after_flush = false;
    bool aborted = false;
    bool send(std::string_view b) override {
        out.append(b);
        return true;
    }
    bool writable() const override { return is_writable; }
    void close_after_flush() override { closed_after_flush = true; }
    void abort() override { aborted = true; }
};

// Routes the table's names to `conn`, or through `relay` when set (another core's connection).
struct Router : PublicRouter {
    RouteTable table;
    TunnelConn* conn = nullptr;
    StreamTarget* relay = nullptr;
    RouteResult route(std::string_view host, std::span<const Uuid>) override {
        if (!table.resolve(host)) {
            return {};
        }
        if (!conn || !conn->registered()) {
            return {RouteResult::Kind::NoConnector, nullptr, {}};
        }
        if (relay != nullptr) {
            return {RouteResult::Kind::Ok, relay, {}};
        }
        return {RouteResult::Kind::Ok, conn, {}};
    }
};

// Says Wait (the tunnel's connector is expected here soon) until `arrived`, then routes as
// `real` does.
struct WaitRouter : PublicRouter {
    explicit WaitRouter(PublicRouter& r) : real(r) {}
    PublicRouter& real;
    bool arrived = false;
    RouteResult route(std::string_view host, std::span<const Uuid> avoid) override {
        if (!arrived) {
            return {RouteResult::Kind::Wait, nullptr, {}};
        }
        return real.route(host, avoid);
    }
};

// Two cores' mailboxes in memory: core 0 holds the public client (RelayClient), core 1 the
// tunnel connection (RelayServer). Messages move only in deliver(), never inside a post.
struct Bus {
    struct Host : RelayHost {
        Bus* bus = nullptr;
        uint32_t self = 0;
        void relay_post(uint32_t to, const reactor::Message& m) override {
            reactor::Message c = m;
            c.from = self;
            bus->queues[to].push_back(c);
            bus->count(c, +1);
        }
        StreamTarget* local_target(std::string_view, const Uuid*) override {
            TunnelConn* t = bus->conn;
            return t != nullptr && t->registered() ? t : nullptr;
        }
    };
    TunnelConn* conn = nullptr;
    Host a, b;
    std::deque<reactor::Message> queues[2];
    RelayClient client{a, 1};
    RelayServer server{b};
    int64_t bytes = 0;  // payload bytes inside the mailboxes now
    int64_t max_bytes = 0;

    Bus() {
        a.bus = this;
        b.bus = this;
        a.self = 0;
        b.self = 1;
    }
    ~Bus() {
        for (auto& q : queues) {
            for (auto& m : q) {
                discard_relay_message(m);
            }
        }
    }
    void count(const reactor::Message& m, int sign) {
        bytes += sign * static_cast<int64_t>(relay_payload_bytes(m));
        max_bytes = std::max(max_bytes, bytes);
    }
    // Delivers what is queued now; false when nothing was.
    bool deliver() {
        bool any = false;
        for (int guard = 0; guard < 100000 && !(queues[0].empty() && queues[1].empty()); guard++) {
            any = true;
            for (uint32_t to = 0; to < 2; to++) {
                if (queues[to].empty()) {
                    continue;
                }
                reactor::Message m = queues[to].front();
                queues[to].pop_front();
                count(m, -1);
                if (to == 1) {
                    server.on_message(m);
                } else {
                    client.on_message(m);
                }
            }
        }
        return any;
    }
};

// Two connectors of one tunnel, each with its own connection; the router prefers the first one
// not avoided, the way Worker::route() skips connectors a retry already tried.
struct Replica {
    Owner owner;
    Connector conn;
    std::unique_ptr<TunnelConn> edge;
    Uuid id = Uuid::random();
    explicit Replica(const TunnelOptions& o = {}) {
        conn.set_request("acct", "secret", Uuid::random());
        edge = std::make_unique<TunnelConn>(server_ctx(), owner, t0(), o);
        REQUIRE(pump(*edge, conn));
        rpc::ConnectionDetails d;
        d.uuid = Uuid::random();
        edge->accept_registration(owner.calls.at(0), d);
        REQUIRE(pump(*edge, conn));
        REQUIRE(edge->registered());
    }
};

struct PairRouter : PublicRouter {
    RouteTable table;
    Replica* r[2] = {};
    int retries = 0;
    RouteResult route(std::string_view host, std::span<const Uuid> avoid) override {
        if (!table.resolve(host)) {
            return {};
        }
        for (Replica* x : r) {
            bool skip = std::find(avoid.begin(), avoid.end(), x->id) != avoid.end();
            if (!skip && x->edge->registered()) {
                return {RouteResult::Kind::Ok, x->edge.get(), x->id};
            }
        }
        // Every one avoided: any that is up (another of its connections may still serve).
        for (Replica* x : r) {
            if (x->edge->registered()) {
                return {RouteResult::Kind::Ok, x->edge.get(), x->id};
            }
        }
        return {RouteResult::Kind::NoConnector, nullptr, {}};
    }
    void on_retry() override { retries++; }
};

}  // namespace cfd::edge::test
