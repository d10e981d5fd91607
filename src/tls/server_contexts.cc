#include "cfd/tls/server_contexts.h"

#include <set>

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

}  // namespace

ServerContexts::ServerContexts(Context default_ctx) {
    contexts_.push_back(std::make_unique<Context>(std::move(default_ctx)));
}

Status ServerContexts::add(const std::vector<std::string>& names, Context ctx) {
    if (!ctx.is_server() || ctx.native() == nullptr) {
        return Err{Errc::Invalid, 0, "tls sni: not a server context"};
    }
    if (names.empty()) {
        return Err{Errc::Invalid, 0, "tls sni: no names"};
    }
    // Check every name before taking any, so a refused call leaves the set as it was.
    std::vector<Pattern> patterns;
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
        patterns.push_back(std::move(p));
    }
    size_t idx = contexts_.size();
    contexts_.push_back(std::make_unique<Context>(std::move(ctx)));
    for (auto& p : patterns) {
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
