// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded
// by a proxy. The edge and the connector strip them before passing a head on.
#pragma once

#include <string_view>

#include "cfd/http1/message.h"

namespace cfd::http1 {

// Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade (any case).
bool is_hop_by_hop(std::string_view name);

// Removes the headers above and every header named in a Connection header's options, keeping
// the order of the others. A proxy that forwards an Upgrade adds its own Upgrade/Connection.
void strip_hop_by_hop(Headers& headers);

}  // namespace cfd::http1
