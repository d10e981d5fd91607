// The client side of a tcp:// or ssh:// ingress rule, shared by both modes of `cfdtunnel
// access tcp|ssh`: a Bridge carries one local byte stream (an accepted TCP connection, or the
// process's stdin/stdout) over one WebSocket to the edge for a hostname (an HTTP/1.1 Upgrade,
// in clear to http:// edges or over TLS with SNI hostname). Local bytes travel as masked
// binary frames, the frames' payloads come back as local bytes.
//
// Flow control: a side whose out-queue is over its high watermark pauses the other side's
// reading until it drains (for TLS, plaintext not yet taken by the session counts as queued
// too), so memory per bridge stays bounded whatever the speeds.
#pragma once

#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/http1/parser.h"
#include "cfd/net/connection.h"
#include "cfd/net/sock_addr.h"
#include "cfd/reactor/reactor.h"
#include "cfd/tls/context.h"
#include "cfd/ws/frame.h"
#include "connector/origin_tls.h"

namespace cfd::cli {

// Where the edge is and how to talk to it, resolved once at start.
struct EdgeTarget {
    net::SockAddr addr;
    bool tls = false;
    std::string url;       // for logs
    std::string hostname;  // Host of the Upgrade and, with TLS, the SNI and verified name
    const tls::Context* ctx = nullptr;
};

// http://HOST[:PORT] (the edge's plain public listener) or https://HOST[:PORT]; empty means
// https://HOSTNAME.
[[nodiscard]] Result<EdgeTarget, std::string> edge_target(std::string url,
                                                          const std::string& hostname);

class Bridge;

// The local end of a bridge. It reports to the bridge through Bridge::local_*(), from
// completions only.
class LocalEnd {
public:
    virtual ~LocalEnd() = default;
    virtual void pause_recv() = 0;
    virtual void resume_recv() = 0;
    // False while the out-queue is over its high watermark.
    virtual bool writable() const = 0;
    // Busy when the bytes would exceed the queue's cap; the bridge then gives up.
    [[nodiscard]] virtual Status send(std::string_view bytes) = 0;
    virtual void close_after_flush() = 0;
    virtual void close() = 0;
};

class BridgeOwner {
public:
    virtual ~BridgeOwner() = default;
    // The bridge's last call: both sides are closed, the owner deletes it now. `ok` is false
    // when it ended on an error (already logged): the edge refused or was unreachable, the
    // WebSocket broke, or the local side broke.
    virtual void bridge_done(Bridge* b, bool ok) = 0;
};

class Bridge final : public net::ConnHandler, public reactor::TimerTarget {
public:
    enum class State : uint8_t { Dialing, Upgrading, Open, Closing };

    Bridge(BridgeOwner& owner, reactor::Reactor& r, const EdgeTarget& edge, uint64_t n);
    ~Bridge() override;

    // Takes the local end (its reading is paused until the WebSocket is open) and dials the
    // edge. Every outcome, a failed dial included, reaches bridge_done() from a completion.
    void start(std::unique_ptr<LocalEnd> local);
    // Closes both sides now (shutdown).
    void abort();
    uint64_t number() const { return n_; }

    // From the local end.
    void local_recv(std::string_view bytes);
    // The local side is done sending (end of file); it may still receive.
    void local_eof();
    // The local out-queue fell below its low watermark.
    void local_resume();
    // The local end's last call: it is closed (an error unless the bridge closed it).
    void local_closed(Error reason);

    // net::ConnHandler, for the edge connection.
    void on_connect(net::Connection& c, Status result) override;
    void on_recv(net::Connection& c, net::LentBuf data) override;
    void on_eof(net::Connection& c) override;
    void on_resume(net::Connection& c) override;
    void on_close(net::Connection& c, Error reason) override;
    // reactor::TimerTarget: the handshake and close deadlines.
    void on_timer(reactor::TimerId id, uint64_t arg) override;

private:
    void fail(const std::string& why);
    void send_edge(std::string_view plain);
    bool edge_blocked() const;
    void pump_tls();
    void edge_plaintext(std::string_view bytes);
    void handshake_bytes(std::string_view bytes);
    void frames(std::string_view bytes);
    void finish_close();
    void update_flow();
    void maybe_done();

    BridgeOwner& owner_;
    reactor::Reactor& reactor_;
    const EdgeTarget& edge_;
    uint64_t n_;
    State state_ = State::Dialing;
    bool ok_ = true;  // no error so far
    std::unique_ptr<LocalEnd> local_owned_;
    LocalEnd* local_ = nullptr;  // null once the local end closed
    net::Connection* edge_conn_ = nullptr;
    std::optional<connector::OriginTls> tls_;
    std::string tls_plain_out_;  // plaintext the TLS session has not taken yet
    std::string tls_plain_in_;
    std::string key_;
    std::optional<http1::ResponseParser> parser_;
    ws::Encoder enc_;
    ws::Decoder dec_;
    std::string payload_;  // decoded bytes for the local side, reused
    // Local bytes received before the WebSocket is open: reads already completed when start()
    // paused the local side still arrive (a few buffers at most), and must not be lost.
    std::string early_;
    bool early_eof_ = false;  // and the local side ended before it opened
    bool close_sent_ = false;
    bool close_received_ = false;
    reactor::TimerId timer_{};
};

// `access tcp|ssh` without --url: one bridge over stdin/stdout (an OpenSSH ProxyCommand).
// Returns the exit code; SIGINT, SIGTERM and SIGHUP (blocked in `sigs`) end it.
int run_access_stdio(reactor::Reactor& r, const EdgeTarget& edge, const sigset_t& sigs);

}  // namespace cfd::cli
