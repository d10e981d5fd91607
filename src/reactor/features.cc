#include "cfd/reactor/features.h"

#include <liburing.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "cfd/core/log.h"
#include "cfd/reactor/op.h"

namespace cfd::reactor {

const char* op_name(OpKind k) {
    switch (k) {
    case OpKind::Nop: return "nop";
    case OpKind::Accept: return "accept";
    case OpKind::Recv: return "recv";
    case OpKind::Send: return "send";
    case OpKind::Connect: return "connect";
    case OpKind::LinkTimeout: return "link_timeout";
    case OpKind::Cancel: return "cancel";
    case OpKind::Shutdown: return "shutdown";
    case OpKind::Doorbell: return "doorbell";
    case OpKind::MsgRingSent: return "msg_ring_sent";
    case OpKind::EventRead: return "event_read";
    case OpKind::Count: break;
    }
    return "unknown";
}

Result<KernelVersion> parse_kernel_release(const char* release) {
    KernelVersion v;
    char* end = nullptr;
    errno = 0;
    long major = std::strtol(release, &end, 10);
    if (end == release || *end != '.' || errno != 0 || major < 0 || major > 1000) {
        return Err{Errc::Invalid, 0, "kernel release"};
    }
    const char* p = end + 1;
    long minor = std::strtol(p, &end, 10);
    if (end == p || errno != 0 || minor < 0 || minor > 1000) {
        return Err{Errc::Invalid, 0, "kernel release"};
    }
    v.major = int(major);
    v.minor = int(minor);
    return v;
}

Status check_kernel() {
    struct utsname u {};
    if (::uname(&u) != 0) {
        return Err{Errc::Syscall, errno, "uname"};
    }
    auto v = parse_kernel_release(u.release);
    if (!v) {
        return v.error();
    }
    if (v->major < 6 || (v->major == 6 && v->minor < 1)) {
        log::error("io_uring reactor needs Linux 6.1 or newer", {{"kernel", u.release}});
        return Err{Errc::Unsupported, 0, "io_uring reactor needs Linux 6.1 or newer"};
    }
    return {};
}

namespace {

constexpr unsigned kReactorFlags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

// Registering a one-entry provided-buffer ring tells whether the kernel has them (5.19+).
bool probe_buf_ring(io_uring* ring) {
    size_t len = 4096;
    void* mem = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return false;
    }
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = 1;
    reg.bgid = 0;
    bool ok = io_uring_register_buf_ring(ring, &reg, 0) == 0;
    if (ok) {
        (void)io_uring_unregister_buf_ring(ring, 0);
    }
    ::munmap(mem, len);
    return ok;
}

struct ProbeResult {
    bool ok = false;
    int err = 0;
    std::vector<std::string> names;
};

ProbeResult run_probe() {
    ProbeResult r;
    if (!check_kernel()) {
        r.err = ENOSYS;
        return r;
    }
    io_uring ring;
    io_uring_params p{};
    p.flags = kReactorFlags;
    int rc = io_uring_queue_init_params(8, &ring, &p);
    bool reactor_flags = rc == 0;
    if (rc != 0) {
        p = io_uring_params{};
        rc = io_uring_queue_init_params(8, &ring, &p);
    }
    if (rc != 0) {
        r.err = -rc;
        return r;
    }
    r.ok = reactor_flags && (p.features & IORING_FEAT_EXT_ARG);
    auto add = [&](bool has, const char* name) {
        if (has) {
            r.names.emplace_back(name);
        }
    };
    add(reactor_flags, "single_issuer");
    add(reactor_flags, "defer_taskrun");
    add(p.features & IORING_FEAT_NODROP, "nodrop");
    add(p.features & IORING_FEAT_FAST_POLL, "fast_poll");
    add(p.features & IORING_FEAT_EXT_ARG, "ext_arg");
    add(p.features & IORING_FEAT_CQE_SKIP, "cqe_skip");
    add(p.features & IORING_FEAT_LINKED_FILE, "linked_file");
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    if (probe != nullptr) {
        auto op = [&](int o) { return io_uring_opcode_supported(probe, o) != 0; };
        // Multishot accept and recv are flags of ACCEPT and RECV since 5.19/6.0; the 6.1
        // floor checked above guarantees them when the opcodes exist.
        add(op(IORING_OP_ACCEPT), "multishot_accept");
        add(op(IORING_OP_RECV), "multishot_recv");
        add(op(IORING_OP_LINK_TIMEOUT), "link_timeout");
        add(op(IORING_OP_ASYNC_CANCEL), "cancel_fd");
        add(op(IORING_OP_SHUTDOWN), "shutdown");
        add(op(IORING_OP_MSG_RING), "msg_ring");
        add(op(IORING_OP_SEND_ZC), "send_zc");
        add(op(IORING_OP_SOCKET), "socket");
        r.ok = r.ok && op(IORING_OP_ACCEPT) && op(IORING_OP_RECV) && op(IORING_OP_SENDMSG) &&
               op(IORING_OP_CONNECT) && op(IORING_OP_LINK_TIMEOUT) && op(IORING_OP_ASYNC_CANCEL);
        io_uring_free_probe(probe);
    } else {
        r.ok = false;
    }
    bool bufs = probe_buf_ring(&ring);
    add(bufs, "provided_buffer_ring");
    r.ok = r.ok && bufs;
    io_uring_queue_exit(&ring);
    return r;
}

const ProbeResult& cached_probe() {
    static std::once_flag once;
    static ProbeResult result;
    std::call_once(once, [] { result = run_probe(); });
    return result;
}

}  // namespace

std::vector<std::string> probe_features() { return cached_probe().names; }

std::string features_line() {
    const ProbeResult& r = cached_probe();
    if (r.names.empty()) {
        std::string why = r.err == ENOSYS ? "kernel too old or io_uring missing" : "";
        if (r.err == EPERM) {
            why = "io_uring_setup refused (EPERM)";
        } else if (why.empty()) {
            why = "io_uring_setup failed (" + std::to_string(r.err) + ")";
        }
        return "unavailable (" + why + ")";
    }
    std::string s;
    for (const auto& n : r.names) {
        if (!s.empty()) {
            s += ' ';
        }
        s += n;
    }
    return s;
}

bool uring_ok() { return cached_probe().ok; }

}  // namespace cfd::reactor
