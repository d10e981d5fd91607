#include "cli/access_bridge.h"

#include <algorithm>

#include "cfd/core/log.h"
#include "cfd/ws/handshake.h"

namespace cfd::cli {

namespace {

constexpr Millis kDialTimeout{15000};
// From the TCP connect to the 101: a silent edge must not hold a local connection forever.
constexpr Millis kHandshakeTimeout{15000};
// After our Close (the local client ended), how long the edge has to answer with its own.
constexpr Millis kCloseTimeout{10000};
constexpr uint64_t kTimerHandshake = 0;
constexpr uint64_t kTimerClose = 1;

std::string_view view(const net::LentBuf& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

Bridge::Bridge(BridgeOwner& owner, reactor::Reactor& r, const EdgeTarget& edge, uint64_t n)
    : owner_(owner), reactor_(r), edge_(edge), n_(n), enc_(ws::Role::Client),
      dec_(ws::Role::Client) {}

Bridge::~Bridge() {
    if (timer_) {
        reactor_.cancel_timer(timer_);
    }
}

void Bridge::start(std::unique_ptr<LocalEnd> local) {
    local_owned_ = std::move(local);
    local_ = local_owned_.get();
    // Nothing is read locally before the WebSocket is up: the bytes wait in the kernel.
    local_->pause_recv();
    auto e = net::Connection::connect(reactor_, edge_.addr, kDialTimeout, this);
    if (!e) {
        fail("cannot dial the edge: " + e.error().message());
        return;
    }
    edge_conn_ = *e;
    if (auto t = reactor_.add_timer(kHandshakeTimeout, this, kTimerHandshake); t) {
        timer_ = *t;
    }
}

void Bridge::abort() {
    state_ = State::Closing;
    if (local_ != nullptr) {
        local_->close();
    }
    if (edge_conn_ != nullptr) {
        edge_conn_->close();
    }
}

void Bridge::fail(const std::string& why) {
    ok_ = false;
    log::error("failed to connect to origin",
               {{"connection", n_}, {"originURL", edge_.url}, {"error", why}});
    abort();
}

void Bridge::on_timer(reactor::TimerId, uint64_t arg) {
    timer_ = {};
    if (arg == kTimerClose) {
        ok_ = false;
        log::warn("no Close from the edge in time",
                  {{"connection", n_}, {"timeout", std::to_string(kCloseTimeout.count()) + "ms"}});
        abort();
        return;
    }
    if (state_ == State::Dialing || state_ == State::Upgrading) {
        fail("no WebSocket handshake within " + std::to_string(kHandshakeTimeout.count()) + "ms");
    }
}

void Bridge::on_connect(net::Connection&, Status result) {
    if (!result) {
        fail("cannot reach the edge at " + edge_.addr.str() + ": " + result.error().message());
        return;
    }
    state_ = State::Upgrading;
    parser_.emplace();
    parser_->set_request_method("GET");
    key_ = ws::new_client_key();
    std::string req;
    if (auto r = ws::write_client_request(req, edge_.hostname, "/", key_); !r) {
        fail("invalid hostname for a request");
        return;
    }
    if (edge_.tls) {
        auto t = connector::OriginTls::start(*edge_.ctx, edge_.hostname);
        if (!t) {
            fail("TLS setup: " + tls::describe(t.error()));
            return;
        }
        tls_.emplace(std::move(*t));
    }
    send_edge(req);  // with TLS, taken once the handshake is done
}

// --- toward the edge --------------------------------------------------------------------

void Bridge::send_edge(std::string_view plain) {
    if (edge_conn_ == nullptr) {
        return;
    }
    if (!tls_) {
        if (!edge_conn_->send(std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(plain.data()), plain.size()))) {
            fail("the edge connection's queue is full");
        }
        return;
    }
    tls_plain_out_.append(plain);
    pump_tls();
}

// Plaintext into records, records onto the socket, while the socket takes them.
void Bridge::pump_tls() {
    if (!tls_ || edge_conn_ == nullptr) {
        return;
    }
    for (;;) {
        std::string_view out = tls_->pending_output();
        while (!out.empty() && edge_conn_->writable()) {
            size_t n = std::min(out.size(), edge_conn_->room());
            if (n == 0 || !edge_conn_->send(std::span<const uint8_t>(
                              reinterpret_cast<const uint8_t*>(out.data()), n))) {
                break;
            }
            tls_->consume_output(n);
            out = tls_->pending_output();
        }
        if (tls_plain_out_.empty()) {
            return;
        }
        auto w = tls_->write(tls_plain_out_);
        if (!w) {
            fail("TLS with the edge: " + tls_->detail());
            return;
        }
        if (*w == 0) {
            return;  // before the handshake, or over the session's output watermark
        }
        tls_plain_out_.erase(0, *w);
    }
}

bool Bridge::edge_blocked() const {
    if (edge_conn_ == nullptr) {
        return false;
    }
    return !edge_conn_->writable() || tls_plain_out_.size() >= connector::OriginTls::kFeedSlice;
}

// Local reads run only while the edge takes bytes, edge reads only while the local side does.
void Bridge::update_flow() {
    if (state_ != State::Open) {
        return;
    }
    if (local_ != nullptr && !close_sent_) {
        if (edge_blocked()) {
            local_->pause_recv();
        } else {
            local_->resume_recv();
        }
    }
    if (edge_conn_ != nullptr) {
        if (local_ != nullptr && !local_->writable()) {
            edge_conn_->pause_recv();
        } else {
            edge_conn_->resume_recv();
        }
    }
}

// --- from the edge ----------------------------------------------------------------------

void Bridge::edge_plaintext(std::string_view bytes) {
    if (state_ == State::Upgrading) {
        handshake_bytes(bytes);
    } else if (state_ == State::Open) {
        frames(bytes);
    }
}

void Bridge::handshake_bytes(std::string_view in) {
    for (;;) {
        http1::Step st = parser_->feed(in);
        in.remove_prefix(parser_->consumed());
        if (st == http1::Step::NeedMore) {
            return;
        }
        if (st == http1::Step::HeadDone && parser_->head().interim()) {
            continue;
        }
        if (st == http1::Step::HeadDone || st == http1::Step::Upgrade) {
            break;
        }
        fail(std::string("bad HTTP response from the edge: ") + parser_->error().reason);
        return;
    }
    const http1::ResponseHead& head = parser_->head();
    const char* why = "";
    if (!ws::check_server_response(head, key_, &why)) {
        std::string status = std::to_string(head.status);
        fail(head.status == 101 ? std::string(why)
                                : "the edge answered " + status + " instead of 101 Switching "
                                                                  "Protocols (is " +
                                      edge_.hostname + " a tcp:// or ssh:// ingress rule?)");
        return;
    }
    parser_.reset();
    if (timer_) {
        reactor_.cancel_timer(timer_);
        timer_ = {};
    }
    state_ = State::Open;
    log::debug("websocket open", {{"connection", n_}, {"hostname", edge_.hostname}});
    if (!early_.empty()) {
        std::string frame;
        enc_.frame(frame, ws::Opcode::Binary, early_);
        early_.clear();
        send_edge(frame);
    }
    if (early_eof_ && local_ != nullptr) {
        local_eof();
    } else {
        update_flow();
    }
    if (!in.empty()) {
        frames(in);  // frames that came with the 101
    }
}

void Bridge::frames(std::string_view in) {
    payload_.clear();
    for (;;) {
        ws::Event e = dec_.next(in, payload_);
        if (e == ws::Event::NeedMore) {
            break;
        }
        if (e == ws::Event::Ping) {
            std::string pong;
            enc_.frame(pong, ws::Opcode::Pong, dec_.control());
            send_edge(pong);
            continue;
        }
        if (e == ws::Event::Close) {
            close_received_ = true;
            break;
        }
        if (e == ws::Event::Error) {
            ok_ = false;
            log::error("websocket protocol error from the edge",
                       {{"connection", n_}, {"error", dec_.error_reason()}});
            std::string c;
            enc_.close(c, dec_.error_code());
            close_sent_ = true;
            send_edge(c);
            close_received_ = true;  // nothing more is read
            break;
        }
    }
    if (!payload_.empty() && local_ != nullptr) {
        // The local queue is over its high watermark long before its cap: update_flow()
        // pauses the edge first, so this fits.
        if (!local_->send(payload_)) {
            ok_ = false;
            abort();
            return;
        }
    }
    if (close_received_) {
        finish_close();
        return;
    }
    update_flow();
}

// The edge's Close (the origin ended, or our own Close was answered): answer it if we did
// not start it, then both sides end once their queues are out.
void Bridge::finish_close() {
    state_ = State::Closing;
    if (!close_sent_) {
        close_sent_ = true;
        std::string c;
        enc_.close(c, ws::kCloseNormal);
        send_edge(c);
    }
    if (local_ != nullptr) {
        local_->close_after_flush();
    }
    if (edge_conn_ != nullptr) {
        if (tls_) {
            pump_tls();
        }
        edge_conn_->close_after_flush();
    }
}

// --- from the local end -----------------------------------------------------------------

void Bridge::local_recv(std::string_view bytes) {
    if (state_ == State::Dialing || state_ == State::Upgrading) {
        early_.append(bytes);
        return;
    }
    if (state_ != State::Open || close_sent_) {
        return;
    }
    // One frame per read (<= one buffer): the frame header is the only copy made.
    std::string frame;
    enc_.frame(frame, ws::Opcode::Binary, bytes);
    send_edge(frame);
    update_flow();
}

void Bridge::local_eof() {
    // The local client is done sending: a Close tells the other end; the answer Close (or the
    // edge's end) closes the rest.
    if (state_ == State::Open && !close_sent_) {
        close_sent_ = true;
        std::string frame;
        enc_.close(frame, ws::kCloseNormal);
        send_edge(frame);
        if (auto t = reactor_.add_timer(kCloseTimeout, this, kTimerClose); t) {
            timer_ = *t;
        }
        return;
    }
    if (state_ == State::Dialing || state_ == State::Upgrading) {
        early_eof_ = true;  // the Close goes after early_, once the WebSocket is open
    }
}

void Bridge::local_resume() { update_flow(); }

void Bridge::local_closed(Error reason) {
    local_ = nullptr;
    if (edge_conn_ != nullptr && state_ != State::Closing) {
        // The local side broke (not an orderly end): the WebSocket has nothing left to do.
        ok_ = false;
        log::debug("local side closed", {{"connection", n_}, {"error", reason.message()}});
        state_ = State::Closing;
        edge_conn_->close();
    }
    maybe_done();
}

// --- net::ConnHandler (the edge connection) ----------------------------------------------

void Bridge::on_recv(net::Connection& c, net::LentBuf data) {
    if (!tls_) {
        edge_plaintext(view(data));
        return;
    }
    tls_plain_in_.clear();
    Status st = tls_->feed(view(data), tls_plain_in_);
    data = net::LentBuf();
    pump_tls();  // handshake flights, and the request once the handshake is done
    if (!st && st.error().code != Errc::Closed) {
        // detail() names the step ("tls handshake: ...") and wolfSSL's reason.
        fail("TLS with the edge: " + tls_->detail());
        return;
    }
    if (!tls_plain_in_.empty()) {
        edge_plaintext(tls_plain_in_);
    }
    if (!st) {
        on_eof(c);  // close_notify
    }
}

void Bridge::on_eof(net::Connection& c) {
    // The edge went away without (or after) a Close: the local side gets what arrived.
    if (state_ == State::Dialing || state_ == State::Upgrading) {
        fail("the edge closed the connection during the WebSocket handshake");
        return;
    }
    state_ = State::Closing;
    if (local_ != nullptr) {
        local_->close_after_flush();
    }
    c.close(Error{Errc::Closed, 0, "edge closed"});
}

void Bridge::on_resume(net::Connection&) {
    pump_tls();
    update_flow();
}

void Bridge::on_close(net::Connection&, Error reason) {
    edge_conn_ = nullptr;
    if (local_ != nullptr && state_ != State::Closing) {
        if (state_ == State::Open) {
            ok_ = false;
            log::error("connection to the edge lost",
                       {{"connection", n_}, {"error", reason.message()}});
        }
        state_ = State::Closing;
        local_->close_after_flush();
    }
    maybe_done();
}

void Bridge::maybe_done() {
    if (local_ != nullptr || edge_conn_ != nullptr) {
        return;
    }
    log::debug("connection closed", {{"connection", n_}});
    owner_.bridge_done(this, ok_);  // deletes us
}

// --- the edge's address -----------------------------------------------------------------

Result<EdgeTarget, std::string> edge_target(std::string url, const std::string& hostname) {
    EdgeTarget t;
    t.hostname = hostname;
    if (url.empty()) {
        url = "https://" + hostname;
    }
    t.url = url;
    std::string_view rest = url;
    uint16_t port = 0;
    if (rest.starts_with("https://")) {
        t.tls = true;
        port = 443;
        rest.remove_prefix(8);
    } else if (rest.starts_with("http://")) {
        port = 80;
        rest.remove_prefix(7);
    } else {
        return "--edge " + url + ": expected http://HOST:PORT or https://HOST:PORT";
    }
    if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
        if (rest.substr(slash) != "/") {
            return "--edge " + url + ": a path is not allowed";
        }
        rest = rest.substr(0, slash);
    }
    std::string hp(rest);
    size_t colon = hp.rfind(':');
    size_t bracket = hp.rfind(']');
    if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) {
        hp += ":" + std::to_string(port);
    }
    auto a = net::SockAddr::parse(hp);
    if (!a) {
        return "--edge " + url + ": " + a.error().message();
    }
    t.addr = *a;
    return t;
}

}  // namespace cfd::cli
