// `cfdtunnel access tcp|ssh --hostname H` without --url: ONE bridge whose local end is the
// process's stdin/stdout, as cloudflared does for OpenSSH:
//
//     Host app.example.com
//       ProxyCommand cfdtunnel access ssh --hostname %h
//
// stdin/stdout are usually pipes (ssh's ProxyCommand), maybe a socket, a tty or a file, so they
// are read and written with IORING_OP_READ/WRITE (net::FdStream), not as a Connection. The
// same flow control as for TCP holds: a slow stdout pauses reading the WebSocket, a slow edge
// pauses reading stdin; memory stays bounded.
//
// Ends: stdin's end of file sends a Close and waits (bounded) for the edge's; the edge's Close
// or end flushes stdout and exits 0. Exit 1 when the edge refused or could not be reached, the
// WebSocket broke, or stdin/stdout failed; the reason is logged on stderr.
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "cfd/core/log.h"
#include "cfd/net/fd_stream.h"
#include "cli/access_bridge.h"
#include "cli/command.h"

namespace cfd::cli {

namespace {

constexpr Millis kTick{100};

class StdioSession final : public BridgeOwner {
public:
    void bridge_done(Bridge* b, bool ok) override {
        ok_ = ok_ && ok;
        done_ = true;
        bridge_ = nullptr;
        delete b;
    }

    Bridge* bridge_ = nullptr;
    bool done_ = false;
    bool ok_ = true;  // false once either side failed
};

// stdin/stdout as a bridge's local end.
class StdioLocal final : public LocalEnd, public net::FdStreamHandler {
public:
    StdioLocal(Bridge& b, StdioSession& s) : bridge_(b), session_(s) {}

    [[nodiscard]] Status open(reactor::Reactor& r) {
        net::FdStreamOptions o;
        o.start_paused = true;  // nothing is read before the WebSocket is open
        auto st = net::FdStream::open(r, STDIN_FILENO, STDOUT_FILENO, this, o);
        if (!st) {
            return st.error();
        }
        stream_ = *st;
        return {};
    }

    // LocalEnd
    void pause_recv() override { stream_->pause_read(); }
    void resume_recv() override { stream_->resume_read(); }
    bool writable() const override { return stream_->writable(); }
    Status send(std::string_view bytes) override { return stream_->write(bytes); }
    void close_after_flush() override { stream_->close_after_flush(); }
    void close() override { stream_->close(); }

    // net::FdStreamHandler
    void on_read(net::FdStream&, std::span<const uint8_t> bytes) override {
        bridge_.local_recv({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    }
    void on_read_eof(net::FdStream&) override {
        log::debug("end of stdin");
        bridge_.local_eof();
    }
    void on_resume(net::FdStream&) override { bridge_.local_resume(); }
    void on_close(net::FdStream&, Error reason) override {
        stream_ = nullptr;
        if (reason.code == Errc::Syscall) {
            session_.ok_ = false;
            // EPIPE: whoever read stdout (ssh) is gone, and there is nobody to tell.
            if (reason.sys == EPIPE) {
                log::debug("stdout closed by its reader", {{"error", reason.message()}});
            } else {
                log::error("stdin/stdout failed", {{"error", reason.message()}});
            }
        }
        bridge_.local_closed(reason);  // may delete the bridge, and us with it: the last line
    }

private:
    Bridge& bridge_;
    StdioSession& session_;
    net::FdStream* stream_ = nullptr;
};

const char* signal_name(int sig) {
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    case SIGHUP:
        return "SIGHUP";
    default:
        return "?";
    }
}

}  // namespace

int run_access_stdio(reactor::Reactor& r, const EdgeTarget& edge, const sigset_t& sigs) {
    StdioSession session;
    auto* b = new Bridge(session, r, edge, 1);
    auto local = std::make_unique<StdioLocal>(*b, session);
    if (auto s = local->open(r); !s) {
        log::error("cannot use stdin/stdout", {{"error", s.error().message()}});
        delete b;
        return kExitFailure;
    }
    session.bridge_ = b;
    log::debug("carrying stdin/stdout", {{"hostname", edge.hostname}, {"originURL", edge.url}});
    b->start(std::move(local));

    int sig = 0;
    while (!session.done_ && sig <= 0) {
        r.run_once(kTick);
        timespec zero{0, 0};
        sig = sigtimedwait(&sigs, nullptr, &zero);
    }
    if (!session.done_) {
        log::debug("Shutting down", {{"signal", signal_name(sig)}});
        session.bridge_->abort();
    }
    r.request_stop();
    r.run();
    if (session.bridge_ != nullptr) {
        // Past the reactor's grace period (a read the kernel would not cancel): the objects
        // are gone with the reactor, and none of them calls its handler from a destructor.
        delete session.bridge_;
        session.bridge_ = nullptr;
    }
    return session.ok_ ? kExitOk : kExitFailure;
}

}  // namespace cfd::cli
