// llhttp glue. Every callback that produces an event returns HPE_PAUSED, so one llhttp_execute
// stops right after the event and error_pos tells how much input it used. llhttp is resumed at
// once; our own Phase says what the next feed() does.
#include <llhttp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>

#include "cfd/http1/parser.h"
#include "head_checks.h"

namespace cfd::http1 {

namespace detail {

namespace {

llhttp_t* ll_of(unsigned char* storage) {
    return std::launder(reinterpret_cast<llhttp_t*>(storage));
}

// Bytes fed to llhttp must never be a null pointer: llhttp restarts an open span (a header
// value split across feeds) at the new pointer, and a null would drop it.
constexpr const char* kNoBytes = "";

// Trailer fields that would change how the message is framed or routed.
bool forbidden_trailer(std::string_view name) {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
           iequals(name, "host");
}

// What llhttp's own error codes mean to the peer. Response errors are all 502 (see the caller).
ParseError from_llhttp(const llhttp_t* ll, llhttp_errno_t err) {
    const char* why = ll->reason != nullptr ? ll->reason : "";
    switch (err) {
    case HPE_INVALID_METHOD: return {400, "invalid method"};
    case HPE_INVALID_URL: return {400, "invalid request target"};
    case HPE_INVALID_VERSION:
        // "Invalid HTTP version" is a well-formed version llhttp does not speak (HTTP/1.2, 3.0);
        // every other reason is a malformed one.
        if (std::strcmp(why, "Invalid HTTP version") == 0) {
            return {505, "HTTP version not supported"};
        }
        return {400, "invalid HTTP version"};
    case HPE_INVALID_STATUS: return {400, "invalid status line"};
    case HPE_INVALID_HEADER_TOKEN: return {400, "invalid character in header"};
    case HPE_INVALID_CONTENT_LENGTH: return {400, "invalid Content-Length"};
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        if (std::strncmp(why, "Duplicate", 9) == 0) {
            return {400, "duplicate Content-Length"};
        }
        return {400, "Content-Length with Transfer-Encoding"};
    case HPE_INVALID_TRANSFER_ENCODING: return {400, "invalid Transfer-Encoding"};
    case HPE_INVALID_CHUNK_SIZE: return {400, "invalid chunk size"};
    case HPE_STRICT: return {400, "malformed chunk"};
    case HPE_CLOSED_CONNECTION: return {400, "data after Connection: close"};
    case HPE_PAUSED_H2_UPGRADE: return {505, "HTTP/2 preface on an HTTP/1.1 connection"};
    case HPE_INVALID_EOF_STATE: return {400, "connection closed mid-message"};
    default: return {400, "malformed message"};
    }
}

// Scans head or trailer bytes for what llhttp lets through: a bare LF as line ending and
// obs-fold (a line starting with SP or HTAB). Returns a reason, or nullptr when clean.
const char* scan_lines(bool* prev_cr, bool* line_start, const char* at, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        char ch = at[i];
        if (ch == '\n') {
            if (!*prev_cr) {
                return "bare LF line ending";
            }
            *line_start = true;
            *prev_cr = false;
            continue;
        }
        if (*line_start && (ch == ' ' || ch == '\t')) {
            return "obs-fold line folding";
        }
        *line_start = false;
        *prev_cr = ch == '\r';
    }
    return nullptr;
}

// Where llhttp stopped within [at, at + len); 0 when the position is not in that range.
size_t offset_in(const char* pos, const char* at, size_t len) {
    auto p = reinterpret_cast<uintptr_t>(pos);
    auto a = reinterpret_cast<uintptr_t>(at);
    return (p >= a && p - a <= len) ? static_cast<size_t>(p - a) : 0;
}

size_t string_memory(const std::string& s) { return s.capacity(); }

size_t headers_memory(const Headers& hs) {
    size_t n = hs.capacity() * sizeof(Header);
    for (const Header& h : hs) {
        n += string_memory(h.name) + string_memory(h.value);
    }
    return n;
}

}  // namespace

template <class P>
struct Glue {
    static_assert(sizeof(llhttp_t) <= ParserCore::kLlhttpSize, "grow ParserCore::kLlhttpSize");
    static_assert(alignof(llhttp_t) <= 8, "ParserCore::ll_ alignment");

    static constexpr bool kRequest = std::is_same_v<P, RequestParser>;

    static P& self(llhttp_t* ll) { return *static_cast<P*>(ll->data); }

    static int fail(P& p, uint16_t status, const char* reason) {
        p.pending_ = {kRequest ? status : uint16_t{502}, reason};
        return HPE_USER;
    }

    // --- callbacks -------------------------------------------------------------------------

