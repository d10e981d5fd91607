#include "cfd/core/log.h"

#include "cfd/core/json.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

namespace cfd::log {
namespace {

std::atomic<Level> g_level{Level::Info};
std::atomic<Format> g_format{Format::Text};
std::atomic<int> g_fd{2};

constexpr const char* kShort[] = {"DBG", "INF", "WRN", "ERR", "FTL"};
constexpr const char* kLong[] = {"debug", "info", "warn", "error", "fatal"};

void append_time(std::string& out, int64_t t) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    out.append(buf, n);
}

// Console values with spaces, quotes or '=' are quoted so the line stays parseable.
void append_text_value(std::string& out, std::string_view v) {
    bool plain = !v.empty();
    for (char c : v) {
        if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) {
            plain = false;
            break;
        }
    }
    if (plain) {
        out.append(v);
    } else {
        json::append_quoted(out, v);
    }
}

}  // namespace

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }
void set_format(Format f) { g_format.store(f, std::memory_order_relaxed); }
void set_fd(int fd) { g_fd.store(fd, std::memory_order_relaxed); }

bool enabled(Level l) { return l >= g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view s, Level* out) {
    for (int i = 0; i < 5; ++i) {
        if (s == kLong[i]) {
            *out = static_cast<Level>(i);
            return true;
        }
    }
    if (s == "warning") {
        *out = Level::Warn;
        return true;
    }
    return false;
}

bool parse_format(std::string_view s, Format* out) {
    if (s == "default" || s == "text") {
        *out = Format::Text;
        return true;
    }
    if (s == "json") {
        *out = Format::Json;
        return true;
    }
    return false;
}

std::string render(Level l, std::string_view msg, Fields fields, int64_t unix_seconds) {
    std::string line;
    line.reserve(128 + msg.size());
    auto li = static_cast<size_t>(l);
    if (g_format.load(std::memory_order_relaxed) == Format::Json) {
        line += "{\"level\":\"";
        line += kLong[li];
        line += "\",\"time\":\"";
        append_time(line, unix_seconds);
        line += "\",\"message\":";
        json::append_quoted(line, msg);
        for (const Field& f : fields) {
            line.push_back(',');
            json::append_quoted(line, f.key);
            line.push_back(':');
            if (f.quoted_in_json) {
                json::append_quoted(line, f.value);
            } else {
                line += f.value;
            }
        }
        line += "}\n";
        return line;
    }
    append_time(line, unix_seconds);
    line.push_back(' ');
    line += kShort[li];
    line.push_back(' ');
    line.append(msg);
    for (const Field& f : fields) {
        line.push_back(' ');
        line.append(f.key);
        line.push_back('=');
        append_text_value(line, f.value);
    }
    line.push_back('\n');
    return line;
}

void write(Level l, std::string_view msg, Fields fields) {
    if (!enabled(l)) {
        return;
    }
    std::string line = render(l, msg, fields, static_cast<int64_t>(::time(nullptr)));
    int fd = g_fd.load(std::memory_order_relaxed);
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;  // nowhere to report a failing log sink
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
}

}  // namespace cfd::log
