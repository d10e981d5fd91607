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
    // [0] is the default. Boxed so that references handed out stay valid across add().
    std::vector<std::unique_ptr<Context>> contexts_;
    std::unordered_map<std::string, size_t> exact_;    // lower-case name -> index
    std::unordered_map<std::string, size_t> wildcard_; // parent domain of "*.x" -> index
};

}  // namespace cfd::tls
