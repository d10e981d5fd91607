#include "cfd/core/prometheus.h"

#include <cmath>
#include <cstdio>

#include "cfd/core/assert.h"

namespace cfd::prom {

namespace {

const char* type_name(Type t) {
    switch (t) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Untyped: return "untyped";
    }
    return "untyped";
}

}  // namespace

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string escape_help(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

bool valid_metric_name(std::string_view n) {
    if (n.empty()) {
        return false;
    }
    for (size_t i = 0; i < n.size(); i++) {
        char c = n[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0)) {
            return false;
        }
    }
    return true;
}

void TextWriter::family(std::string_view name, Type type, std::string_view help) {
    // Names are compile-time constants of ours: a bad one is a bug, not input.
    CFD_ASSERT(valid_metric_name(name));
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type_name(type);
    out_ += '\n';
}

void TextWriter::start_sample(std::string_view name, Labels labels) {
    out_ += name;
    if (labels.size() > 0) {
        out_ += '{';
        bool first = true;
        for (const auto& [k, v] : labels) {
            if (!first) {
                out_ += ',';
            }
            first = false;
            out_ += k;
            out_ += "=\"";
            out_ += escape_label_value(v);
            out_ += '"';
        }
        out_ += '}';
    }
    out_ += ' ';
}

void TextWriter::sample(std::string_view name, uint64_t value, Labels labels) {
    start_sample(name, labels);
    out_ += std::to_string(value);
    out_ += '\n';
}

void TextWriter::sample(std::string_view name, int64_t value, Labels labels) {
    start_sample(name, labels);
    out_ += std::to_string(value);
    out_ += '\n';
}

void TextWriter::sample(std::string_view name, double value, Labels labels) {
    start_sample(name, labels);
    if (std::isnan(value)) {
        out_ += "NaN";
    } else if (std::isinf(value)) {
        out_ += value > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", value);
        out_ += buf;
    }
    out_ += '\n';
}

}  // namespace cfd::prom
