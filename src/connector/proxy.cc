#include "cfd/connector/proxy.h"
#include "cfd/core/text.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

#include "cfd/core/log.h"
#include "cfd/http1/hop_by_hop.h"
#include "cfd/http1/writer.h"
#include "cfd/ws/frame.h"
#include "cfd/ws/handshake.h"

namespace cfd::connector {

namespace {

constexpr std::string_view kHelloWorld =
    "<!DOCTYPE html>\n<html><head><title>cfdtunnel hello world</title></head>\n"
    "<body><h1>Congrats! You created a tunnel!</h1>\n"
    "<p>This page is served by the hello_world origin of cfdtunnel.</p></body></html>\n";

bool method_has_body(std::string_view m) { return m == "POST" || m == "PUT" || m == "PATCH"; }

// The request's fields as the origin gets them, in either protocol: the edge's headers minus
// pseudo-headers, the tunnel's own, hop-by-hop ones, Host (the origin gets the host apart) and
// Expect (the edge already answered the client's 100-continue; the body comes anyway);
// content-length is checked and returned apart. With httpHostHeader, X-Forwarded-Host carries
// the public host, as cloudflared sets it (the client's own value is replaced).
struct RequestFields {
    http1::Headers fields;
    uint64_t declared = 0;
    bool has_declared = false;
    bool bad_length = false;
};

RequestFields request_fields(const http2::Headers& headers, const OriginService& svc,
                             std::string_view authority) {
    RequestFields out;
    for (const http2::Header& h : headers) {
        if (h.is_pseudo() || http2::is_control_header(h.name) || http1::is_hop_by_hop(h.name) ||
            h.name == "host" || h.name == "expect") {
            continue;
        }
        if (h.name == "content-length") {
            auto [p, ec] =
                std::from_chars(h.value.data(), h.value.data() + h.value.size(), out.declared);
            if (ec != std::errc() || p != h.value.data() + h.value.size()) {
                out.bad_length = true;
                return out;
            }
            out.has_declared = true;
            continue;
        }
        out.fields.push_back({h.name, h.value});
    }
    if (!svc.host_header.empty()) {
        std::erase_if(out.fields, [](const http1::Header& h) {
            return http1::iequals(h.name, "x-forwarded-host");
        });
        out.fields.push_back({"X-Forwarded-Host", std::string(authority)});
    }
    return out;
}

}  // namespace

std::string_view hello_world_page() { return kHelloWorld; }

struct Proxy::Stream {
    explicit Stream(int32_t i, const http1::Limits& l) : id(i), parser(l) {}

    int32_t id;
    http2::StreamKind kind = http2::StreamKind::Http;
    const OriginService* svc = nullptr;
    OriginLink* link = nullptr;
    bool dialing = false;
    bool local = false;  // answered by us; request body bytes are discarded

    // Request side: bytes for the origin (head, framing, body), and when each body piece may be
    // consume()d on the HTTP/2 stream: once the origin took every byte up to `pos`.
    std::string req_q;
    uint64_t req_queued = 0;
    uint64_t req_sent = 0;
    std::deque<std::pair<uint64_t, size_t>> consume_at;
    bool chunked = false;
    bool raw_request = false;  // WebSocket: body bytes pass as they are
    bool has_length = false;
    uint64_t length_left = 0;
    bool req_done = false;
    // disableChunkedEncoding with a body of unknown length: the head waits here while the body
    // is collected (bounded by max_request_queue), then goes with a Content-Length.
    struct Collect {
        std::string method, path, host;
        http1::Headers headers;
        std::string body;
    };
    std::unique_ptr<Collect> collect;

    // Response side.
    http1::ResponseParser parser;
    bool head_sent = false;
    bool raw = false;  // the origin switched protocols: bytes pass as they are
    bool interim = false;  // the head being parsed is a 1xx other than 101

    // A bodiless request on a pooled connection that the origin closed before answering (its
    // keep-alive ran out as we reused it) is sent once more on another connection.
    std::string method;
    std::string replay;   // the request head, when the request has no body
    bool reused = false;  // the current link came from the pool
    bool retried = false;
    uint64_t resp_bytes = 0;  // origin bytes received on the current link
    bool resp_done = false;
    bool keep_alive = false;
    std::string resp_buf;
    size_t resp_off = 0;
    bool paused = false;

    // Byte pipes (tcp://, ssh:// rules): Raw passes bytes as they are; WebSocket decodes the
    // client's frames toward the origin and frames the origin's bytes toward the client.
    enum class Pipe : uint8_t { None, Raw, WebSocket };
    Pipe pipe = Pipe::None;
    std::unique_ptr<ws::Decoder> ws_in;
    std::string ws_accept;  // Sec-WebSocket-Accept for the 200, when the request had a key
    bool shut = false;      // the origin got its FIN

    // http2Origin: the request travels as a stream of a shared HTTP/2 origin connection. Its
    // body waits in req_q (raw) until the origin stream takes it (h2_body_copy), which is when
    // it is consumed on the tunnel stream; response bytes are consumed on the origin stream as
    // the tunnel takes them (on_body_copy).
    bool h2 = false;
    OriginH2* h2c = nullptr;  // while the origin stream is open
    int32_t h2id = 0;
    bool h2_end_at_open = false;
    http2::Headers h2_req;  // the edge's request as it came, for a fall-back to HTTP/1.1
    std::vector<std::pair<std::string, std::string>> h2_fields;  // what the origin gets
    std::string h2_host;      // :authority toward the origin
    uint64_t body_taken = 0;  // request body bytes the origin stream took

