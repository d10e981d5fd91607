#include "cfd/edge/relay.h"

#include <algorithm>
#include <string>

#include "cfd/edge/messages.h"

namespace cfd::edge {

namespace {

// Payloads: owned by the message, freed by its receiver (or by discard_relay_message()).
struct OpenPayload {
    std::string method;
    std::string authority;
    std::string path;
    http1::Headers headers;
    bool has_body = false;
    bool websocket = false;
    std::string client_ip;
    std::string client_proto;
    std::string proxy_src;
    bool has_connector = false;
    Uuid connector;
};

struct HeadPayload {
    int status = 0;
    std::vector<http2::HeaderPair> headers;
    bool end = false;
};

struct BytesPayload {
    std::string bytes;
};

int32_t sid_of(const reactor::Message& m) {
    return static_cast<int32_t>(static_cast<uint32_t>(m.a));
}

}  // namespace

bool is_relay_message(uint32_t tag) {
    return tag >= kMsgRelayOpen && tag <= kMsgRelayCredit;
}

bool is_relay_reply(uint32_t tag) {
    return tag >= kMsgRelayResponse && tag <= kMsgRelayCredit;
}

void discard_relay_message(const reactor::Message& m) {
    switch (m.tag) {
    case kMsgRelayOpen: delete static_cast<OpenPayload*>(m.ptr); break;
    case kMsgRelayResponse: delete static_cast<HeadPayload*>(m.ptr); break;
    case kMsgRelayBody:
    case kMsgRelayData: delete static_cast<BytesPayload*>(m.ptr); break;
    default: break;
    }
}

size_t relay_payload_bytes(const reactor::Message& m) {
    if (m.tag == kMsgRelayBody || m.tag == kMsgRelayData) {
        return static_cast<const BytesPayload*>(m.ptr)->bytes.size();
    }
    return 0;
}

// --- RelayClient (core A) ----------------------------------------------------------------------

RelayClient::RelayClient(RelayHost& host, uint32_t core, const RelayOptions& opts)
    : host_(host), core_(core), opts_(opts) {}

void RelayClient::post(uint32_t tag, int32_t sid, uint64_t b, void* ptr) {
    reactor::Message m;
    m.tag = tag;
    m.a = static_cast<uint32_t>(sid);
    m.b = b;
    m.ptr = ptr;
    host_.relay_post(core_, m);
}

Result<int32_t> RelayClient::open_stream(const StreamRequest& req, void* user) {
    if (streams_.size() >= opts_.max_streams) {
        return Err{Errc::Busy, 0, "too many streams relayed to one core"};
    }
    // Ids wrap around positive; one still open is skipped (it would need 2^31 newer streams).
    int32_t sid = next_sid_;
    while (streams_.count(sid) != 0) {
        sid = sid == INT32_MAX ? 1 : sid + 1;
    }
    next_sid_ = sid == INT32_MAX ? 1 : sid + 1;
    auto p = new OpenPayload;
    p->method = req.method;
    p->authority = req.authority;
    p->path = req.path;
    if (req.headers != nullptr) {
        p->headers = *req.headers;
    }
    p->has_body = req.has_body;
    p->websocket = req.websocket;
    p->client_ip = req.client_ip;
    p->client_proto = req.client_proto;
    p->proxy_src = req.proxy_src;
    if (req.connector != nullptr) {
        p->has_connector = true;
        p->connector = *req.connector;
    }
    Stream& s = streams_[sid];
    s.user = user;
    s.credit = opts_.body_window;
    post(kMsgRelayOpen, sid, 0, p);
    return sid;
}

size_t RelayClient::write_body(int32_t sid, std::string_view bytes, bool end) {
    auto it = streams_.find(sid);
    if (it == streams_.end()) {
        return 0;  // closed: the close event tells the session
    }
    Stream& s = it->second;
    size_t n = std::min(bytes.size(), s.credit);
    bool ends = end && n == bytes.size();
    if (n < bytes.size()) {
        s.wants_room = true;
    }
    if (n == 0 && !ends) {
        return 0;
    }
    s.credit -= n;
    auto p = new BytesPayload;
    p->bytes.assign(bytes.data(), n);
    post(kMsgRelayBody, sid, ends ? 1 : 0, p);
    return n;
}

void RelayClient::consume(int32_t sid, size_t n) {
    if (n > 0 && streams_.count(sid) != 0) {
        post(kMsgRelayConsume, sid, n);
    }
}

void RelayClient::reset_stream(int32_t sid, uint32_t code) {
    if (streams_.erase(sid) != 0) {
        post(kMsgRelayReset, sid, code);
    }
}

void* RelayClient::stream_user(int32_t sid) const {
    auto it = streams_.find(sid);
    return it == streams_.end() ? nullptr : it->second.user;
}

void RelayClient::set_stream_user(int32_t sid, void* user) {
    auto it = streams_.find(sid);
    if (it != streams_.end()) {
        it->second.user = user;
    }
}

void RelayClient::on_message(const reactor::Message& m) {
    int32_t sid = sid_of(m);
    auto it = streams_.find(sid);
    if (it == streams_.end()) {
        // Reset here meanwhile: B forgot it too, or will on our reset.
        discard_relay_message(m);
        return;
    }
    auto* sink = static_cast<StreamSink*>(it->second.user);
    switch (m.tag) {
    case kMsgRelayResponse: {
        std::unique_ptr<HeadPayload> p(static_cast<HeadPayload*>(m.ptr));
        if (sink != nullptr) {
            sink->on_tunnel_response(*this, sid, p->status, std::move(p->headers), p->end);
        }
        break;
    }
    case kMsgRelayData: {
        std::unique_ptr<BytesPayload> p(static_cast<BytesPayload*>(m.ptr));
        if (sink != nullptr) {
            sink->on_tunnel_data(*this, sid, p->bytes);
        } else {
            consume(sid, p->bytes.size());  // nobody reads it: keep the stream's window open
        }
        break;
    }
    case kMsgRelayEnd:
        if (sink != nullptr) {
            sink->on_tunnel_end(*this, sid);
        }
        break;
    case kMsgRelayClose:
        streams_.erase(it);
        if (sink != nullptr) {
            sink->on_tunnel_close(*this, sid, static_cast<uint32_t>(m.b));
        }
        break;
    case kMsgRelayCredit: {
        Stream& s = it->second;
        s.credit += static_cast<size_t>(m.b);
        if (s.wants_room && sink != nullptr) {
            s.wants_room = false;
            sink->on_tunnel_room(*this, sid);
        }
        break;
    }
    default: discard_relay_message(m); break;
    }
}

// --- RelayServer (core B) ----------------------------------------------------------------------

// One relayed stream on this core: the sink of its TunnelConn stream, forwarding every event to
// the opening core, and holding the request-body bytes the tunnel has not taken yet (at most the
// client's credit).
class RelayServer::Remote final : public StreamSink {
public:
    Remote(RelayServer& srv, uint32_t from, int32_t rid) : srv_(srv), from_(from), rid_(rid) {}

