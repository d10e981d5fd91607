#include "cfd/tls/session.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "tls/byte_buffer.h"
#include "tls/wolf.h"
#include "tls/x509_san.h"

namespace cfd::tls {

struct Session::Impl {
    WOLFSSL* ssl = nullptr;
    ByteBuffer in;   // fed ciphertext, drained by on_recv
    ByteBuffer out;  // ciphertext appended by on_send, drained by consume_output
    // During read_from() only: the caller's ciphertext, served by on_recv after `in`, and how
    // much of it wolfSSL took. Empty outside that call, so nothing points at a returned chunk.
    std::string_view lent;
    size_t lent_used = 0;
    // During write(plaintext, sink) only: offered each record before `out` is.
    OutputSink* sink = nullptr;
    bool server = false;
    bool done = false;           // handshake finished
    bool shutdown_sent = false;  // our close_notify is queued
    bool peer_closed = false;    // the peer's close_notify arrived
    bool failed = false;         // a fatal error happened: every later call returns `error`
    Error error{};
    std::string peer_ip;  // client verifying an address literal: its 4 or 16 bytes
    WOLFSSL_CTX* ctx = nullptr;  // the context's, for re-checking a chain (verify_ip_name)
    std::string sni;
    std::string alpn;
    std::string version;
    std::string cipher;

    ~Impl() {
        if (ssl != nullptr) {
            wolfSSL_free(ssl);
        }
    }

    Error fail(int wolf_code, const char* op) {
        failed = true;
        error = tls_error(wolf_code, op);
        return error;
    }

    void on_handshake_done() {
        done = true;
        char* name = nullptr;
        unsigned short len = 0;
        if (wolfSSL_ALPN_GetProtocol(ssl, &name, &len) == WOLFSSL_SUCCESS && name != nullptr) {
            alpn.assign(name, len);
        }
        if (const char* v = wolfSSL_get_version(ssl)) {
            version = v;
        }
        if (const char* c = wolfSSL_get_cipher_name(ssl)) {
            cipher = c;
        }
    }
};

namespace {

// wolfSSL's receive callback: hands over fed ciphertext, then the span lent by read_from() (the
// fed bytes arrived first), or asks to be called again later. wolfSSL asks for exactly what it
// needs (a record header, then the rest of the record), so it never holds more than one record.
int on_recv(WOLFSSL*, char* buf, int sz, void* ctx) {
    auto* im = static_cast<Session::Impl*>(ctx);
    size_t want = static_cast<size_t>(sz);
    size_t n = im->in.empty() ? 0 : im->in.take(buf, want);
    size_t left = im->lent.size() - im->lent_used;
    if (n < want && left > 0) {
        size_t k = std::min(want - n, left);
        std::memcpy(buf + n, im->lent.data() + im->lent_used, k);
        im->lent_used += k;
        n += k;
    }
    if (n == 0) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    return static_cast<int>(n);
}

// wolfSSL's send callback: never blocks, the caller drains pending_output(). write() bounds how
// much application data gets here; handshake flights and alerts are small. A sink gets the bytes
// first, but only while nothing is pending, or it would send them ahead of older ones.
int on_send(WOLFSSL*, char* buf, int sz, void* ctx) {
    auto* im = static_cast<Session::Impl*>(ctx);
    size_t n = static_cast<size_t>(sz);
    size_t taken = 0;
    if (im->sink != nullptr && im->out.empty()) {
        taken = std::min(n, im->sink->take_ciphertext({buf, n}));
    }
    im->out.append(buf + taken, n - taken);
    return sz;
}

// Lends `ciphertext` to on_recv for one read_from() call; takes it back on every return path.
class Lend {
public:
    Lend(Session::Impl& im, std::string_view ciphertext) : im_(im) {
        im_.lent = ciphertext;
        im_.lent_used = 0;
    }
    ~Lend() {
        im_.lent = {};
        im_.lent_used = 0;
    }
    Lend(const Lend&) = delete;
    Lend& operator=(const Lend&) = delete;
    size_t used() const { return im_.lent_used; }

private:
    Session::Impl& im_;
};

// The raw bytes of an IPv4 or IPv6 literal, empty for anything else.
std::string ip_bytes(const std::string& s) {
    in6_addr a6;
    in_addr a4;
    if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
        return std::string(reinterpret_cast<const char*>(&a4), sizeof(a4));
    }
    if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
        return std::string(reinterpret_cast<const char*>(&a6), sizeof(a6));
    }
    return {};
}

