#include "http2/nv_list.h"

namespace cfd::http2 {
namespace {

bool has_upper(std::string_view s) {
    for (char c : s) {
        if (c >= 'A' && c <= 'Z') {
            return true;
        }
    }
    return false;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); i++) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
        if (x != b[i]) {
            return false;
        }
    }
    return true;
}

nghttp2_nv nv_of(std::string_view name, std::string_view value) {
    // No NO_COPY flags: nghttp2 copies name and value at submit time.
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

bool is_connection_specific(std::string_view name, std::string_view value) {
    if (name == "te") {
        return !iequals(value, "trailers");  // the one value HTTP/2 allows
    }
    return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
           name == "transfer-encoding" || name == "upgrade";
}

NvList::NvList(HeaderSpan headers, std::string_view status) {
    size_t need = 0;
    for (const HeaderView& h : headers) {
        need += has_upper(h.name) ? h.name.size() : 0;
    }
    lowered_.reserve(need);
    nv_.reserve(headers.size() + 1);
    if (!status.empty()) {
        nv_.push_back(nv_of(":status", status));
    }
    for (const HeaderView& h : headers) {
        add(h.name, h.value);
    }
}

NvList::NvList(const Headers& headers) {
    size_t need = 0;
    for (const Header& h : headers) {
        need += has_upper(h.name) ? h.name.size() : 0;
    }
    lowered_.reserve(need);
    nv_.reserve(headers.size());
    for (const Header& h : headers) {
        add(h.name, h.value);
    }
}

void NvList::add(std::string_view name, std::string_view value) {
    if (has_upper(name)) {
        size_t at = lowered_.size();
        for (char c : name) {
            lowered_.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
        }
        name = std::string_view(lowered_).substr(at, name.size());
    }
    if (is_connection_specific(name, value)) {
        return;
    }
    nv_.push_back(nv_of(name, value));
}

}  // namespace cfd::http2
