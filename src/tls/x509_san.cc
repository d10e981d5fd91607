#include "tls/x509_san.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cfd::tls {

namespace {

constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kOid = 0x06;
constexpr uint8_t kBoolean = 0x01;
constexpr uint8_t kOctetString = 0x04;
constexpr uint8_t kExtensionsTag = 0xa3;  // tbsCertificate [3] EXPLICIT Extensions
constexpr uint8_t kIpAddressTag = 0x87;   // GeneralName [7] IMPLICIT OCTET STRING
constexpr uint8_t kDnsNameTag = 0x82;     // GeneralName [2] IMPLICIT IA5String
constexpr std::string_view kSanOid = "\x55\x1d\x11";  // 2.5.29.17

// One DER element at a time, never reading past the end.
class Der {
public:
    explicit Der(std::string_view s) : s_(s) {}
    bool done() const { return pos_ == s_.size(); }

    // Reads the next element's tag and contents.
    bool next(uint8_t* tag, std::string_view* body) {
        if (s_.size() - pos_ < 2) {
            return false;
        }
        uint8_t t = static_cast<uint8_t>(s_[pos_]);
        if ((t & 0x1f) == 0x1f) {
            return false;  // high tag numbers never occur in the parts we read
        }
        size_t p = pos_ + 1;
        size_t len = static_cast<uint8_t>(s_[p++]);
        if (len & 0x80) {
            size_t n = len & 0x7f;
            if (n == 0 || n > 4 || s_.size() - p < n) {
                return false;
            }
            len = 0;
            for (size_t i = 0; i < n; i++) {
                len = len << 8 | static_cast<uint8_t>(s_[p++]);
            }
        }
        if (s_.size() - p < len) {
            return false;
        }
        *tag = t;
        *body = s_.substr(p, len);
        pos_ = p + len;
        return true;
    }

    bool expect(uint8_t want, std::string_view* body) {
        uint8_t t = 0;
        return next(&t, body) && t == want;
    }

private:
    std::string_view s_;
    size_t pos_ = 0;
};

// Calls `fn(tag, body)` for each GeneralName of a subjectAltName value; false when malformed.
template <typename Fn>
bool for_each_general_name(std::string_view san_value, Fn&& fn) {
    Der outer(san_value);
    std::string_view names;
    if (!outer.expect(kSequence, &names)) {
        return false;
    }
    Der d(names);
    while (!d.done()) {
        uint8_t tag = 0;
        std::string_view body;
        if (!d.next(&tag, &body)) {
            return false;
        }
        fn(tag, body);
    }
    return true;
}

// The subjectAltName extension's value (the OCTET STRING's contents), or empty.
std::string_view san_extension(std::string_view cert_der) {
    std::string_view cert;
    std::string_view tbs;
    if (!Der(cert_der).expect(kSequence, &cert) || !Der(cert).expect(kSequence, &tbs)) {
        return {};
    }
    // Skip the tbsCertificate fields up to the extensions.
    Der fields(tbs);
    std::string_view exts;
    for (;;) {
        uint8_t tag = 0;
        std::string_view body;
        if (!fields.next(&tag, &body)) {
            return {};
        }
        if (tag == kExtensionsTag) {
            exts = body;
            break;
        }
    }
    std::string_view list;
    if (!Der(exts).expect(kSequence, &list)) {
        return {};
    }
    Der d(list);
    while (!d.done()) {
        std::string_view ext;
        if (!d.expect(kSequence, &ext)) {
            return {};
        }
        Der e(ext);
        std::string_view oid;
        if (!e.expect(kOid, &oid)) {
            return {};
        }
        if (oid != kSanOid) {
            continue;
        }
        uint8_t tag = 0;
        std::string_view value;
        if (!e.next(&tag, &value)) {
            return {};
        }
        if (tag == kBoolean && !e.next(&tag, &value)) {  // optional `critical`
            return {};
        }
        return tag == kOctetString ? value : std::string_view{};
    }
    return {};
}

}  // namespace

bool cert_has_ip_san(std::string_view cert_der, std::string_view ip) {
    if (ip.size() != 4 && ip.size() != 16) {
        return false;
    }
    bool found = false;
    for_each_general_name(san_extension(cert_der), [&](uint8_t tag, std::string_view body) {
        found = found || (tag == kIpAddressTag && body == ip);
    });
    return found;
}

std::vector<std::string> cert_dns_names(std::string_view cert_der) {
    std::vector<std::string> names;
    for_each_general_name(san_extension(cert_der), [&](uint8_t tag, std::string_view body) {
        if (tag == kDnsNameTag && !body.empty()) {
            names.emplace_back(body);
        }
    });
    return names;
}

}  // namespace cfd::tls
