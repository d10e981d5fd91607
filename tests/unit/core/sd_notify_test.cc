// sd_notify against real unix datagram sockets the test binds: a socket file and an abstract
// name, as systemd (a file under /run/systemd) and containers' supervisors (often abstract) use.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cfd/core/sd_notify.h"
#include "cfd/core/uuid.h"

using namespace cfd;

namespace {

// A bound SOCK_DGRAM socket standing in for the service manager; closed (and its file removed)
// at scope exit.
struct Listener {
    int fd = -1;
    std::string dir;   // socket file's folder, empty for an abstract socket
    std::string name;  // what NOTIFY_SOCKET says

    ~Listener() {
        if (fd >= 0) {
            ::close(fd);
        }
        if (!dir.empty()) {
            ::unlink((dir + "/notify").c_str());
            ::rmdir(dir.c_str());
        }
    }

    static bool bind_path(Listener& l) {
        char tmpl[] = "/tmp/cfd-sdnotify-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            return false;
        }
        l.dir = tmpl;
        l.name = l.dir + "/notify";
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, l.name.data(), l.name.size());
        l.fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        return l.fd >= 0 && ::bind(l.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }

    static bool bind_abstract(Listener& l) {
        // Unique per run: abstract names live in the network namespace, not in a folder.
        std::string id = "cfd-sdnotify-" + Uuid::random().str();
        l.name = "@" + id;
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path + 1, id.data(), id.size());
        auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + id.size());
        l.fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        return l.fd >= 0 && ::bind(l.fd, reinterpret_cast<sockaddr*>(&sa), len) == 0;
    }

    // One datagram, without waiting: sd_notify has returned, so it is queued already.
    std::string take() const {
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        return n < 0 ? std::string("<nothing: ") + std::strerror(errno) + ">"
                     : std::string(buf, static_cast<size_t>(n));
    }
};

// Restores NOTIFY_SOCKET as the test found it.
struct EnvGuard {
    std::string old;
    bool had = false;
    EnvGuard() {
        if (const char* v = std::getenv("NOTIFY_SOCKET")) {
            had = true;
            old = v;
        }
    }
    ~EnvGuard() {
        if (had) {
            ::setenv("NOTIFY_SOCKET", old.c_str(), 1);
        } else {
            ::unsetenv("NOTIFY_SOCKET");
        }
    }
};

}  // namespace

TEST_CASE("sd_notify: a datagram reaches a socket file") {
    Listener l;
    REQUIRE(Listener::bind_path(l));
    REQUIRE(sd_notify_to(l.name, "READY=1"));
    CHECK(l.take() == "READY=1");
    // Several assignments travel in one datagram, newline-separated, as the manager reads them.
    REQUIRE(sd_notify_to(l.name, "STOPPING=1\nSTATUS=Draining"));
    CHECK(l.take() == "STOPPING=1\nSTATUS=Draining");
}

TEST_CASE("sd_notify: '@' names an abstract socket") {
    Listener l;
    REQUIRE(Listener::bind_abstract(l));
    REQUIRE(sd_notify_to(l.name, "STATUS=Connected 4 connections"));
    CHECK(l.take() == "STATUS=Connected 4 connections");
}

TEST_CASE("sd_notify: reads NOTIFY_SOCKET, and is a no-op without it") {
    EnvGuard env;
    Listener l;
    REQUIRE(Listener::bind_path(l));
    REQUIRE(::setenv("NOTIFY_SOCKET", l.name.c_str(), 1) == 0);
    REQUIRE(sd_notify("READY=1"));
    CHECK(l.take() == "READY=1");

    REQUIRE(::unsetenv("NOTIFY_SOCKET") == 0);
    CHECK(sd_notify("READY=1"));
    REQUIRE(::setenv("NOTIFY_SOCKET", "", 1) == 0);
    CHECK(sd_notify("READY=1"));
    CHECK(sd_notify_to("", "READY=1"));
    CHECK(l.take().rfind("<nothing", 0) == 0);  // none of those reached anyone
}

TEST_CASE("sd_notify: bad addresses and absent listeners are errors, not hangs") {
    auto relative = sd_notify_to("run/notify", "READY=1");
    REQUIRE(!relative);
    CHECK(relative.error().code == Errc::Invalid);

    std::string long_path = "/" + std::string(sizeof(sockaddr_un::sun_path), 'a');
    auto too_long = sd_notify_to(long_path, "READY=1");
    REQUIRE(!too_long);
    CHECK(too_long.error().code == Errc::Invalid);
    auto too_long_abstract = sd_notify_to("@" + long_path, "READY=1");
    REQUIRE(!too_long_abstract);
    CHECK(too_long_abstract.error().code == Errc::Invalid);

    auto missing = sd_notify_to("/nonexistent-cfd-sdnotify/notify", "READY=1");
    REQUIRE(!missing);
    CHECK(missing.error().code == Errc::Syscall);
    CHECK(missing.error().sys == ENOENT);

    // Unbound abstract name: nobody listens.
    auto nobody = sd_notify_to("@cfd-sdnotify-nobody-" + Uuid::random().str(), "READY=1");
    REQUIRE(!nobody);
    CHECK(nobody.error().code == Errc::Syscall);
    CHECK(nobody.error().sys == ECONNREFUSED);
}

TEST_CASE("sd_notify: the longest abstract name that fits is accepted") {
    // sun_path holds the NUL plus 107 name bytes; '@' stands for that NUL.
    Listener l;
    std::string id(sizeof(sockaddr_un::sun_path) - 1, 'x');
    std::string tail = Uuid::random().str();
    id.replace(id.size() - tail.size(), tail.size(), tail);
    l.name = "@" + id;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path + 1, id.data(), id.size());
    l.fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(::bind(l.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(sd_notify_to(l.name, "READY=1"));
    CHECK(l.take() == "READY=1");
}
