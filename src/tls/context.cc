#include "cfd/tls/context.h"

#include <mutex>

#include "tls/wolf.h"

namespace cfd::tls {

namespace {

// AEAD suites only, fastest first (AES-128-GCM, with AES-NI). wolfSSL skips names its build
// lacks, so the same list serves our build and Debian's library.
constexpr const char* kCipherList =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct CtxOwner {
    WOLFSSL_CTX* ctx;
    ~CtxOwner() {
        if (ctx != nullptr) {
            wolfSSL_CTX_free(ctx);
        }
    }
    WOLFSSL_CTX* release() {
        WOLFSSL_CTX* c = ctx;
        ctx = nullptr;
        return c;
    }
};

Result<std::string> join_alpn(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        // ',' is wolfSSL's separator, so it cannot be part of a name.
        if (n.empty() || n.size() > kMaxAlpnName || n.find(',') != std::string::npos) {
            return Err{Errc::Invalid, 0, "tls alpn name"};
        }
        if (!out.empty()) {
            out += ',';
        }
        out += n;
    }
    return out;
}

Status apply_policy(WOLFSSL_CTX* ctx) {
    if (int r = wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2); r != WOLFSSL_SUCCESS) {
        return tls_error(r, "tls min version");
    }
    if (int r = wolfSSL_CTX_set_cipher_list(ctx, kCipherList); r != WOLFSSL_SUCCESS) {
        return tls_error(r, "tls cipher list");
    }
    return {};
}

int len_of(const std::string& s) { return static_cast<int>(s.size()); }