// wolfSSL calls this only when verification failed. The one failure we overrule: the name check
// missed because the name is an address literal, which this wolfSSL build does not look for
// among the iPAddress names; we look ourselves. The error wolfSSL reports then is the name
// mismatch even when the chain failed too (its name check overwrites the chain's error), so the
// leaf is verified again against the context's CAs (and the chain CAs wolfSSL added from this
// handshake) before the name is accepted.
int verify_ip_name(int preverified, WOLFSSL_X509_STORE_CTX* store) {
    if (preverified) {
        return 1;
    }
    if (store == nullptr || store->error != DOMAIN_NAME_MISMATCH || store->error_depth != 0 ||
        store->totalCerts < 1 || store->certs == nullptr) {
        return 0;
    }
    auto* im = static_cast<Session::Impl*>(store->userCtx);
    if (im == nullptr || im->peer_ip.empty()) {
        return 0;
    }
    std::string_view leaf(reinterpret_cast<const char*>(store->certs[0].buffer),
                          store->certs[0].length);
    if (!cert_has_ip_san(leaf, im->peer_ip)) {
        return 0;
    }
    WOLFSSL_CERT_MANAGER* cm = im->ctx ? wolfSSL_CTX_GetCertManager(im->ctx) : nullptr;
    if (cm == nullptr) {
        return 0;
    }
    int ok = wolfSSL_CertManagerVerifyBuffer(cm, store->certs[0].buffer,
                                             static_cast<long>(store->certs[0].length),
                                             WOLFSSL_FILETYPE_ASN1);
    return ok == WOLFSSL_SUCCESS ? 1 : 0;
}

Result<std::unique_ptr<Session::Impl>> make_impl(const Context& ctx) {
    ensure_init();
    if (ctx.native() == nullptr) {
        return Err{Errc::Invalid, 0, "tls session without context"};
    }
    auto im = std::make_unique<Session::Impl>();
    im->ssl = wolfSSL_new(ctx.native());
    if (im->ssl == nullptr) {
        return Err{Errc::Tls, 0, "tls new session"};
    }
    im->server = ctx.is_server();
    im->ctx = ctx.native();
    wolfSSL_SSLSetIORecv(im->ssl, on_recv);
    wolfSSL_SSLSetIOSend(im->ssl, on_send);
    wolfSSL_SetIOReadCtx(im->ssl, im.get());
    wolfSSL_SetIOWriteCtx(im->ssl, im.get());
    if (!ctx.alpn_list().empty()) {
        // wolfSSL copies the list; it wants a mutable pointer all the same.
        std::string list = ctx.alpn_list();
        // A client whose protocols we do not serve still gets a connection, without ALPN.
        int r = wolfSSL_UseALPN(im->ssl, list.data(), static_cast<unsigned>(list.size()),
                                WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
        if (r != WOLFSSL_SUCCESS) {
            return tls_error(r, "tls alpn");
        }
    }
    return im;
}

}  // namespace

Result<Session> Session::client(const Context& ctx, std::string_view server_name,
                                const Ticket* resume) {
    if (ctx.is_server()) {
        return Err{Errc::Invalid, 0, "tls client session from a server context"};
    }
    if (server_name.size() > 255 || server_name.find('\0') != std::string_view::npos) {
        return Err{Errc::Invalid, 0, "tls server name"};
    }
    auto im = make_impl(ctx);
    if (!im) {
        return im.error();
    }
    WOLFSSL* ssl = (*im)->ssl;
    std::string name(server_name);
    std::string ip = ip_bytes(name);
    // RFC 6066 §3: SNI carries host names only, never address literals.
    if (!name.empty() && ip.empty()) {
        int r = wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, name.data(),
                               static_cast<unsigned short>(name.size()));
        if (r != WOLFSSL_SUCCESS) {
            return tls_error(r, "tls sni");
        }
    }
    if (ctx.verifies_peer()) {
        if (name.empty()) {
            return Err{Errc::Invalid, 0, "tls verification needs a server name"};
        }
        if (int r = wolfSSL_check_domain_name(ssl, name.c_str()); r != WOLFSSL_SUCCESS) {
            return tls_error(r, "tls server name check");
        }
        if (!ip.empty()) {
            (*im)->peer_ip = std::move(ip);
            wolfSSL_set_verify(ssl, WOLFSSL_VERIFY_PEER, verify_ip_name);
            wolfSSL_SetCertCbCtx(ssl, im->get());
        }
    }