    static int on_method(llhttp_t* ll, const char* at, size_t n) {
        if constexpr (kRequest) {
            self(ll).head_.method.append(at, n);
        }
        return 0;
    }

    static int on_url(llhttp_t* ll, const char* at, size_t n) {
        if constexpr (kRequest) {
            P& p = self(ll);
            p.head_.target.append(at, n);
            if (p.head_.target.size() > p.limits_.max_target_bytes) {
                return fail(p, 414, "request target too long");
            }
        }
        return 0;
    }

    static int on_status(llhttp_t* ll, const char* at, size_t n) {
        if constexpr (!kRequest) {
            self(ll).head_.reason.append(at, n);
        }
        return 0;
    }

    static int on_header_field(llhttp_t* ll, const char* at, size_t n) {
        self(ll).name_.append(at, n);
        return 0;
    }

    static int on_header_field_complete(llhttp_t* ll) {
        P& p = self(ll);
        // llhttp's non-strict build accepts "Name :" and an empty name; both are smuggling
        // vectors when another hop reads them differently.
        if (!is_token(p.name_)) {
            return fail(p, 400, "invalid header name");
        }
        return 0;
    }

    static int on_header_value(llhttp_t* ll, const char* at, size_t n) {
        self(ll).value_.append(at, n);
        return 0;
    }

    static int on_header_value_complete(llhttp_t* ll) {
        P& p = self(ll);
        while (!p.value_.empty() && (p.value_.back() == ' ' || p.value_.back() == '\t')) {
            p.value_.pop_back();
        }
        if (!is_field_value(p.value_)) {
            return fail(p, 400, "invalid character in header value");
        }
        bool trailer = p.phase_ == ParserCore::Phase::Trailers;
        if (trailer && forbidden_trailer(p.name_)) {
            return fail(p, 400, "forbidden trailer field");
        }
        Headers& to = trailer ? p.trailers_ : p.head_.headers;
        if (to.size() >= p.limits_.max_headers) {
            return fail(p, 431, "too many header fields");
        }
        to.push_back(Header{std::move(p.name_), std::move(p.value_)});
        p.name_.clear();
        p.value_.clear();
        return 0;
    }

    static int on_headers_complete(llhttp_t* ll) {
        P& p = self(ll);
        auto& h = p.head_;
        h.version_major = ll->http_major;
        h.version_minor = ll->http_minor;
        ParseError e;
        if constexpr (kRequest) {
            e = check_request_head(h);
        } else {
            h.status = ll->status_code;
            e = check_response_head(h);
            if (e.status == 0) {
                // Returning 1 or 2 from this callback would say the same, but we return
                // HPE_PAUSED, so set what those values set.
                unsigned s = h.status;
                if (s == 101 || (p.connect_request_ && s / 100 == 2)) {
                    ll->upgrade = 1;
                    ll->flags = static_cast<uint16_t>(ll->flags | F_SKIPBODY);
                } else if (p.head_request_ || s / 100 == 1 || s == 204 || s == 304) {
                    ll->flags = static_cast<uint16_t>(ll->flags | F_SKIPBODY);
                }
            }
        }
        if (e.status != 0) {
            p.pending_ = e;
            return -1;
        }
        h.upgrade = ll->upgrade != 0;
        h.content_length = (ll->flags & F_CONTENT_LENGTH) ? ll->content_length : 0;
        if (ll->flags & F_SKIPBODY) {
            h.body = BodyKind::None;
        } else if (ll->flags & F_CHUNKED) {
            h.body = BodyKind::Chunked;
        } else if (ll->flags & F_CONTENT_LENGTH) {
            h.body = BodyKind::Length;
        } else if (llhttp_message_needs_eof(ll)) {
            h.body = BodyKind::UntilEof;
        } else {
            h.body = BodyKind::None;
        }
        h.keep_alive = llhttp_should_keep_alive(ll) != 0 && !h.upgrade;
        p.chunk_ext_bytes_ = 0;
        p.event_ = ParserCore::Event::HeadDone;
        return HPE_PAUSED;
    }

    static int on_body(llhttp_t* ll, const char* at, size_t n) {
        if (n == 0) {
            return 0;  // an open span flushed at the end of an empty feed
        }
        P& p = self(ll);
        p.body_ = std::string_view(at, n);
        p.event_ = ParserCore::Event::Body;
        return HPE_PAUSED;
    }

    static int on_chunk_extension(llhttp_t* ll, const char* /*at*/, size_t n) {
        P& p = self(ll);
        p.chunk_ext_bytes_ += n;
        if (p.chunk_ext_bytes_ > p.limits_.max_chunk_ext_bytes) {
            return fail(p, 400, "chunk extension too long");
        }
        return 0;
    }

