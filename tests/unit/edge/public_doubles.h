// The pieces around a PublicSession in the edge's unit tests: the tunnel connection's owner (it
// routes stream events to sessions and records registration calls), the client's side of the
// connection (what the session sent, whether it closed), and a router over one connection.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "cfd/edge/public_session.h"
#include "cfd/edge/routes.h"
#include "cfd/edge/tunnel_conn.h"

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

}  // namespace cfd::edge::test
