#include "cfd/core/sd_notify.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cfd/core/log.h"

namespace cfd {

namespace {

// The send blocks only if the manager's receive queue is full; bound it so a stuck manager
// cannot hold the control thread (and with it signal handling) for long.
constexpr time_t kSendTimeoutSeconds = 2;

}  // namespace

Status sd_notify_to(std::string_view socket, std::string_view state) {
    if (socket.empty()) {
        return {};
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    socklen_t len = 0;
    if (socket.front() == '@') {
        // Abstract namespace: sun_path starts with NUL and the length, not a terminator, ends
        // the name (so no trailing NUL is counted).
        if (socket.size() > sizeof sa.sun_path) {
            return Err{Errc::Invalid, 0, "NOTIFY_SOCKET too long"};
        }
        sa.sun_path[0] = '\0';
        std::memcpy(sa.sun_path + 1, socket.data() + 1, socket.size() - 1);
        len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size());
    } else if (socket.front() == '/') {
        if (socket.size() >= sizeof sa.sun_path) {  // room for the terminating NUL
            return Err{Errc::Invalid, 0, "NOTIFY_SOCKET too long"};
        }
        std::memcpy(sa.sun_path, socket.data(), socket.size());
        len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() + 1);
    } else {
        // systemd also knows "vsock:..." (for VMs); nothing we run under uses it.
        return Err{Errc::Invalid, 0, "NOTIFY_SOCKET is neither /path nor @name"};
    }

    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return Err{Errc::Syscall, errno, "socket"};
    }
    timeval tv{};
    tv.tv_sec = kSendTimeoutSeconds;
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // best effort
    ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr*>(&sa), len);
    int saved = errno;
    ::close(fd);
    if (n < 0) {
        return Err{Errc::Syscall, saved, "sendto NOTIFY_SOCKET"};
    }
    // A datagram is sent whole or not at all; anything else is a kernel surprise worth naming.
    if (static_cast<size_t>(n) != state.size()) {
        return Err{Errc::Syscall, EMSGSIZE, "sendto NOTIFY_SOCKET"};
    }
    return {};
}

Status sd_notify(std::string_view state) {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    if (socket == nullptr) {
        return {};
    }
    return sd_notify_to(socket, state);
}

void sd_notify_or_warn(std::string_view state) {
    if (auto st = sd_notify(state); !st) {
        // The first line only: the rest may be a long STATUS=.
        std::string_view what = state.substr(0, state.find('\n'));
        const char* socket = std::getenv("NOTIFY_SOCKET");
        log::warn("Cannot notify the service manager",
                  {{"notify", what},
                   {"socket", socket != nullptr ? socket : ""},
                   {"error", st.error().message()}});
    }
}

}  // namespace cfd