    StreamTarget* target = nullptr;
    int32_t sid = -1;
    uint32_t from() const { return from_; }
    int32_t rid() const { return rid_; }

    void reply(uint32_t tag, uint64_t b = 0, void* ptr = nullptr) {
        reactor::Message m;
        m.tag = tag;
        m.a = static_cast<uint32_t>(rid_);
        m.b = b;
        m.ptr = ptr;
        srv_.host_.relay_post(from_, m);
    }

    void add_body(std::string_view bytes, bool end) {
        body_.append(bytes);
        end_ = end_ || end;
        push_body();
    }
    void push_body() {
        // write_body() flushes the connection, which may deliver this stream's room event:
        // the nested call only asks for another round, or it would write body_ a second time
        // before the first write's bytes are erased from it.
        if (pushing_) {
            push_again_ = true;
            return;
        }
        pushing_ = true;
        do {
            push_again_ = false;
            if (target == nullptr || (body_.empty() && !end_)) {
                break;
            }
            size_t n = target->write_body(sid, body_, end_);
            body_.erase(0, n);
            if (body_.empty()) {
                end_ = false;
            }
            if (n > 0) {
                reply(kMsgRelayCredit, n);
            }
        } while (push_again_);
        pushing_ = false;
    }

    // StreamSink: the connection's events, sent on to the opening core.
    void on_tunnel_response(StreamTarget&, int32_t, int status,
                            std::vector<http2::HeaderPair>&& headers, bool end) override {
        auto p = new HeadPayload;
        p->status = status;
        p->headers = std::move(headers);
        p->end = end;
        reply(kMsgRelayResponse, 0, p);
    }
    void on_tunnel_data(StreamTarget&, int32_t, std::string_view bytes) override {
        auto p = new BytesPayload;
        p->bytes.assign(bytes);
        reply(kMsgRelayData, 0, p);
    }
    void on_tunnel_end(StreamTarget&, int32_t) override { reply(kMsgRelayEnd); }
    void on_tunnel_close(StreamTarget&, int32_t, uint32_t code) override {
        target = nullptr;
        reply(kMsgRelayClose, code);
        srv_.closed(*this);
    }
    void on_tunnel_room(StreamTarget&, int32_t) override { push_body(); }

private:
    RelayServer& srv_;
    uint32_t from_;
    int32_t rid_;
    std::string body_;
    bool end_ = false;
    bool pushing_ = false;     // inside push_body()
    bool push_again_ = false;  // a room event arrived meanwhile
};

RelayServer::RelayServer(RelayHost& host) : host_(host) {}

// The tunnel connections are gone (or going) by now: their streams' user pointers are not
// followed again.
RelayServer::~RelayServer() = default;

RelayServer::Remote* RelayServer::find(uint32_t from, int32_t sid) {
    auto it = streams_.find(key(from, sid));
    return it == streams_.end() ? nullptr : it->second.get();
}

void RelayServer::closed(Remote& r) {
    auto it = streams_.find(key(r.from(), r.rid()));
    if (it != streams_.end()) {
        dead_.push_back(std::move(it->second));
        streams_.erase(it);
    }
}

void RelayServer::open(uint32_t from, int32_t sid, void* payload) {
    std::unique_ptr<OpenPayload> p(static_cast<OpenPayload*>(payload));
    auto remote = std::make_unique<Remote>(*this, from, sid);
    Remote& r = *remote;
    if (streams_.count(key(from, sid)) != 0) {
        r.reply(kMsgRelayClose, http2::kProtocolError);  // a second open of one id: a bug
        return;
    }
    StreamTarget* t = host_.local_target(p->authority, p->has_connector ? &p->connector : nullptr);
    if (t == nullptr && p->has_connector) {
        // That connector's connection here went away (it drains, or died) after the opening
        // core chose it: any other connection of the tunnel here serves instead.
        t = host_.local_target(p->authority, nullptr);
    }
    if (t == nullptr) {
        // The connection A saw here is gone or draining: refused before any response byte.
        r.reply(kMsgRelayClose, http2::kRefusedStream);
        return;
    }
    StreamRequest req;
    req.method = p->method;
    req.authority = p->authority;
    req.path = p->path;
    req.headers = &p->headers;
    req.has_body = p->has_body;
    req.websocket = p->websocket;
    req.client_ip = p->client_ip;
    req.client_proto = p->client_proto;
    req.proxy_src = p->proxy_src;
    streams_[key(from, sid)] = std::move(remote);
    auto opened = t->open_stream(req, static_cast<StreamSink*>(&r));
    if (!opened) {
        streams_.erase(key(from, sid));
        // `r` is gone with the erase: answer through a fresh one.
        Remote(*this, from, sid).reply(kMsgRelayClose, http2::kRefusedStream);
        return;
    }
    r.target = t;
    r.sid = *opened;
}

void RelayServer::on_message(const reactor::Message& m) {
    dead_.clear();
    int32_t sid = sid_of(m);
    if (m.tag == kMsgRelayOpen) {
        open(m.from, sid, m.ptr);
        return;
    }
    Remote* r = find(m.from, sid);
    if (r == nullptr || r->target == nullptr) {
        discard_relay_message(m);  // closed here meanwhile; the opening core learns it
        return;
    }
    switch (m.tag) {
    case kMsgRelayBody: {
        std::unique_ptr<BytesPayload> p(static_cast<BytesPayload*>(m.ptr));
        r->add_body(p->bytes, m.b != 0);
        break;
    }
    case kMsgRelayConsume: r->target->consume(r->sid, static_cast<size_t>(m.b)); break;
    case kMsgRelayReset: {
        StreamTarget* t = r->target;
        int32_t tsid = r->sid;
        r->target = nullptr;
        t->set_stream_user(tsid, nullptr);
        closed(*r);
        t->reset_stream(tsid, static_cast<uint32_t>(m.b));
        break;
    }
    default: discard_relay_message(m); break;
    }
}

}  // namespace cfd::edge
