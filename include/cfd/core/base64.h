// Standard-alphabet base64. Credentials files carry the tunnel secret padded; the tunnel
// protocol's cf-cloudflared-response-headers carries names and values unpadded.
#pragma once

#include <string>
#include <string_view>

#include "cfd/core/result.h"

namespace cfd {

std::string base64_encode(std::string_view in, bool pad = true);
// Accepts input with or without padding; refuses any other byte outside the alphabet.
Result<std::string> base64_decode(std::string_view in);

}  // namespace cfd