#ifdef HAVE_SESSION_TICKET
    // TLS 1.2 only hands out tickets to clients that ask; 1.3 always does.
    if (int r = wolfSSL_UseSessionTicket(ssl); r != WOLFSSL_SUCCESS) {
        return tls_error(r, "tls session ticket");
    }
#endif
    if (resume != nullptr && resume->s_ != nullptr) {
        // An expired or unusable session just means a full handshake.
        (void)wolfSSL_set_session(ssl, resume->s_);
    }
    return Session{std::move(*im)};
}

Result<Session> Session::server(const Context& ctx, std::string_view sni) {
    if (!ctx.is_server()) {
        return Err{Errc::Invalid, 0, "tls server session from a client context"};
    }
    auto im = make_impl(ctx);
    if (!im) {
        return im.error();
    }
    (*im)->sni.assign(sni.substr(0, 255));
    return Session{std::move(*im)};
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Status Session::feed(std::string_view ciphertext) {
    Impl& im = *impl_;
    if (im.failed) {
        return im.error;
    }
    if (ciphertext.size() > kMaxBufferedInput - im.in.size()) {
        return Err{Errc::Busy, 0, "tls feed"};
    }
    im.in.append(ciphertext.data(), ciphertext.size());
    return {};
}

Result<HandshakeStep> Session::handshake() {
    Impl& im = *impl_;
    if (im.failed) {
        return im.error;
    }
    if (im.done) {
        return HandshakeStep::Done;
    }
    int r = wolfSSL_negotiate(im.ssl);
    if (r == WOLFSSL_SUCCESS) {
        im.on_handshake_done();
        return HandshakeStep::Done;
    }
    int e = wolfSSL_get_error(im.ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
        return HandshakeStep::NeedMore;
    }
    return im.fail(e, "tls handshake");
}

Result<size_t> Session::read(char* buf, size_t cap) {
    Impl& im = *impl_;
    if (im.failed) {
        return im.error;
    }
    if (im.peer_closed) {
        return Err{Errc::Closed, 0, "tls read"};
    }
    if (!im.done) {
        auto step = handshake();
        if (!step) {
            return step.error();
        }
        if (*step == HandshakeStep::NeedMore) {
            return size_t{0};
        }
    }
    if (cap == 0) {
        return size_t{0};
    }
    int want = static_cast<int>(std::min<size_t>(cap, INT_MAX));
    int r = wolfSSL_read(im.ssl, buf, want);
    if (r > 0) {
        return static_cast<size_t>(r);
    }
    int e = wolfSSL_get_error(im.ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
        return size_t{0};
    }
    if (e == WOLFSSL_ERROR_ZERO_RETURN) {
        im.peer_closed = true;
        return Err{Errc::Closed, 0, "tls read"};
    }
    return im.fail(e, "tls read");
}

Result<ReadProgress> Session::read_from(std::string_view ciphertext, char* buf, size_t cap) {
    Impl& im = *impl_;
    if (im.failed) {
        return im.error;
    }
    if (im.peer_closed) {
        return Err{Errc::Closed, 0, "tls read"};
    }
    Lend lend(im, ciphertext);
    ReadProgress p;
    if (!im.done) {
        auto step = handshake();
        if (!step) {
            return step.error();
        }
        if (*step == HandshakeStep::NeedMore) {
            p.used = lend.used();
            return p;
        }
    }
    // One wolfSSL_read returns at most one record: loop to fill `buf`, so that the caller gets
    // 64 KiB of plaintext in one piece rather than four 16 KiB ones.
    while (p.plain < cap) {
        int want = static_cast<int>(std::min<size_t>(cap - p.plain, INT_MAX));
        int r = wolfSSL_read(im.ssl, buf + p.plain, want);
        if (r > 0) {
            p.plain += static_cast<size_t>(r);
            continue;
        }
        int e = wolfSSL_get_error(im.ssl, r);
        if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
            break;
        }
        // Plaintext decrypted before a close_notify or a failure is genuine: hand it over now,
        // the next call reports what came after it.
        if (e == WOLFSSL_ERROR_ZERO_RETURN) {
            im.peer_closed = true;
            if (p.plain == 0) {
                return Err{Errc::Closed, 0, "tls read"};
            }
            break;
        }
        Error err = im.fail(e, "tls read");
        if (p.plain == 0) {
            return err;
        }
        break;
    }
    p.used = lend.used();
    return p;
}

