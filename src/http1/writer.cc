#include "cfd/http1/writer.h"

#include <charconv>

#include "head_checks.h"

namespace cfd::http1 {

namespace {

Status invalid(const char* what) { return Err{Errc::Invalid, 0, what}; }

void append_decimal(std::string& out, uint64_t n) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), n);
    out.append(buf, r.ptr);
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append(kCrlf);
}

// A request-target: visible ASCII only (no SP, CTL, DEL); obs-text is let through as
// llhttp's non-strict build accepts it from clients.
bool is_target(std::string_view t) {
    if (t.empty()) {
        return false;
    }
    for (char ch : t) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

bool is_framing(std::string_view name) {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding");
}

// Writes the headers except the skipped ones; refuses injection. Leaves `out` as it was on
// failure (the caller truncates).
Status append_headers(std::string& out, const Headers& headers, bool skip_host,
                      bool skip_connection) {
    for (const Header& h : headers) {
        if (!is_token(h.name)) {
            return invalid("http1: header name is not a token");
        }
        if (!is_field_value(h.value)) {
            return invalid("http1: header value holds CR, LF or NUL");
        }
        if (is_framing(h.name) || (skip_host && iequals(h.name, "host")) ||
            (skip_connection && iequals(h.name, "connection"))) {
            continue;
        }
        append_header(out, h.name, h.value);
    }
    return {};
}

void append_framing(std::string& out, Framing framing) {
    switch (framing.kind) {
    case BodyKind::Length:
        out.append("Content-Length: ");
        append_decimal(out, framing.length);
        out.append(kCrlf);
        break;
    case BodyKind::Chunked: append_header(out, "Transfer-Encoding", "chunked"); break;
    case BodyKind::None:
    case BodyKind::UntilEof: break;
    }
}

Framing framing_of(const MessageHead& h) {
    switch (h.body) {
    case BodyKind::Length: return Framing::content_length(h.content_length);
    case BodyKind::Chunked: return Framing::chunked();
    case BodyKind::None:
    case BodyKind::UntilEof: break;
    }
    return Framing::none();
}

}  // namespace

Status write_request_head(std::string& out, std::string_view method, std::string_view target,
                          std::string_view host, const Headers& headers, Framing framing) {
    if (!is_token(method)) {
        return invalid("http1: method is not a token");
    }
    if (!is_target(target)) {
        return invalid("http1: invalid request target");
    }
    if (!is_valid_authority(host)) {
        return invalid("http1: invalid host");
    }
    size_t mark = out.size();
    out.append(method);
    out.push_back(' ');
    out.append(target);
    out.append(" HTTP/1.1\r\n");
    append_header(out, "Host", host);
    if (Status s = append_headers(out, headers, true, false); !s) {
        out.resize(mark);
        return s;
    }
    append_framing(out, framing);
    out.append(kCrlf);
    return {};
}

Status write_request_head(std::string& out, const RequestHead& head) {
    return write_request_head(out, head.method, head.target, head.authority, head.headers,
                              framing_of(head));
}

Status write_response_head(std::string& out, uint16_t status, const Headers& headers,
                           Framing framing, bool close) {
    if (status < 100 || status > 999) {
        return invalid("http1: status out of range");
    }
    size_t mark = out.size();
    out.append("HTTP/1.1 ");
    append_decimal(out, status);
    out.push_back(' ');
    out.append(reason_phrase(status));
    out.append(kCrlf);
    if (Status s = append_headers(out, headers, false, close); !s) {
        out.resize(mark);
        return s;
    }
    append_framing(out, framing);
    if (close) {
        append_header(out, "Connection", "close");
    }
    out.append(kCrlf);
    return {};
}

void write_chunk_header(std::string& out, uint64_t size) {
    char buf[20];
    auto r = std::to_chars(buf, buf + sizeof(buf), size, 16);
    out.append(buf, r.ptr);
    out.append(kCrlf);
}

void write_chunk(std::string& out, std::string_view data) {
    if (data.empty()) {
        return;
    }
    write_chunk_header(out, data.size());
    out.append(data);
    out.append(kCrlf);
}

Status write_last_chunk(std::string& out, const Headers& trailers) {
    size_t mark = out.size();
    out.append("0\r\n");
    for (const Header& h : trailers) {
        if (!is_token(h.name) || !is_field_value(h.value) || is_framing(h.name) ||
            iequals(h.name, "host")) {
            out.resize(mark);
            return invalid("http1: invalid trailer field");
        }
        append_header(out, h.name, h.value);
    }
    out.append(kCrlf);
    return {};
}

void write_error_response(std::string& out, uint16_t status, std::string_view text,
                          bool keep_alive, std::string_view content_type, bool head_request,
                          std::string_view location) {
    if (status < 100 || status > 999) {
        CFD_BUG("http1: error response with a status out of range");
        status = 500;
    }
    std::string body;
    if (text.empty()) {
        append_decimal(body, status);
        body.push_back(' ');
        body.append(reason_phrase(status));
    } else {
        body.append(text);
    }
    if (body.back() != '\n') {
        body.push_back('\n');
    }
    out.append("HTTP/1.1 ");
    append_decimal(out, status);
    out.push_back(' ');
    out.append(reason_phrase(status));
    out.append(kCrlf);
    if (is_field_value(content_type) && !content_type.empty()) {
        append_header(out, "Content-Type", content_type);
    }
    append_header(out, "Cache-Control", "no-store");
    if (!location.empty() && is_field_value(location)) {
        append_header(out, "Location", location);
    }
    out.append("Content-Length: ");
    append_decimal(out, body.size());
    out.append(kCrlf);
    if (!keep_alive) {
        append_header(out, "Connection", "close");
    }
    out.append(kCrlf);
    if (!head_request) {
        out.append(body);
    }
}

}  // namespace cfd::http1
