// Loading ingress rules from the connector's INI file, and matching requests against them.
#include "cfd/connector/ingress.h"
#include "cfd/core/text.h"

#include <cctype>
#include <optional>

namespace cfd::connector {

namespace {

constexpr std::string_view kRuleKind = "ingress";
constexpr std::string_view kDefaultsSection = "originRequest";

// The host of a Host header or :authority: without its port and one trailing dot.
std::string_view request_host(std::string_view h) {
    if (!h.empty() && h.front() == '[') {
        size_t close = h.find(']');
        if (close != std::string_view::npos) {
            return h.substr(1, close - 1);
        }
        return h;
    }
    size_t colon = h.find(':');
    if (colon != std::string_view::npos && h.find(':', colon + 1) == std::string_view::npos) {
        h = h.substr(0, colon);  // one colon: a port; more: a bare IPv6 address
    }
    if (!h.empty() && h.back() == '.') {
        h.remove_suffix(1);
    }
    return h;
}

// Validates a rule's hostname with cloudflared's rules and lowercases it. Returns an error.
std::optional<std::string> normalize_hostname(std::string_view in, std::string* out) {
    std::string h;
    for (char c : in) {
        h.push_back(ascii_lower(c));
    }
    if (!h.empty() && h != "*" && h.back() == '.') {
        h.pop_back();
    }
    *out = h;
    if (h.empty() || h == "*") {
        return std::nullopt;
    }
    if (h.find(':') != std::string::npos) {
        return std::string("a hostname cannot contain a port");
    }
    std::string_view name = h;
    if (name.starts_with("*.")) {
        name.remove_prefix(2);
    }
    if (name.find('*') != std::string_view::npos) {
        return std::string("a hostname can have one wildcard, only as its first label, as in "
                           "*.example.com");
    }
    bool label_start = true;
    for (char c : name) {
        if (c == '.') {
            if (label_start) {
                return std::string("empty label in hostname '" + h + "'");
            }
            label_start = true;
            continue;
        }
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
            return "bad character in hostname '" + h + "'";
        }
        label_start = false;
    }
    if (label_start) {
        return std::string("empty label in hostname '" + h + "'");
    }
    return std::nullopt;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = ascii_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// %XX escapes decoded as Go's URL.Path has them; a malformed escape stays as written.
std::string decode_path(std::string_view p) {
    std::string out;
    out.reserve(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] == '%' && i + 2 < p.size() && hex_digit(p[i + 1]) >= 0 &&
            hex_digit(p[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_digit(p[i + 1]) * 16 + hex_digit(p[i + 2])));
            i += 2;
        } else {
            out.push_back(p[i]);
        }
    }
    return out;
}

std::string quoted(const std::string& name) {
    return "\"" + name + "\"";
}

// The entries of one [ingress "NAME"] section.
struct Section {
    std::string section;
    std::string name;
    std::vector<const config::Entry*> entries;
};

Result<Rule, config::Diag> build_rule(const std::string& file, const Section& s,
                                      const OriginRequest& defaults) {
    Rule r;
    r.name = s.name;
    r.line = s.entries.front()->line;
    r.origin = defaults;
    const config::Entry* hostname = nullptr;
    const config::Entry* path = nullptr;
    const config::Entry* service = nullptr;
    for (size_t i = 0; i < s.entries.size(); ++i) {
        const config::Entry& e = *s.entries[i];
        for (size_t j = 0; j < i; ++j) {
            if (s.entries[j]->key == e.key) {
                return config::Diag{file, e.line, e.key,
                                    "set twice in ingress rule " + quoted(r.name) +
                                        " (first at line " + std::to_string(s.entries[j]->line) +
                                        ")"};
            }
        }
        if (e.key == "hostname") {
            hostname = &e;
        } else if (e.key == "path") {
            path = &e;
        } else if (e.key == "service") {
            service = &e;
        } else if (is_origin_option(e.key) || e.key == "ipRules" || e.key == "access") {
            if (auto set = set_origin_option(&r.origin, e.key, e.value); !set) {
                return config::Diag{file, e.line, e.key, set.error()};
            }
        } else {
            return config::Diag{file, e.line, e.key,
                                "unknown key in ingress rule " + quoted(r.name) +
                                    " (expected hostname, path, service or an originRequest "
                                    "option)"};
        }
    }
    if (service == nullptr) {
        return config::Diag{file, r.line, "service",
                            "ingress rule " + quoted(r.name) + " has no service"};
    }
    auto svc = parse_service(service->value);
    if (!svc) {
        return config::Diag{file, service->line, "service", svc.error()};
    }
    r.service = std::move(*svc);
    if (hostname != nullptr) {
        if (auto bad = normalize_hostname(hostname->value, &r.hostname)) {
            return config::Diag{file, hostname->line, "hostname", *bad};
        }
    }
    if (path != nullptr && !path->value.empty()) {
        auto re = PathRegex::compile(path->value);
        if (!re) {
            return config::Diag{file, path->line, "path", re.error()};
        }
        r.path = std::move(*re);
    }
    return r;
}

}  // namespace

bool host_matches(std::string_view rule_host, std::string_view req_host) {
    if (rule_host.empty() || rule_host == "*") {
        return true;
    }
    std::string_view host = request_host(req_host);
    if (rule_host.starts_with("*.")) {
        // cloudflared keeps the dot of `*.`: one or more labels, never the bare domain.
        std::string_view suffix = rule_host.substr(1);
        return host.size() > suffix.size() &&
               iequals(host.substr(host.size() - suffix.size()), suffix);
    }
    return iequals(rule_host, host);
}

