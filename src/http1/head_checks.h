// Semantic checks on a parsed head, beyond what llhttp enforces. Private to src/http1.
#pragma once

#include <string_view>

#include "cfd/http1/message.h"

namespace cfd::http1 {

// Validates version, Host, Transfer-Encoding and the request-target of a request head, and
// fills its path, authority, expect_continue and upgrade_protocol. status 0 means accepted.
ParseError check_request_head(RequestHead& head);

// Validates version, status and Transfer-Encoding of a response head; fills upgrade_protocol.
ParseError check_response_head(ResponseHead& head);

// host[:port] as allowed in Host and authority-form: reg-name or IP-literal characters only.
bool is_valid_authority(std::string_view s);

}  // namespace cfd::http1
