// A small JSON reader and writer for credentials files, tokens, the management API and /ready.
// Bounded: depth and size limits, so hostile input cannot exhaust the stack or memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::json {

class Value {
public:
    enum class Type : uint8_t { Null, Bool, Number, String, Array, Object };

    Value() = default;
    static Value boolean(bool b);
    static Value number(double d);
    static Value string(std::string s);
    static Value array();
    static Value object();

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::Null; }
    bool is_string() const { return type_ == Type::String; }
    bool is_number() const { return type_ == Type::Number; }
    bool is_object() const { return type_ == Type::Object; }
    bool is_array() const { return type_ == Type::Array; }

    bool as_bool() const { return bool_; }
    double as_number() const { return number_; }
    const std::string& as_string() const { return string_; }
    const std::vector<Value>& items() const { return items_; }
    const std::vector<std::pair<std::string, Value>>& members() const { return members_; }

    // Object member or nullptr (also when this is not an object).
    const Value* get(std::string_view key) const;
    // The string member `key`, or `fallback` when absent or not a string.
    std::string get_string(std::string_view key, std::string_view fallback = "") const;

    Value& push(Value v);                         // arrays
    Value& set(std::string_view key, Value v);    // objects; replaces an existing key

private:
    Type type_ = Type::Null;
    bool bool_ = false;
    double number_ = 0;
    std::string string_;
    std::vector<Value> items_;
    std::vector<std::pair<std::string, Value>> members_;  // in insertion order
};

struct Limits {
    size_t max_bytes = 1 << 20;
    int max_depth = 32;
};

Result<Value> parse(std::string_view text, Limits limits = {});
// Compact output; keys in insertion order.
std::string write(const Value& v);
// Appends a JSON string literal (quoted and escaped).
void append_quoted(std::string& out, std::string_view s);

}  // namespace cfd::json