bool Ingress::present(const config::IniFile& file) {
    std::string kind;
    std::string name;
    for (const std::string& s : file.sections()) {
        if (config::split_section(s, &kind, &name) && kind == kRuleKind) {
            return true;
        }
    }
    return false;
}

Result<Ingress, config::Diag> Ingress::from_file(const config::IniFile& file) {
    Ingress ing;
    ing.source_ = file.name();
    // Defaults first, wherever the section is: they apply to every rule.
    for (const config::Entry& e : file.entries()) {
        if (e.section != kDefaultsSection) {
            continue;
        }
        if (auto set = set_origin_option(&ing.defaults_, e.key, e.value); !set) {
            return config::Diag{file.name(), e.line, e.key, set.error()};
        }
    }
    std::vector<Section> sections;
    const std::string* previous = nullptr;  // section of the previous entry, of any kind
    for (const config::Entry& e : file.entries()) {
        bool continues = previous != nullptr && *previous == e.section;
        previous = &e.section;
        std::string kind;
        std::string name;
        bool ok = config::split_section(e.section, &kind, &name);
        if (kind != kRuleKind && (ok || !e.section.starts_with(kRuleKind))) {
            continue;  // another loader's section
        }
        if (!ok) {
            return config::Diag{file.name(), e.line, "",
                                "bad section [" + e.section + "] (expected [ingress \"NAME\"])"};
        }
        if (!continues) {
            for (const Section& s : sections) {
                if (s.section == e.section) {
                    return config::Diag{file.name(), e.line, "",
                                        "ingress rule " + quoted(s.name) +
                                            " appears twice (first at line " +
                                            std::to_string(s.entries.front()->line) +
                                            "); give every rule its own name"};
                }
            }
            std::string label = name.empty() ? "#" + std::to_string(sections.size() + 1) : name;
            sections.push_back(Section{e.section, label, {}});
        }
        sections.back().entries.push_back(&e);
    }
    if (sections.empty()) {
        return config::Diag{file.name(), 0, "",
                            "no ingress rules (add [ingress \"NAME\"] sections or use --url)"};
    }
    for (const Section& s : sections) {
        auto r = build_rule(file.name(), s, ing.defaults_);
        if (!r) {
            return r.error();
        }
        ing.rules_.push_back(std::move(*r));
    }
    // cloudflared's rule: exactly the last rule matches everything, so that every request has
    // a rule and no rule is shadowed by a catch-all above it.
    for (size_t i = 0; i + 1 < ing.rules_.size(); ++i) {
        const Rule& r = ing.rules_[i];
        if (r.catch_all()) {
            return config::Diag{file.name(), r.line, "",
                                "ingress rule " + quoted(r.name) +
                                    " matches every request, so the rules after it would "
                                    "never be used (only the last rule may be a catch-all)"};
        }
    }
    const Rule& last = ing.rules_.back();
    if (!last.catch_all()) {
        return config::Diag{file.name(), last.line, "",
                            "ingress rule " + quoted(last.name) +
                                " is last but not a catch-all: the last rule must have no "
                                "hostname (or `*`) and no path"};
    }
    return ing;
}

Result<Ingress, config::Diag> Ingress::from_url(std::string_view url, const OriginRequest& origin) {
    auto svc = parse_service(url);
    if (!svc && url.find("://") == std::string_view::npos) {
        // cloudflared's --url takes `localhost:8080` as http://localhost:8080.
        if (auto http = parse_service("http://" + std::string(url))) {
            svc = std::move(http);
        }
    }
    if (!svc) {
        return config::Diag{"command line", 0, "url", svc.error()};
    }
    Ingress ing;
    ing.source_ = "--url";
    ing.defaults_ = origin;
    Rule r;
    r.name = "url";
    r.service = std::move(*svc);
    r.origin = origin;
    ing.rules_.push_back(std::move(r));
    return ing;
}

size_t Ingress::match(std::string_view host, std::string_view path) const {
    CFD_CHECK(!rules_.empty());  // a default-constructed Ingress was never loaded
    path = path.substr(0, path.find_first_of("?#"));
    std::string decoded;  // allocated only for paths with escapes
    if (path.find('%') != std::string_view::npos) {
        decoded = decode_path(path);
        path = decoded;
    }
    for (size_t i = 0; i + 1 < rules_.size(); ++i) {
        const Rule& r = rules_[i];
        if (host_matches(r.hostname, host) && (!r.path || r.path->matches(path))) {
            return i;
        }
    }
    return rules_.size() - 1;
}

Result<size_t, std::string> Ingress::match_url(std::string_view url) const {
    size_t sep = url.find("://");
    if (sep == std::string_view::npos || sep == 0) {
        return "'" + std::string(url) + "' is not a URL (expected e.g. https://host/path)";
    }
    std::string_view rest = url.substr(sep + 3);
    size_t slash = rest.find_first_of("/?#");
    std::string_view host = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
    if (host.empty()) {
        return "'" + std::string(url) + "' has no host";
    }
    return match(host, path);
}

std::string Ingress::describe() const {
    std::string out;
    for (size_t i = 0; i < rules_.size(); ++i) {
        const Rule& r = rules_[i];
        out += "rule " + std::to_string(i + 1) + " " + quoted(r.name) + " (" + source_;
        if (r.line > 0) {
            out += ":" + std::to_string(r.line);
        }
        out += ")\n";
        if (!r.hostname.empty()) {
            out += "    hostname: " + r.hostname + "\n";
        }
        if (r.path) {
            out += "    path: " + r.path->source() + "\n";
        }
        out += "    service: " + r.service.text() + "\n";
        std::string changes = origin_changes(r.origin);
        if (!changes.empty()) {
            out += "    originRequest: " + changes + "\n";
        }
    }
    return out;
}

}  // namespace cfd::connector
