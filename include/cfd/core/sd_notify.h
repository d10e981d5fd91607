// The service manager's readiness protocol (sd_notify(3)), without libsystemd: one datagram of
// newline-separated KEY=VALUE assignments ("READY=1", "STOPPING=1", "STATUS=...") to the unix
// socket named by $NOTIFY_SOCKET. systemd sets it for Type=notify units; anything else may too
// (tests, other supervisors). Without it every call is a no-op, so the callers need no "are we
// under systemd" check.
//
//   NOTIFY_SOCKET=/run/systemd/notify   a socket file
//   NOTIFY_SOCKET=@name                 an abstract socket ('@' stands for the leading NUL)
#pragma once

#include <string_view>

#include "cfd/core/result.h"

namespace cfd {

// Sends `state` to $NOTIFY_SOCKET. Ok without doing anything when the variable is unset or
// empty. Errors: Invalid (an address that is neither "/path" nor "@name", or too long for a
// sockaddr_un), Syscall (socket/sendto; ENOENT or ECONNREFUSED when nobody listens).
[[nodiscard]] Status sd_notify(std::string_view state);

// The same to an explicit address in NOTIFY_SOCKET's syntax; an empty address is a no-op.
[[nodiscard]] Status sd_notify_to(std::string_view socket, std::string_view state);

// For lifecycle notices: a failure is logged as a warning and otherwise ignored, since the
// service itself works whether or not its manager heard (systemd then times out the start,
// which names the problem better than exiting here would).
void sd_notify_or_warn(std::string_view state);

}  // namespace cfd
