// The TLS steps OriginConn and OriginH2Conn share (origin_conns.h): starting the client, the
// feed errors, and moving ciphertext to the socket.
#include <algorithm>

#include "cfd/core/log.h"
#include "connector/origin_conns.h"

namespace cfd::connector {

bool start_origin_tls(net::Connection& c, const OriginService& svc, const std::string& name,
                      std::optional<OriginTls>& tls) {
    auto t = OriginTls::start(*svc.tls_ctx, name);
    if (!t) {
        log::error("Unable to reach the origin service: TLS setup failed",
                   {{"originService", svc.url},
                    {"serverName", name},
                    {"error", tls::describe(t.error())}});
        c.close(Error{Errc::Tls, t.error().sys, "tls with the origin"});
        return false;
    }
    tls.emplace(std::move(*t));
    return true;
}

bool close_on_tls_error(net::Connection& c, const OriginService& svc, const OriginTls& tls,
                        bool was_done, const Status& st) {
    if (st || st.error().code == Errc::Closed) {
        return false;
    }
    log::error(
        was_done ? "Origin TLS connection failed"
                 : "Unable to reach the origin service: TLS handshake failed",
        {{"originService", svc.url}, {"serverName", tls.server_name()}, {"error", tls.detail()}});
    c.close(Error{Errc::Tls, st.error().sys,
                  was_done ? "tls with the origin" : "tls handshake with the origin"});
    return true;
}

void send_tls_output(net::Connection& c, OriginTls& tls) {
    std::string_view out = tls.pending_output();
    while (!out.empty() && c.writable()) {
        size_t n = std::min(out.size(), c.room());
        if (n == 0 ||
            !c.send(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(out.data()), n))) {
            break;
        }
        tls.consume_output(n);
        out = tls.pending_output();
    }
}

}  // namespace cfd::connector
