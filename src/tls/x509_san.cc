#include "tls/x509_san.h"

#include <cstddef>
#include <cstdint>

namespace cfd::tls {

namespace {

constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kOid = 0x06;
constexpr uint8_t kBoolean = 0x01;
constexpr uint8_t kOctetString = 0x04;
constexpr uint8_t kExtensionsTag = 0xa3;  // tbsCertificate [3] EXPLICIT Extensions
constexpr uint8_t kIpAddressTag = 0x87;   // GeneralName [7] IMPLICIT OCTET STRING
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

bool general_names_have_ip(std::string_view san_value, std::string_view ip) {
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
        if (tag == kIpAddressTag && body == ip) {
            return true;
        }
    }
    return false;
}

}  // namespace

bool cert_has_ip_san(std::string_view cert_der, std::string_view ip) {
    if (ip.size() != 4 && ip.size() != 16) {
        return false;
    }
    std::string_view cert;
    std::string_view tbs;
    if (!Der(cert_der).expect(kSequence, &cert) || !Der(cert).expect(kSequence, &tbs)) {
        return false;
    }
    // Skip the tbsCertificate fields up to the extensions.
    Der fields(tbs);
    std::string_view exts;
    for (;;) {
        uint8_t tag = 0;
        std::string_view body;
        if (!fields.next(&tag, &body)) {
            return false;
        }
        if (tag == kExtensionsTag) {
            exts = body;
            break;
        }
    }
    std::string_view list;
    if (!Der(exts).expect(kSequence, &list)) {
        return false;
    }
    Der d(list);
    while (!d.done()) {
        std::string_view ext;
        if (!d.expect(kSequence, &ext)) {
            return false;
        }
        Der e(ext);
        std::string_view oid;
        if (!e.expect(kOid, &oid)) {
            return false;
        }
        if (oid != kSanOid) {
            continue;
        }
        uint8_t tag = 0;
        std::string_view value;
        if (!e.next(&tag, &value)) {
            return false;
        }
        if (tag == kBoolean && !e.next(&tag, &value)) {  // optional `critical`
            return false;
        }
        return tag == kOctetString && general_names_have_ip(value, ip);
    }
    return false;
}

}  // namespace cfd::tls
