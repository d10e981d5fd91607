// HTTP/1.1 serializers: heads, chunked framing, the edge's own error responses. Each appends to
// a caller's std::string (the out-queue of a connection) and never allocates anything else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/http1/message.h"

namespace cfd::http1 {

// How the body that follows a written head is delimited. The writer owns the framing headers:
// Content-Length and Transfer-Encoding given among the headers are never written.
struct Framing {
    BodyKind kind = BodyKind::None;  // None and UntilEof write no framing header
    uint64_t length = 0;             // for Length

    static Framing none() { return {}; }
    static Framing content_length(uint64_t n) { return {BodyKind::Length, n}; }
    static Framing chunked() { return {BodyKind::Chunked, 0}; }
};

inline constexpr std::string_view kCrlf = "\r\n";

// "METHOD target HTTP/1.1", Host, the headers in order (minus Host, Content-Length,
// Transfer-Encoding), the framing header. Errc::Invalid when the method is not a token, the
// target is empty or holds SP/CTL bytes, the host is not an authority, a header name is not a
// token or a value holds CR/LF/NUL: header injection is refused, and `out` is left unchanged.
[[nodiscard]] Status write_request_head(std::string& out, std::string_view method,
                                        std::string_view target, std::string_view host,
                                        const Headers& headers, Framing framing);
// Same, from a parsed head: its target, authority and body framing.
[[nodiscard]] Status write_request_head(std::string& out, const RequestHead& head);

// "HTTP/1.1 <status> <standard reason>", the headers (minus Content-Length and
// Transfer-Encoding, and minus Connection when `close`), the framing header, and
// `Connection: close` when `close`. Errc::Invalid as above, or for a status outside 100..999.
[[nodiscard]] Status write_response_head(std::string& out, uint16_t status,
                                         const Headers& headers, Framing framing,
                                         bool close = false);

// The standard reason phrase ("Not Found"), or "" for a code without one.
std::string_view reason_phrase(uint16_t status);

// One chunk: size line, data, CRLF. Writes nothing for empty data (that would end the body).
void write_chunk(std::string& out, std::string_view data);
// Only the size line, for data sent from elsewhere; the caller follows the data with kCrlf.
void write_chunk_header(std::string& out, uint64_t size);
// last-chunk, trailer fields, final CRLF. Errc::Invalid for a bad trailer; `out` unchanged.
[[nodiscard]] Status write_last_chunk(std::string& out, const Headers& trailers = {});

// A complete response the edge or connector answers by itself (400, 404, 431, 502, 530 ...):
// the body is `text` (the status line's words when empty) ending in a newline, with its
// Content-Length; `Connection: close` unless keep_alive. For a HEAD request, `head_request`
// writes the same head without the body. A non-empty `location` adds a Location header (the
// edge's redirects to HTTPS).
void write_error_response(std::string& out, uint16_t status, std::string_view text,
                          bool keep_alive,
                          std::string_view content_type = "text/plain; charset=utf-8",
                          bool head_request = false, std::string_view location = {});

}  // namespace cfd::http1
