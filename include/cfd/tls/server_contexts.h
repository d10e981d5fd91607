// Certificate selection by SNI: a set of server Contexts keyed by host name, with a default.
// Names are exact ("app.example.com") or a leading wildcard of one label ("*.example.com"
// matches "a.example.com", not "example.com" nor "a.b.example.com"), compared case-insensitively.
// An exact name wins over a wildcard; anything else, or no SNI, gets the default.
//
// Reloading certificates (SIGHUP): build a new ServerContexts and swap it in for new
// connections. Sessions keep no pointer to their Context (wolfSSL counts references to its
// CTX), so the old set may be destroyed while its connections are still running.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/tls/client_hello.h"
#include "cfd/tls/context.h"

namespace cfd::tls {

class ServerContexts {
public:
    explicit ServerContexts(Context default_ctx);

    ServerContexts(ServerContexts&&) noexcept = default;
    ServerContexts& operator=(ServerContexts&&) noexcept = default;

    // Serves `names` (exact or "*." wildcards) with `ctx`. Errc::Invalid for a malformed name
    // or a client context, Errc::Exists when a name is already taken (nothing is added then).
    [[nodiscard]] Status add(const std::vector<std::string>& names, Context ctx);

    // Also serves `names` with the default context (same errors as add()).
    [[nodiscard]] Status add_default_names(const std::vector<std::string>& names);

    // The context for `host` (any case; a trailing dot is ignored). Valid as long as this set.
    const Context& find(std::string_view host) const;

    struct Choice {
        const Context* context = nullptr;  // null while more bytes are needed
        std::string sni;                   // the name asked for, empty without SNI
        bool need_more() const { return context == nullptr; }
    };
    // Peeks the ClientHello in `first_bytes` (everything received so far) and picks the context.
    // Errc::Protocol when the bytes are not a ClientHello.
    [[nodiscard]] Result<Choice> choose(std::string_view first_bytes) const;

    size_t size() const { return contexts_.size(); }

private:
    [[nodiscard]] Status check_names(const std::vector<std::string>& names) const;
    Status add_names(const std::vector<std::string>& names, size_t idx);

    // [0] is the default. Boxed so that references handed out stay valid across add().
    std::vector<std::unique_ptr<Context>> contexts_;
    std::unordered_map<std::string, size_t> exact_;    // lower-case name -> index
    std::unordered_map<std::string, size_t> wildcard_; // parent domain of "*.x" -> index
};

// The dNSName subjectAltNames of the first certificate in `pem` (wildcards as written).
// Errc::Invalid when `pem` holds no certificate.
[[nodiscard]] Result<std::vector<std::string>> certificate_dns_names(std::string_view pem);

// A certificate chain and its key, in PEM files, and the host names it serves (empty: its own
// DNS names). `origin` says where it was configured, for errors ("--tls-cert #2",
// "edge.ini:14: [tls \"www\"]").
struct CertificatePair {
    std::string cert_file;
    std::string key_file;
    std::vector<std::string> names;
    std::string origin;
};

// A PEM file larger than this is refused (a chain is a few KiB).
inline constexpr size_t kMaxPemFile = 1 << 20;

// Reads every pair into one set, each context offering `alpn`; the first pair is also the
// default (no SNI, or a name no certificate has). The error says which pair and why.
[[nodiscard]] Result<ServerContexts, std::string> load_certificates(
    const std::vector<CertificatePair>& pairs, const std::vector<std::string>& alpn);

}  // namespace cfd::tls
