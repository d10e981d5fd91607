// Logging in cloudflared's console format, or JSON with `--output json`:
//   2021-03-29T18:40:17Z INF Registered tunnel connection connIndex=0 location=DFW
//   {"level":"info","time":"2021-03-29T18:40:17Z","message":"Registered ...","connIndex":0}
// One write(2) per line, so lines from several threads never interleave.
// Secrets are never passed to these functions: callers log identifiers, not credentials.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace cfd::log {

enum class Level : uint8_t { Debug, Info, Warn, Error, Fatal };
enum class Format : uint8_t { Text, Json };

struct Field {
    std::string_view key;
    std::string value;
    bool quoted_in_json = true;  // false for numbers and booleans

    Field(std::string_view k, std::string_view v) : key(k), value(v) {}
    Field(std::string_view k, const char* v) : key(k), value(v) {}
    Field(std::string_view k, const std::string& v) : key(k), value(v) {}
    Field(std::string_view k, bool v)
        : key(k), value(v ? "true" : "false"), quoted_in_json(false) {}
    template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    Field(std::string_view k, I v) : key(k), value(std::to_string(v)), quoted_in_json(false) {}
};

using Fields = std::initializer_list<Field>;

void set_level(Level l);
Level level();
void set_format(Format f);
// Where lines go (default 2, stderr). Tests point it at a pipe.
void set_fd(int fd);

// Parses "debug", "info", "warn", "error", "fatal" (cloudflared's --loglevel names).
bool parse_level(std::string_view s, Level* out);
bool parse_format(std::string_view s, Format* out);

bool enabled(Level l);
// Renders one line without writing it (also used by the tests).
std::string render(Level l, std::string_view msg, Fields fields, int64_t unix_seconds);
void write(Level l, std::string_view msg, Fields fields = {});

inline void debug(std::string_view m, Fields f = {}) {
    if (enabled(Level::Debug)) {
        write(Level::Debug, m, f);
    }
}
inline void info(std::string_view m, Fields f = {}) {
    write(Level::Info, m, f);
}
inline void warn(std::string_view m, Fields f = {}) {
    write(Level::Warn, m, f);
}
inline void error(std::string_view m, Fields f = {}) {
    write(Level::Error, m, f);
}

}  // namespace cfd::log