    size_t resp_avail() const { return resp_buf.size() - resp_off; }
};

Proxy::Proxy(const Router& router, OriginDialer& dialer, ProxyLimits limits)
    : router_(router), dialer_(dialer), limits_(limits), stats_(limits.stats) {
    if (stats_ == nullptr) {
        own_stats_ = std::make_unique<Stats>();
        stats_ = own_stats_.get();
    }
}

Proxy::~Proxy() {
    // The link went away with these streams open: they are not in flight any more.
    bump(stats_->concurrent, -static_cast<int64_t>(streams_.size()));
    for (auto& [id, s] : streams_) {
        if (s->dialing) {
            dialer_.cancel(id);
        }
        if (s->link != nullptr) {
            s->link->release(false);
        }
        if (s->h2c != nullptr) {
            s->h2c->cancel(s->h2id);
        }
    }
}

Proxy::Stream* Proxy::find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
}

void Proxy::release_link(Stream& s, bool reusable) {
    if (s.link != nullptr) {
        OriginLink* l = s.link;
        s.link = nullptr;
        l->release(reusable);
    }
    if (s.h2c != nullptr) {
        OriginH2* c = s.h2c;
        s.h2c = nullptr;
        c->cancel(s.h2id);
    }
    if (s.dialing) {
        s.dialing = false;
        dialer_.cancel(s.id);
    }
}

void Proxy::answer_local(Stream& s, int status, std::string_view meta, std::string_view body,
                         std::string_view content_type) {
    release_link(s, false);
    count_status(status);
    s.local = true;
    s.head_sent = true;
    s.resp_done = true;
    s.resp_buf.assign(body);
    s.resp_off = 0;
    std::string length = std::to_string(body.size());
    std::vector<http2::HeaderPair> user;
    if (!content_type.empty()) {
        user.emplace_back("Content-Type", std::string(content_type));
    }
    if (!body.empty()) {
        user.emplace_back("Content-Length", length);
    }
    std::string serialized = http2::serialize_user_headers(user);
    std::vector<http2::HeaderView> hv{{http2::kResponseHeaders, serialized},
                                      {http2::kResponseMeta, meta}};
    if (!body.empty()) {
        hv.push_back({"content-length", length});
    }
    if (auto r = session_->h2().submit_response(s.id, status, hv, !body.empty()); !r) {
        (void)session_->h2().rst_stream(s.id, http2::kInternalError);
    }
    // The edge may still send body bytes: they are consumed and dropped from now on; what it
    // sent before and we queued for the origin is released too.
    size_t held = s.h2 ? s.req_q.size() : 0;  // HTTP/2 origins: queued, not yet consumed
    for (auto& c : s.consume_at) {
        held += c.second;
    }
    s.consume_at.clear();
    s.req_q.clear();
    if (held > 0) {
        session_->h2().consume(s.id, held);
    }
}

void Proxy::fail(Stream& s, std::string_view why) {
    bump(stats_->errors);
    log::debug("origin request failed", {{"stream", s.id}, {"error", why}});
    if (s.head_sent) {
        // Too late for a status: the edge sees the stream reset.
        release_link(s, false);
        s.resp_done = true;
        (void)session_->h2().rst_stream(s.id, http2::kInternalError);
        return;
    }
    std::string body = "502 Bad Gateway: ";
    body.append(why);
    body.push_back('\n');
    answer_local(s, 502, http2::kMetaCloudflared, body, "text/plain; charset=utf-8");
}

void Proxy::on_stream_open(int32_t id, http2::StreamKind kind, http2::Headers&& headers,
                           bool end_stream) {
    CFD_CHECK(session_ != nullptr);
    bump(stats_->requests);
    bump(stats_->concurrent, 1);
    auto owned = std::make_unique<Stream>(id, limits_.http1);
    Stream& s = *owned;
    streams_[id] = std::move(owned);
    s.kind = kind;
    s.req_done = end_stream;

    if (kind == http2::StreamKind::Configuration) {
        // Remote configuration is not supported: acknowledge and ignore, as a locally
        // configured cloudflared does.
        s.local = true;
        s.resp_done = true;
        s.head_sent = true;
        (void)session_->h2().submit_response(id, 200, {}, false);
        return;
    }
    if (kind == http2::StreamKind::Control) {
        fail(s, "a second control stream");
        return;
    }
    if (kind == http2::StreamKind::Tcp) {
        open_tcp_stream(s, headers);
        return;
    }
    std::string_view path = http2::header_value(headers, ":path");
    std::string_view authority = http2::header_value(headers, ":authority");
    s.svc = router_.route(authority, path);
    if (s.svc == nullptr) {
        fail(s, "no ingress rule matches this request");
        return;
    }
    switch (s.svc->kind) {
    case OriginService::Kind::HttpStatus: {
        // cloudflared answers http_status rules as an origin would: the status, no body.
        s.local = true;
        s.head_sent = true;
        s.resp_done = true;
        bump(stats_->origin_ok);
        count_status(s.svc->status);
        std::vector<http2::HeaderView> hv{{http2::kResponseHeaders, ""},
                                          {http2::kResponseMeta, http2::kMetaOrigin}};
        if (auto r = session_->h2().submit_response(id, s.svc->status, hv, false); !r) {
            (void)session_->h2().rst_stream(id, http2::kInternalError);
        }
        return;
    }
    case OriginService::Kind::HelloWorld:
        bump(stats_->origin_ok);
        answer_local(s, 200, http2::kMetaOrigin, kHelloWorld, "text/html; charset=utf-8");
        return;
    case OriginService::Kind::Unsupported:
        fail(s, "this connector cannot serve " + s.svc->url + " yet");
        return;
    case OriginService::Kind::Tcp:
        if (kind == http2::StreamKind::Websocket) {
            start_pipe(s, headers);
            return;
        }
        // cloudflared answers the same: a TCP service is reached through a WebSocket.
        fail(s, s.svc->url + " is a TCP service: reach it with `cfdtunnel access tcp`");
        return;
    case OriginService::Kind::Http:
        break;
    }
    if (s.svc->http2 && kind == http2::StreamKind::Http) {
        open_h2(s, std::move(headers), end_stream);
        return;
    }
    (void)open_http1(s, headers, end_stream);
}

