#include "cfd/tls/certgen.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "tls/wolf.h"

// clang-format off
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
// clang-format on

namespace cfd::tls {

namespace {

constexpr size_t kDerCap = 4096;  // a P-256 certificate is < 1 KiB plus its alt names
constexpr size_t kPemCap = 2 * kDerCap + CTC_MAX_ALT_SIZE * 2;
constexpr const char* kOrganization = "cfdtunnel";

Error wc_error(int code, const char* op) { return Error{Errc::Tls, code, op}; }

struct Rng {
    WC_RNG rng;
    bool ok = false;
    Rng() { ok = wc_InitRng(&rng) == 0; }
    ~Rng() {
        if (ok) {
            wc_FreeRng(&rng);
        }
    }
};

struct EccKey {
    ecc_key key;
    bool ok = false;
    EccKey() { ok = wc_ecc_init(&key) == 0; }
    ~EccKey() {
        if (ok) {
            wc_ecc_free(&key);
        }
    }
};

struct CertFree {
    void operator()(Cert* c) const { wc_CertFree(c); }
};
using CertPtr = std::unique_ptr<Cert, CertFree>;

bool copy_name(std::string_view s, char (&out)[CTC_NAME_SIZE]) {
    if (s.empty() || s.size() >= CTC_NAME_SIZE || s.find('\0') != std::string_view::npos) {
        return false;
    }
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
    return true;
}

bool dns_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

bool valid_dns_name(std::string_view n) {
    if (n.size() > 2 && n.substr(0, 2) == "*.") {
        n.remove_prefix(2);
    }
    if (n.empty() || n.size() > 253) {
        return false;
    }
    for (char c : n) {
        if (!dns_char(c)) {
            return false;
        }
    }
    return true;
}

// DER length octets.
void put_len(std::string* out, size_t len) {
    if (len < 0x80) {
        *out += static_cast<char>(len);
    } else if (len <= 0xff) {
        *out += '\x81';
        *out += static_cast<char>(len);
    } else {
        *out += '\x82';
        *out += static_cast<char>(len >> 8);
        *out += static_cast<char>(len & 0xff);
    }
}

// GeneralNames (RFC 5280 §4.2.1.6) as wolfSSL wants it in Cert::altNames: the SEQUENCE itself.
Result<std::string> encode_alt_names(const std::vector<std::string>& names) {
    if (names.size() > kMaxAltNames) {
        return Err{Errc::Invalid, 0, "certgen: too many names"};
    }
    std::string body;
    for (const auto& n : names) {
        in_addr a4;
        in6_addr a6;
        if (inet_pton(AF_INET, n.c_str(), &a4) == 1) {
            body += '\x87';  // [7] iPAddress
            put_len(&body, 4);
            body.append(reinterpret_cast<const char*>(&a4), 4);
        } else if (inet_pton(AF_INET6, n.c_str(), &a6) == 1) {
            body += '\x87';
            put_len(&body, 16);
            body.append(reinterpret_cast<const char*>(&a6), 16);
        } else if (valid_dns_name(n)) {
            body += '\x82';  // [2] dNSName
            put_len(&body, n.size());
            body += n;
        } else {
            return Err{Errc::Invalid, 0, "certgen: bad DNS name"};
        }
    }
    std::string seq = "\x30";
    put_len(&seq, body.size());
    seq += body;
    if (seq.size() > CTC_MAX_ALT_SIZE) {
        return Err{Errc::Invalid, 0, "certgen: names too long"};
    }
    return seq;
}

Result<std::string> to_pem(const unsigned char* der, size_t der_len, int type) {
    std::string pem(kPemCap, '\0');
    int n = wc_DerToPem(der, static_cast<word32>(der_len), reinterpret_cast<byte*>(pem.data()),
                        static_cast<word32>(pem.size()), type);
    if (n <= 0) {
        return wc_error(n, "certgen: der to pem");
    }
    pem.resize(static_cast<size_t>(n));
    return pem;
}

Result<std::string> key_pem(ecc_key* key) {
    unsigned char der[512];
    int n = wc_EccKeyToDer(key, der, sizeof(der));
    if (n <= 0) {
        return wc_error(n, "certgen: key to der");
    }
    auto pem = to_pem(der, static_cast<size_t>(n), ECC_PRIVATEKEY_TYPE);
    std::memset(der, 0, sizeof(der));  // private key material
    return pem;
}

Status random_serial(Cert* cert, WC_RNG* rng) {
    // 16 random bytes, positive and without a leading zero octet (RFC 5280 §4.1.2.2).
    if (int r = wc_RNG_GenerateBlock(rng, cert->serial, 16); r != 0) {
        return wc_error(r, "certgen: serial");
    }
    cert->serial[0] = static_cast<byte>((cert->serial[0] & 0x7f) | 0x40);
    cert->serialSz = 16;
    return {};
}

Result<CertPtr> new_cert(std::string_view common_name, int valid_days, WC_RNG* rng) {
    if (valid_days <= 0 || valid_days > 3650 * 10) {
        return Err{Errc::Invalid, 0, "certgen: validity days"};
    }
    CertPtr cert(wc_CertNew(nullptr));
    if (!cert) {
        return Err{Errc::Tls, 0, "certgen: new cert"};
    }
    if (!copy_name(common_name, cert->subject.commonName)) {
        return Err{Errc::Invalid, 0, "certgen: common name"};
    }
    std::strcpy(cert->subject.org, kOrganization);
    cert->sigType = CTC_SHA256wECDSA;
    cert->daysValid = valid_days;
    if (auto s = random_serial(cert.get(), rng); !s) {
        return s.error();
    }
    return cert;
}

Status make_p256(EccKey* k, WC_RNG* rng) {
    if (!k->ok) {
        return Err{Errc::Tls, 0, "certgen: ecc init"};
    }
    if (int r = wc_ecc_make_key_ex(rng, 32, &k->key, ECC_SECP256R1); r != 0) {
        return wc_error(r, "certgen: make key");
    }
    return {};
}

// Makes the body for `subject_key`, signs it with `signer`, returns the DER.
Result<std::string> make_and_sign(Cert* cert, EccKey* subject_key, EccKey* signer, WC_RNG* rng) {
    std::string der(kDerCap + CTC_MAX_ALT_SIZE, '\0');
    auto* buf = reinterpret_cast<byte*>(der.data());
    auto cap = static_cast<word32>(der.size());
    int r = wc_MakeCert_ex(cert, buf, cap, ECC_TYPE, &subject_key->key, rng);
    if (r <= 0) {
        return wc_error(r, "certgen: make cert");
    }
    r = wc_SignCert_ex(cert->bodySz, cert->sigType, buf, cap, ECC_TYPE, &signer->key, rng);
    if (r <= 0) {
        return wc_error(r, "certgen: sign cert");
    }
    der.resize(static_cast<size_t>(r));
    return der;
}

Result<KeyPair> finish(const std::string& der, ecc_key* key) {
    auto cert_pem =
        to_pem(reinterpret_cast<const unsigned char*>(der.data()), der.size(), CERT_TYPE);
    if (!cert_pem) {
        return cert_pem.error();
    }
    auto kp = key_pem(key);
    if (!kp) {
        return kp.error();
    }
    return KeyPair{std::move(*cert_pem), std::move(*kp)};
}

}  // namespace

Result<KeyPair> generate_ca(std::string_view common_name, int valid_days) {
    ensure_init();
    Rng rng;
    if (!rng.ok) {
        return Err{Errc::Tls, 0, "certgen: rng"};
    }
    auto cert = new_cert(common_name, valid_days, &rng.rng);
    if (!cert) {
        return cert.error();
    }
    EccKey key;
    if (auto s = make_p256(&key, &rng.rng); !s) {
        return s.error();
    }
    Cert* c = cert->get();
    c->isCA = 1;
    c->selfSigned = 1;
#ifdef WOLFSSL_CERT_EXT
    if (int r = wc_SetKeyUsage(c, "keyCertSign,cRLSign,digitalSignature"); r != 0) {
        return wc_error(r, "certgen: key usage");
    }
    if (int r = wc_SetSubjectKeyIdFromPublicKey_ex(c, ECC_TYPE, &key.key); r != 0) {
        return wc_error(r, "certgen: subject key id");
    }
#endif
    auto der = make_and_sign(c, &key, &key, &rng.rng);
    if (!der) {
        return der.error();
    }
    return finish(*der, &key.key);
}

Result<KeyPair> generate_leaf(const KeyPair& ca, std::string_view common_name,
                              const std::vector<std::string>& names, int valid_days) {
    ensure_init();
#ifndef WOLFSSL_ALT_NAMES
    if (!names.empty()) {
        return Err{Errc::Unsupported, 0, "certgen: wolfSSL built without alt names"};
    }
#endif
    Rng rng;
    if (!rng.ok) {
        return Err{Errc::Tls, 0, "certgen: rng"};
    }
    // The CA's certificate (for the issuer name and key id) and key, from PEM.
    std::string ca_der(kDerCap + CTC_MAX_ALT_SIZE, '\0');
    int ca_der_len = wc_CertPemToDer(reinterpret_cast<const unsigned char*>(ca.cert_pem.data()),
                                     static_cast<int>(ca.cert_pem.size()),
                                     reinterpret_cast<unsigned char*>(ca_der.data()),
                                     static_cast<int>(ca_der.size()), CERT_TYPE);
    if (ca_der_len <= 0) {
        return wc_error(ca_der_len, "certgen: CA certificate");
    }
    unsigned char key_der[512];
    int key_len = wc_KeyPemToDer(reinterpret_cast<const unsigned char*>(ca.key_pem.data()),
                                 static_cast<int>(ca.key_pem.size()), key_der, sizeof(key_der),
                                 nullptr);
    if (key_len <= 0) {
        return wc_error(key_len, "certgen: CA key");
    }
    EccKey ca_key;
    word32 idx = 0;
    int r = ca_key.ok ? wc_EccPrivateKeyDecode(key_der, &idx, &ca_key.key,
                                               static_cast<word32>(key_len))
                      : -1;
    std::memset(key_der, 0, sizeof(key_der));
    if (r != 0) {
        return wc_error(r, "certgen: CA key decode");
    }

    auto cert = new_cert(common_name, valid_days, &rng.rng);
    if (!cert) {
        return cert.error();
    }
    EccKey key;
    if (auto s = make_p256(&key, &rng.rng); !s) {
        return s.error();
    }
    Cert* c = cert->get();
    c->isCA = 0;
    c->selfSigned = 0;
    auto* ca_der_bytes = reinterpret_cast<const byte*>(ca_der.data());
    if (r = wc_SetIssuerBuffer(c, ca_der_bytes, ca_der_len); r != 0) {
        return wc_error(r, "certgen: issuer");
    }
#ifdef WOLFSSL_ALT_NAMES
    if (!names.empty()) {
        auto alt = encode_alt_names(names);
        if (!alt) {
            return alt.error();
        }
        std::memcpy(c->altNames, alt->data(), alt->size());
        c->altNamesSz = static_cast<int>(alt->size());
    }
#endif
#ifdef WOLFSSL_CERT_EXT
    if (r = wc_SetKeyUsage(c, "digitalSignature"); r != 0) {
        return wc_error(r, "certgen: key usage");
    }
    if (r = wc_SetExtKeyUsage(c, "serverAuth"); r != 0) {
        return wc_error(r, "certgen: extended key usage");
    }
    if (r = wc_SetSubjectKeyIdFromPublicKey_ex(c, ECC_TYPE, &key.key); r != 0) {
        return wc_error(r, "certgen: subject key id");
    }
    if (r = wc_SetAuthKeyIdFromCert(c, ca_der_bytes, ca_der_len); r != 0) {
        return wc_error(r, "certgen: authority key id");
    }
#endif
    auto der = make_and_sign(c, &key, &ca_key, &rng.rng);
    if (!der) {
        return der.error();
    }
    return finish(*der, &key.key);
}

namespace {

Status write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return Err{Errc::Syscall, errno, "write"};
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

// Creates `path` with exactly `mode` (fchmod: the umask must not widen or narrow it) and the
// given contents. `flags` adds O_EXCL or O_TRUNC. Never through a symlink: key files land where
// they are asked to.
Status write_new_file(const std::string& path, std::string_view data, mode_t mode, int flags) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, mode);
    if (fd < 0) {
        return Err{errno == EEXIST ? Errc::Exists : Errc::Syscall, errno, "open"};
    }
    Status s;
    if (::fchmod(fd, mode) != 0) {
        s = Err{Errc::Syscall, errno, "fchmod"};
    } else {
        s = write_all(fd, data);
    }
    if (s && ::fsync(fd) != 0) {
        s = Err{Errc::Syscall, errno, "fsync"};
    }
    ::close(fd);
    if (!s) {
        ::unlink(path.c_str());
    }
    return s;
}

Status replace_file(const std::string& path, std::string_view data, mode_t mode) {
    std::string tmp = path + ".tmp";
    if (auto s = write_new_file(tmp, data, mode, O_TRUNC); !s) {
        return s;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return Err{Errc::Syscall, e, "rename"};
    }
    return {};
}

bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

Status write_key_pair(const KeyPair& kp, const std::string& cert_path, const std::string& key_path,
                      bool overwrite) {
    if (cert_path.empty() || key_path.empty() || cert_path == key_path) {
        return Err{Errc::Invalid, 0, "write key pair: paths"};
    }
    if (overwrite) {
        if (auto s = replace_file(key_path, kp.key_pem, 0600); !s) {
            return s;
        }
        return replace_file(cert_path, kp.cert_pem, 0644);
    }
    if (exists(cert_path) || exists(key_path)) {
        return Err{Errc::Exists, EEXIST, "write key pair"};
    }
    if (auto s = write_new_file(key_path, kp.key_pem, 0600, O_EXCL); !s) {
        return s;
    }
    if (auto s = write_new_file(cert_path, kp.cert_pem, 0644, O_EXCL); !s) {
        ::unlink(key_path.c_str());  // all or nothing
        return s;
    }
    return {};
}

}  // namespace cfd::tls
