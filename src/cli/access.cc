// `cfdtunnel access tcp --hostname H [--url [host:]PORT] [--edge URL] [--cacert FILE]` (and
// `access ssh`, its alias, as in cloudflared): the client side of a tcp:// or ssh:// ingress
// rule. With --url, each TCP connection accepted there becomes one Bridge (access_bridge.h):
// one WebSocket to the edge for H. Without --url, one Bridge carries stdin/stdout
// (access_stdio.cc), for OpenSSH's ProxyCommand.
//
// One reactor thread does everything. Signals (SIGINT, SIGTERM) are taken between loop turns.
#include <signal.h>
#include <sys/socket.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cfd/config/options.h"
#include "cfd/core/log.h"
#include "cfd/net/connection.h"
#include "cfd/net/listener.h"
#include "cfd/reactor/reactor.h"
#include "cfd/tls/context.h"
#include "cli/access_bridge.h"
#include "cli/command.h"

namespace cfd::cli {

namespace {

constexpr Millis kTick{100};

struct AccessFlags {
    std::string hostname;
    std::string url;
    std::string edge;
    std::string cacert;
    std::string loglevel = "info";
    std::string output = "text";
    bool help = false;
};

// An accepted TCP connection as a bridge's local end.
class TcpLocal final : public LocalEnd, public net::ConnHandler {
public:
    explicit TcpLocal(Bridge& b) : bridge_(b) {}
    ~TcpLocal() override {
        if (conn_ != nullptr) {
            conn_->set_handler(nullptr);  // the bridge went first (it never does while open)
            conn_->close();
        }
    }

    // Takes `fd` over (closed on failure).
    [[nodiscard]] Status adopt(reactor::Reactor& r, int fd) {
        auto c = net::Connection::adopt(r, fd, this);
        if (!c) {
            return c.error();
        }
        conn_ = *c;
        return {};
    }

    // LocalEnd
    void pause_recv() override { conn_->pause_recv(); }
    void resume_recv() override { conn_->resume_recv(); }
    bool writable() const override { return conn_->writable(); }
    Status send(std::string_view bytes) override {
        return conn_->send(std::span<const uint8_t>(
            reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    }
    void close_after_flush() override { conn_->close_after_flush(); }
    void close() override { conn_->close(); }

    // net::ConnHandler
    void on_recv(net::Connection&, net::LentBuf data) override {
        bridge_.local_recv({reinterpret_cast<const char*>(data.data()), data.size()});
    }
    void on_eof(net::Connection&) override { bridge_.local_eof(); }
    void on_resume(net::Connection&) override { bridge_.local_resume(); }
    void on_close(net::Connection&, Error reason) override {
        conn_ = nullptr;
        bridge_.local_closed(reason);  // may delete the bridge, and us with it: the last line
    }

private:
    Bridge& bridge_;
    net::Connection* conn_ = nullptr;
};

class AccessServer final : public net::AcceptHandler, public BridgeOwner {
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
        // abort() ends in bridge_done() calls that erase from bridges_: iterate over a copy.
        std::vector<Bridge*> all(bridges_.begin(), bridges_.end());
        for (Bridge* b : all) {
            b->abort();
        }
    }

    void bridge_done(Bridge* b, bool) override {
        bridges_.erase(b);
        delete b;
    }

    void on_accept(net::Listener&, int fd) override {
        std::string peer = peer_name(fd);
        auto* b = new Bridge(*this, reactor_, edge_, ++accepted_);
        auto local = std::make_unique<TcpLocal>(*b);
        if (auto s = local->adopt(reactor_, fd); !s) {
            log::error("failed to accept a connection", {{"error", s.error().message()}});
            delete b;
            return;
        }
        bridges_.insert(b);
        log::info("Accepted connection", {{"connection", b->number()}, {"remote", peer},
                                          {"hostname", edge_.hostname}});
        b->start(std::move(local));
    }
    void on_listener_closed(net::Listener&) override { listener_ = nullptr; }

private:
    static std::string peer_name(int fd) {
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
            return "?";
        }
        return net::SockAddr::from(reinterpret_cast<sockaddr*>(&ss), len).str();
    }

    reactor::Reactor& reactor_;
    EdgeTarget edge_;
    net::Listener* listener_ = nullptr;
    std::set<Bridge*> bridges_;
    uint64_t accepted_ = 0;
};

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

int run_access_tcp(int argc, char** argv) {
    AccessFlags f;
    config::OptionSet set;
    set.add_string("hostname", &f.hostname, "the public hostname of the tcp:// or ssh:// rule");
    set.add_alias("tunnel-host", "hostname");
    set.add_string("url", &f.url,
                   "where to listen: [host:]PORT (host defaults to 127.0.0.1); without it, one "
                   "connection over stdin/stdout (ssh's ProxyCommand)");
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
        std::printf("usage: cfdtunnel access tcp --hostname HOST [--url [host:]PORT] [--edge URL] "
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
    // Without --url: one connection over stdin/stdout. They carry the data, so the logs must
    // stay on stderr (where log:: writes) and nothing may be printed on stdout.
    bool stdio = f.url.empty();
    std::optional<net::SockAddr> at;
    if (!stdio) {
        auto a = listen_addr(f.url);
        if (!a) {
            return usage_error(a.error());
        }
        at = *a;
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
    if (stdio) {
        // ssh sends SIGHUP to its ProxyCommand when it is done with it.
        sigaddset(&sigs, SIGHUP);
        // A write to a pipe nobody reads any more must fail with EPIPE, not kill us.
        signal(SIGPIPE, SIG_IGN);
    }
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
    if (stdio) {
        return run_access_stdio(**r, *edge, sigs);
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