bool Proxy::open_http1(Stream& s, const http2::Headers& headers, bool end_stream, bool dial) {
    std::string_view method = http2::header_value(headers, ":method");
    std::string_view path = http2::header_value(headers, ":path");
    std::string_view authority = http2::header_value(headers, ":authority");
    RequestFields rf = request_fields(headers, *s.svc, authority);
    if (rf.bad_length) {
        answer_local(s, 400, http2::kMetaCloudflared, "400 Bad Request: content-length\n",
                     "text/plain; charset=utf-8");
        return false;
    }
    http1::Headers& h1 = rf.fields;
    uint64_t declared = rf.declared;
    bool has_declared = rf.has_declared;
    http1::Framing framing = http1::Framing::none();
    if (s.kind == http2::StreamKind::Websocket) {
        h1.push_back({"Connection", "Upgrade"});
        h1.push_back({"Upgrade", "websocket"});
        s.raw_request = true;
    } else if (end_stream) {
        if (has_declared && declared != 0) {
            answer_local(s, 400, http2::kMetaCloudflared, "400 Bad Request: body missing\n",
                         "text/plain; charset=utf-8");
            return false;
        }
        if (method_has_body(method) || has_declared) {
            framing = http1::Framing::content_length(0);
        }
    } else if (has_declared) {
        framing = http1::Framing::content_length(declared);
        s.has_length = true;
        s.length_left = declared;
    } else if (s.svc->disable_chunked_encoding) {
        // cloudflared's disableChunkedEncoding, for origins that cannot read a chunked body
        // (WSGI servers): the body is collected and sent with its Content-Length instead.
        s.collect = std::make_unique<Stream::Collect>();
    } else {
        framing = http1::Framing::chunked();
        s.chunked = true;
    }
    std::string_view host = s.svc->host_header.empty() ? authority : s.svc->host_header;
    if (s.collect) {
        s.collect->method = method;
        s.collect->path = path;
        s.collect->host = host;
        s.collect->headers = std::move(h1);
        s.method = std::string(method);
        return true;  // on_stream_end() writes the head and dials
    }
    if (auto r = http1::write_request_head(s.req_q, method, path, host, h1, framing); !r) {
        answer_local(s, 400, http2::kMetaCloudflared, "400 Bad Request: invalid request head\n",
                     "text/plain; charset=utf-8");
        return false;
    }
    s.req_queued = s.req_q.size();
    s.method = std::string(method);
    if (end_stream && !s.raw_request) {
        s.replay = s.req_q;
    }
    s.parser.set_request_method(method);
    s.dialing = true;
    if (dial) {
        dialer_.dial(*s.svc, s.id);
    }
    return true;
}

bool Proxy::admit_body(Stream& s, std::string_view bytes) {
    if (s.has_length) {
        if (bytes.size() > s.length_left) {
            // More than content-length: never let it reach the origin (over HTTP/1.1, as a
            // second request).
            session_->h2().consume(s.id, bytes.size());
            fail(s, "request body longer than its content-length");
            return false;
        }
        s.length_left -= bytes.size();
    }
    if (s.req_q.size() + bytes.size() > limits_.max_request_queue) {
        session_->h2().consume(s.id, bytes.size());
        fail(s, "request body queue over its bound");
        return false;
    }
    return true;
}

