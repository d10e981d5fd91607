#include "cfd/tls/server_contexts.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

#include "tls/x509_san.h"

namespace cfd::tls {

namespace {

// Lower-cases `name` and drops one trailing dot; false when it is not a plausible host name.
bool normalize(std::string_view name, std::string* out) {
    if (!name.empty() && name.back() == '.') {
        name.remove_suffix(1);
    }
    if (name.empty() || name.size() > kMaxHostName || name.front() == '.') {
        return false;
    }
    out->clear();
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                  c == '_';
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
            ok = true;
        }
        if (!ok) {
            return false;
        }
        *out += c;
    }
    return true;
}

struct Pattern {
    std::string key;  // the exact name, or the parent domain of a wildcard
    bool wildcard = false;
};

bool parse_pattern(std::string_view name, Pattern* p) {
    p->wildcard = name.size() > 2 && name.substr(0, 2) == "*.";
    if (p->wildcard) {
        name.remove_prefix(2);
    }
    return normalize(name, &p->key);
}

std::string join_names(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        out += out.empty() ? "" : ", ";
        out += n;
    }
    return out;
}

}  // namespace

ServerContexts::ServerContexts(Context default_ctx) {
    contexts_.push_back(std::make_unique<Context>(std::move(default_ctx)));
}

Status ServerContexts::add(const std::vector<std::string>& names, Context ctx) {
    if (!ctx.is_server() || ctx.native() == nullptr) {
        return Err{Errc::Invalid, 0, "tls sni: not a server context"};
    }
    if (auto st = check_names(names); !st) {
        return st;
    }
    contexts_.push_back(std::make_unique<Context>(std::move(ctx)));
    return add_names(names, contexts_.size() - 1);
}

Status ServerContexts::add_default_names(const std::vector<std::string>& names) {
    if (auto st = check_names(names); !st) {
        return st;
    }
    return add_names(names, 0);
}

// Checks every name before any is taken, so a refused call leaves the set as it was.
Status ServerContexts::check_names(const std::vector<std::string>& names) const {
    if (names.empty()) {
        return Err{Errc::Invalid, 0, "tls sni: no names"};
    }
    std::set<std::pair<bool, std::string>> seen;
    for (const auto& n : names) {
        Pattern p;
        if (!parse_pattern(n, &p)) {
            return Err{Errc::Invalid, 0, "tls sni: bad host name"};
        }
        const auto& map = p.wildcard ? wildcard_ : exact_;
        if (map.count(p.key) != 0 || !seen.emplace(p.wildcard, p.key).second) {
            return Err{Errc::Exists, 0, "tls sni: name already served"};
        }
    }
    return {};
}

Status ServerContexts::add_names(const std::vector<std::string>& names, size_t idx) {
    for (const auto& n : names) {
        Pattern p;
        (void)parse_pattern(n, &p);  // checked by check_names()
        (p.wildcard ? wildcard_ : exact_).emplace(std::move(p.key), idx);
    }
    return {};
}

const Context& ServerContexts::find(std::string_view host) const {
    std::string name;
    if (!normalize(host, &name)) {
        return *contexts_[0];
    }
    if (auto it = exact_.find(name); it != exact_.end()) {
        return *contexts_[it->second];
    }
    // A wildcard covers exactly one label: "a.example.com" looks up "example.com".
    if (size_t dot = name.find('.'); dot != std::string::npos && dot > 0) {
        if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) {
            return *contexts_[it->second];
        }
    }
    return *contexts_[0];
}

Result<ServerContexts::Choice> ServerContexts::choose(std::string_view first_bytes) const {
    auto peek = peek_sni(first_bytes);
    if (!peek) {
        return peek.error();
    }
    Choice c;
    switch (peek->status) {
    case SniPeek::Status::NeedMore:
        break;
    case SniPeek::Status::Absent:
        c.context = contexts_[0].get();
        break;
    case SniPeek::Status::Found:
        c.context = &find(peek->name);
        c.sni = std::move(peek->name);
        break;
    }
    return c;
}

}  // namespace cfd::tls

namespace cfd::tls {

Result<std::vector<std::string>> certificate_dns_names(std::string_view pem) {
    std::vector<unsigned char> der(pem.size() + 64);
    int n = wc_CertPemToDer(reinterpret_cast<const unsigned char*>(pem.data()),
                            static_cast<int>(pem.size()), der.data(), static_cast<int>(der.size()),
                            CERT_TYPE);
    if (n <= 0) {
        return Err{Errc::Invalid, n, "no PEM certificate"};
    }
    return cert_dns_names({reinterpret_cast<const char*>(der.data()), static_cast<size_t>(n)});
}

namespace {

std::string read_text(const std::string& path, std::string* error) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        *error = path + ": " + std::strerror(errno);
        return {};
    }
    std::string text;
    char buf[8192];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < kMaxPemFile) {
        text.append(buf, n);
    }
    std::fclose(f);
    if (text.size() >= kMaxPemFile) {
        *error = path + ": larger than a certificate chain can be";
        return {};
    }
    return text;
}

}  // namespace

Result<ServerContexts, std::string> load_certificates(const std::vector<CertificatePair>& pairs,
                                                      const std::vector<std::string>& alpn) {
    if (pairs.empty()) {
        return std::string("no certificate configured");
    }
    std::optional<ServerContexts> set;
    for (const CertificatePair& p : pairs) {
        std::string where = p.origin.empty() ? p.cert_file : p.origin;
        std::string error;
        ServerOptions o;
        o.cert_pem = read_text(p.cert_file, &error);
        if (error.empty()) {
            o.key_pem = read_text(p.key_file, &error);
        }
        if (!error.empty()) {
            return std::string(where + ": " + error);
        }
        std::vector<std::string> names = p.names;
        if (names.empty()) {
            auto dns = certificate_dns_names(o.cert_pem);
            if (!dns) {
                return std::string(where + ": " + p.cert_file + ": not a PEM certificate");
            }
            names = std::move(*dns);
            if (names.empty()) {
                return std::string(where + ": " + p.cert_file +
                                   ": the certificate has no DNS names; name its hosts explicitly");
            }
        }
        o.alpn = alpn;
        auto ctx = Context::server(o);
        if (!ctx) {
            return std::string(where + ": " + p.cert_file + ", " + p.key_file + ": " +
                       describe(ctx.error()));
        }
        Status st;
        if (!set) {
            set.emplace(std::move(*ctx));  // the first pair is the default
            st = set->add_default_names(names);
        } else {
            st = set->add(names, std::move(*ctx));
        }
        if (!st) {
            return std::string(where + ": " +
                       (st.error().code == Errc::Exists
                            ? std::string("a host name is already served by another certificate")
                            : std::string("a host name is not valid")) +
                       " (" + join_names(names) + ")");
        }
    }
    return std::move(*set);
}

}  // namespace cfd::tls
