#include "connector/origin_tls.h"

#include <algorithm>
#include <cctype>

namespace cfd::connector {

namespace {

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim_ws(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

std::string sni_from_request_head(std::string_view head) {
    size_t eol = head.find('\n');  // past the request line
    while (eol != std::string_view::npos) {
        head.remove_prefix(eol + 1);
        eol = head.find('\n');
        std::string_view line = head.substr(0, eol);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || !iequal(line.substr(0, colon), "host")) {
            continue;
        }
        return sni_from_host_value(trim_ws(line.substr(colon + 1)));
    }
    return {};
}

std::string sni_from_host_value(std::string_view v) {
    v = trim_ws(v);
    if (!v.empty() && v.front() == '[') {
        size_t close = v.find(']');
        v = close == std::string_view::npos ? std::string_view() : v.substr(1, close - 1);
    } else if (v.find(':') == v.rfind(':')) {
        v = v.substr(0, v.find(':'));  // one colon: a port; none: unchanged
    }
    std::string out(v);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

Result<OriginTls> OriginTls::start(const tls::Context& ctx, std::string_view server_name) {
    auto s = tls::Session::client(ctx, server_name);
    if (!s) {
        return s.error();
    }
    OriginTls t(std::move(*s), std::string(server_name));
    // The ClientHello is ready now: the caller sends pending_output().
    if (auto h = t.tls_.handshake(); !h) {
        return h.error();
    }
    return t;
}

Status OriginTls::fail(Error e, std::string_view what) {
    if (detail_.empty()) {
        detail_ = std::string(what) + ": " + tls::describe(e);
    }
    return e;
}

Status OriginTls::feed(std::string_view ciphertext, std::string& plain) {
    while (!ciphertext.empty()) {
        size_t n = std::min(ciphertext.size(), kFeedSlice);
        auto f = tls_.feed(ciphertext.substr(0, n));
        if (!f) {
            if (f.error().code != Errc::Busy) {
                return fail(f.error(), "tls");
            }
            size_t before = tls_.buffered_input();
            if (auto r = read_plaintext(plain); !r) {
                return r;
            }
            if (tls_.buffered_input() >= before) {
                return fail(Error{Errc::Tls, 0, "tls input does not drain"}, "tls");
            }
            continue;
        }
        ciphertext.remove_prefix(n);
        if (auto r = read_plaintext(plain); !r) {
            return r;
        }
    }
    return {};
}

Status OriginTls::read_plaintext(std::string& plain) {
    if (!tls_.handshake_done()) {
        auto h = tls_.handshake();
        if (!h) {
            return fail(h.error(), "tls handshake");
        }
        if (*h == tls::HandshakeStep::NeedMore) {
            return {};
        }
    }
    char buf[16 << 10];
    for (;;) {
        auto r = tls_.read(buf, sizeof(buf));
        if (!r) {
            if (r.error().code == Errc::Closed) {
                return r.error();  // close_notify: an orderly end, not a failure to log
            }
            return fail(r.error(), "tls");
        }
        if (*r == 0) {
            return {};
        }
        plain.append(buf, *r);
    }
}

Result<size_t> OriginTls::write(std::string_view plain) {
    if (!tls_.handshake_done()) {
        return size_t(0);
    }
    auto w = tls_.write(plain);
    if (!w) {
        (void)fail(w.error(), "tls write");
        return w.error();
    }
    return *w;
}

std::string OriginTls::describe() const {
    return std::string(tls_.version()) + " " + std::string(tls_.cipher());
}

}  // namespace cfd::connector