void Proxy::on_stream_data(int32_t id, std::string_view bytes) {
    Stream* s = find(id);
    if (s != nullptr && s->pipe != Stream::Pipe::None && !s->local) {
        pipe_edge_data(*s, bytes);
        return;
    }
    if (s != nullptr && s->h2 && !s->local) {
        if (s->h2c == nullptr && !s->dialing) {
            session_->h2().consume(id, bytes.size());  // the origin stream is gone
            return;
        }
        if (!admit_body(*s, bytes)) {
            return;
        }
        s->req_q.append(bytes);  // consumed when the origin stream takes it
        if (s->h2c != nullptr) {
            s->h2c->body_more(s->h2id);
        }
        return;
    }
    if (s != nullptr && s->collect && !s->local) {
        session_->h2().consume(id, bytes.size());  // held here, bounded below
        if (s->collect->body.size() + bytes.size() > limits_.max_request_queue) {
            s->collect.reset();
            answer_local(*s, 413, http2::kMetaCloudflared,
                         "413 Request Entity Too Large: a body of unknown length is collected "
                         "before it goes to this origin (disableChunkedEncoding), and this one "
                         "is over the limit\n",
                         "text/plain; charset=utf-8");
            return;
        }
        s->collect->body.append(bytes);
        return;
    }
    if (s == nullptr || s->local || (s->link == nullptr && !s->dialing)) {
        // Nobody takes these bytes any more (answered, or the origin is gone): drop them.
        session_->h2().consume(id, bytes.size());
        return;
    }
    if (!admit_body(*s, bytes)) {
        return;
    }
    if (s->chunked) {
        http1::write_chunk(s->req_q, bytes);
    } else {
        s->req_q.append(bytes);
    }
    s->req_queued = s->req_sent + s->req_q.size();
    s->consume_at.emplace_back(s->req_queued, bytes.size());
    flush_request(*s);
}

void Proxy::on_stream_end(int32_t id) {
    Stream* s = find(id);
    if (s == nullptr || s->local) {
        return;
    }
    s->req_done = true;
    if (s->pipe != Stream::Pipe::None) {
        pipe_progress(*s);
        return;
    }
    if (s->h2) {
        if (s->has_length && s->length_left != 0) {
            fail(*s, "request body shorter than its content-length");
            return;
        }
        if (s->h2c != nullptr) {
            s->h2c->body_more(s->h2id);
        }
        return;
    }
    if (s->collect) {
        std::unique_ptr<Stream::Collect> c = std::move(s->collect);
        auto framing = http1::Framing::content_length(c->body.size());
        if (auto r = http1::write_request_head(s->req_q, c->method, c->path, c->host, c->headers,
                                               framing);
            !r) {
            answer_local(*s, 400, http2::kMetaCloudflared,
                         "400 Bad Request: invalid request head\n", "text/plain; charset=utf-8");
            return;
        }
        s->req_q.append(c->body);
        s->req_queued = s->req_q.size();
        s->replay = s->req_q;  // complete and bounded: it may be sent again like a bodiless one
        s->parser.set_request_method(s->method);
        s->dialing = true;
        dialer_.dial(*s->svc, id);
        return;
    }
    if (s->has_length && s->length_left != 0) {
        fail(*s, "request body shorter than its content-length");
        return;
    }
    if (s->chunked) {
        (void)http1::write_last_chunk(s->req_q);
        s->req_queued = s->req_sent + s->req_q.size();
    }
    flush_request(*s);
    maybe_finish(*s);
}

void Proxy::on_stream_close(int32_t id, uint32_t code) {
    auto it = streams_.find(id);
    if (it == streams_.end()) {
        return;
    }
    Stream& s = *it->second;
    if (code != http2::kNoError && !s.resp_done) {
        log::debug("stream reset by the edge", {{"stream", id},
                                                {"code", http2::error_code_name(code)}});
    }
    release_link(s, false);
    streams_.erase(it);
    bump(stats_->concurrent, -1);
}

void Proxy::count_status(int status) {
    if (status >= ProxyStats::kMinStatus && status <= ProxyStats::kMaxStatus) {
        bump(stats_->by_status[static_cast<size_t>(status - ProxyStats::kMinStatus)]);
    }
}

void Proxy::flush_request(Stream& s) {
    if (s.link == nullptr) {
        return;
    }
    while (!s.req_q.empty()) {
        size_t n = std::min(s.link->room(), s.req_q.size());
        if (n == 0) {
            break;  // origin_writable() resumes
        }
        s.link->send(std::string_view(s.req_q).substr(0, n));
        s.req_q.erase(0, n);
        s.req_sent += n;
    }
    size_t consumed = 0;
    while (!s.consume_at.empty() && s.consume_at.front().first <= s.req_sent) {
        consumed += s.consume_at.front().second;
        s.consume_at.pop_front();
    }
    if (consumed > 0) {
        session_->h2().consume(s.id, consumed);
    }
}

void Proxy::maybe_finish(Stream& s) {
    if (s.link == nullptr || s.raw || !s.resp_done || !s.req_done || !s.req_q.empty()) {
        return;
    }
    // Both halves of the exchange are complete: the connection can serve the next request.
    release_link(s, s.keep_alive);
}

void Proxy::body_arrived(Stream& s) {
    if (s.link != nullptr && !s.paused && s.resp_avail() >= limits_.response_buffer) {
        s.paused = true;
        s.link->pause_recv(true);
    }
    (void)session_->h2().resume_data(s.id);
}

void Proxy::submit_head(Stream& s) {
    const http1::ResponseHead& h = s.parser.head();
    submit_origin_head(s, h.status, h.headers, h.upgrade, h.body != http1::BodyKind::None);
}

