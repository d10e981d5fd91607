// A TLS client over an origin connection's bytes, sans I/O: OriginConn and OriginH2Conn
// (origin_conns.h) feed it what the socket received and send what it produces; tests drive it
// in memory.
//
// It drives tls::Session by the rules TunnelSession follows toward the edge: ciphertext goes in
// slices of at most kFeedSlice; when wolfSSL's input is full (Busy) the plaintext is read out
// first and the slice offered again; every call may produce output (handshake flights, alerts),
// so the caller sends pending_output() after each one, errors included.
#pragma once

#include <string>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/tls/session.h"

namespace cfd::connector {

// The server name a request head asks for: its Host header's value without the port (an IPv6
// literal without its brackets), lower case; empty when the head has no Host. For origins
// whose certificate is checked against the request's own host (unix+tls:, matchSNItoHost).
std::string sni_from_request_head(std::string_view head);
// The same from a Host value ("App.example.com:8443", "[::1]:443") alone.
std::string sni_from_host_value(std::string_view host);

class OriginTls {
public:
    static constexpr size_t kFeedSlice = 64 << 10;

    // Starts the handshake toward `server_name` (SNI and verified name; an address literal is
    // verified against the certificate's addresses): the ClientHello is in pending_output().
    [[nodiscard]] static Result<OriginTls> start(const tls::Context& ctx,
                                                 std::string_view server_name);

    // Ciphertext received. Decrypted bytes are appended to `plain`. Errors: Errc::Closed when
    // the origin sent close_notify (what came before it is in `plain`), Errc::Tls otherwise
    // (detail() says why, with wolfSSL's text).
    [[nodiscard]] Status feed(std::string_view ciphertext, std::string& plain);
    // Encrypts a prefix of `plain`; how much it took (0 when the output is over its
    // watermark, or before the handshake is done).
    [[nodiscard]] Result<size_t> write(std::string_view plain);

    bool handshake_done() const { return tls_.handshake_done(); }
    // The protocol the origin selected in ALPN ("h2"), empty when none.
    std::string_view alpn() const { return tls_.alpn(); }
    std::string_view pending_output() const { return tls_.pending_output(); }
    void consume_output(size_t n) { tls_.consume_output(n); }
    // For an idle connection: gives back the empty buffers' memory.
    void trim() { (void)tls_.trim(); }
    const std::string& detail() const { return detail_; }
    const std::string& server_name() const { return server_name_; }
    // "TLSv1.3 TLS13-AES128-GCM-SHA256", for debug logs.
    std::string describe() const;

private:
    OriginTls(tls::Session s, std::string name)
        : tls_(std::move(s)), server_name_(std::move(name)) {}
    Status read_plaintext(std::string& plain);
    Status fail(Error e, std::string_view what);

    tls::Session tls_;
    std::string server_name_;
    std::string detail_;
};

}  // namespace cfd::connector
