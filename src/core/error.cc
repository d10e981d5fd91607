#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cfd/core/log.h"
#include "cfd/core/result.h"

namespace cfd {

const char* errc_name(Errc c) {
    switch (c) {
    case Errc::Ok: return "ok";
    case Errc::Syscall: return "syscall";
    case Errc::Invalid: return "invalid";
    case Errc::Protocol: return "protocol";
    case Errc::Tls: return "tls";
    case Errc::Closed: return "closed";
    case Errc::TimedOut: return "timed out";
    case Errc::Busy: return "busy";
    case Errc::NotFound: return "not found";
    case Errc::Unsupported: return "unsupported";
    case Errc::Unauthorized: return "unauthorized";
    case Errc::Exists: return "exists";
    case Errc::Config: return "config";
    }
    return "unknown";
}

std::string Error::message() const {
    std::string s = op && *op ? op : errc_name(code);
    if (code == Errc::Syscall && sys != 0) {
        s += ": ";
        s += std::strerror(sys);
    } else if (op && *op) {
        s += ": ";
        s += errc_name(code);
        if (sys != 0) {
            s += " (" + std::to_string(sys) + ")";
        }
    }
    return s;
}

namespace {
std::atomic<uint64_t> g_bugs{0};
}

void check_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "FATAL: check failed: %s at %s:%d\n", expr, file, line);
    std::abort();
}

void bug_reported(const char* msg, const char* file, int line) {
    g_bugs.fetch_add(1, std::memory_order_relaxed);
    log::error("internal bug",
               {{"what", msg}, {"at", std::string(file) + ":" + std::to_string(line)}});
}

uint64_t bugs_reported() {
    return g_bugs.load(std::memory_order_relaxed);
}

}  // namespace cfd