void Proxy::submit_origin_head(Stream& s, int origin_status, const http1::Headers& fields,
                               bool upgrade, bool has_body) {
    std::vector<http2::HeaderPair> user;
    std::string_view length;
    for (const http1::Header& f : fields) {
        std::string name = to_lower(f.name);
        bool ws_header = upgrade && (name == "connection" || name == "upgrade");
        if ((http1::is_hop_by_hop(name) && !ws_header) || http2::is_control_header(name)) {
            continue;
        }
        if (name == "content-length") {
            length = f.value;
        }
        user.emplace_back(f.name, f.value);
    }
    std::string serialized = http2::serialize_user_headers(user);
    std::vector<http2::HeaderView> hv{{http2::kResponseHeaders, serialized},
                                      {http2::kResponseMeta, http2::kMetaOrigin}};
    if (!length.empty()) {
        hv.push_back({"content-length", length});
    }
    has_body = has_body || upgrade;
    int status = origin_status == 101 ? 200 : origin_status;
    s.head_sent = true;
    bump(stats_->origin_ok);
    count_status(status);
    if (auto r = session_->h2().submit_response(s.id, status, hv, has_body); !r) {
        release_link(s, false);
        s.resp_done = true;
        (void)session_->h2().rst_stream(s.id, http2::kInternalError);
    }
}

void Proxy::parse_response(Stream& s, std::string_view bytes) {
    while (!s.resp_done || s.raw) {
        if (s.raw) {
            s.resp_buf.append(bytes);
            bytes = {};
            break;
        }
        http1::Step st = s.parser.feed(bytes);
        bytes.remove_prefix(s.parser.consumed());
        if (st == http1::Step::NeedMore) {
            break;
        }
        if (st == http1::Step::HeadDone) {
            s.interim = s.parser.head().interim();
            if (!s.interim) {
                submit_head(s);
            }
            continue;
        }
        if (st == http1::Step::Body) {
            s.resp_buf.append(s.parser.body());
            continue;
        }
        if (st == http1::Step::MessageDone) {
            if (s.interim) {
                // A 1xx (100 Continue, 103 Early Hints) ended: the final response follows.
                s.interim = false;
                continue;
            }
            s.resp_done = true;
            s.keep_alive = s.parser.keep_alive();
            break;
        }
        if (st == http1::Step::Upgrade) {
            s.raw = true;
            continue;
        }
        fail(s, s.parser.error().reason);
        return;
    }
    if (!bytes.empty() && !s.raw) {
        s.keep_alive = false;  // bytes after the response: the connection is not reused
    }
    if (s.head_sent) {
        body_arrived(s);
    }
    maybe_finish(s);
}

void Proxy::origin_ready(int32_t id, OriginLink* link, bool reused) {
    Stream* s = find(id);
    if (s == nullptr || !s->dialing) {
        link->release(true);
        return;
    }
    if (s->h2 && !h2_fall_back(*s)) {
        link->release(!s->local);  // answered, or the body is collected first (it dials then)
        return;
    }
    s->dialing = false;
    s->link = link;
    s->reused = reused;
    s->resp_bytes = 0;
    if (s->pipe != Stream::Pipe::None) {
        pipe_connected(*s);
        return;
    }
    flush_request(*s);
}

bool Proxy::retry_stale(Stream& s) {
    if (!s.reused || s.retried || s.resp_bytes != 0 || s.replay.empty() || s.head_sent ||
        s.local) {
        return false;
    }
    release_link(s, false);
    s.retried = true;
    s.reused = false;
    s.req_q = s.replay;
    s.req_sent = 0;
    s.req_queued = s.req_q.size();
    s.consume_at.clear();
    s.parser = http1::ResponseParser(limits_.http1);
    s.parser.set_request_method(s.method);
    s.dialing = true;
    dialer_.dial(*s.svc, s.id);
    return true;
}

void Proxy::origin_failed(int32_t id, const Error& e) {
    Stream* s = find(id);
    if (s == nullptr || !s->dialing) {
        return;
    }
    s->dialing = false;
    fail(*s, "unable to reach the origin service (" + e.message() + ")");
}

void Proxy::origin_data(int32_t id, std::string_view bytes) {
    Stream* s = find(id);
    if (s == nullptr || s->local) {
        return;
    }
    s->resp_bytes += bytes.size();
    if (s->pipe == Stream::Pipe::None) {
        parse_response(*s, bytes);
        return;
    }
    if (s->resp_done) {
        return;  // we closed our side (the client's Close): nobody reads these any more
    }
    if (s->pipe == Stream::Pipe::WebSocket) {
        // The server role: unmasked binary frames, one per origin read (<= a receive buffer).
        ws::encode_frame(s->resp_buf, ws::Opcode::Binary, bytes, true, nullptr);
    } else {
        s->resp_buf.append(bytes);
    }
    body_arrived(*s);
}

void Proxy::origin_eof(int32_t id) {
    Stream* s = find(id);
    if (s == nullptr || s->local) {
        return;
    }
    if (s->pipe != Stream::Pipe::None) {
        pipe_origin_done(*s, ws::kCloseNormal);
        return;
    }
    if (s->raw) {
        s->resp_done = true;
        s->raw = false;
        release_link(*s, false);
        body_arrived(*s);
        return;
    }
    if (!s->resp_done) {
        if (retry_stale(*s)) {
            return;
        }
        http1::Step st = s->parser.finish();
        if (st == http1::Step::MessageDone) {
            s->resp_done = true;
            s->keep_alive = false;
            release_link(*s, false);
            body_arrived(*s);
            return;
        }
        release_link(*s, false);
        fail(*s, "the origin closed the connection before the response ended");
        return;
    }
    release_link(*s, false);
}

