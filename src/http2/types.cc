#include "cfd/http2/types.h"

namespace cfd::http2 {

const Header* find_header(const Headers& headers, std::string_view name) {
    for (const Header& h : headers) {
        if (h.name == name) {
            return &h;
        }
    }
    return nullptr;
}

std::string_view header_value(const Headers& headers, std::string_view name) {
    const Header* h = find_header(headers, name);
    return h == nullptr ? std::string_view{} : std::string_view{h->value};
}

std::vector<HeaderView> to_views(const Headers& headers) {
    std::vector<HeaderView> v;
    v.reserve(headers.size());
    for (const Header& h : headers) {
        v.push_back(HeaderView{h.name, h.value});
    }
    return v;
}

const char* error_code_name(uint32_t code) {
    switch (code) {
    case kNoError:
        return "NO_ERROR";
    case kProtocolError:
        return "PROTOCOL_ERROR";
    case kInternalError:
        return "INTERNAL_ERROR";
    case kFlowControlError:
        return "FLOW_CONTROL_ERROR";
    case kSettingsTimeout:
        return "SETTINGS_TIMEOUT";
    case kStreamClosed:
        return "STREAM_CLOSED";
    case kFrameSizeError:
        return "FRAME_SIZE_ERROR";
    case kRefusedStream:
        return "REFUSED_STREAM";
    case kCancel:
        return "CANCEL";
    case kCompressionError:
        return "COMPRESSION_ERROR";
    case kConnectError:
        return "CONNECT_ERROR";
    case kEnhanceYourCalm:
        return "ENHANCE_YOUR_CALM";
    case kInadequateSecurity:
        return "INADEQUATE_SECURITY";
    case kHttp11Required:
        return "HTTP_1_1_REQUIRED";
    default:
        return "UNKNOWN";
    }
}

}  // namespace cfd::http2
