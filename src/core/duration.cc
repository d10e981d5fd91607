#include "cfd/core/duration.h"

#include <cmath>

namespace cfd {

Result<Millis> parse_duration(std::string_view s) {
    if (s == "0") {
        return Millis{0};
    }
    if (s.empty()) {
        return Err{Errc::Invalid, 0, "empty duration"};
    }
    double total_ms = 0;
    size_t i = 0;
    while (i < s.size()) {
        size_t start = i;
        double value = 0;
        bool digits = false;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            value = value * 10 + (s[i] - '0');
            digits = true;
            ++i;
        }
        if (i < s.size() && s[i] == '.') {
            ++i;
            double scale = 0.1;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                value += (s[i] - '0') * scale;
                scale /= 10;
                digits = true;
                ++i;
            }
        }
        if (!digits || i == start) {
            return Err{Errc::Invalid, 0, "duration number"};
        }
        size_t unit_start = i;
        while (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '\xc2' || s[i] == '\xb5')) {
            ++i;
        }
        std::string_view unit = s.substr(unit_start, i - unit_start);
        double ms;
        if (unit == "h") {
            ms = 3600e3;
        } else if (unit == "m") {
            ms = 60e3;
        } else if (unit == "s") {
            ms = 1e3;
        } else if (unit == "ms") {
            ms = 1;
        } else if (unit == "us" || unit == "\xc2\xb5s") {
            ms = 1e-3;
        } else if (unit == "ns") {
            ms = 1e-6;
        } else {
            return Err{Errc::Invalid, 0, "duration unit"};
        }
        total_ms += value * ms;
        if (total_ms > 1e15) {
            return Err{Errc::Invalid, 0, "duration overflow"};
        }
    }
    return Millis{static_cast<int64_t>(std::llround(total_ms))};
}

std::string format_duration(Millis d) {
    int64_t ms = d.count();
    if (ms == 0) {
        return "0s";
    }
    std::string out;
    if (ms < 0) {
        out.push_back('-');
        ms = -ms;
    }
    if (ms < 1000) {
        return out + std::to_string(ms) + "ms";
    }
    int64_t h = ms / 3600000;
    int64_t m = ms / 60000 % 60;
    int64_t sec = ms / 1000 % 60;
    int64_t rest = ms % 1000;
    if (h) {
        out += std::to_string(h) + "h";
    }
    if (h || m) {
        out += std::to_string(m) + "m";
    }
    out += std::to_string(sec);
    if (rest) {
        char buf[8];
        snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(rest));
        std::string frac(buf);
        while (frac.back() == '0') {
            frac.pop_back();
        }
        out += frac;
    }
    out += "s";
    return out;
}

}  // namespace cfd
