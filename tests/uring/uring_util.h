// Helpers shared by the io_uring tests: skip when the ring is refused, drive a reactor until a
// condition holds (with a deadline, never a sleep), raw blocking sockets for peers.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cfd/net/connection.h"
#include "cfd/net/listener.h"
#include "cfd/reactor/features.h"
#include "cfd/reactor/reactor.h"

namespace cfd::test {

inline bool uring_ok() { return cfd::reactor::uring_ok(); }

inline std::unique_ptr<reactor::Reactor> make_reactor(reactor::ReactorOptions o = {}) {
    o.log_features = false;
    auto r = reactor::Reactor::create(o);
    if (!r) {
        return nullptr;
    }
    return std::move(*r);
}

// Turns the loop until cond() or the deadline; returns cond().
template <class F>
bool run_until(reactor::Reactor& r, F cond,
               std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return cond();
        }
        r.run_once(cfd::Millis(20));
    }
    return true;
}

// Deterministic test bytes: byte i of stream `seed`.
inline uint8_t pattern(uint64_t seed, uint64_t i) {
    uint64_t z = (seed + 1) * 0x9e3779b97f4a7c15ULL + (i / 8) * 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 29;
    return uint8_t(z >> ((i % 8) * 8));
}

inline void fill_pattern(uint64_t seed, uint64_t offset, uint8_t* p, size_t n) {
    for (size_t k = 0; k < n; ++k) {
        p[k] = pattern(seed, offset + k);
    }
}

// A blocking client socket connected to 127.0.0.1:port (loopback connect completes in the
// kernel without the listener accepting).
inline int raw_connect(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

inline void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

inline void set_small_buffers(int fd, int bytes) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

// Accepts into a caller-provided vector of fds (for tests that adopt them by hand).
struct FdCollector : net::AcceptHandler {
    std::vector<int> fds;
    void on_accept(net::Listener&, int fd) override { fds.push_back(fd); }
};

// Resets the peak resident set to the current one ("5" to clear_refs), so that a test measures
// its own peak, not one left by an earlier test in the same process.
inline void reset_vm_hwm() {
    FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (f != nullptr) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

// Peak resident set (VmHWM) in KiB.
inline long vm_hwm_kib() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr) {
        return -1;
    }
    char line[256];
    long v = -1;
    while (std::fgets(line, sizeof(line), f) != nullptr) {
        if (std::strncmp(line, "VmHWM:", 6) == 0) {
            v = std::strtol(line + 6, nullptr, 10);
        }
    }
    std::fclose(f);
    return v;
}

}  // namespace cfd::test