void Proxy::origin_closed(int32_t id, const Error& e) {
    Stream* s = find(id);
    if (s == nullptr) {
        return;
    }
    s->link = nullptr;  // gone: never released
    if (s->local || s->resp_done || retry_stale(*s)) {
        return;
    }
    if (s->pipe != Stream::Pipe::None && s->head_sent) {
        log::debug("origin connection lost", {{"stream", id}, {"error", e.message()}});
        pipe_origin_done(*s, ws::kCloseInternalError);
        return;
    }
    if (s->raw) {
        s->resp_done = true;
        s->raw = false;
        body_arrived(*s);
        return;
    }
    fail(*s, "origin connection lost (" + e.message() + ")");
}

void Proxy::origin_writable(int32_t id) {
    Stream* s = find(id);
    if (s != nullptr && s->pipe != Stream::Pipe::None) {
        pipe_progress(*s);
        return;
    }
    if (s != nullptr) {
        flush_request(*s);
        maybe_finish(*s);
    }
}

http2::BodyChunk Proxy::on_body_ready(int32_t id, size_t max) {
    Stream* s = find(id);
    if (s == nullptr) {
        return {0, true};
    }
    size_t n = std::min(max, s->resp_avail());
    bool end = s->resp_done && !s->raw && n == s->resp_avail();
    return {n, end};
}

void Proxy::on_body_copy(int32_t id, std::span<char> dest) {
    Stream* s = find(id);
    CFD_CHECK(s != nullptr && dest.size() <= s->resp_avail());
    std::memcpy(dest.data(), s->resp_buf.data() + s->resp_off, dest.size());
    s->resp_off += dest.size();
    if (s->resp_off == s->resp_buf.size()) {
        s->resp_buf.clear();
        s->resp_off = 0;
    }
    if (s->h2c != nullptr) {
        s->h2c->consume(s->h2id, dest.size());  // the origin may send that much more
    }
    if (s->paused && s->resp_avail() < limits_.response_buffer / 2) {
        s->paused = false;
        if (s->link != nullptr) {
            s->link->pause_recv(false);
        }
    }
}

// --- HTTP/2 origins (http2Origin) ---------------------------------------------------------

void Proxy::open_h2(Stream& s, http2::Headers&& headers, bool end_stream) {
    std::string_view authority = http2::header_value(headers, ":authority");
    RequestFields rf = request_fields(headers, *s.svc, authority);
    if (rf.bad_length || (end_stream && rf.has_declared && rf.declared != 0)) {
        answer_local(s, 400, http2::kMetaCloudflared,
                     rf.bad_length ? "400 Bad Request: content-length\n"
                                   : "400 Bad Request: body missing\n",
                     "text/plain; charset=utf-8");
        return;
    }
    std::string_view method = http2::header_value(headers, ":method");
    s.h2_host = std::string(s.svc->host_header.empty() ? authority : s.svc->host_header);
    s.h2_fields.emplace_back(":method", method);
    s.h2_fields.emplace_back(":scheme", s.svc->use_tls ? "https" : "http");
    s.h2_fields.emplace_back(":authority", s.h2_host);
    s.h2_fields.emplace_back(":path", http2::header_value(headers, ":path"));
    for (http1::Header& f : rf.fields) {
        s.h2_fields.emplace_back(to_lower(f.name), std::move(f.value));
    }
    if (rf.has_declared) {
        s.h2_fields.emplace_back("content-length", std::to_string(rf.declared));
        s.has_length = !end_stream;
        s.length_left = rf.declared;
    }
    s.h2 = true;
    s.method = std::string(method);
    s.h2_end_at_open = end_stream;
    s.h2_req = std::move(headers);
    s.dialing = true;
    dialer_.dial_h2(*s.svc, s.id, s.h2_host);
}

// The origin chose HTTP/1.1 in ALPN: the stream becomes an HTTP/1.1 one, its request head is
// written as open_http1() writes any, and the body that waited goes after it in HTTP/1.1's
// framing. True when the stream takes the link now.
bool Proxy::h2_fall_back(Stream& s) {
    s.h2 = false;
    s.dialing = false;
    std::string body = std::move(s.req_q);
    s.req_q.clear();
    http2::Headers headers = std::move(s.h2_req);
    bool ended = s.req_done;
    s.req_done = s.h2_end_at_open;
    s.has_length = false;
    s.length_left = 0;
    if (!open_http1(s, headers, s.h2_end_at_open, false)) {
        if (!body.empty()) {
            session_->h2().consume(s.id, body.size());  // answered: dropped
        }
        return false;
    }
    if (!body.empty()) {
        on_stream_data(s.id, body);  // re-queued in HTTP/1.1 framing, consumed as it goes
    }
    if (ended && !s.h2_end_at_open) {
        on_stream_end(s.id);
    }
    return !s.local && s.dialing && !s.collect;
}

void Proxy::origin_h2_ready(int32_t id, OriginH2& h2) {
    Stream* s = find(id);
    if (s == nullptr || !s->dialing || !s->h2) {
        return;  // nothing opened on it
    }
    s->dialing = false;
    std::vector<http2::HeaderView> hv;
    hv.reserve(s->h2_fields.size());
    for (const auto& [n, v] : s->h2_fields) {
        hv.push_back({n, v});
    }
    auto r = h2.open(*this, id, hv, !s->h2_end_at_open);
    if (!r) {
        fail(*s, "unable to open a stream to the origin (" + r.error().message() + ")");
        return;
    }
    s->h2c = &h2;
    s->h2id = *r;
}

