// Tunnel credentials in cloudflared's formats:
//   file:  {"AccountTag":"...","TunnelSecret":"<base64>","TunnelID":"<uuid>"}   (mode 0400)
//   token: base64 of {"a":"<account tag>","s":"<base64 secret>","t":"<uuid>"}
#pragma once

#include <string>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/core/uuid.h"

namespace cfd::connector {

struct Credentials {
    std::string account_tag;
    std::string secret;  // raw bytes (32 for tunnels we create); never logged
    Uuid tunnel_id;
};

std::string credentials_json(const Credentials& c);
Result<Credentials> parse_credentials_json(std::string_view text);
std::string make_token(const Credentials& c);
Result<Credentials> parse_token(std::string_view token);

// Reads a credentials file. A file readable by group or others is accepted with a warning
// (cloudflared accepts it too), so that a Kubernetes Secret mounted 0644 still works.
Result<Credentials> read_credentials_file(const std::string& path);
// Writes `<dir>/<tunnel-id>.json` (or `path` exactly), mode 0400, refusing to overwrite.
Result<std::string> write_credentials_file(const Credentials& c, const std::string& path);

}  // namespace cfd::connector
