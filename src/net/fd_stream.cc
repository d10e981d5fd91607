#include "cfd/net/fd_stream.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

namespace cfd::net {

using reactor::OpKind;
using reactor::Reactor;

namespace {

// The reactor's op kinds name socket operations; a stream maps its own onto them (the kind is
// only a tag that comes back to on_cqe). Each is in flight at most once per stream.
constexpr OpKind kRead = OpKind::Recv;
constexpr OpKind kWrite = OpKind::Send;
constexpr OpKind kPollIn = OpKind::Accept;    // readability, after a read said -EAGAIN
constexpr OpKind kPollOut = OpKind::Connect;  // writability, after a write said -EAGAIN

// Read and write at the file position: ignored by pipes, ttys and sockets, and what a regular
// file on stdin/stdout needs.
constexpr uint64_t kCurrentPos = uint64_t(-1);

}  // namespace

FdStream::FdStream(int in_fd, int out_fd, FdStreamHandler* h, const FdStreamOptions& o)
    : in_fd_(in_fd), out_fd_(out_fd), handler_(h), opts_(o) {
    opts_.read_chunk = std::max<uint32_t>(opts_.read_chunk, 1);
    opts_.high_water = std::min(opts_.high_water, opts_.out_cap);
    opts_.low_water = std::min(opts_.low_water, opts_.high_water);
    read_paused_ = opts_.start_paused;
    eof_ = in_fd_ < 0;
}

Result<FdStream*> FdStream::open(Reactor& r, int in_fd, int out_fd, FdStreamHandler* h,
                                 const FdStreamOptions& o) {
    auto obj = r.adopt(std::make_unique<FdStream>(in_fd, out_fd, h, o));
    if (!obj) {
        return obj.error();
    }
    auto* s = static_cast<FdStream*>(*obj);
    s->arm_read();
    return s;
}

void FdStream::on_reactor_stop() { close(Error{Errc::Closed, 0, "reactor stopping"}); }

void FdStream::resume_read() {
    read_paused_ = false;
    arm_read();
}

void FdStream::arm_read() {
    if (state_ != State::Open || read_paused_ || read_inflight_ || eof_) {
        return;
    }
    if (!rbuf_) {
        rbuf_ = std::make_unique_for_overwrite<uint8_t[]>(opts_.read_chunk);
    }
    // CQE contract: one CQE: bytes read (> 0), 0 at end of file, -EAGAIN when the fd is
    // O_NONBLOCK and empty (then a poll waits for it), -ECANCELED after close(), -EINTR when
    // a cancel interrupted a read that was blocking in an io-wq worker, another -errno.
    io_uring_sqe* sqe = reactor().prep(*this, kRead);
    io_uring_prep_read(sqe, in_fd_, rbuf_.get(), opts_.read_chunk, kCurrentPos);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, kRead));
    read_inflight_ = true;
}

void FdStream::arm_poll(bool out) {
    OpKind k = out ? kPollOut : kPollIn;
    // CQE contract: one CQE (single shot): the ready mask (> 0), or -errno (-ECANCELED after
    // close()).
    io_uring_sqe* sqe = reactor().prep(*this, k);
    io_uring_prep_poll_add(sqe, out ? out_fd_ : in_fd_, out ? POLLOUT : POLLIN);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, k));
}

void FdStream::on_cqe(OpKind kind, int32_t res, uint32_t flags) {
    (void)flags;
    switch (kind) {
    case kRead:
        on_read_cqe(res);
        break;
    case kWrite:
        on_write_cqe(res);
        break;
    case kPollIn:
        read_inflight_ = false;
        if (state_ == State::Open && res < 0 && res != -ECANCELED) {
            close(Error{Errc::Syscall, -res, "poll"});
        } else {
            arm_read();  // ready (POLLHUP too: the read then says 0)
        }
        break;
    case kPollOut:
        write_inflight_ = false;
        if (state_ == State::Open && res < 0 && res != -ECANCELED) {
            close(Error{Errc::Syscall, -res, "poll"});
        } else {
            flush();  // POLLERR too: the write then says which error
        }
        break;
    default:
        break;  // our cancels: the cancelled operations report on their own CQEs
    }
    if (state_ == State::Closing && inflight() == 0) {
        finish();
    }
}

