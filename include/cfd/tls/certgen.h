// Local certificate authority and server certificates made with wolfSSL's certificate
// generation: ECDSA P-256 keys, SHA-256 signatures. The edge makes a CA and a certificate for
// h2.cftunnel.com (and its own names) on first start; tests make throwaway CAs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::tls {

struct KeyPair {
    std::string cert_pem;  // "-----BEGIN CERTIFICATE-----..."
    std::string key_pem;   // "-----BEGIN EC PRIVATE KEY-----..."
};

// Most subject alternative names one certificate carries.
inline constexpr size_t kMaxAltNames = 64;

// A self-signed CA certificate (basicConstraints CA, keyCertSign) valid for `valid_days`.
[[nodiscard]] Result<KeyPair> generate_ca(std::string_view common_name, int valid_days);

// A server certificate signed by `ca`: subjectAltName holds each entry of `names` as an
// iPAddress when it parses as IPv4 or IPv6, a dNSName otherwise ("*.example.com" allowed);
// extendedKeyUsage serverAuth.
[[nodiscard]] Result<KeyPair> generate_leaf(const KeyPair& ca, std::string_view common_name,
                                            const std::vector<std::string>& names,
                                            int valid_days);

// Writes the certificate (mode 0644) and the key (mode 0600). Errc::Exists, writing nothing,
// when either file exists and `overwrite` is false; with `overwrite` each file is replaced
// atomically (written aside, then renamed).
[[nodiscard]] Status write_key_pair(const KeyPair& kp, const std::string& cert_path,
                                    const std::string& key_path, bool overwrite = false);

}  // namespace cfd::tls
