#include "cfd/http1/message.h"

namespace cfd::http1 {

namespace {


bool is_token_char(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

const char* body_kind_name(BodyKind k) {
    switch (k) {
    case BodyKind::None: return "none";
    case BodyKind::Length: return "length";
    case BodyKind::Chunked: return "chunked";
    case BodyKind::UntilEof: return "until-eof";
    }
    return "?";
}

const char* step_name(Step s) {
    switch (s) {
    case Step::NeedMore: return "need-more";
    case Step::HeadDone: return "head-done";
    case Step::Body: return "body";
    case Step::MessageDone: return "message-done";
    case Step::Upgrade: return "upgrade";
    case Step::Closed: return "closed";
    case Step::Error: return "error";
    }
    return "?";
}

const std::string* find_header(const Headers& headers, std::string_view name) {
    for (const Header& h : headers) {
        if (iequals(h.name, name)) {
            return &h.value;
        }
    }
    return nullptr;
}

size_t count_headers(const Headers& headers, std::string_view name) {
    size_t n = 0;
    for (const Header& h : headers) {
        if (iequals(h.name, name)) {
            ++n;
        }
    }
    return n;
}

bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        size_t comma = value.find(',');
        std::string_view item = trim_ows(value.substr(0, comma));
        if (iequals(item, token)) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
    return false;
}

bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (!is_token_char(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

bool is_field_value(std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '\t') {
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

}  // namespace cfd::http1
