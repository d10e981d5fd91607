// TLS on a reactor Connection, for the TLS echo test and the throughput benchmark: the sans-I/O
// tls::Session between the socket (lent receive chunks in, out-queue out) and an application
// that sees plaintext. Every hop is bounded: lent chunks by the connection's buffer quota, the
// session's input by Session::kMaxBufferedInput, its output by kOutputHighWater, the socket's
// out-queue by ConnOptions::out_cap.
#pragma once

#include <algorithm>
#include <deque>
#include <string_view>

#include "cfd/net/connection.h"
#include "cfd/tls/session.h"

namespace cfd::test {

class TlsLink : public net::ConnHandler {
public:
    explicit TlsLink(tls::Session s) : s_(std::move(s)) {}

    // --- for the application ---
    // Plaintext from the peer; consume all of it (call set_reading(false) to stop the flow).
    virtual void on_plain(std::string_view data) = 0;
    // The handshake finished, or the socket can take more after back-pressure.
    virtual void on_writable() {}
    virtual void on_link_closed(Error why) = 0;

    // Encrypts what the session takes now and queues it on the socket; returns the bytes taken.
    size_t write_plain(std::string_view data) {
        if (conn_ == nullptr || !s_.handshake_done()) {
            return 0;
        }
        auto n = s_.write(data);
        if (!n) {
            fail(n.error());
            return 0;
        }
        flush();
        return *n;
    }
    void set_reading(bool on) {
        reading_ = on;
        if (on) {
            pump();
        }
    }
    bool handshake_done() const { return s_.handshake_done(); }
    tls::Session& session() { return s_; }
    net::Connection* conn() const { return conn_; }
    void attach(net::Connection* c) { conn_ = c; }

    // --- ConnHandler ---
    void on_connect(net::Connection& c, Status s) override {
        if (s) {
            conn_ = &c;
            pump();  // the client's handshake() writes its ClientHello
        }
    }
    void on_recv(net::Connection&, net::LentBuf b) override {
        in_.push_back(std::move(b));
        pump();
    }
    void on_resume(net::Connection&) override {
        flush();
        if (s_.handshake_done()) {
            on_writable();
        }
        pump();
    }
    void on_eof(net::Connection& c) override { c.close(Error{Errc::Closed, 0, "peer eof"}); }
    void on_close(net::Connection&, Error why) override {
        conn_ = nullptr;
        in_.clear();
        on_link_closed(why);
    }

protected:
    void close(Error why) {
        if (conn_ != nullptr) {
            conn_->close(why);
        }
    }

private:
    void fail(const Error& e) {
        flush();  // an alert may be queued
        close(e);
    }

    void flush() {
        while (conn_ != nullptr && conn_->state() == net::Connection::State::Open) {
            std::string_view out = s_.pending_output();
            size_t n = std::min(out.size(), conn_->room());
            if (n == 0) {
                return;
            }
            if (!conn_->send({reinterpret_cast<const uint8_t*>(out.data()), n})) {
                return;
            }
            s_.consume_output(n);
        }
    }

    void pump() {
        if (conn_ == nullptr || pumping_) {
            return;  // re-entered from on_plain -> write_plain -> ...: the outer loop goes on
        }
        pumping_ = true;
        for (;;) {
            bool fed = false;
            while (!in_.empty()) {
                net::LentBuf& b = in_.front();
                Status st = s_.feed({reinterpret_cast<const char*>(b.data()), b.size()});
                if (!st) {
                    if (st.error().code == Errc::Busy) {
                        break;  // read first
                    }
                    pumping_ = false;
                    fail(st.error());
                    return;
                }
                in_.pop_front();  // copied into the session: the chunk goes back to the ring
                fed = true;
            }
            if (!s_.handshake_done()) {
                auto h = s_.handshake();
                flush();
                if (!h) {
                    pumping_ = false;
                    fail(h.error());
                    return;
                }
                if (*h == tls::HandshakeStep::NeedMore) {
                    break;
                }
                on_writable();
            }
            if (!reading_ || conn_ == nullptr) {
                break;
            }
            size_t got = 0;
            while (reading_ && conn_ != nullptr) {
                auto n = s_.read(buf_, sizeof(buf_));
                if (!n) {
                    pumping_ = false;
                    fail(n.error());
                    return;
                }
                if (*n == 0) {
                    break;
                }
                got += *n;
                on_plain({buf_, *n});
            }
            if (in_.empty() || (got == 0 && !fed)) {
                break;
            }
        }
        pumping_ = false;
        flush();
    }

    tls::Session s_;
    net::Connection* conn_ = nullptr;
    std::deque<net::LentBuf> in_;  // bounded by the connection's buffer quota
    bool reading_ = true;
    bool pumping_ = false;
    char buf_[64 * 1024];
};

}  // namespace cfd::test
