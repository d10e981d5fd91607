#include "cfd/net/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "cfd/core/log.h"

namespace cfd::net {

using reactor::OpKind;
using reactor::Reactor;

namespace {
// Back-off before re-arming accept after EMFILE/ENFILE/ENOMEM, so we do not spin.
constexpr Millis kAcceptRetry{100};
}  // namespace

Result<int> listen_socket(const SockAddr& addr, const ListenOptions& o) {
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return Err{Errc::Syscall, errno, "socket"};
    }
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (o.reuseport && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)) {
        int e = errno;
        ::close(fd);
        return Err{Errc::Syscall, e, "setsockopt SO_REUSEPORT"};
    }
    if (addr.family() == AF_INET6) {
        int v6only = o.v6only ? 1 : 0;
        (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if (::bind(fd, addr.get(), addr.len()) != 0) {
        int e = errno;
        ::close(fd);
        return Err{Errc::Syscall, e, "bind"};
    }
    if (::listen(fd, o.backlog) != 0) {
        int e = errno;
        ::close(fd);
        return Err{Errc::Syscall, e, "listen"};
    }
    return fd;
}

Listener::Listener(int fd, AcceptHandler* h, const SockAddr& local)
    : fd_(fd), handler_(h), local_(local) {}

Listener::~Listener() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Result<Listener*> Listener::open(Reactor& r, const SockAddr& addr, AcceptHandler* h,
                                 const ListenOptions& o) {
    auto fd = listen_socket(addr, o);
    if (!fd) {
        return fd.error();
    }
    auto local = local_address(*fd);
    if (!local) {
        ::close(*fd);
        return local.error();
    }
    auto obj = r.adopt(std::make_unique<Listener>(*fd, h, *local));
    if (!obj) {
        ::close(*fd);
        return obj.error();
    }
    auto* l = static_cast<Listener*>(*obj);
    l->arm();
    return l;
}

void Listener::arm() {
    if (armed_ || closing_) {
        return;
    }
    // CQE contract: n x (res = new fd, F_MORE); the last CQE lacks F_MORE: -ECANCELED on
    // close, or -errno (EMFILE, ENFILE, ENOMEM...) after which we re-arm later.
    io_uring_sqe* sqe = reactor().prep(*this, OpKind::Accept);
    io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Accept));
    armed_ = true;
}

void Listener::on_cqe(OpKind kind, int32_t res, uint32_t flags) {
    if (kind == OpKind::Accept) {
        bool more = flags & IORING_CQE_F_MORE;
        if (!more) {
            armed_ = false;
        }
        if (res >= 0) {
            if (closing_ || handler_ == nullptr) {
                ::close(res);
            } else {
                ++accepted_;
                int one = 1;
                (void)::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                handler_->on_accept(*this, res);
            }
            if (!more) {
                arm();
            }
        } else if (!more && !closing_ && res != -ECANCELED) {
            log::warn("accept failed; retrying", {{"errno", -res}, {"addr", local_.str()}});
            auto t = reactor().add_timer(kAcceptRetry, this);
            if (t) {
                retry_ = *t;
            } else {
                arm();
            }
        }
    }
    if (closing_ && inflight() == 0 && fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        AcceptHandler* h = handler_;
        handler_ = nullptr;
        retire();
        if (h != nullptr) {
            h->on_listener_closed(*this);
        }
    }
}

void Listener::on_timer(reactor::TimerId, uint64_t) {
    retry_ = {};
    arm();
}

void Listener::close() {
    if (closing_) {
        return;
    }
    closing_ = true;
    if (retry_) {
        reactor().cancel_timer(retry_);
        retry_ = {};
    }
    // CQE contract: one CQE for the cancel; the accept ends with -ECANCELED. The fd is closed
    // once inflight() is 0.
    io_uring_sqe* sqe = reactor().prep(*this, OpKind::Cancel);
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, Reactor::tag_of(*this, OpKind::Cancel));
}

}  // namespace cfd::net