void FdStream::on_read_cqe(int32_t res) {
    read_inflight_ = false;
    if (state_ != State::Open) {
        return;
    }
    if (res > 0) {
        if (handler_ != nullptr) {
            handler_->on_read(*this, {rbuf_.get(), size_t(res)});
        }
        arm_read();
        return;
    }
    if (res == 0) {
        eof_ = true;
        if (handler_ != nullptr) {
            handler_->on_read_eof(*this);
        }
        return;
    }
    if (res == -EAGAIN) {
        read_inflight_ = true;
        arm_poll(false);
        return;
    }
    if (res == -EINTR || res == -ECANCELED) {
        arm_read();
        return;
    }
    close(Error{Errc::Syscall, -res, "read"});
}

Status FdStream::write(std::string_view bytes) {
    if (state_ != State::Open || close_when_flushed_ || out_fd_ < 0) {
        return Err{Errc::Closed, 0, "write: stream closing"};
    }
    if (queued() + bytes.size() > opts_.out_cap) {
        return Err{Errc::Busy, 0, "write: out-queue full"};
    }
    pending_.append(bytes);
    if (queued() >= opts_.high_water) {
        paused_out_ = true;
    }
    flush();
    return {};
}

void FdStream::flush() {
    if (state_ != State::Open || write_inflight_) {
        return;
    }
    if (sent_ == sending_.size()) {
        if (pending_.empty()) {
            return;
        }
        // Swap, so that both buffers keep their capacity: no allocation in the steady state.
        sending_.swap(pending_);
        pending_.clear();
        sent_ = 0;
    }
    // CQE contract: one CQE: bytes written (> 0, maybe fewer: the rest goes next), -EAGAIN
    // when the fd is O_NONBLOCK and full (then a poll waits), -ECANCELED after close(),
    // another -errno (-EPIPE: nobody reads any more).
    io_uring_sqe* sqe = reactor().prep(*this, kWrite);
    io_uring_prep_write(sqe, out_fd_, sending_.data() + sent_, unsigned(sending_.size() - sent_),
                        kCurrentPos);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, kWrite));
    write_inflight_ = true;
}

void FdStream::on_write_cqe(int32_t res) {
    write_inflight_ = false;
    if (state_ != State::Open) {
        return;
    }
    if (res == -EAGAIN || res == -EINTR) {
        write_inflight_ = true;
        arm_poll(true);
        return;
    }
    if (res <= 0) {
        close(res == 0 ? Error{Errc::Closed, 0, "write made no progress"}
                       : Error{Errc::Syscall, -res, "write"});
        return;
    }
    sent_ += size_t(res);
    flush();
    if (paused_out_ && queued() < opts_.low_water) {
        paused_out_ = false;
        if (handler_ != nullptr) {
            handler_->on_resume(*this);
        }
        if (state_ != State::Open) {
            return;
        }
    }
    if (close_when_flushed_ && queued() == 0) {
        close(Error{Errc::Ok, 0, ""});
    }
}

void FdStream::close_after_flush() {
    if (state_ != State::Open) {
        return;
    }
    if (queued() == 0 && !write_inflight_) {
        close(Error{Errc::Ok, 0, ""});
        return;
    }
    close_when_flushed_ = true;
    pause_read();
}

void FdStream::close(Error reason) {
    if (state_ != State::Open) {
        return;
    }
    state_ = State::Closing;
    close_reason_ = reason;
    cancel_all();
}

void FdStream::cancel_all() {
    // CQE contract: one CQE per cancel (count cancelled, or -ENOENT when nothing was in flight
    // on that fd); every cancelled op then ends with its own final CQE (-ECANCELED, or -EINTR
    // for a read blocking in an io-wq worker). finish() runs on whichever CQE brings inflight()
    // to 0. With nothing in flight a NOP (one CQE, res 0) stands in, so that on_close() always
    // comes from a completion, never from inside the owner's call to close().
    auto cancel = [this](int fd) {
        io_uring_sqe* sqe = reactor().prep(*this, OpKind::Cancel);
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Cancel));
    };
    bool submitted = false;
    if (read_inflight_ && in_fd_ >= 0) {
        cancel(in_fd_);
        submitted = true;
    }
    if (write_inflight_ && out_fd_ >= 0 && !(read_inflight_ && out_fd_ == in_fd_)) {
        cancel(out_fd_);
        submitted = true;
    }
    if (!submitted) {
        io_uring_sqe* sqe = reactor().prep(*this, OpKind::Nop);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Nop));
    }
}

void FdStream::finish() {
    state_ = State::Closed;
    sending_.clear();
    pending_.clear();
    sent_ = 0;
    FdStreamHandler* h = handler_;
    handler_ = nullptr;
    retire();
    if (h != nullptr) {
        h->on_close(*this, close_reason_);
    }
}

}  // namespace cfd::net
