// `cfdtunnel access tcp --hostname H --url [host:]PORT [--edge URL] [--cacert FILE]` (and
// `access ssh`, its alias, as in cloudflared): the client side of a tcp:// or ssh:// ingress
// rule. Each TCP connection accepted on --url becomes one WebSocket to the edge for H (an
// HTTP/1.1 Upgrade, in clear to http:// edges or over TLS with SNI H); local bytes travel as
// masked binary frames, the frames' payloads come back as local bytes.
//
// One reactor thread does everything. Each Bridge owns two net::Connections and moves bytes
// between them with bounded queues: a side whose out-queue is over its high watermark pauses
// the other side's receiving until on_resume() (for TLS, plaintext not yet taken by the
// session counts as queued too). Signals (SIGINT, SIGTERM) are taken between loop turns.
#include <signal.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cfd/config/options.h"
#include "cfd/core/log.h"
#include "cfd/http1/parser.h"
#include "cfd/net/connection.h"
#include "cfd/net/listener.h"
#include "cfd/reactor/reactor.h"
#include "cfd/tls/context.h"
#include "cfd/ws/frame.h"
#include "cfd/ws/handshake.h"
#include "cli/command.h"
#include "connector/origin_tls.h"

namespace cfd::cli {

namespace {

constexpr Millis kDialTimeout{15000};
// From the TCP connect to the 101: a silent edge must not hold a local connection forever.
constexpr Millis kHandshakeTimeout{15000};
constexpr Millis kTick{100};
// After our Close (the local client ended), how long the edge has to answer with its own.
constexpr Millis kCloseTimeout{10000};
constexpr uint64_t kTimerHandshake = 0;
constexpr uint64_t kTimerClose = 1;

struct AccessFlags {
    std::string hostname;
    std::string url;
    std::string edge;
    std::string cacert;
    std::string loglevel = "info";
    std::string output = "text";
    bool help = false;
};

// Where the edge is and how to talk to it, resolved once at start.
struct EdgeTarget {
    net::SockAddr addr;
    bool tls = false;
    std::string url;       // for logs
    std::string hostname;  // Host of the Upgrade and, with TLS, the SNI and verified name
    const tls::Context* ctx = nullptr;
};

class AccessServer;

// One accepted connection and its WebSocket to the edge.
class Bridge final : public net::ConnHandler, public reactor::TimerTarget {
public:
    enum class State : uint8_t { Dialing, Upgrading, Open, Closing };

    Bridge(AccessServer& srv, reactor::Reactor& r, const EdgeTarget& edge, uint64_t n)
        : srv_(srv), reactor_(r), edge_(edge), n_(n), enc_(ws::Role::Client),
          dec_(ws::Role::Client) {}

    void start(int fd);
    // Closes both sides now (shutdown).
    void abort();

    // net::ConnHandler
    void on_connect(net::Connection& c, Status result) override;
    void on_recv(net::Connection& c, net::LentBuf data) override;
    void on_eof(net::Connection& c) override;
    void on_resume(net::Connection& c) override;
    void on_close(net::Connection& c, Error reason) override;
    // reactor::TimerTarget: the handshake deadline.
    void on_timer(reactor::TimerId id, uint64_t arg) override;

private:
    void fail(const std::string& why);
    void send_edge(std::string_view plain);
    bool edge_blocked() const;
    void pump_tls();
    void edge_plaintext(std::string_view bytes);
    void handshake_bytes(std::string_view bytes);
    void frames(std::string_view bytes);
    void local_bytes(std::string_view bytes);
    void finish_close();
    void update_flow();

    AccessServer& srv_;
    reactor::Reactor& reactor_;
    const EdgeTarget& edge_;
    uint64_t n_;
    State state_ = State::Dialing;
    net::Connection* local_ = nullptr;
    net::Connection* edge_conn_ = nullptr;
    std::optional<connector::OriginTls> tls_;
    std::string tls_plain_out_;  // plaintext the TLS session has not taken yet
    std::string tls_plain_in_;
    std::string key_;
    std::optional<http1::ResponseParser> parser_;
    ws::Encoder enc_;
    ws::Decoder dec_;
    std::string payload_;  // decoded bytes for the local side, reused
    // Local bytes received before the WebSocket is open: receives already completed when
    // start() paused the local side still arrive (a few buffers at most), and must not be lost.
    std::string early_;
    bool early_eof_ = false;  // and the local side ended before it opened
    bool close_sent_ = false;
    bool close_received_ = false;
    reactor::TimerId timer_{};
};

class AccessServer final : public net::AcceptHandler {
public:
    AccessServer(reactor::Reactor& r, EdgeTarget edge) : reactor_(r), edge_(std::move(edge)) {}