Result<size_t> Session::write(std::string_view plaintext, OutputSink& sink) {
    Impl& im = *impl_;
    im.sink = &sink;
    auto r = write(plaintext);
    im.sink = nullptr;
    return r;
}

Result<size_t> Session::write(std::string_view plaintext) {
    Impl& im = *impl_;
    if (im.failed) {
        return im.error;
    }
    if (!im.done) {
        return Err{Errc::Invalid, 0, "tls write before handshake"};
    }
    if (im.shutdown_sent) {
        return Err{Errc::Closed, 0, "tls write after shutdown"};
    }
    size_t taken = 0;
    // One wolfSSL_write per record: it encrypts straight from `plaintext` into its output
    // buffer, and the watermark is checked between records, so pending output overshoots it by
    // at most one record.
    while (taken < plaintext.size() && im.out.size() < kOutputHighWater) {
        size_t n = std::min(kMaxRecordPlaintext, plaintext.size() - taken);
        int r = wolfSSL_write(im.ssl, plaintext.data() + taken, static_cast<int>(n));
        if (r <= 0) {
            int e = wolfSSL_get_error(im.ssl, r);
            if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
                break;
            }
            return im.fail(e, "tls write");
        }
        taken += static_cast<size_t>(r);
    }
    return taken;
}

std::string_view Session::pending_output() const { return impl_->out.view(); }

void Session::consume_output(size_t n) { impl_->out.consume(n); }

size_t Session::buffered_input() const { return impl_->in.size(); }

size_t Session::trim() {
    impl_->in.release_if_empty();
    impl_->out.release_if_empty();
    return impl_->in.capacity() + impl_->out.capacity();
}

void Session::shutdown() {
    Impl& im = *impl_;
    if (im.shutdown_sent || im.failed) {
        return;
    }
    im.shutdown_sent = true;
    // Queues close_notify through on_send. We do not wait for the peer's: read() reports it.
    (void)wolfSSL_shutdown(im.ssl);
}

bool Session::is_server() const { return impl_->server; }
bool Session::handshake_done() const { return impl_->done; }
std::string_view Session::alpn() const { return impl_->alpn; }
std::string_view Session::sni() const { return impl_->sni; }
std::string_view Session::version() const { return impl_->version; }
std::string_view Session::cipher() const { return impl_->cipher; }

bool Session::resumed() const { return impl_->done && wolfSSL_session_reused(impl_->ssl) == 1; }

Result<Ticket> Session::save_ticket() const {
    if (impl_->server || !impl_->done) {
        return Err{Errc::Invalid, 0, "tls save ticket"};
    }
    WOLFSSL_SESSION* s = wolfSSL_get1_session(impl_->ssl);
    if (s == nullptr) {
        return Err{Errc::NotFound, 0, "tls save ticket"};
    }
    return Ticket{s};
}

Ticket& Ticket::operator=(Ticket&& o) noexcept {
    if (this != &o) {
        if (s_ != nullptr) {
            wolfSSL_SESSION_free(s_);
        }
        s_ = o.s_;
        o.s_ = nullptr;
    }
    return *this;
}

Ticket::~Ticket() {
    if (s_ != nullptr) {
        wolfSSL_SESSION_free(s_);
    }
}

}  // namespace cfd::tls
