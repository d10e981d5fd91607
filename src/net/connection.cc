#include "cfd/net/connection.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cfd/core/log.h"

namespace cfd::net {

using reactor::OpKind;
using reactor::Reactor;

void ConnHandler::c_close_default(Connection& c) { c.close_after_flush(); }

Connection::Connection(int fd, ConnHandler* h, const ConnOptions& o)
    : fd_(fd), handler_(h), opts_(o) {
    if (opts_.high_water > opts_.out_cap) {
        opts_.high_water = opts_.out_cap;
    }
    if (opts_.low_water > opts_.high_water) {
        opts_.low_water = opts_.high_water;
    }
    if (opts_.buf_quota == 0) {
        opts_.buf_quota = 1;
    }
}

Connection::~Connection() {
    // Normally finish() closed it; a reactor torn down past its grace period lands here.
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Result<Connection*> Connection::adopt(Reactor& r, int fd, ConnHandler* h, const ConnOptions& o) {
    auto obj = r.adopt(std::make_unique<Connection>(fd, h, o));
    if (!obj) {
        ::close(fd);
        return obj.error();
    }
    auto* c = static_cast<Connection*>(*obj);
    c->arm_recv();
    return c;
}

Result<Connection*> Connection::connect(Reactor& r, const SockAddr& to, Millis timeout,
                                        ConnHandler* h, const ConnOptions& o) {
    int fd = ::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return Err{Errc::Syscall, errno, "socket"};
    }
    if (to.family() != AF_UNIX) {
        int one = 1;
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    auto obj = r.adopt(std::make_unique<Connection>(fd, h, o));
    if (!obj) {
        ::close(fd);
        return obj.error();
    }
    auto* c = static_cast<Connection*>(*obj);
    c->start_connect(to, timeout);
    return c;
}

void Connection::start_connect(const SockAddr& to, Millis timeout) {
    state_ = State::Connecting;
    peer_ = to;
    auto ms = std::max<int64_t>(timeout.count(), 1);
    connect_ts_.tv_sec = ms / 1000;
    connect_ts_.tv_nsec = (ms % 1000) * 1000000;
    Reactor& r = reactor();
    r.reserve_sqes(2);
    // CQE contract: CONNECT gives one CQE: 0 connected, -errno failed, -ECANCELED when the
    // linked timeout fired first (then the LINK_TIMEOUT CQE says -ETIME). LINK_TIMEOUT gives
    // one CQE: -ETIME fired, -ECANCELED (or -ENOENT) the connect finished first.
    io_uring_sqe* sqe = r.prep(*this, OpKind::Connect);
    io_uring_prep_connect(sqe, fd_, peer_.get(), peer_.len());
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Connect));
    sqe->flags |= IOSQE_IO_LINK;
    sqe = r.prep(*this, OpKind::LinkTimeout);
    io_uring_prep_link_timeout(sqe, &connect_ts_, 0);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::LinkTimeout));
}

void Connection::connect_finished() {
    if (!connect_cqe_ || !timeout_cqe_ || state_ != State::Connecting) {
        return;
    }
    if (connect_res_ == 0) {
        state_ = State::Open;
        if (handler_ != nullptr) {
            handler_->on_connect(*this, {});
        }
        if (state_ == State::Open) {
            arm_recv();
            flush();
            if (close_when_flushed_ && out_.empty() && !send_inflight_) {
                close(Error{Errc::Ok, 0, ""});
            }
        }
        return;
    }
    Error e = timed_out_ ? Error{Errc::TimedOut, 0, "connect"}
                         : Error{Errc::Syscall, -connect_res_, "connect"};
    state_ = State::Open;  // so that close() runs its normal path
    if (handler_ != nullptr) {
        handler_->on_connect(*this, Err{e});
    }
    close(e);
}

void Connection::on_cqe(OpKind kind, int32_t res, uint32_t flags) {
    switch (kind) {
    case OpKind::Recv:
        on_recv_cqe(res, flags);
        break;
    case OpKind::Send:
        on_send_cqe(res);
        break;
    case OpKind::Connect:
        connect_cqe_ = true;
        connect_res_ = res;
        connect_finished();
        break;
    case OpKind::LinkTimeout:
        timeout_cqe_ = true;
        timed_out_ = res == -ETIME;
        connect_finished();
        break;
    case OpKind::Shutdown:
        if (res < 0 && res != -ECANCELED && res != -ENOTCONN && state_ == State::Open) {
            close(Error{Errc::Syscall, -res, "shutdown"});
        }
        break;
    case OpKind::Cancel:
        break;  // the cancelled operation reports on its own CQE
    default:
        break;
    }
    if (state_ == State::Closing && inflight() == 0) {
        finish();
    }
}

void Connection::on_reactor_stop() { close(Error{Errc::Closed, 0, "reactor stopping"}); }

