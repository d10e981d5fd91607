// Private to src/tls: just enough DER reading to find iPAddress entries in a certificate's
// subjectAltName. Our wolfSSL build matches host names but not address literals, so a client
// verifying "127.0.0.1" checks the certificate's iPAddress names itself (RFC 6125 §6.2.1).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cfd::tls {

// True when `cert_der` (a whole X.509 certificate) lists `ip` (4 or 16 raw bytes) as an
// iPAddress subjectAltName. Malformed input is simply "no".
bool cert_has_ip_san(std::string_view cert_der, std::string_view ip);

// The dNSName subjectAltNames of `cert_der`, as written (wildcards included), in order. Empty
// when there are none or the certificate is malformed.
std::vector<std::string> cert_dns_names(std::string_view cert_der);

}  // namespace cfd::tls
