// One TLS connection, sans I/O: ciphertext goes in through feed(), comes out through
// pending_output(); plaintext goes in through write() and comes out through read(). The session
// never touches a socket, so the reactor owns every byte's journey and tests run in memory.
//
// Driving it:
//   on bytes received:  feed(bytes); then handshake() until Done, then read() until it returns 0
//                       (or, without copying the bytes first: read_from(bytes, ...), see there)
//   to send data:       write(plaintext) accepts what fits under the output watermark
//                       (write(plaintext, sink) offers the records to `sink` first, see there)
//   after every call:   send pending_output(), then consume_output(bytes sent)
// Any call may produce output (handshake flights, alerts, session tickets, close_notify), so the
// caller flushes after each one, errors included: a failed handshake queues an alert.
// The session never sees the TCP connection: an EOF that was not preceded by the peer's
// close_notify (read() returning Errc::Closed) is a truncation, for the caller to treat as such.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/tls/context.h"

struct WOLFSSL_SESSION;

namespace cfd::tls {

enum class HandshakeStep : uint8_t { NeedMore, Done };

// What one read_from() call did with the borrowed ciphertext and the caller's buffer.
struct ReadProgress {
    size_t used = 0;   // bytes taken from the front of the ciphertext
    size_t plain = 0;  // plaintext bytes written to the caller's buffer
};

// Takes ciphertext from inside write(plaintext, sink), record by record, so that it does not
// wait in (and get copied through) pending_output() first. Called only while that write() runs,
// never re-entering the session.
class OutputSink {
public:
    // Takes a prefix of `ciphertext` (all, some or none) and returns its length. `ciphertext` is
    // valid during the call only: copy what is taken. The rest goes to pending_output().
    virtual size_t take_ciphertext(std::string_view ciphertext) = 0;

protected:
    ~OutputSink() = default;
};

// A client's saved session (holding the server's resumption ticket), offered on a later
// connection to skip the full handshake. Move-only; holds one reference on wolfSSL's object.
class Ticket {
public:
    Ticket() = default;
    Ticket(Ticket&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    Ticket& operator=(Ticket&& o) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();
    explicit operator bool() const { return s_ != nullptr; }

private:
    friend class Session;
    explicit Ticket(WOLFSSL_SESSION* s) : s_(s) {}
    WOLFSSL_SESSION* s_ = nullptr;
};

class Session {
public:
    // Largest plaintext of one TLS record: write() cuts plaintext into records of this size.
    static constexpr size_t kMaxRecordPlaintext = 16384;
    // Ciphertext buffered by feed() and not yet taken by wolfSSL. The caller reads (which
    // consumes input) before feeding more, so a peer cannot grow it past this; it is large enough
    // that one receive buffer of up to 128 KiB always fits on top of a partial record. Memory is
    // taken as used, not reserved.
    static constexpr size_t kMaxBufferedInput = 256 * 1024;
    // write() stops taking plaintext once this much ciphertext waits to be sent.
    static constexpr size_t kOutputHighWater = 256 * 1024;

    // A client for `server_name`: sent as SNI (unless it is an address literal) and, when the
    // context verifies, checked against the certificate's DNS names (wildcards included), or its
    // iPAddress names for an address literal. `resume`, if set, offers a saved session.
    [[nodiscard]] static Result<Session> client(const Context& ctx,
                                                std::string_view server_name = kTunnelServerName,
                                                const Ticket* resume = nullptr);
    // A server. `sni` is the name the ClientHello asked for (from peek_sni), kept for sni().
    [[nodiscard]] static Result<Session> server(const Context& ctx, std::string_view sni = {});

    // A moved-from Session may only be destroyed or assigned to.
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session();

    // Copies all of `ciphertext` or none: Busy when it would push the buffered input past
    // kMaxBufferedInput (call read() first, or pause receiving); after a fatal error, that error.
    [[nodiscard]] Status feed(std::string_view ciphertext);
    // Runs the handshake as far as the input allows. Errors carry wolfSSL's code in `sys`.
    [[nodiscard]] Result<HandshakeStep> handshake();
    // Decrypted bytes into buf; 0 means "feed me more". The peer's close_notify is
    // Errc::Closed; other failures are Errc::Tls. Also runs the handshake if it is not done.
    [[nodiscard]] Result<size_t> read(char* buf, size_t cap);
    // feed(ciphertext) then read() until buf is full, without copying `ciphertext` first: it is
    // borrowed for the duration of the call and wolfSSL's receive callback copies from it, first
    // serving whatever feed() buffered. wolfSSL keeps a partial record in its own buffer (at most
    // one record), so normally every byte is used and the caller may release the span on return.
    // Fewer bytes are used only when buf filled up (plain == cap: call again with the rest) or the
    // peer's close_notify arrived (the bytes after it are not taken). Runs the handshake first
    // when it is not done; with cap == 0 it runs only the handshake and takes only its input.
    // Never Busy, since nothing is buffered on our side. The peer's close_notify is
    // Errc::Closed, other failures Errc::Tls, as for read(); a call that decrypted plaintext
    // before hitting either returns that plaintext, and the next call returns the error. So
    // the caller calls again (with an empty span if none is left) while plaintext comes back.
    [[nodiscard]] Result<ReadProgress> read_from(std::string_view ciphertext, char* buf,
                                                 size_t cap);
    // Encrypts a prefix of `plaintext` into full-size records; returns how much it took, fewer
    // than asked (maybe 0) when pending output is over kOutputHighWater. Only after the handshake.
    [[nodiscard]] Result<size_t> write(std::string_view plaintext);
    // The same, but each record is offered to `sink` as wolfSSL produces it, while nothing waits
    // in pending_output() (so the order on the wire is kept); what `sink` does not take is
    // queued in pending_output() as usual, under the same watermark. Saves one copy per record.
    [[nodiscard]] Result<size_t> write(std::string_view plaintext, OutputSink& sink);

    // Ciphertext waiting to be sent. Valid until the next call on this session.
    std::string_view pending_output() const;
    // `n` bytes of pending_output() were sent.
    void consume_output(size_t n);
    // Bytes fed and not yet taken by wolfSSL.
    size_t buffered_input() const;
    // Frees our empty input/output buffers (they keep their capacity otherwise, so a busy
    // connection allocates once). For connections going idle. Returns the bytes still held.
    size_t trim();

    // Queues close_notify (once). Later writes fail.
    void shutdown();

    bool is_server() const;
    bool handshake_done() const;
    // The negotiated protocol, empty when none.
    std::string_view alpn() const;
    // Server: the name the client asked for (lower case), empty without SNI.
    std::string_view sni() const;
    // For logs: "TLSv1.3", "TLS13-AES128-GCM-SHA256". Empty before the handshake.
    std::string_view version() const;
    std::string_view cipher() const;
    // Client: whether the handshake resumed a saved session.
    bool resumed() const;
    // Client: the session to offer next time (after the server's ticket was read: in TLS 1.3
    // it arrives after the handshake, so read() once the handshake is done).
    [[nodiscard]] Result<Ticket> save_ticket() const;

    struct Impl;

private:
    explicit Session(std::unique_ptr<Impl> impl);
    // Heap-allocated so that wolfSSL's I/O callbacks keep a stable pointer across moves.
    std::unique_ptr<Impl> impl_;
};

}  // namespace cfd::tls