void Connection::arm_recv() {
    if (state_ != State::Open || recv_armed_ || blocked_ != 0 || eof_) {
        return;
    }
    // CQE contract: n x (res > 0, F_BUFFER, F_MORE) with the bytes in provided buffer `bid`;
    // the last CQE lacks F_MORE: 0 (EOF), -ENOBUFS (ring empty), -ECANCELED (paused/closed),
    // another -errno, or (rarely) data when the kernel ended the multishot itself.
    Reactor& r = reactor();
    io_uring_sqe* sqe = r.prep(*this, OpKind::Recv);
    io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Recv));
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = r.buf_group();
    recv_armed_ = true;
}

void Connection::block(Blocked why) {
    blocked_ |= why;
    if (recv_armed_ && !recv_cancel_pending_ && state_ == State::Open) {
        // CQE contract: one CQE for the cancel (1 found, -ENOENT already over); the recv then
        // ends with -ECANCELED. Data CQEs already posted still arrive first: nothing is lost,
        // the socket keeps what was not read.
        io_uring_sqe* sqe = reactor().prep(*this, OpKind::Cancel);
        io_uring_prep_cancel64(sqe, Reactor::tag_of(*this, OpKind::Recv), 0);
        io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Cancel));
        recv_cancel_pending_ = true;
    }
}

void Connection::unblock(Blocked why) {
    blocked_ &= uint8_t(~why);
    if (blocked_ == 0) {
        arm_recv();
    }
}

void Connection::on_buffer_returned() {
    if (held_ > 0) {
        --held_;
    }
    if ((blocked_ & BufQuota) && held_ <= opts_.buf_quota / 2) {
        unblock(BufQuota);
    }
}

void Connection::on_buffers_available() { unblock(NoBufs); }

void Connection::on_recv_cqe(int32_t res, uint32_t flags) {
    bool more = flags & IORING_CQE_F_MORE;
    if (!more) {
        recv_armed_ = false;
        recv_cancel_pending_ = false;
    }
    if (res > 0) {
        if (!(flags & IORING_CQE_F_BUFFER)) {
            close(Error{Errc::Invalid, 0, "recv completed without a provided buffer"});
            return;
        }
        LentBuf b = reactor().take_buffer(*this, res, flags);
        ++held_;
        if (state_ == State::Open) {
            if (held_ >= opts_.buf_quota) {
                block(BufQuota);
            }
            if (handler_ != nullptr) {
                handler_->on_recv(*this, std::move(b));
            }
        }
        // Otherwise `b` goes back to the ring here: nobody wants bytes of a closing socket.
        if (!more) {
            arm_recv();
        }
        return;
    }
    if (flags & IORING_CQE_F_BUFFER) {
        // Never expected with res <= 0, but a chunk must not leak if the kernel does it.
        LentBuf b = reactor().take_buffer(*this, 0, flags);
        ++held_;
    }
    if (res == 0) {
        eof_ = true;
        if (state_ == State::Open && handler_ != nullptr) {
            handler_->on_eof(*this);
        }
        return;
    }
    if (res == -ENOBUFS) {
        blocked_ |= NoBufs;
        reactor().wait_for_buffers(*this);
        return;
    }
    if (res == -ECANCELED) {
        arm_recv();  // a pause (re-arms only if every reason has gone) or our close
        return;
    }
    if (state_ == State::Open) {
        close(Error{Errc::Syscall, -res, "recv"});
    }
}

Status Connection::send(std::span<const uint8_t> bytes) {
    if (state_ != State::Open && state_ != State::Connecting) {
        return Err{Errc::Closed, 0, "send: connection closing"};
    }
    if (shutdown_wanted_ || close_when_flushed_) {
        return Err{Errc::Closed, 0, "send: write side shut down"};
    }
    if (queued_ + bytes.size() > opts_.out_cap) {
        return Err{Errc::Busy, 0, "send: out-queue full"};
    }
    size_t n = bytes.size();
    const uint8_t* p = bytes.data();
    while (n > 0) {
        // Appending behind an in-flight send is safe: its iovec length was fixed at submit.
        if (out_.empty() || !out_.back().own || out_.back().len == kSegmentBytes) {
            Segment s;
            s.own = spare_ ? std::move(spare_)
                           : std::make_unique_for_overwrite<uint8_t[]>(kSegmentBytes);
            s.data = s.own.get();
            out_.push_back(std::move(s));
        }
        Segment& s = out_.back();
        uint32_t take = uint32_t(std::min<size_t>(n, kSegmentBytes - s.len));
        std::memcpy(s.own.get() + s.len, p, take);
        s.len += take;
        p += take;
        n -= take;
    }
    enqueued(bytes.size());
    return {};
}

