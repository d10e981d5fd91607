// HTTP/1.1 message heads as the parsers hand them out and the writers take them in.
// Everything here is an owned copy: a head outlives the receive buffers it was parsed from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/text.h"
#include <vector>

#include "cfd/core/result.h"

namespace cfd::http1 {

// One header field, name in its original case, value without surrounding whitespace.
struct Header {
    std::string name;
    std::string value;

    bool operator==(const Header&) const = default;
};

// In arrival order; repeated names stay separate entries.
using Headers = std::vector<Header>;

// How the body of a message is delimited.
enum class BodyKind : uint8_t {
    None,      // no body at all (no framing header, HEAD response, 1xx/204/304, ...)
    Length,    // Content-Length (possibly 0)
    Chunked,   // Transfer-Encoding: chunked
    UntilEof,  // responses only: the body runs until the server closes the connection
};

const char* body_kind_name(BodyKind k);

// What request and response heads share.
struct MessageHead {
    uint8_t version_major = 1;
    uint8_t version_minor = 1;
    Headers headers;
    BodyKind body = BodyKind::None;
    uint64_t content_length = 0;  // valid when body == Length
    // The connection may carry another message after this one (HTTP/1.1 without
    // `Connection: close`, HTTP/1.0 with `Connection: keep-alive`, body not delimited by EOF).
    bool keep_alive = true;
    // Request: the client asks to switch protocols (Upgrade + Connection: upgrade) or is a
    // CONNECT. Response: 101 Switching Protocols, or a 2xx answer to CONNECT.
    bool upgrade = false;
    std::string upgrade_protocol;  // the Upgrade header's value, e.g. "websocket"
};

struct RequestHead : MessageHead {
    std::string method;     // as sent, e.g. "GET"
    std::string target;     // the request-target exactly as sent
    std::string path;       // path and query ("/a?b"); "*" for OPTIONS *; empty for CONNECT
    std::string authority;  // Host header, or the authority of an absolute-form or CONNECT target
    bool expect_continue = false;  // `Expect: 100-continue` on an HTTP/1.1 request
};

struct ResponseHead : MessageHead {
    uint16_t status = 0;
    std::string reason;  // reason phrase as sent (may be empty)

    // 1xx other than 101: a final response follows on the same exchange.
    bool interim() const { return status >= 100 && status < 200 && status != 101; }
};

// First header with this name (ASCII case-insensitive), or nullptr.
const std::string* find_header(const Headers& headers, std::string_view name);
size_t count_headers(const Headers& headers, std::string_view name);

// ASCII case-insensitive comparison, for header names and tokens.
using ::cfd::iequals;

// True when the comma-separated list `value` (e.g. a Connection header) holds `token`,
// compared case-insensitively with surrounding whitespace ignored.
bool has_token(std::string_view value, std::string_view token);

// RFC 9110 token characters (header names, methods, Connection options).
bool is_token(std::string_view s);
// Bytes allowed in a field value: visible ASCII, obs-text, SP and HTAB; never CR, LF or NUL.
bool is_field_value(std::string_view s);

// Bounds on what a parser keeps. Violations are answered with 431 or 414.
struct Limits {
    size_t max_header_bytes = 32 * 1024;  // start line + header section; trailers alike
    size_t max_headers = 100;             // header fields; trailer fields alike
    size_t max_target_bytes = 8 * 1024;   // request-target
    size_t max_chunk_ext_bytes = 4 * 1024;  // chunk extensions of one chunk (skipped, not kept)
};

// What one call of feed() or finish() reports. Exactly one event per call.
enum class Step : uint8_t {
    NeedMore,     // all input consumed; no event. Call feed() again when bytes arrive.
    HeadDone,     // head() is complete
    Body,         // body() holds body bytes lent from the input just fed
    MessageDone,  // the message ended; trailers() holds trailer fields, if any
    Upgrade,      // the message ended and the bytes from consumed() on belong to another protocol
    Closed,       // finish(): end of input at a message boundary, nothing lost
    Error,        // error() says what, and which status to answer with; the parser is dead
};

const char* step_name(Step s);

// A parse failure. `status` is what the edge answers a client with (400, 414, 431, 501, 505),
// or 502 for a response parser (the origin broke the protocol). `reason` is short and static.
struct ParseError {
    uint16_t status = 0;
    const char* reason = "";

    // For logs and Result<T> plumbing: Errc::Protocol, sys = the status, op = the reason.
    Error to_error() const { return Error{Errc::Protocol, status, reason}; }
};

}  // namespace cfd::http1
