// TLS contexts: the long-lived half of wolfSSL (certificates, trust anchors, cipher policy, ALPN),
// shared by every Session created from it. Only src/tls sees wolfSSL's headers; the rest of the
// tree holds contexts through this wrapper.
//
// Policy, the same for both roles: TLS 1.2 and 1.3 (1.3 preferred), AEAD suites only
// (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305 where the library has them), ECDHE key exchange.
//
// Lifetime: wolfSSL reference-counts its CTX and every session holds a reference, so a Context may
// be destroyed while sessions made from it are still running (certificate reloads rely on it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"

struct WOLFSSL_CTX;

namespace cfd::tls {

// The server name the connector dials and verifies by default (cloudflared's).
inline constexpr std::string_view kTunnelServerName = "h2.cftunnel.com";
// Debian's bundle of public CAs, used by clients given no CA of their own.
inline constexpr const char* kSystemCaFile = "/etc/ssl/certs/ca-certificates.crt";
// Longest ALPN protocol name we accept in configuration (RFC 7301 allows 255).
inline constexpr size_t kMaxAlpnName = 255;

struct ServerOptions {
    // The certificate chain (leaf first) and its private key, in PEM: from files, or in memory
    // when the *_pem strings are non-empty (they win over the files).
    std::string cert_file;
    std::string key_file;
    std::string cert_pem;
    std::string key_pem;
    // Protocols this server accepts, in its order of preference, e.g. {"h2", "http/1.1"}. Empty:
    // no ALPN. A client offering none of them still connects, with no protocol selected.
    std::vector<std::string> alpn;
    // Stateless resumption tickets (TLS 1.3 and 1.2), encrypted with keys private to this context.
    bool session_tickets = true;
};

struct ClientOptions {
    // Trust anchors in PEM: a file, or in memory when ca_pem is non-empty. Neither: kSystemCaFile.
    std::string ca_file;
    std::string ca_pem;
    // Turns certificate and name verification off. Never the default.
    bool insecure_skip_verify = false;
    // Protocols offered, in order. The tunnel connector offers none (DESIGN.md §2).
    std::vector<std::string> alpn;
};

class Context {
public:
    [[nodiscard]] static Result<Context> server(const ServerOptions& opts);
    [[nodiscard]] static Result<Context> client(const ClientOptions& opts);

    Context(Context&& o) noexcept;
    Context& operator=(Context&& o) noexcept;
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    ~Context();

    bool is_server() const { return server_; }
    bool verifies_peer() const { return verify_; }
    // The ALPN list in wolfSSL's form: names joined by ','. Empty when ALPN is off.
    const std::string& alpn_list() const { return alpn_; }
    WOLFSSL_CTX* native() const { return ctx_; }

private:
    Context(WOLFSSL_CTX* ctx, bool server, bool verify, std::string alpn)
        : ctx_(ctx), server_(server), verify_(verify), alpn_(std::move(alpn)) {}
    void reset();

    WOLFSSL_CTX* ctx_ = nullptr;  // owned: one reference, dropped by reset()
    bool server_ = false;
    bool verify_ = true;          // client: check the peer's chain and name
    std::string alpn_;
};

// For `cfdtunnel version` and start-up logs: wolfSSL's version, and whether this build uses
// AES-NI (the Debian fallback library does not, and is about 20 times slower at AES-GCM).
const char* library_version();
bool library_has_aesni();

// wolfSSL's text for one of its error codes (Error::sys of an Errc::Tls error), for logs.
std::string error_string(int code);
// Error::message() plus wolfSSL's text when the error came from wolfSSL.
std::string describe(const Error& e);

}  // namespace cfd::tls
