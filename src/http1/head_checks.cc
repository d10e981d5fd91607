#include "head_checks.h"

namespace cfd::http1 {

namespace {

constexpr ParseError kOk{};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// Only `Transfer-Encoding: chunked`, once, is understood: any other coding would reach the
// next hop still encoded after we removed the header (RFC 9112 §6.1: answer 501).
bool only_chunked(const Headers& headers) {
    size_t n = 0;
    for (const Header& h : headers) {
        if (iequals(h.name, "transfer-encoding")) {
            ++n;
            if (n > 1 || !iequals(trim(h.value), "chunked")) {
                return false;
            }
        }
    }
    return true;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Splits an absolute-form target ("http://a.example/x?y") into authority and path.
bool split_absolute(std::string_view target, std::string_view* authority, std::string* path) {
    std::string_view rest;
    if (starts_with_nocase(target, "http://")) {
        rest = target.substr(7);
    } else if (starts_with_nocase(target, "https://")) {
        rest = target.substr(8);
    } else {
        return false;
    }
    size_t end = rest.find_first_of("/?");
    *authority = rest.substr(0, end);
    if (authority->empty()) {
        return false;
    }
    if (end == std::string_view::npos) {
        *path = "/";
    } else if (rest[end] == '?') {
        path->assign("/");
        path->append(rest.substr(end));
    } else {
        path->assign(rest.substr(end));
    }
    return true;
}

}  // namespace

bool is_valid_authority(std::string_view s) {
    for (char ch : s) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        switch (ch) {
        case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '\'':
        case '(': case ')': case '*': case '+': case ',': case ';': case '=': case ':':
        case '[': case ']': case '%':
            ok = true;
            break;
        default:
            break;
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

ParseError check_request_head(RequestHead& head) {
    if (head.version_major != 1 || head.version_minor > 1) {
        if (head.version_major == 0) {
            return {400, "HTTP/0.9 is not supported"};
        }
        return {505, "HTTP version not supported"};
    }
    if (find_header(head.headers, "transfer-encoding") != nullptr) {
        if (head.version_minor == 0) {
            return {400, "Transfer-Encoding in an HTTP/1.0 request"};
        }
        if (!only_chunked(head.headers)) {
            return {501, "unsupported Transfer-Encoding"};
        }
    }

    size_t hosts = count_headers(head.headers, "host");
    if (hosts > 1) {
        return {400, "duplicate Host header"};
    }
    if (hosts == 0 && head.version_minor == 1) {
        return {400, "missing Host header"};
    }
    if (hosts == 1) {
        head.authority = *find_header(head.headers, "host");
        if (!is_valid_authority(head.authority)) {
            return {400, "invalid Host header"};
        }
    }

    const std::string& t = head.target;
    if (head.method == "CONNECT") {
        // authority-form: the target names the tunnel's destination.
        if (t.empty() || t[0] == '/' || !is_valid_authority(t)) {
            return {400, "invalid CONNECT target"};
        }
        head.authority = t;
        head.path.clear();
    } else if (t == "*") {
        if (head.method != "OPTIONS") {
            return {400, "invalid request target"};
        }
        head.path = t;
    } else if (!t.empty() && t[0] == '/') {
        head.path = t;
    } else {
        // absolute-form: its authority wins over Host (RFC 9112 §3.2.2).
        std::string_view authority;
        if (!split_absolute(t, &authority, &head.path) || !is_valid_authority(authority)) {
            return {400, "invalid request target"};
        }
        head.authority.assign(authority);
    }

    if (head.version_minor == 1) {
        if (const std::string* e = find_header(head.headers, "expect")) {
            head.expect_continue = iequals(trim(*e), "100-continue");
        }
    }
    if (const std::string* u = find_header(head.headers, "upgrade")) {
        head.upgrade_protocol = *u;
    }
    return kOk;
}

ParseError check_response_head(ResponseHead& head) {
    if (head.version_major != 1 || head.version_minor > 1) {
        return {502, "unsupported HTTP version in response"};
    }
    if (head.status < 100) {
        return {502, "invalid response status"};
    }
    if (find_header(head.headers, "transfer-encoding") != nullptr && !only_chunked(head.headers)) {
        return {502, "unsupported Transfer-Encoding in response"};
    }
    if (const std::string* u = find_header(head.headers, "upgrade")) {
        head.upgrade_protocol = *u;
    }
    return kOk;
}

}  // namespace cfd::http1
