// Sans-I/O, incremental HTTP/1.1 parsers over llhttp (strict: no lenient flags).
//
// One event per call. The caller feeds whatever it has and advances by consumed():
//
//     std::string_view in = recv_buffer;
//     for (;;) {
//         Step s = p.feed(in);
//         in.remove_prefix(p.consumed());
//         if (s == Step::NeedMore) { break; }                 // wait for more bytes
//         if (s == Step::HeadDone) { route(p.head()); }
//         if (s == Step::Body) { forward(p.body()); }         // lent: points into recv_buffer
//         if (s == Step::MessageDone) { finish_exchange(p.trailers(), p.keep_alive()); }
//         if (s == Step::Upgrade) { relay_raw(in); break; }   // `in` is the other protocol's
//         if (s == Step::Error) { answer(p.error().status, p.error().reason); break; }
//     }
//
// Rules:
// - Keep calling feed() until it returns NeedMore, even with empty input: a message without a
//   body ends right after its head, with no byte left to feed.
// - Flow control: to take at most N body bytes, feed a prefix of N bytes; the rest stays with
//   the caller. To pause, stop calling feed(); nothing is buffered in the parser meanwhile.
//   Body bytes are never copied: body() points into the input of the last feed().
// - Pipelining: after MessageDone the parser stops; the next message is parsed only when the
//   caller feeds again (after finishing the current exchange). head() stays valid until then.
// - After Upgrade, feed() keeps returning Upgrade with nothing consumed: the remaining bytes
//   are raw. If the upgrade was refused, resume_after_upgrade() goes back to HTTP.
// - After Error, every call returns Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/http1/message.h"

namespace cfd::http1 {

namespace detail {

template <class P>
struct Glue;  // the llhttp callbacks, src/http1/parser.cc

// What both parsers share. Not used on its own.
class ParserCore {
public:
    // Input bytes used by the last feed() or finish().
    size_t consumed() const { return consumed_; }
    // Valid after Step::Body until the caller's input buffer changes.
    std::string_view body() const { return body_; }
    // Valid after Step::MessageDone.
    const Headers& trailers() const { return trailers_; }
    // Valid after Step::Error.
    const ParseError& error() const { return error_; }
    // After MessageDone: whether the connection may carry another message.
    bool keep_alive() const { return keep_alive_; }
    // Messages completed so far.
    uint64_t messages() const { return messages_; }
    // The client's upgrade was not accepted: parse what follows as HTTP again.
    void resume_after_upgrade();

protected:
    enum class Phase : uint8_t {
        Head,      // start line and header section, counted and scanned
        Body,      // body bytes and chunk framing
        Trailers,  // after the last chunk, counted and scanned
        Done,      // message complete; the next feed() starts the next message
        Closed,    // message complete and the connection does not continue
        Upgraded,  // the rest of the stream is another protocol
        Failed,
    };
    // What a callback asks feed() to report.
    enum class Event : uint8_t { None, HeadDone, Body, MessageDone, TrailersStart };

    explicit ParserCore(const Limits& limits);
    size_t core_memory() const;

    // llhttp_t lives here so that public headers need not include llhttp.h; parser.cc checks
    // the size. The parser is movable: llhttp's back pointer is refreshed on every call.
    static constexpr size_t kLlhttpSize = 128;
    alignas(8) unsigned char ll_[kLlhttpSize];

    Limits limits_;
    Phase phase_ = Phase::Head;
    Event event_ = Event::None;
    bool keep_alive_ = true;
    // Line-ending scanner over head and trailer bytes: llhttp accepts a bare LF in places and
    // folds obs-fold lines; both are refused here (request smuggling).
    bool scan_prev_cr_ = false;
    bool scan_line_start_ = false;
    size_t section_bytes_ = 0;    // bytes of the current head or trailer section
    size_t chunk_ext_bytes_ = 0;  // chunk extension bytes of the current chunk
    size_t consumed_ = 0;
    uint64_t messages_ = 0;
    std::string_view body_;
    std::string name_;   // header field being accumulated
    std::string value_;  // header value being accumulated
    Headers trailers_;
    ParseError error_;
    ParseError pending_;  // set by a callback that fails, reported by feed()

    template <class P>
    friend struct Glue;
};

}  // namespace detail

// Parses requests from a public client (the edge) or from a test.
class RequestParser : public detail::ParserCore {
public:
    explicit RequestParser(const Limits& limits = {});

    [[nodiscard]] Step feed(std::string_view in);
    // The peer closed its side. Closed at a message boundary, Error mid-request.
    [[nodiscard]] Step finish();
    // Valid from HeadDone until the next message starts.
    const RequestHead& head() const { return head_; }
    // Heap bytes held (head, trailers, accumulators): bounded by Limits, never by body size.
    size_t memory_used() const;

private:
    RequestHead head_;

    template <class P>
    friend struct detail::Glue;
};

// Parses responses from an origin (the connector) or from a test. It must know the method of
// the request each response answers: HEAD responses have no body, a 2xx to CONNECT is a tunnel.
class ResponseParser : public detail::ParserCore {
public:
    explicit ResponseParser(const Limits& limits = {});

    // Set before the response's head arrives; stays until changed. Default "GET". With
    // pipelined requests, set it again after each MessageDone, before feeding the next response.
    void set_request_method(std::string_view method);

    [[nodiscard]] Step feed(std::string_view in);
    // The origin closed its side: ends a body delimited by EOF (MessageDone), Closed at a
    // message boundary, Error when a response was cut short.
    [[nodiscard]] Step finish();
    const ResponseHead& head() const { return head_; }
    size_t memory_used() const;

private:
    ResponseHead head_;
    bool head_request_ = false;
    bool connect_request_ = false;

    template <class P>
    friend struct detail::Glue;
};

}  // namespace cfd::http1