    // Called once the chunk-size line is read: the extensions counted above belonged to it.
    static int on_chunk_header(llhttp_t* ll) {
        P& p = self(ll);
        p.chunk_ext_bytes_ = 0;
        if (ll->content_length == 0) {
            // last-chunk: the trailer section follows; it is counted and scanned like a head.
            p.event_ = ParserCore::Event::TrailersStart;
            return HPE_PAUSED;
        }
        return 0;
    }

    static int on_message_complete(llhttp_t* ll) {
        P& p = self(ll);
        p.messages_ += 1;
        if (ll->upgrade) {
            // llhttp stops with HPE_PAUSED_UPGRADE right after: reported as Step::Upgrade.
            p.keep_alive_ = false;
            return 0;
        }
        p.keep_alive_ = p.head_.keep_alive;
        p.event_ = ParserCore::Event::MessageDone;
        return HPE_PAUSED;
    }

    static const llhttp_settings_t* settings() {
        static const llhttp_settings_t s = [] {
            llhttp_settings_t t;
            llhttp_settings_init(&t);
            if constexpr (kRequest) {
                t.on_method = on_method;
                t.on_url = on_url;
            } else {
                t.on_status = on_status;
            }
            t.on_header_field = on_header_field;
            t.on_header_field_complete = on_header_field_complete;
            t.on_header_value = on_header_value;
            t.on_header_value_complete = on_header_value_complete;
            t.on_headers_complete = on_headers_complete;
            t.on_body = on_body;
            t.on_chunk_extension_name = on_chunk_extension;
            t.on_chunk_extension_value = on_chunk_extension;
            t.on_chunk_header = on_chunk_header;
            t.on_message_complete = on_message_complete;
            return t;
        }();
        return &s;
    }

    // --- driving -----------------------------------------------------------------------------

    static void init(P& p) {
        llhttp_t* ll = new (p.ll_) llhttp_t;
        llhttp_init(ll, kRequest ? HTTP_REQUEST : HTTP_RESPONSE, settings());
        // No llhttp_set_lenient_*: strict parsing is the point.
    }

    static Step fail_now(P& p, ParseError e) {
        if (!kRequest) {
            e.status = 502;
        }
        p.error_ = e;
        p.phase_ = ParserCore::Phase::Failed;
        return Step::Error;
    }

    static void start_next(P& p) {
        p.head_ = {};
        p.trailers_.clear();
        p.name_.clear();
        p.value_.clear();
        p.section_bytes_ = 0;
        p.chunk_ext_bytes_ = 0;
        p.scan_prev_cr_ = false;
        p.scan_line_start_ = false;
        p.keep_alive_ = true;
        p.phase_ = ParserCore::Phase::Head;
    }

    static Step feed(P& p, std::string_view in) {
        using Phase = ParserCore::Phase;
        using Event = ParserCore::Event;
        llhttp_t* ll = ll_of(p.ll_);
        ll->data = &p;
        p.consumed_ = 0;
        p.body_ = {};
        switch (p.phase_) {
        case Phase::Failed: return Step::Error;
        case Phase::Upgraded: return Step::Upgrade;
        case Phase::Closed:
            if (in.empty()) {
                return Step::NeedMore;
            }
            return fail_now(p, {400, "data after the last message"});
        case Phase::Done: start_next(p); break;
        case Phase::Head:
        case Phase::Body:
        case Phase::Trailers: break;
        }

        const char* base = in.empty() ? kNoBytes : in.data();
        size_t off = 0;
        for (;;) {
            size_t avail = in.size() - off;
            size_t len = avail;
            bool counted = p.phase_ == Phase::Head || p.phase_ == Phase::Trailers;
            if (counted) {
                // llhttp never sees more head bytes than the limit allows, so nothing we
                // accumulate can outgrow it, whitespace padding included.
                size_t budget = p.limits_.max_header_bytes -
                                std::min(p.section_bytes_, p.limits_.max_header_bytes);
                if (budget == 0 && avail > 0) {
                    return fail_now(p, {431, "header section too large"});
                }
                len = std::min(avail, budget);
            }
            p.event_ = Event::None;
            const char* at = base + off;
            llhttp_errno_t err = llhttp_execute(ll, at, len);
            size_t used = len;
            if (err != HPE_OK) {
                used = offset_in(llhttp_get_error_pos(ll), at, len);
            }
            if (counted) {
                // Before llhttp's own error, so that the first fault in the bytes is the one
                // reported, however the input was split.
                if (const char* bad = scan_lines(&p.scan_prev_cr_, &p.scan_line_start_, at, used)) {
                    return fail_now(p, {400, bad});
                }
                p.section_bytes_ += used;
            }
            if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
                return fail_now(p, p.pending_.status != 0 ? p.pending_ : from_llhttp(ll, err));
            }
            off += used;
            p.consumed_ = off;
            if (err == HPE_PAUSED_UPGRADE) {
                p.phase_ = Phase::Upgraded;
                return Step::Upgrade;
            }
            if (err == HPE_PAUSED) {
                llhttp_resume(ll);
                switch (p.event_) {
                case Event::HeadDone: p.phase_ = Phase::Body; return Step::HeadDone;
                case Event::Body: return Step::Body;
                case Event::MessageDone:
                    p.phase_ = p.keep_alive_ ? Phase::Done : Phase::Closed;
                    return Step::MessageDone;
                case Event::TrailersStart:
                    p.phase_ = Phase::Trailers;
                    p.section_bytes_ = 0;
                    p.scan_prev_cr_ = false;
                    p.scan_line_start_ = true;  // the last-chunk line's CRLF was just read
                    continue;
                case Event::None: break;
                }
                CFD_BUG("http1: llhttp paused without an event");
                return fail_now(p, {400, "malformed message"});
            }
            if (off == in.size()) {
                return Step::NeedMore;
            }
            // Clipped by the header budget: the next round reports 431.
        }
    }

