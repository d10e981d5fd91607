#include "cfd/config/options.h"

#include <charconv>

namespace cfd::config {

namespace {
constexpr const char* kCommandLine = "command line";
}

bool parse_bool(std::string_view s, bool* out) {
    if (s == "true" || s == "yes" || s == "on" || s == "1") {
        *out = true;
        return true;
    }
    if (s == "false" || s == "no" || s == "off" || s == "0") {
        *out = false;
        return true;
    }
    return false;
}

void OptionSet::add_string(std::string_view name, std::string* target, std::string_view help) {
    options_.push_back({std::string(name), std::string(help), Kind::String, target, 0, 0, *target});
}

void OptionSet::add_int(std::string_view name, int64_t* target, int64_t min, int64_t max,
                        std::string_view help) {
    options_.push_back({std::string(name), std::string(help), Kind::Int, target, min, max,
                        std::to_string(*target)});
}

void OptionSet::add_bool(std::string_view name, bool* target, std::string_view help) {
    options_.push_back({std::string(name), std::string(help), Kind::Bool, target, 0, 0,
                        *target ? "true" : "false"});
}

void OptionSet::add_duration(std::string_view name, Millis* target, std::string_view help) {
    options_.push_back({std::string(name), std::string(help), Kind::Duration, target, 0, 0,
                        format_duration(*target)});
}

void OptionSet::add_list(std::string_view name, std::vector<std::string>* target,
                         std::string_view help) {
    std::string def;
    for (const std::string& v : *target) {
        def += (def.empty() ? "" : ", ") + v;
    }
    options_.push_back({std::string(name), std::string(help), Kind::List, target, 0, 0, def});
}

void OptionSet::add_alias(std::string_view alias, std::string_view name) {
    aliases_.emplace_back(std::string(alias), std::string(name));
}

std::string OptionSet::resolve(std::string_view name) const {
    for (const auto& [alias, target] : aliases_) {
        if (alias == name) {
            return target;
        }
    }
    return std::string(name);
}

OptionSet::Option* OptionSet::find(std::string_view name) {
    for (Option& o : options_) {
        if (o.name == name) {
            return &o;
        }
    }
    return nullptr;
}

const OptionSet::Option* OptionSet::find(std::string_view name) const {
    for (const Option& o : options_) {
        if (o.name == name) {
            return &o;
        }
    }
    return nullptr;
}

bool OptionSet::was_set(std::string_view name) const {
    const Option* o = find(name);
    return o != nullptr && o->set;
}

Result<void, Diag> OptionSet::set(std::string_view name, std::string_view value,
                                  const std::string& file, int line) {
    Option* o = find(name);
    auto fail = [&](std::string msg) {
        return Diag{file, line, std::string(name), std::move(msg)};
    };
    if (o == nullptr) {
        return fail("unknown option");
    }
    switch (o->kind) {
    case Kind::String:
        *static_cast<std::string*>(o->target) = std::string(value);
        break;
    case Kind::Int: {
        int64_t v = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc() || p != value.data() + value.size()) {
            return fail("not a whole number: '" + std::string(value) + "'");
        }
        if (v < o->min || v > o->max) {
            return fail("out of range " + std::to_string(o->min) + ".." + std::to_string(o->max) +
                        ": " + std::to_string(v));
        }
        *static_cast<int64_t*>(o->target) = v;
        break;
    }
    case Kind::Bool:
        if (!parse_bool(value, static_cast<bool*>(o->target))) {
            return fail("not a boolean (true/false): '" + std::string(value) + "'");
        }
        break;
    case Kind::Duration: {
        auto d = parse_duration(value);
        if (!d) {
            return fail("not a duration (like 30s, 1m30s, 500ms): '" + std::string(value) + "'");
        }
        *static_cast<Millis*>(o->target) = *d;
        break;
    }
    case Kind::List: {
        auto* list = static_cast<std::vector<std::string>*>(o->target);
        bool from_args = file == kCommandLine;
        // The first value from a new origin replaces the defaults (or the file's values).
        if (!o->set || (from_args && !o->set_by_args)) {
            list->clear();
        }
        list->emplace_back(value);
        break;
    }
    }
    o->set = true;
    if (file == kCommandLine) {
        o->set_by_args = true;
    }
    return {};
}

Result<Args, Diag> OptionSet::split(int argc, char** argv, int start) const {
    Args out;
    bool flags_done = false;
    for (int i = start; i < argc; ++i) {
        std::string_view a = argv[i];
        if (flags_done || a.size() < 2 || a[0] != '-') {
            out.positionals.emplace_back(a);
            continue;
        }
        if (a == "--") {
            flags_done = true;
            continue;
        }
        a.remove_prefix(a[1] == '-' ? 2 : 1);
        std::string name;
        std::string value;
        bool has_value = false;
        size_t eq = a.find('=');
        if (eq != std::string_view::npos) {
            name = resolve(a.substr(0, eq));
            value = std::string(a.substr(eq + 1));
            has_value = true;
        } else {
            name = resolve(a);
        }
        const Option* o = find(name);
        if (o == nullptr) {
            return Diag{kCommandLine, 0, "--" + name, "unknown flag"};
        }
        if (!has_value) {
            if (o->kind == Kind::Bool) {
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return Diag{kCommandLine, 0, "--" + name, "needs a value"};
            }
        }
        out.flags.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

Result<void, Diag> OptionSet::apply_file(const IniFile& file, std::string_view section) {
    for (const Entry& e : file.entries()) {
        if (e.section != section) {
            continue;
        }
        if (auto r = set(e.key, e.value, file.name(), e.line); !r) {
            return r;
        }
    }
    return {};
}

Result<void, Diag> OptionSet::apply_args(const Args& args) {
    for (const auto& [name, value] : args.flags) {
        if (auto r = set(name, value, kCommandLine, 0); !r) {
            Diag d = r.error();
            d.key = "--" + d.key;
            return d;
        }
    }
    return {};
}

std::string OptionSet::usage() const {
    std::string out;
    for (const Option& o : options_) {
        std::string left = "  --" + o.name;
        if (o.kind != Kind::Bool) {
            left += " VALUE";
        }
        if (left.size() < 30) {
            left.resize(30, ' ');
        } else {
            left += "  ";
        }
        out += left + o.help;
        if (!o.default_text.empty()) {
            out += " (default: " + o.default_text + ")";
        }
        out += "\n";
    }
    return out;
}

}  // namespace cfd::config
