// Where a public request's tunnel stream lives, as the public side sees it: a TunnelConn on this
// core, or a relay to the core that owns the chosen connection (cfd/edge/relay.h). Both keep
// the same contract, so a PublicSession never knows which one it talks to:
//   - open_stream() sends the request head; every opened stream ends with one close event;
//   - write_body() takes what fits (fewer bytes: a room event follows);
//   - response bytes are lent to the stream's user, and the window toward the connector
//     reopens only when the user calls consume() for them.
// Events go to the StreamSink in the stream's user pointer (cfd/edge/public_session.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/core/uuid.h"
#include "cfd/http1/message.h"
#include "cfd/http2/types.h"

namespace cfd::edge {

// A proxied request, as the edge sends it down the tunnel.
struct StreamRequest {
    std::string_view method;
    std::string_view authority;               // the public hostname
    std::string_view path;                    // path and query
    const http1::Headers* headers = nullptr;  // the client's headers; hop-by-hop dropped later
    bool has_body = false;
    // A WebSocket (the client asked to upgrade): the stream carries the tunnel's websocket
    // mark, and after its 200 raw bytes flow both ways as its body.
    bool websocket = false;
    // The client's address and the scheme it used: sent on as Cf-Connecting-IP, appended to
    // X-Forwarded-For, and X-Forwarded-Proto (what cloudflared's origins expect). Empty: none.
    std::string_view client_ip{};
    std::string_view client_proto{};
    // A raw TCP stream (the edge's TCP listeners): the client's "ip:port", sent as
    // Cf-Cloudflared-Proxy-Src; :authority is then "hostname:port".
    std::string_view proxy_src{};
    // A relay opens the stream on a connection of this connector (the one the opening core
    // chose); a TunnelConn ignores it.
    const Uuid* connector = nullptr;
};

class StreamTarget {
public:
    virtual ~StreamTarget() = default;
    // Opens a proxied stream whose events go to `user` (a StreamSink*); Busy when it cannot.
    [[nodiscard]] virtual Result<int32_t> open_stream(const StreamRequest& req,
                                                      void* user = nullptr) = 0;
    // Takes a prefix of the request body; `end` counts only when every byte was taken.
    virtual size_t write_body(int32_t sid, std::string_view bytes, bool end) = 0;
    // The client took `n` response-body bytes of `sid`.
    virtual void consume(int32_t sid, size_t n) = 0;
    // Cancels a stream (the client went away); no further event for it.
    virtual void reset_stream(int32_t sid, uint32_t code = http2::kCancel) = 0;
    virtual void* stream_user(int32_t sid) const = 0;
    virtual void set_stream_user(int32_t sid, void* user) = 0;
};

}  // namespace cfd::edge
