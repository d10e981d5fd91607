// Outgoing header fields as nghttp2_nv, ready for one submit call.
#pragma once

#include <nghttp2/nghttp2.h>

#include <string>
#include <string_view>
#include <vector>

#include "cfd/http2/types.h"

namespace cfd::http2 {

// Names are lower-cased (HTTP/2 requires it; names from HTTP/1.1 arrive in any case) and
// connection-specific fields are dropped (RFC 9113 §8.2.2: a peer resets a stream carrying
// them). The views passed in must outlive the NvList; nghttp2 copies everything at submit.
class NvList {
public:
    explicit NvList(HeaderSpan headers, std::string_view status = {});
    explicit NvList(const Headers& headers);
    // nv_ points into lowered_, which may be the string's inline buffer: never move or copy.
    NvList(const NvList&) = delete;
    NvList& operator=(const NvList&) = delete;

    nghttp2_nv* data() { return nv_.data(); }
    size_t size() const { return nv_.size(); }

private:
    void add(std::string_view name, std::string_view value);

    std::vector<nghttp2_nv> nv_;
    std::string lowered_;  // reserved up front, so views into it stay valid while it fills
};

// Whether a field may not travel in HTTP/2 (`name` lower case).
bool is_connection_specific(std::string_view name, std::string_view value);

}  // namespace cfd::http2