Status Connection::send(LentBuf&& chunk) {
    if (state_ != State::Open && state_ != State::Connecting) {
        return Err{Errc::Closed, 0, "send: connection closing"};
    }
    if (shutdown_wanted_ || close_when_flushed_) {
        return Err{Errc::Closed, 0, "send: write side shut down"};
    }
    if (queued_ + chunk.size() > opts_.out_cap) {
        return Err{Errc::Busy, 0, "send: out-queue full"};
    }
    size_t n = chunk.size();
    if (n == 0) {
        return {};
    }
    Segment s;
    s.data = chunk.data();
    s.len = uint32_t(n);
    s.lent = std::move(chunk);
    out_.push_back(std::move(s));
    enqueued(n);
    return {};
}

void Connection::enqueued(size_t n) {
    queued_ += n;
    if (queued_ >= opts_.high_water) {
        paused_ = true;
    }
    flush();
}

void Connection::flush() {
    if (send_inflight_ || out_.empty() || state_ != State::Open) {
        return;
    }
    int n = 0;
    for (auto it = out_.begin(); it != out_.end() && n < kMaxIov; ++it, ++n) {
        iov_[n].iov_base = const_cast<uint8_t*>(it->data + it->sent);
        iov_[n].iov_len = it->len - it->sent;
    }
    // CQE contract: one CQE: bytes sent (> 0, possibly fewer than queued: the rest stays
    // queued and goes in the next send), or -errno (-ECANCELED when closed meanwhile).
    Reactor& r = reactor();
    io_uring_sqe* sqe = r.prep(*this, OpKind::Send);
    if (n == 1) {
        io_uring_prep_send(sqe, fd_, iov_[0].iov_base, iov_[0].iov_len, MSG_NOSIGNAL);
    } else {
        msg_ = msghdr{};
        msg_.msg_iov = iov_;
        msg_.msg_iovlen = size_t(n);
        io_uring_prep_sendmsg(sqe, fd_, &msg_, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Send));
    send_inflight_ = true;
}

void Connection::on_send_cqe(int32_t res) {
    send_inflight_ = false;
    if (state_ != State::Open) {
        return;
    }
    if (res <= 0) {
        close(res == 0 ? Error{Errc::Closed, 0, "send made no progress"}
                       : Error{Errc::Syscall, -res, "send"});
        return;
    }
    size_t left = size_t(res);
    queued_ -= std::min(queued_, left);
    while (left > 0 && !out_.empty()) {
        Segment& s = out_.front();
        size_t take = std::min<size_t>(left, s.len - s.sent);
        s.sent += uint32_t(take);
        left -= take;
        if (s.sent == s.len) {
            if (s.own && !spare_) {
                spare_ = std::move(s.own);
            }
            out_.pop_front();  // a lent chunk goes back to the ring here
        }
    }
    after_progress();
}

void Connection::after_progress() {
    flush();
    if (state_ != State::Open) {
        return;
    }
    if (paused_ && queued_ < opts_.low_water) {
        paused_ = false;
        if (handler_ != nullptr) {
            handler_->on_resume(*this);
        }
        if (state_ != State::Open) {
            return;
        }
    }
    if (out_.empty() && !send_inflight_) {
        if (close_when_flushed_) {
            close(Error{Errc::Ok, 0, ""});
            return;
        }
        if (shutdown_wanted_ && !shutdown_sent_) {
            submit_shutdown();
        }
        if (handler_ != nullptr) {
            handler_->on_drained(*this);
        }
    }
}

void Connection::submit_shutdown() {
    shutdown_sent_ = true;
    // CQE contract: one CQE: 0, or -errno (-ENOTCONN if the peer already reset).
    io_uring_sqe* sqe = reactor().prep(*this, OpKind::Shutdown);
    io_uring_prep_shutdown(sqe, fd_, SHUT_WR);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Shutdown));
}

void Connection::shutdown_write() {
    if (state_ != State::Open || shutdown_wanted_) {
        return;
    }
    shutdown_wanted_ = true;
    if (out_.empty() && !send_inflight_) {
        submit_shutdown();
    }
}

void Connection::close_after_flush() {
    if (state_ != State::Open && state_ != State::Connecting) {
        return;
    }
    if (state_ == State::Open && out_.empty() && !send_inflight_) {
        close(Error{Errc::Ok, 0, ""});
        return;
    }
    close_when_flushed_ = true;
}

void Connection::close(Error reason) {
    if (state_ == State::Closing || state_ == State::Closed) {
        return;
    }
    state_ = State::Closing;
    close_reason_ = reason;
    // CQE contract: one CQE for the cancel (count cancelled, or -ENOENT when nothing was in
    // flight); every cancelled op then ends with its own final CQE (-ECANCELED). finish() runs
    // on whichever CQE brings inflight() to 0.
    io_uring_sqe* sqe = reactor().prep(*this, OpKind::Cancel);
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Cancel));
}

void Connection::finish() {
    state_ = State::Closed;
    ::close(fd_);
    fd_ = -1;
    out_.clear();  // lent chunks go back to the ring
    queued_ = 0;
    ConnHandler* h = handler_;
    handler_ = nullptr;
    retire();
    if (h != nullptr) {
        h->on_close(*this, close_reason_);
    }
}

}  // namespace cfd::net
