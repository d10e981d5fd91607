#include "cfd/core/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace cfd::json {

Value Value::boolean(bool b) {
    Value v;
    v.type_ = Type::Bool;
    v.bool_ = b;
    return v;
}

Value Value::number(double d) {
    Value v;
    v.type_ = Type::Number;
    v.number_ = d;
    return v;
}

Value Value::string(std::string s) {
    Value v;
    v.type_ = Type::String;
    v.string_ = std::move(s);
    return v;
}

Value Value::array() {
    Value v;
    v.type_ = Type::Array;
    return v;
}

Value Value::object() {
    Value v;
    v.type_ = Type::Object;
    return v;
}

const Value* Value::get(std::string_view key) const {
    for (const auto& [k, v] : members_) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

std::string Value::get_string(std::string_view key, std::string_view fallback) const {
    const Value* v = get(key);
    return v && v->is_string() ? v->string_ : std::string(fallback);
}

Value& Value::push(Value v) {
    items_.push_back(std::move(v));
    return items_.back();
}

Value& Value::set(std::string_view key, Value v) {
    for (auto& [k, cur] : members_) {
        if (k == key) {
            cur = std::move(v);
            return cur;
        }
    }
    members_.emplace_back(std::string(key), std::move(v));
    return members_.back().second;
}

namespace {

class Parser {
public:
    Parser(std::string_view s, Limits l) : s_(s), limits_(l) {}

    Result<Value> document() {
        if (s_.size() > limits_.max_bytes) {
            return Err{Errc::Invalid, 0, "json too large"};
        }
        Value v;
        if (!value(v, 0)) {
            return Err{Errc::Invalid, 0, "json syntax"};
        }
        skip_ws();
        if (pos_ != s_.size()) {
            return Err{Errc::Invalid, 0, "json trailing bytes"};
        }
        return v;
    }

private:
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }

    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) {
            return false;
        }
        pos_ += word.size();
        return true;
    }

    bool value(Value& out, int depth) {
        if (depth > limits_.max_depth) {
            return false;
        }
        skip_ws();
        if (pos_ >= s_.size()) {
            return false;
        }
        char c = s_[pos_];
        if (c == '{') {
            return object(out, depth);
        }
        if (c == '[') {
            return array(out, depth);
        }
        if (c == '"') {
            std::string str;
            if (!string(str)) {
                return false;
            }
            out = Value::string(std::move(str));
            return true;
        }
        if (literal("true")) {
            out = Value::boolean(true);
            return true;
        }
        if (literal("false")) {
            out = Value::boolean(false);
            return true;
        }
        if (literal("null")) {
            out = Value();
            return true;
        }
        return number(out);
    }

    bool number(Value& out) {
        size_t start = pos_;
        if (pos_ < s_.size() && s_[pos_] == '-') {
            ++pos_;
        }
        bool digits = false;
        while (pos_ < s_.size() &&
               ((s_[pos_] >= '0' && s_[pos_] <= '9') || s_[pos_] == '.' || s_[pos_] == 'e' ||
                s_[pos_] == 'E' || s_[pos_] == '+' || s_[pos_] == '-')) {
            digits = true;
            ++pos_;
        }
        if (!digits) {
            return false;
        }
        std::string text(s_.substr(start, pos_ - start));
        char* end = nullptr;
        double d = std::strtod(text.c_str(), &end);
        if (end != text.c_str() + text.size() || !std::isfinite(d)) {
            return false;
        }
        out = Value::number(d);
        return true;
    }

    static void put_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | cp >> 6));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xe0 | cp >> 12));
            out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
            out.push_back(static_cast<char>(0xf0 | cp >> 18));
            out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
    }

    bool hex4(uint32_t* out) {
        if (pos_ + 4 > s_.size()) {
            return false;
        }
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = s_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= static_cast<uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= static_cast<uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= static_cast<uint32_t>(c - 'A' + 10);
            } else {
                return false;
            }
        }
        *out = v;
        return true;
    }

    bool string(std::string& out) {
        ++pos_;  // opening quote
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"') {
                return true;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return false;
            }
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (pos_ >= s_.size()) {
                return false;
            }
            char e = s_[pos_++];
            switch (e) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                uint32_t cp = 0;
                if (!hex4(&cp)) {
                    return false;
                }
                if (cp >= 0xd800 && cp < 0xdc00) {
                    uint32_t lo = 0;
                    if (!literal("\\u") || !hex4(&lo) || lo < 0xdc00 || lo >= 0xe000) {
                        return false;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(out, cp);
                break;
            }
            default: return false;
            }
        }
        return false;
    }

    bool array(Value& out, int depth) {
        ++pos_;
        out = Value::array();
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') {
            ++pos_;
            return true;
        }
        for (;;) {
            Value item;
            if (!value(item, depth + 1)) {
                return false;
            }
            out.push(std::move(item));
            skip_ws();
            if (pos_ >= s_.size()) {
                return false;
            }
            char c = s_[pos_++];
            if (c == ']') {
                return true;
            }
            if (c != ',') {
                return false;
            }
        }
    }

    bool object(Value& out, int depth) {
        ++pos_;
        out = Value::object();
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '}') {
            ++pos_;
            return true;
        }
        for (;;) {
            skip_ws();
            std::string key;
            if (pos_ >= s_.size() || s_[pos_] != '"' || !string(key)) {
                return false;
            }
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_++] != ':') {
                return false;
            }
            Value v;
            if (!value(v, depth + 1)) {
                return false;
            }
            out.set(key, std::move(v));
            skip_ws();
            if (pos_ >= s_.size()) {
                return false;
            }
            char c = s_[pos_++];
            if (c == '}') {
                return true;
            }
            if (c != ',') {
                return false;
            }
        }
    }

    std::string_view s_;
    Limits limits_;
    size_t pos_ = 0;
};

void write_to(std::string& out, const Value& v) {
    switch (v.type()) {
    case Value::Type::Null: out += "null"; break;
    case Value::Type::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Value::Type::Number: {
        double d = v.as_number();
        char buf[32];
        if (d == std::floor(d) && std::fabs(d) < 9e15) {
            snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
        } else {
            snprintf(buf, sizeof buf, "%.17g", d);
        }
        out += buf;
        break;
    }
    case Value::Type::String: append_quoted(out, v.as_string()); break;
    case Value::Type::Array: {
        out.push_back('[');
        bool first = true;
        for (const Value& item : v.items()) {
            if (!first) {
                out.push_back(',');
            }
            first = false;
            write_to(out, item);
        }
        out.push_back(']');
        break;
    }
    case Value::Type::Object: {
        out.push_back('{');
        bool first = true;
        for (const auto& [k, item] : v.members()) {
            if (!first) {
                out.push_back(',');
            }
            first = false;
            append_quoted(out, k);
            out.push_back(':');
            write_to(out, item);
        }
        out.push_back('}');
        break;
    }
    }
}

}  // namespace

Result<Value> parse(std::string_view text, Limits limits) {
    return Parser(text, limits).document();
}

void append_quoted(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (u < 0x20) {
                out += "\\u00";
                out.push_back(kHex[u >> 4]);
                out.push_back(kHex[u & 15]);
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
}

std::string write(const Value& v) {
    std::string out;
    write_to(out, v);
    return out;
}

}  // namespace cfd::json
