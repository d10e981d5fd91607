// Echo server and client handlers used by several io_uring tests.
#pragma once

#include <algorithm>
#include <deque>

#include "uring_util.h"

namespace cfd::test {

// Echoes what it receives by forwarding the lent chunks themselves; stops reading while the
// out-queue is above its high watermark. Deletes itself on close.
struct EchoConn : net::ConnHandler {
    std::deque<net::LentBuf> pending;  // refused by a full out-queue, sent on resume
    bool eof = false;
    int* closed = nullptr;

    void on_recv(net::Connection& c, net::LentBuf b) override {
        if (!pending.empty()) {
            pending.push_back(std::move(b));
            return;
        }
        Status s = c.send(std::move(b));
        if (!s) {
            if (s.error().code != Errc::Busy) {
                c.close(s.error());
                return;
            }
            pending.push_back(std::move(b));
        }
        if (!pending.empty() || !c.writable()) {
            c.pause_recv();
        }
    }
    void on_resume(net::Connection& c) override {
        while (!pending.empty()) {
            if (!c.send(std::move(pending.front()))) {
                return;  // still full: the next on_resume continues
            }
            pending.pop_front();
        }
        if (eof) {
            c.close_after_flush();
            return;
        }
        if (c.writable()) {
            c.resume_recv();
        }
    }
    void on_eof(net::Connection& c) override {
        eof = true;
        if (pending.empty()) {
            c.close_after_flush();
        }
    }
    void on_close(net::Connection&, Error) override {
        if (closed != nullptr) {
            ++*closed;
        }
        delete this;
    }
};

struct EchoServer : net::AcceptHandler {
    net::ConnOptions opts;
    int accepted = 0;
    int closed = 0;
    void on_accept(net::Listener& l, int fd) override {
        auto* h = new EchoConn;
        h->closed = &closed;
        auto c = net::Connection::adopt(l.reactor(), fd, h, opts);
        if (!c) {
            delete h;
            return;
        }
        ++accepted;
    }
};

// Sends `total` pattern bytes, half-closes, checks that the same bytes come back.
struct EchoClient : net::ConnHandler {
    uint64_t seed = 0;
    uint64_t total = 0;
    uint64_t sent = 0;
    uint64_t received = 0;
    bool connected = false;
    bool mismatch = false;
    bool closed = false;
    Error reason{};
    net::Connection* conn = nullptr;

    void pump(net::Connection& c) {
        uint8_t buf[16384];
        while (sent < total && c.writable()) {
            size_t n = std::min<uint64_t>({sizeof(buf), total - sent, c.room()});
            if (n == 0) {
                break;
            }
            fill_pattern(seed, sent, buf, n);
            if (!c.send({buf, n})) {
                break;
            }
            sent += n;
        }
        if (sent == total) {
            c.shutdown_write();
        }
    }
    void on_connect(net::Connection& c, Status s) override {
        connected = bool(s);
        if (connected) {
            pump(c);
        }
    }
    void on_resume(net::Connection& c) override { pump(c); }
    void on_recv(net::Connection& c, net::LentBuf b) override {
        const uint8_t* p = b.data();
        for (size_t i = 0; i < b.size(); ++i) {
            if (p[i] != pattern(seed, received + i)) {
                mismatch = true;
                break;
            }
        }
        received += b.size();
        if (received >= total) {
            c.close(Error{Errc::Ok, 0, ""});
        }
    }
    void on_eof(net::Connection& c) override { c.close(Error{Errc::Closed, 0, "early eof"}); }
    void on_close(net::Connection&, Error r) override {
        closed = true;
        reason = r;
        conn = nullptr;
    }
};

}  // namespace cfd::test