void Proxy::h2_response(int32_t id, int status, http2::Headers&& headers, bool end) {
    Stream* s = find(id);
    if (s == nullptr || s->local || s->head_sent) {
        return;
    }
    http1::Headers fields;
    fields.reserve(headers.size());
    for (http2::Header& h : headers) {
        if (!h.is_pseudo()) {
            fields.push_back({std::move(h.name), std::move(h.value)});
        }
    }
    submit_origin_head(*s, status, fields, false, !end);
}

void Proxy::h2_data(int32_t id, std::string_view bytes) {
    Stream* s = find(id);
    if (s == nullptr || s->local || s->h2c == nullptr) {
        return;
    }
    s->resp_buf.append(bytes);  // bounded by the origin stream's window
    body_arrived(*s);
}

void Proxy::h2_end(int32_t id) {
    Stream* s = find(id);
    if (s == nullptr || s->local) {
        return;
    }
    s->resp_done = true;
    body_arrived(*s);
}

void Proxy::h2_closed(int32_t id, uint32_t code, bool refused) {
    Stream* s = find(id);
    if (s == nullptr) {
        return;
    }
    s->h2c = nullptr;
    if (s->local) {
        return;
    }
    if (s->resp_done) {
        drop_request(*s);  // a body the origin no longer reads (it answered early)
        return;
    }
    if (refused && !s->retried && s->body_taken == 0 && !s->head_sent) {
        // The origin never processed it (REFUSED_STREAM, past a GOAWAY): once more, on another
        // connection.
        log::debug("origin refused the stream, retrying", {{"stream", id}});
        s->retried = true;
        s->dialing = true;
        dialer_.dial_h2(*s->svc, id, s->h2_host);
        return;
    }
    fail(*s, refused ? std::string("the origin refused the stream")
                     : std::string("the origin reset the stream (") +
                           http2::error_code_name(code) + ")");
}

http2::BodyChunk Proxy::h2_body_ready(int32_t id, size_t max) {
    Stream* s = find(id);
    if (s == nullptr || s->local) {
        return {0, true};
    }
    size_t n = std::min(max, s->req_q.size());
    return {n, s->req_done && n == s->req_q.size()};
}

void Proxy::h2_body_copy(int32_t id, std::span<char> dest) {
    Stream* s = find(id);
    CFD_CHECK(s != nullptr && dest.size() <= s->req_q.size());
    std::memcpy(dest.data(), s->req_q.data(), dest.size());
    s->req_q.erase(0, dest.size());
    s->body_taken += dest.size();
    session_->h2().consume(id, dest.size());  // the origin stream took them
}

// --- byte pipes: tcp:// and ssh:// ---------------------------------------------------------

void Proxy::open_tcp_stream(Stream& s, const http2::Headers& headers) {
    // :authority is host:port. Only the host picks a rule, and only a tcp:// or ssh:// rule is
    // dialed, at the address the operator configured: dialing what the edge names would make
    // the connector an open proxy into its network.
    std::string_view authority = http2::header_value(headers, ":authority");
    std::string_view host = authority;
    if (!host.empty() && host.front() == '[') {
        size_t close = host.find(']');
        host = close == std::string_view::npos ? std::string_view() : host.substr(1, close - 1);
    } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
        host = host.substr(0, colon);
    }
    std::string_view path = http2::header_value(headers, ":path");
    s.svc = host.empty() ? nullptr : router_.route(host, path.empty() ? "/" : path);
    if (s.svc == nullptr || s.svc->kind != OriginService::Kind::Tcp) {
        fail(s, "no tcp:// or ssh:// ingress rule serves " + std::string(authority));
        return;
    }
    start_pipe(s, headers);
}

void Proxy::start_pipe(Stream& s, const http2::Headers& headers) {
    if (s.kind == http2::StreamKind::Websocket) {
        s.pipe = Stream::Pipe::WebSocket;
        // Frames stream through: only the header of one is ever held, so the frame limit is
        // about sanity, not memory.
        s.ws_in = std::make_unique<ws::Decoder>(ws::Role::Server);
        std::string_view key = http2::header_value(headers, "sec-websocket-key");
        if (!key.empty()) {
            s.ws_accept = ws::accept_key(key);
        }
    } else {
        s.pipe = Stream::Pipe::Raw;
    }
    if (s.svc->proxy_protocol != ProxyProtocol::None) {
        // The origin's first bytes: who the client is, as the edge saw it (not body bytes,
        // so nothing is consumed on the stream for them).
        std::string_view client = http2::header_value(headers, http2::kProxySrcHeader);
        if (client.empty()) {
            client = http2::header_value(headers, "cf-connecting-ip");
        }
        s.req_q = proxy_protocol_header(s.svc->proxy_protocol, client, s.svc->addr);
        s.req_queued = s.req_q.size();
    }
    s.dialing = true;
    dialer_.dial(*s.svc, s.id);
}

