// TLS on a reactor Connection, for the TLS echo test and the throughput benchmark: the sans-I/O
// tls::Session between the socket (lent receive chunks in, out-queue out) and an application
// that sees plaintext. Every hop is bounded: lent chunks by the connection's buffer quota (held
// while reading is paused), wolfSSL's input by one record, the session's output by
// kOutputHighWater, the socket's out-queue by ConnOptions::out_cap.
//
// No copy that the session could avoid: received chunks are lent to Session::read_from (wolfSSL
// copies from them into its record buffer, and the chunk goes back to the ring as soon as it is
// used up), and write_plain hands each encrypted record straight to the socket's out-queue
// (Session::write with a sink) instead of through pending_output().
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
        flush();  // the sink may take records only once nothing older waits
        Sink sink(conn_);
        auto n = s_.write(data, sink);
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
        in_off_ = 0;
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

    // Encrypted records go straight into the socket's out-queue while it has room.
    struct Sink final : tls::OutputSink {
        explicit Sink(net::Connection* c) : conn(c) {}
        size_t take_ciphertext(std::string_view c) override {
            if (conn->state() != net::Connection::State::Open) {
                return 0;
            }
            size_t n = std::min(c.size(), conn->room());
            if (n == 0 || !conn->send({reinterpret_cast<const uint8_t*>(c.data()), n})) {
                return 0;
            }
            return n;
        }
        net::Connection* conn;
    };

    void pump() {
        if (conn_ == nullptr || pumping_) {
            return;  // re-entered from on_plain -> write_plain -> ...: the outer loop goes on
        }
        pumping_ = true;
        // Each chunk is lent to the session, which takes all of it unless our buffer fills up
        // (then the rest waits for the next round) or reading is paused; read_from with cap 0
        // still runs the handshake.
        while (conn_ != nullptr) {
            while (!in_.empty() && in_off_ == in_.front().size()) {
                in_.pop_front();  // used up: the chunk goes back to the ring
                in_off_ = 0;
            }
            if (in_.empty() && s_.handshake_done() && !more_) {
                break;
            }
            std::string_view span;
            if (!in_.empty()) {
                const net::LentBuf& b = in_.front();
                span = {reinterpret_cast<const char*>(b.data()) + in_off_, b.size() - in_off_};
            }
            bool was_done = s_.handshake_done();
            auto r = s_.read_from(span, buf_, reading_ ? sizeof(buf_) : 0);
            flush();  // handshake flights, alerts, key update replies
            if (!r) {
                pumping_ = false;
                fail(r.error());
                return;
            }
            in_off_ += r->used;
            // A call that returned plaintext may have stopped before an error or a close: ask
            // again even when the chunks are used up.
            more_ = r->plain > 0;
            if (!was_done && s_.handshake_done()) {
                on_writable();
            }
            if (r->plain > 0) {
                on_plain({buf_, r->plain});
                continue;
            }
            if (r->used == 0) {
                break;  // waiting for a chunk, for a record's rest, or for reading to resume
            }
        }
        pumping_ = false;
        flush();
    }

    tls::Session s_;
    net::Connection* conn_ = nullptr;
    std::deque<net::LentBuf> in_;  // bounded by the connection's buffer quota
    size_t in_off_ = 0;            // bytes of in_.front() the session already took
    bool reading_ = true;
    bool pumping_ = false;
    bool more_ = false;  // the last read_from returned plaintext: call it once more
    char buf_[64 * 1024];
};

}  // namespace cfd::test
