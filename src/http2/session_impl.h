// Private state of http2::Session. The only place (with the .cc files next to it) that sees
// nghttp2.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cfd/http2/session.h"

namespace cfd::http2 {

// Per-stream state kept by the session, owned by Session::Impl::streams and dropped when
// nghttp2 closes the stream (or never opens it).
struct Stream {
    int32_t id = 0;
    void* user = nullptr;      // the owner's handle
    Headers headers;           // header block being received
    size_t header_bytes = 0;   // its RFC 9113 size so far
    uint64_t unconsumed = 0;   // body bytes handed to on_data() and not yet consume()d
    Headers trailers_to_send;  // submitted while our body was still going
    uint32_t reset_code = 0;   // what the owner reset the stream with
    bool reset_by_owner = false;
    bool has_trailers_to_send = false;
    bool overrun = false;         // the peer sent past the window: its bytes are dropped
    bool body_active = false;     // our DATA source is attached and has not reported the end
    bool owner_knows = false;     // client: always; server: once on_request() was delivered
    bool final_response = false;  // client: a non-1xx response arrived; later blocks are trailers
};

struct Session::Impl {
    Impl(Role r, Handler& h, const Settings& s) : role(r), handler(h), settings(s) {}
    ~Impl();
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    Stream* find(int32_t id) const {
        auto it = streams.find(id);
        return it == streams.end() ? nullptr : it->second.get();
    }

    Role role;
    Handler& handler;
    Settings settings;
    nghttp2_session* ng = nullptr;
    std::unordered_map<int32_t, std::unique_ptr<Stream>> streams;
    // The caller's buffer during send(): DATA payloads are copied straight into it.
    std::string* sink = nullptr;
    size_t sink_high = 0;
    bool failed = false;  // recv() or send() hit a fatal error: the session is being torn down
    // Set by a callback that ended the session on a peer's abuse nghttp2 does not police;
    // recv() reports it.
    const char* abuse = nullptr;
    uint32_t empty_data_run = 0;  // empty DATA frames without END_STREAM in a row
    SessionStats stats;
};

// nghttp2 callbacks (session_callbacks.cc); `user_data` is the Session::Impl.
void install_callbacks(nghttp2_session_callbacks* cbs);
// The DATA source of every body we send: asks Handler::on_body_ready().
ssize_t read_body(nghttp2_session* ng, int32_t stream_id, uint8_t* buf, size_t length,
                  uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

}  // namespace cfd::http2