    static Step finish(P& p) {
        using Phase = ParserCore::Phase;
        llhttp_t* ll = ll_of(p.ll_);
        ll->data = &p;
        p.consumed_ = 0;
        p.body_ = {};
        switch (p.phase_) {
        case Phase::Failed: return Step::Error;
        case Phase::Upgraded:
        case Phase::Done:
        case Phase::Closed: p.phase_ = Phase::Closed; return Step::Closed;
        case Phase::Body: {
            // A message that needs no more bytes may not have been driven to its end yet.
            Step s = feed(p, {});
            if (s != Step::NeedMore) {
                return s;
            }
            break;
        }
        case Phase::Head:
        case Phase::Trailers: break;
        }
        p.event_ = ParserCore::Event::None;
        llhttp_errno_t err = llhttp_finish(ll);
        if (err == HPE_OK) {
            if (p.phase_ == Phase::Head) {
                p.phase_ = Phase::Closed;
                return Step::Closed;
            }
        } else if (err == HPE_PAUSED && p.event_ == ParserCore::Event::MessageDone) {
            // A body delimited by EOF just ended.
            p.phase_ = Phase::Closed;
            return Step::MessageDone;
        }
        return fail_now(p, kRequest ? ParseError{400, "connection closed mid-request"}
                                    : ParseError{502, "origin closed the connection mid-response"});
    }
};

ParserCore::ParserCore(const Limits& limits) : limits_(limits) {}

size_t ParserCore::core_memory() const {
    return string_memory(name_) + string_memory(value_) + headers_memory(trailers_);
}

void ParserCore::resume_after_upgrade() {
    if (phase_ != Phase::Upgraded) {
        return;
    }
    llhttp_resume_after_upgrade(ll_of(ll_));
    phase_ = Phase::Done;
}

}  // namespace detail

RequestParser::RequestParser(const Limits& limits) : ParserCore(limits) {
    detail::Glue<RequestParser>::init(*this);
}

Step RequestParser::feed(std::string_view in) {
    return detail::Glue<RequestParser>::feed(*this, in);
}

Step RequestParser::finish() { return detail::Glue<RequestParser>::finish(*this); }

size_t RequestParser::memory_used() const {
    return core_memory() + detail::headers_memory(head_.headers) +
           detail::string_memory(head_.method) + detail::string_memory(head_.target) +
           detail::string_memory(head_.path) + detail::string_memory(head_.authority) +
           detail::string_memory(head_.upgrade_protocol);
}

ResponseParser::ResponseParser(const Limits& limits) : ParserCore(limits) {
    detail::Glue<ResponseParser>::init(*this);
}

void ResponseParser::set_request_method(std::string_view method) {
    head_request_ = method == "HEAD";
    connect_request_ = method == "CONNECT";
}

Step ResponseParser::feed(std::string_view in) {
    return detail::Glue<ResponseParser>::feed(*this, in);
}

Step ResponseParser::finish() { return detail::Glue<ResponseParser>::finish(*this); }

size_t ResponseParser::memory_used() const {
    return core_memory() + detail::headers_memory(head_.headers) +
           detail::string_memory(head_.reason) + detail::string_memory(head_.upgrade_protocol);
}

}  // namespace cfd::http1