    Status listen(const net::SockAddr& at) {
        net::ListenOptions o;
        o.reuseport = false;  // a second client on the same port must fail, not share it
        auto l = net::Listener::open(reactor_, at, this, o);
        if (!l) {
            return l.error();
        }
        listener_ = *l;
        return {};
    }
    const net::SockAddr& local() const { return listener_->local(); }

    void stop() {
        if (listener_ != nullptr) {
            listener_->close();
            listener_ = nullptr;
        }
        // abort() ends in on_close() calls that erase from bridges_: iterate over a copy.
        std::vector<Bridge*> all(bridges_.begin(), bridges_.end());
        for (Bridge* b : all) {
            b->abort();
        }
    }
    void gone(Bridge* b) { bridges_.erase(b); }

    void on_accept(net::Listener&, int fd) override {
        auto* b = new Bridge(*this, reactor_, edge_, ++accepted_);
        bridges_.insert(b);
        b->start(fd);
    }
    void on_listener_closed(net::Listener&) override { listener_ = nullptr; }

private:
    reactor::Reactor& reactor_;
    EdgeTarget edge_;
    net::Listener* listener_ = nullptr;
    std::set<Bridge*> bridges_;
    uint64_t accepted_ = 0;
};

std::string_view view(const net::LentBuf& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void Bridge::start(int fd) {
    auto peer = [&]() -> std::string {
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
            return "?";
        }
        return net::SockAddr::from(reinterpret_cast<sockaddr*>(&ss), len).str();
    }();
    auto l = net::Connection::adopt(reactor_, fd, this);
    if (!l) {
        log::error("failed to accept a connection", {{"error", l.error().message()}});
        srv_.gone(this);
        delete this;
        return;
    }
    local_ = *l;
    // Nothing is read locally before the WebSocket is up: the bytes wait in the kernel.
    local_->pause_recv();
    log::info("Accepted connection", {{"connection", n_}, {"remote", peer},
                                      {"hostname", edge_.hostname}});
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
    log::error("failed to connect to origin",
               {{"connection", n_}, {"originURL", edge_.url}, {"error", why}});
    abort();
}

void Bridge::on_timer(reactor::TimerId, uint64_t arg) {
    timer_ = {};
    if (arg == kTimerClose) {
        log::debug("no Close from the edge in time", {{"connection", n_}});
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
        on_eof(*local_);
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
        if (!local_->send(std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(payload_.data()), payload_.size()))) {
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

// --- from the local client --------------------------------------------------------------

void Bridge::local_bytes(std::string_view bytes) {
    if (state_ == State::Dialing || state_ == State::Upgrading) {
        early_.append(bytes);
        return;
    }
    if (state_ != State::Open || close_sent_) {
        return;
    }
    // One frame per receive (<= one provided buffer): the frame header is the only copy made.
    std::string frame;
    enc_.frame(frame, ws::Opcode::Binary, bytes);
    send_edge(frame);
    update_flow();
}

// --- net::ConnHandler -------------------------------------------------------------------

void Bridge::on_recv(net::Connection& c, net::LentBuf data) {
    if (&c == local_) {
        local_bytes(view(data));
        return;
    }
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
    if (&c == local_) {
        // The local client is done sending: a Close tells the other end; the answer Close
        // (or the edge's end) closes the rest.
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
        return;
    }
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

void Bridge::on_resume(net::Connection& c) {
    if (&c == edge_conn_) {
        pump_tls();
    }
    update_flow();
}

void Bridge::on_close(net::Connection& c, Error reason) {
    if (&c == local_) {
        local_ = nullptr;
        if (edge_conn_ != nullptr && state_ != State::Closing) {
            // The local side broke (not an orderly end): the WebSocket has nothing left to do.
            state_ = State::Closing;
            edge_conn_->close();
        }
    } else {
        edge_conn_ = nullptr;
        if (local_ != nullptr && state_ != State::Closing) {
            if (state_ == State::Open) {
                log::error("connection to the edge lost",
                           {{"connection", n_}, {"error", reason.message()}});
            }
            state_ = State::Closing;
            local_->close_after_flush();
        }
    }
    if (local_ != nullptr || edge_conn_ != nullptr) {
        return;
    }
    if (timer_) {
        reactor_.cancel_timer(timer_);
    }
    log::debug("connection closed", {{"connection", n_}});
    srv_.gone(this);
    delete this;
}

// --- the command ------------------------------------------------------------------------

int usage_error(const std::string& msg) {
    std::fprintf(stderr, "cfdtunnel access tcp: %s\n", msg.c_str());
    return kExitUsage;
}

// "PORT", "host:PORT", "[v6]:PORT", optionally with tcp://: default host 127.0.0.1.
Result<net::SockAddr, std::string> listen_addr(std::string_view url) {
    if (url.starts_with("tcp://")) {
        url.remove_prefix(6);
    }
    std::string hp(url);
    if (hp.find(':') == std::string::npos) {
        hp = "127.0.0.1:" + hp;
    } else if (hp.front() == ':') {
        hp = "127.0.0.1" + hp;
    }
    auto a = net::SockAddr::parse(hp);
    if (!a) {
        return "--url " + std::string(url) + ": " + a.error().message();
    }
    if (a->port() == 0 && !hp.ends_with(":0")) {
        return "--url " + std::string(url) + ": no port";
    }
    return *a;
}

// http://HOST[:PORT] (the edge's plain public listener) or https://HOST[:PORT].
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

int run_access_tcp(int argc, char** argv) {
    AccessFlags f;
    config::OptionSet set;
    set.add_string("hostname", &f.hostname, "the public hostname of the tcp:// or ssh:// rule");
    set.add_alias("tunnel-host", "hostname");
    set.add_string("url", &f.url, "where to listen: [host:]PORT (host defaults to 127.0.0.1)");
    set.add_alias("listener", "url");
    set.add_string("edge", &f.edge,
                   "the edge's public listener: http://HOST:PORT, or https://HOST:PORT "
                   "(default https://HOSTNAME)");
    set.add_string("cacert", &f.cacert,
                   "CA file to verify an https:// edge against (default: the system pool)");
    set.add_string("loglevel", &f.loglevel, "debug, info, warn, error or fatal");
    set.add_string("output", &f.output, "log format: text or json");
    set.add_bool("help", &f.help, "this text");
    set.add_alias("h", "help");
    // argv[0] is the command's last word ("tcp" or "ssh").
    auto args = set.split(argc, argv, 1);
    if (!args) {
        return usage_error(args.error().str());
    }
    if (auto r = set.apply_args(*args); !r) {
        return usage_error(r.error().str());
    }
    if (f.help) {
        std::printf("usage: cfdtunnel access tcp --hostname HOST --url [host:]PORT [--edge URL] "
                    "[--cacert FILE]\n\n%s",
                    set.usage().c_str());
        return kExitOk;
    }
    if (!args->positionals.empty()) {
        return usage_error("unexpected argument '" + args->positionals[0] + "'");
    }
    log::Level lvl;
    if (!log::parse_level(f.loglevel, &lvl)) {
        return usage_error("--loglevel " + f.loglevel + ": unknown level");
    }
    log::set_level(lvl);
    log::Format fmt;
    if (!log::parse_format(f.output, &fmt)) {
        return usage_error("--output " + f.output + ": expected text or json");
    }
    log::set_format(fmt);
    if (f.hostname.empty()) {
        return usage_error("--hostname is required");
    }
    if (f.url.empty()) {
        return usage_error("--url is required (where to listen, e.g. localhost:2222)");
    }
    auto at = listen_addr(f.url);
    if (!at) {
        return usage_error(at.error());
    }
    auto edge = edge_target(f.edge, f.hostname);
    if (!edge) {
        return usage_error(edge.error());
    }
    std::optional<tls::Context> ctx;
    if (edge->tls) {
        tls::ClientOptions co;
        co.ca_file = f.cacert;
        auto c = tls::Context::client(co);
        if (!c) {
            log::error("cannot load the CA file",
                       {{"file", f.cacert.empty() ? std::string(tls::kSystemCaFile) : f.cacert},
                        {"error", tls::describe(c.error())}});
            return kExitFailure;
        }
        ctx.emplace(std::move(*c));
        edge->ctx = &*ctx;
    } else if (!f.cacert.empty()) {
        log::warn("--cacert is ignored for an http:// edge");
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    reactor::ReactorOptions ro;
    ro.log_features = false;
    ro.buf_count = 256;
    ro.max_objects = 4096;
    auto r = reactor::Reactor::create(ro);
    if (!r) {
        log::error("cannot create the reactor", {{"error", r.error().message()}});
        return kExitFailure;
    }
    {
        AccessServer srv(**r, std::move(*edge));
        if (auto s = srv.listen(*at); !s) {
            log::error("cannot listen", {{"address", at->str()}, {"error", s.error().message()}});
            (*r)->request_stop();
            (*r)->run();
            return kExitFailure;
        }
        log::info("Start Websocket listener", {{"host", srv.local().str()}});
        int sig = 0;
        while (sig <= 0) {
            (*r)->run_once(kTick);
            timespec zero{0, 0};
            sig = sigtimedwait(&sigs, nullptr, &zero);
        }
        log::info("Shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
        srv.stop();
        (*r)->request_stop();
        (*r)->run();
    }
    return kExitOk;
}

}  // namespace

CFD_COMMAND(access_tcp, "access tcp",
            "forward a local TCP port to a tcp:// or ssh:// service through the edge",
            run_access_tcp);
CFD_COMMAND(access_ssh, "access ssh", "the same as access tcp (as in cloudflared)",
            run_access_tcp);

}  // namespace cfd::cli
