// A byte stream over plain file descriptors on a reactor: pipes, ttys, regular files, or a
// socket used as one (stdin/stdout of a ProxyCommand). Connection needs a socket (recv/send
// with provided buffers); this one uses IORING_OP_READ/WRITE, which work on any fd.
//
// Reading: ONE read of at most `read_chunk` bytes in flight, into the stream's own buffer; the
// bytes reach the owner synchronously (on_read) and the next read is armed unless the owner
// paused reading. So at most one chunk arrives after pause_read(), and memory stays fixed.
//
// Writing: ONE write in flight; the bytes wait in a bounded out-queue (a buffer being written,
// and a buffer collecting what comes meanwhile). Same watermarks as Connection: writable() is
// false at `high_water`, on_resume() below `low_water`, write() refuses beyond `out_cap`.
//
// An fd opened O_NONBLOCK (io_uring then answers -EAGAIN instead of waiting) is handled with a
// poll before retrying. The stream never closes the fds: stdin/stdout belong to the process.
//
// Closing: close() cancels the operations in flight; once their final CQEs are in, on_close()
// is called (the last call) and the slab frees the stream.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/reactor/reactor.h"

namespace cfd::net {

class FdStream;

class FdStreamHandler {
public:
    virtual ~FdStreamHandler() = default;
    // Bytes read from the input fd, valid only during the call.
    virtual void on_read(FdStream& s, std::span<const uint8_t> bytes) = 0;
    // The input fd reached end of file. Writing still works.
    virtual void on_read_eof(FdStream& s) = 0;
    // The out-queue fell below the low watermark after writable() had turned false.
    virtual void on_resume(FdStream& s) { (void)s; }
    // The last call: the stream is freed after this returns. `reason` is Ok after a
    // close_after_flush() that flushed everything.
    virtual void on_close(FdStream& s, Error reason) = 0;
};

struct FdStreamOptions {
    uint32_t read_chunk = 64 << 10;
    uint32_t out_cap = 2 << 20;
    uint32_t high_water = 1 << 20;
    uint32_t low_water = 256 << 10;
    bool start_paused = false;  // no read until resume_read()
};

class FdStream final : public reactor::IoObject {
public:
    enum class State : uint8_t { Open, Closing, Closed };

    // Reads `in_fd` and writes `out_fd` (either may be -1: that direction is unused). They may
    // be the same fd.
    [[nodiscard]] static Result<FdStream*> open(reactor::Reactor& r, int in_fd, int out_fd,
                                                FdStreamHandler* h, const FdStreamOptions& o = {});

    // Copies `bytes` into the out-queue. Busy beyond out_cap, Closed after close().
    [[nodiscard]] Status write(std::string_view bytes);
    bool writable() const { return !paused_out_; }
    size_t queued() const { return sending_.size() - sent_ + pending_.size(); }

    void pause_read() { read_paused_ = true; }
    void resume_read();

    // Closes once everything queued is written.
    void close_after_flush();
    // Cancels everything now; on_close(reason) follows once the kernel let go.
    void close(Error reason = Error{Errc::Closed, 0, "closed"});

    State state() const { return state_; }

    // Internal: construct through open().
    FdStream(int in_fd, int out_fd, FdStreamHandler* h, const FdStreamOptions& o);

private:
    void on_cqe(reactor::OpKind kind, int32_t res, uint32_t flags) override;
    void on_reactor_stop() override;

    void arm_read();
    void on_read_cqe(int32_t res);
    void flush();
    void on_write_cqe(int32_t res);
    void arm_poll(bool out);
    void cancel_all();
    void finish();

    int in_fd_;
    int out_fd_;
    FdStreamHandler* handler_;
    FdStreamOptions opts_;
    State state_ = State::Open;
    std::unique_ptr<uint8_t[]> rbuf_;
    bool read_paused_ = false;
    bool read_inflight_ = false;  // a read, or the poll waiting to retry one
    bool eof_ = false;
    std::string sending_;  // the write in flight points into it: never touched meanwhile
    size_t sent_ = 0;
    std::string pending_;  // bytes written while sending_ is in flight
    bool write_inflight_ = false;  // a write, or the poll waiting to retry one
    bool paused_out_ = false;
    bool close_when_flushed_ = false;
    Error close_reason_{};
};

}  // namespace cfd::net