// The origin answered the dial: the stream's 200 goes now (a WebSocket's 101 travels as 200,
// with the handshake headers for the edge to relay), then bytes flow both ways.
void Proxy::pipe_connected(Stream& s) {
    std::vector<http2::HeaderPair> user;
    if (s.pipe == Stream::Pipe::WebSocket) {
        user.emplace_back("Connection", "Upgrade");
        user.emplace_back("Upgrade", "websocket");
        if (!s.ws_accept.empty()) {
            user.emplace_back("Sec-WebSocket-Accept", s.ws_accept);
        }
    }
    std::string serialized = http2::serialize_user_headers(user);
    std::vector<http2::HeaderView> hv{{http2::kResponseHeaders, serialized},
                                      {http2::kResponseMeta, http2::kMetaOrigin}};
    s.head_sent = true;
    s.raw = !s.resp_done;  // done already: the client's Close came while we dialed
    bump(stats_->origin_ok);
    count_status(200);
    if (auto r = session_->h2().submit_response(s.id, 200, hv, true); !r) {
        release_link(s, false);
        s.resp_done = true;
        s.raw = false;
        (void)session_->h2().rst_stream(s.id, http2::kInternalError);
        return;
    }
    if (!s.resp_buf.empty()) {
        body_arrived(s);  // pongs answered while the origin was being dialed
    }
    pipe_progress(s);
}

void Proxy::pipe_edge_data(Stream& s, std::string_view bytes) {
    if (s.req_done || (s.link == nullptr && !s.dialing)) {
        // After the client's Close, or with the origin gone: nobody takes these.
        session_->h2().consume(s.id, bytes.size());
        return;
    }
    // Payload never exceeds its frames, so this bounds the queue in both modes.
    if (s.req_q.size() + bytes.size() > limits_.max_request_queue) {
        session_->h2().consume(s.id, bytes.size());
        fail(s, "request queue over its bound");
        return;
    }
    if (s.pipe == Stream::Pipe::Raw) {
        s.req_q.append(bytes);
    } else {
        std::string_view in = bytes;
        for (bool more = true; more;) {
            switch (s.ws_in->next(in, s.req_q)) {
            case ws::Event::NeedMore: more = false; break;
            case ws::Event::Data:
            case ws::Event::Pong: break;
            case ws::Event::Ping:
                // A client that pings without reading our answers gets no more of them once
                // our side is over its buffer (RFC 6455 §5.5.3 allows answering the last only).
                if (s.resp_avail() < limits_.response_buffer && !s.resp_done) {
                    ws::encode_frame(s.resp_buf, ws::Opcode::Pong, s.ws_in->control(), true,
                                     nullptr);
                    if (s.head_sent) {
                        body_arrived(s);
                    }
                }
                break;
            case ws::Event::Close:
                // The client is done: our Close (1000) and the end of the stream follow what
                // the origin already sent; what the client sent before goes to the origin.
                log::debug("websocket closed by the client",
                           {{"stream", s.id}, {"code", int(s.ws_in->close_code())}});
                s.req_done = true;
                if (!s.resp_done) {
                    ws::Encoder(ws::Role::Server).close(s.resp_buf, ws::kCloseNormal);
                    s.resp_done = true;
                    s.raw = false;
                    if (s.head_sent) {
                        body_arrived(s);
                    }
                }
                more = false;
                break;
            case ws::Event::Error:
                log::debug("websocket protocol error from the client",
                           {{"stream", s.id}, {"error", s.ws_in->error_reason()}});
                s.req_done = true;
                drop_request(s);
                session_->h2().consume(s.id, bytes.size());
                if (!s.head_sent) {
                    fail(s, std::string("websocket: ") + s.ws_in->error_reason());  // counts it
                    return;
                }
                bump(stats_->errors);
                if (!s.resp_done) {
                    ws::Encoder(ws::Role::Server).close(s.resp_buf, s.ws_in->error_code());
                    s.resp_done = true;
                    s.raw = false;
                    body_arrived(s);
                }
                release_link(s, false);
                return;
            }
        }
    }
    s.req_queued = s.req_sent + s.req_q.size();
    s.consume_at.emplace_back(s.req_queued, bytes.size());
    pipe_progress(s);
}

// Moves queued client bytes to the origin; once the client's side is over and everything went,
// the origin gets its FIN, or is let go when our side is over too.
void Proxy::pipe_progress(Stream& s) {
    flush_request(s);
    if (s.link == nullptr || !s.req_done || !s.req_q.empty()) {
        return;
    }
    if (s.resp_done) {
        release_link(s, false);
        return;
    }
    if (!s.shut) {
        s.shut = true;
        s.link->shutdown_write();
    }
}

// The origin ended (EOF, or lost with `ws_code` 1011): the client hears the end, after what
// the origin sent, as a Close for a WebSocket and as END_STREAM for both.
void Proxy::pipe_origin_done(Stream& s, uint16_t ws_code) {
    if (!s.resp_done) {
        if (s.pipe == Stream::Pipe::WebSocket) {
            ws::Encoder(ws::Role::Server).close(s.resp_buf, ws_code);
        }
        s.resp_done = true;
    }
    s.raw = false;
    s.req_done = true;
    drop_request(s);
    release_link(s, false);
    body_arrived(s);
}

// Client bytes that will never reach the origin: released to the HTTP/2 window at once.
void Proxy::drop_request(Stream& s) {
    size_t held = s.h2 ? s.req_q.size() : 0;
    for (auto& c : s.consume_at) {
        held += c.second;
    }
    s.consume_at.clear();
    s.req_q.clear();
    s.req_queued = s.req_sent;
    if (held > 0) {
        session_->h2().consume(s.id, held);
    }
}

}  // namespace cfd::connector