const unsigned char* bytes_of(const std::string& s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

void ensure_init() {
    static std::once_flag once;
    std::call_once(once, [] { CFD_CHECK(wolfSSL_Init() == WOLFSSL_SUCCESS); });
}

Result<Context> Context::server(const ServerOptions& opts) {
    ensure_init();
    auto alpn = join_alpn(opts.alpn);
    if (!alpn) {
        return alpn.error();
    }
    CtxOwner owner{wolfSSL_CTX_new(wolfSSLv23_server_method())};
    if (owner.ctx == nullptr) {
        return Err{Errc::Tls, 0, "tls server context"};
    }
    if (auto s = apply_policy(owner.ctx); !s) {
        return s.error();
    }
    int r = 0;
    if (!opts.cert_pem.empty()) {
        r = wolfSSL_CTX_use_certificate_chain_buffer(owner.ctx, bytes_of(opts.cert_pem),
                                                     len_of(opts.cert_pem));
    } else if (!opts.cert_file.empty()) {
        r = wolfSSL_CTX_use_certificate_chain_file(owner.ctx, opts.cert_file.c_str());
    } else {
        return Err{Errc::Invalid, 0, "tls server certificate missing"};
    }
    if (r != WOLFSSL_SUCCESS) {
        return tls_error(r, "tls load certificate");
    }
    if (!opts.key_pem.empty()) {
        r = wolfSSL_CTX_use_PrivateKey_buffer(owner.ctx, bytes_of(opts.key_pem),
                                              len_of(opts.key_pem), WOLFSSL_FILETYPE_PEM);
    } else if (!opts.key_file.empty()) {
        r = wolfSSL_CTX_use_PrivateKey_file(owner.ctx, opts.key_file.c_str(),
                                            WOLFSSL_FILETYPE_PEM);
    } else {
        return Err{Errc::Invalid, 0, "tls server key missing"};
    }
    if (r != WOLFSSL_SUCCESS) {
        return tls_error(r, "tls load key");
    }
#if !defined(NO_CHECK_PRIVATE_KEY)
    // A key that does not match the certificate would fail every handshake; say so at load time.
    if (r = wolfSSL_CTX_check_private_key(owner.ctx); r != WOLFSSL_SUCCESS) {
        return tls_error(r, "tls key does not match certificate");
    }
#endif
#ifndef NO_SESSION_CACHE
    // Resumption is by stateless ticket only: wolfSSL's server-side session cache is one table
    // for the whole process behind locks, which reactors must not share.
    wolfSSL_CTX_set_session_cache_mode(owner.ctx, WOLFSSL_SESS_CACHE_OFF);
#endif
#ifdef HAVE_SESSION_TICKET
    if (!opts.session_tickets) {
        wolfSSL_CTX_NoTicketTLSv12(owner.ctx);
#ifdef WOLFSSL_TLS13
        wolfSSL_CTX_no_ticket_TLSv13(owner.ctx);
#endif
    }
#endif
    return Context{owner.release(), true, false, std::move(*alpn)};
}

Result<Context> Context::client(const ClientOptions& opts) {
    ensure_init();
    auto alpn = join_alpn(opts.alpn);
    if (!alpn) {
        return alpn.error();
    }
    CtxOwner owner{wolfSSL_CTX_new(wolfSSLv23_client_method())};
    if (owner.ctx == nullptr) {
        return Err{Errc::Tls, 0, "tls client context"};
    }
    if (auto s = apply_policy(owner.ctx); !s) {
        return s.error();
    }
    if (opts.insecure_skip_verify) {
        wolfSSL_CTX_set_verify(owner.ctx, WOLFSSL_VERIFY_NONE, nullptr);
        return Context{owner.release(), false, false, std::move(*alpn)};
    }
    int r = 0;
    if (!opts.ca_pem.empty()) {
        r = wolfSSL_CTX_load_verify_buffer(owner.ctx, bytes_of(opts.ca_pem), len_of(opts.ca_pem),
                                           WOLFSSL_FILETYPE_PEM);
    } else if (!opts.ca_file.empty()) {
        r = wolfSSL_CTX_load_verify_locations(owner.ctx, opts.ca_file.c_str(), nullptr);
    } else {
        // The system bundle holds some certificates wolfSSL cannot parse; skip those rather
        // than refuse the whole pool.
        r = wolfSSL_CTX_load_verify_locations_ex(owner.ctx, kSystemCaFile, nullptr,
                                                 WOLFSSL_LOAD_FLAG_IGNORE_ERR);
    }
    if (r != WOLFSSL_SUCCESS) {
        return tls_error(r, "tls load CA");
    }
    wolfSSL_CTX_set_verify(owner.ctx, WOLFSSL_VERIFY_PEER, nullptr);
    return Context{owner.release(), false, true, std::move(*alpn)};
}

Context::Context(Context&& o) noexcept
    : ctx_(o.ctx_), server_(o.server_), verify_(o.verify_), alpn_(std::move(o.alpn_)) {
    o.ctx_ = nullptr;
}

Context& Context::operator=(Context&& o) noexcept {
    if (this != &o) {
        reset();
        ctx_ = o.ctx_;
        server_ = o.server_;
        verify_ = o.verify_;
        alpn_ = std::move(o.alpn_);
        o.ctx_ = nullptr;
    }
    return *this;
}

Context::~Context() { reset(); }

void Context::reset() {
    if (ctx_ != nullptr) {
        wolfSSL_CTX_free(ctx_);
        ctx_ = nullptr;
    }
}

const char* library_version() {
    ensure_init();
    return wolfSSL_lib_version();
}

bool library_has_aesni() {
#ifdef WOLFSSL_AESNI
    return true;
#else
    return false;
#endif
}

std::string error_string(int code) {
    ensure_init();
    // wolfSSL wants at least WOLFSSL_MAX_ERROR_SZ (80) bytes, or it truncates. Its codes are
    // negative and it takes them as they are, through an unsigned long.
    char buf[128];
    wolfSSL_ERR_error_string_n(static_cast<unsigned long>(static_cast<long>(code)), buf,
                               sizeof(buf));
    return buf;
}

std::string describe(const Error& e) {
    std::string s = e.message();
    if (e.code == Errc::Tls && e.sys != 0) {
        s += ": ";
        s += error_string(e.sys);
    }
    return s;
}

}  // namespace cfd::tls
