// What the kernel's io_uring offers. `cfdtunnel version` prints probe_features(); every reactor
// logs them at start. Tests that need a ring skip when uring_ok() is false (some containers
// refuse io_uring_setup with EPERM; old kernels lack what we need).
#pragma once

#include <string>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::reactor {

struct KernelVersion {
    int major = 0;
    int minor = 0;
};

// Parses the leading "major.minor" of a uname release string ("6.1.0-13-amd64").
Result<KernelVersion> parse_kernel_release(const char* release);

// Unsupported (with the release in the log) when the running kernel is older than 6.1.
Status check_kernel();

// Creates a throw-away ring and names what it supports: "single_issuer", "defer_taskrun",
// "ext_arg", "multishot_accept", "multishot_recv", "provided_buffer_ring", "msg_ring", "send_zc",
// "link_timeout", "cancel_fd", ... Empty when io_uring is refused.
std::vector<std::string> probe_features();
std::string features_line();  // the list joined by spaces, or "unavailable (<why>)"

// True when a ring with the flags the reactor uses can be created here (cached after the first
// call). Used by tests as doctest::skip(!uring_ok()).
bool uring_ok();

}  // namespace cfd::reactor
