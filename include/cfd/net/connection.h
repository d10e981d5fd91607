// A TCP socket on a reactor. The owner implements ConnHandler; the Connection lives in the
// reactor's slab and calls the handler from completions only (never from inside a call the
// owner made), except where a method says otherwise.
//
// Receiving: one multishot recv into the reactor's provided-buffer ring. Each chunk reaches the
// owner as a LentBuf; the connection counts the chunks its owner holds and pauses recv when the
// owner holds `buf_quota` of them (and resumes when half came back). Recv is also paused while
// the owner asks (pause_recv) and after -ENOBUFS until the ring has buffers again. Whatever the
// reason, recv is re-armed only when no reason remains (haproxy's blocked-reason flags).
//
// Sending: ONE send in flight per socket; the bytes wait in a bounded out-queue (copied, or lent
// chunks forwarded as they are). At `high_water` queued bytes writable() turns false: the owner
// stops producing; when the queue drains below `low_water` on_resume() tells it to go on. Beyond
// `out_cap` send() refuses with Busy, so the queue never grows past its cap.
//
// Closing: close() cancels every operation on the socket; once their final CQEs are in, the fd
// is closed, on_close() is called (the last call), and the slab frees the connection.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <span>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/net/sock_addr.h"
#include "cfd/reactor/reactor.h"

namespace cfd::net {

using reactor::LentBuf;

class Connection;

class ConnHandler {
public:
    virtual ~ConnHandler() = default;
    // Dialed connections only: the connect finished. On failure on_close() follows with the
    // same error (TimedOut when the deadline passed).
    virtual void on_connect(Connection& c, Status result) {
        (void)c;
        (void)result;
    }
    // Bytes from the peer, on loan: drop or release() the LentBuf when done with it.
    virtual void on_recv(Connection& c, LentBuf data) = 0;
    // The peer half-closed (recv returned 0). Sending still works.
    virtual void on_eof(Connection& c) { c_close_default(c); }
    // The out-queue fell below the low watermark after writable() had turned false.
    virtual void on_resume(Connection& c) { (void)c; }
    // The out-queue is empty and no send is in flight.
    virtual void on_drained(Connection& c) { (void)c; }
    // The last call: the fd is closed and the Connection is freed after this returns.
    virtual void on_close(Connection& c, Error reason) = 0;

private:
    static void c_close_default(Connection& c);
};

struct ConnOptions {
    uint32_t out_cap = 2 << 20;       // hard cap of queued bytes
    uint32_t high_water = 1 << 20;    // writable() false at or above this
    uint32_t low_water = 256 << 10;   // on_resume() when a paused queue drains below this
    uint32_t buf_quota = 64;          // lent receive chunks the owner may hold
};

class Connection final : public reactor::IoObject {
public:
    enum class State : uint8_t { Connecting, Open, Closing, Closed };
    // Why recv is paused. Re-armed only when none is left.
    enum Blocked : uint8_t { Owner = 1, BufQuota = 2, NoBufs = 4 };

    // Takes ownership of a connected socket `fd` and starts receiving. On error the fd is
    // closed.
    [[nodiscard]] static Result<Connection*> adopt(reactor::Reactor& r, int fd, ConnHandler* h,
                                                   const ConnOptions& o = {});
    // Dials `to`; the handler hears on_connect() within `timeout` (TimedOut after it).
    [[nodiscard]] static Result<Connection*> connect(reactor::Reactor& r, const SockAddr& to,
                                                     Millis timeout, ConnHandler* h,
                                                     const ConnOptions& o = {});

    // Copies `bytes` into the out-queue. Busy when they would exceed out_cap; Closed after
    // close() or shutdown_write(). May be called while Connecting (sent once connected).
    [[nodiscard]] Status send(std::span<const uint8_t> bytes);
    // Queues a received chunk as is (forwarding without a copy); it is released once sent.
    [[nodiscard]] Status send(LentBuf&& chunk);
    bool writable() const { return !paused_; }
    size_t queued() const { return queued_; }
    size_t room() const { return queued_ >= opts_.out_cap ? 0 : opts_.out_cap - queued_; }

    void pause_recv() { block(Owner); }
    void resume_recv() { unblock(Owner); }

    // Frees the recycled send buffer while nothing is queued (an idle keep-alive connection
    // then costs its socket and a few bytes); the next send() allocates again.
    void trim() {
        if (out_.empty()) {
            spare_.reset();
        }
    }
    // Half-close once everything queued is sent.
    void shutdown_write();
    // Closes once everything queued is sent.
    void close_after_flush();
    // Cancels everything now; on_close(reason) follows once the kernel let go of the socket.
    void close(Error reason = Error{Errc::Closed, 0, "closed"});

    State state() const { return state_; }
    uint8_t blocked() const { return blocked_; }
    uint32_t held_buffers() const { return held_; }
    int fd() const { return fd_; }
    ConnHandler* handler() const { return handler_; }
    void set_handler(ConnHandler* h) { handler_ = h; }

    // Internal: construct through adopt()/connect().
    Connection(int fd, ConnHandler* h, const ConnOptions& o);
    ~Connection() override;

private:
    struct Segment {
        std::unique_ptr<uint8_t[]> own;  // copied bytes (kSegmentBytes capacity), or
        LentBuf lent;                    // a forwarded receive chunk
        const uint8_t* data = nullptr;
        uint32_t len = 0;                // bytes filled
        uint32_t sent = 0;               // bytes already sent
    };
    static constexpr uint32_t kSegmentBytes = 16384;
    static constexpr int kMaxIov = 16;

    void on_cqe(reactor::OpKind kind, int32_t res, uint32_t flags) override;
    void on_reactor_stop() override;
    void on_buffer_returned() override;
    void on_buffers_available() override;

    void start_connect(const SockAddr& to, Millis timeout);
    void connect_finished();
    void on_recv_cqe(int32_t res, uint32_t flags);
    void on_send_cqe(int32_t res);
    void arm_recv();
    void block(Blocked why);
    void unblock(Blocked why);
    void flush();
    void after_progress();
    void submit_shutdown();
    void finish();
    void enqueued(size_t n);

    int fd_;
    ConnHandler* handler_;
    ConnOptions opts_;
    State state_ = State::Open;
    uint8_t blocked_ = 0;
    bool recv_armed_ = false;
    bool recv_cancel_pending_ = false;
    bool eof_ = false;
    bool send_inflight_ = false;
    bool paused_ = false;
    bool shutdown_wanted_ = false;
    bool shutdown_sent_ = false;
    bool close_when_flushed_ = false;
    uint32_t held_ = 0;
    size_t queued_ = 0;
    std::deque<Segment> out_;
    std::unique_ptr<uint8_t[]> spare_;  // one recycled segment buffer
    msghdr msg_{};
    iovec iov_[kMaxIov]{};
    Error close_reason_{};

    // Connect with a linked timeout: both CQEs must be in before the outcome is known.
    SockAddr peer_;
    __kernel_timespec connect_ts_{};
    int32_t connect_res_ = 0;
    bool connect_cqe_ = false;
    bool timeout_cqe_ = false;
    bool timed_out_ = false;
};

}  // namespace cfd::net
