// nghttp2's callbacks, turned into Handler events. Every callback finds the stream by id in
// Impl::streams rather than trusting a pointer across a handler call: the handler may submit,
// reset or consume from inside an event.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "cfd/core/log.h"
#include "http2/nv_list.h"
#include "http2/session_impl.h"

namespace cfd::http2 {
namespace {

Session::Impl& impl_of(void* user_data) { return *static_cast<Session::Impl*>(user_data); }

int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& s = impl_of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    Stream* st = s.find(frame->hd.stream_id);
    if (st == nullptr) {
        if (s.role != Role::Server || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
            return 0;
        }
        // nghttp2 has already refused streams beyond SETTINGS_MAX_CONCURRENT_STREAMS, so the
        // map stays bounded by that setting.
        auto fresh = std::make_unique<Stream>();
        fresh->id = frame->hd.stream_id;
        s.stats.streams_opened++;
        st = fresh.get();
        s.streams.emplace(st->id, std::move(fresh));
    }
    st->headers.clear();
    st->header_bytes = 0;
    return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
    auto& s = impl_of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    Stream* st = s.find(frame->hd.stream_id);
    if (st == nullptr) {
        return 0;
    }
    // RFC 9113 §6.5.2 counts 32 bytes of overhead per field; the count cap stops a block of
    // many empty fields, which the byte cap alone would let through by the thousand.
    size_t field = namelen + valuelen + 32;
    if (st->header_bytes + field > s.settings.max_header_list_bytes ||
        st->headers.size() >= s.settings.max_header_fields) {
        log::debug("http2: header block over the limit, resetting the stream",
                   {{"stream", st->id},
                    {"bytes", st->header_bytes + field},
                    {"fields", st->headers.size() + 1}});
        // nghttp2 resets the stream (INTERNAL_ERROR) and skips the rest of the block.
        s.stats.headers_refused++;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->header_bytes += field;
    st->headers.push_back(Header{std::string(reinterpret_cast<const char*>(name), namelen),
                                 std::string(reinterpret_cast<const char*>(value), valuelen)});
    return 0;
}

int parse_status(const Headers& headers) {
    std::string_view v = header_value(headers, ":status");
    int status = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), status);
    if (ec != std::errc{} || p != v.data() + v.size()) {
        return 0;  // nghttp2's messaging checks make this unreachable; treat as a bad response
    }
    return status;
}

void deliver_headers(Session::Impl& s, const nghttp2_frame* frame) {
    int32_t id = frame->hd.stream_id;
    Stream* st = s.find(id);
    if (st == nullptr) {
        return;
    }
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    Headers block = std::move(st->headers);
    st->headers = Headers{};
    st->header_bytes = 0;
    if (s.role == Role::Server) {
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            st->owner_knows = true;
            s.handler.on_request(id, std::move(block), end);
        } else if (st->owner_knows) {
            s.handler.on_trailers(id, std::move(block));
        }
    } else if (!st->final_response) {
        int status = parse_status(block);
        if (status >= 100 && status < 200) {
            return;  // informational: the final response is still to come
        }
        st->final_response = true;
        s.handler.on_response(id, status, std::move(block), end);
    } else {
        s.handler.on_trailers(id, std::move(block));
    }
    if (end) {
        st = s.find(id);
        if (st != nullptr && st->owner_knows) {
            s.handler.on_stream_end(id);
        }
    }
}

uint64_t read_be64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& s = impl_of(user_data);
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        deliver_headers(s, frame);
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
            if (++s.empty_data_run > s.settings.max_empty_data_frames && s.abuse == nullptr) {
                s.abuse = "http2: flood of empty DATA frames";
                nghttp2_session_terminate_session(s.ng, kEnhanceYourCalm);
            }
        } else {
            s.empty_data_run = 0;
        }
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
            Stream* st = s.find(frame->hd.stream_id);
            if (st != nullptr && st->owner_knows) {
                s.handler.on_stream_end(frame->hd.stream_id);
            }
        }
        break;
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
            s.handler.on_ping_ack(read_be64(frame->ping.opaque_data));
        }
        break;
    case NGHTTP2_RST_STREAM:
        s.stats.resets_received++;
        break;
    case NGHTTP2_GOAWAY:
        s.stats.goaway_received = true;
        s.stats.goaway_received_code = frame->goaway.error_code;
        s.handler.on_goaway(frame->goaway.last_stream_id, frame->goaway.error_code);
        break;
    case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
            s.handler.on_settings();
        }
        break;
    default:
        break;
    }
    return 0;
}

int on_data_chunk(nghttp2_session* ng, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                  void* user_data) {
    auto& s = impl_of(user_data);
    Stream* st = s.find(stream_id);
    if (st == nullptr || !st->owner_knows) {
        // Nobody will ever consume these bytes: give the windows back now.
        nghttp2_session_consume(ng, stream_id, len);
        return 0;
    }
    // A peer sending past the window gets RST_STREAM(FLOW_CONTROL_ERROR) from nghttp2, but the
    // bytes of the same recv() would still be delivered. Drop them instead, so the owner never
    // holds more than a window per stream. (Before our SETTINGS are acknowledged the window is
    // HTTP/2's default 65535, hence the max.)
    uint64_t window = static_cast<uint64_t>(std::max(s.settings.stream_window, 65535));
    if (st->overrun || st->unconsumed + len > window) {
        st->overrun = true;
        s.stats.window_overruns++;
        nghttp2_session_consume(ng, stream_id, len);
        return 0;
    }
    st->unconsumed += len;
    s.handler.on_data(stream_id, std::string_view(reinterpret_cast<const char*>(data), len));
    return 0;
}

int on_stream_close(nghttp2_session* ng, int32_t stream_id, uint32_t error_code, void* user_data) {
    auto& s = impl_of(user_data);
    auto it = s.streams.find(stream_id);
    if (it == s.streams.end()) {
        return 0;
    }
    std::unique_ptr<Stream> st = std::move(it->second);
    s.streams.erase(it);
    // Bytes delivered but never consumed still hold the connection window: release them, or
    // a few reset streams would starve every other stream.
    if (st->unconsumed > 0) {
        nghttp2_session_consume_connection(ng, st->unconsumed);
    }
    if (st->owner_knows) {
        s.handler.on_stream_close(stream_id, error_code);
    }
    return 0;
}

// A request HEADERS that never left (GOAWAY received, or reset before it was sent) opened no
// stream on the wire: the owner learns it was refused and may retry elsewhere.
int on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int lib_error_code,
                      void* user_data) {
    auto& s = impl_of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    int32_t id = frame->hd.stream_id;
    auto it = s.streams.find(id);
    if (it == s.streams.end()) {
        return 0;
    }
    std::unique_ptr<Stream> st = std::move(it->second);
    s.streams.erase(it);
    uint32_t code = kInternalError;
    if (st->reset_by_owner) {
        code = st->reset_code;
    } else if (lib_error_code == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ||
               lib_error_code == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
        code = kRefusedStream;
    }
    log::debug("http2: request not sent",
               {{"stream", id}, {"reason", nghttp2_strerror(lib_error_code)}});
    s.handler.on_stream_close(id, code);
    return 0;
}

int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
              nghttp2_data_source*, void* user_data) {
    auto& s = impl_of(user_data);
    if (s.sink == nullptr) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;  // only mem_send inside Session::send() gets here
    }
    std::string& out = *s.sink;
    if (out.size() >= s.sink_high) {
        return NGHTTP2_ERR_WOULDBLOCK;  // resumed by the next send(), same frame, same bytes
    }
    size_t padlen = frame->data.padlen;  // 0: we set no padding callback, but honour it anyway
    out.append(reinterpret_cast<const char*>(framehd), 9);
    if (padlen > 0) {
        out.push_back(static_cast<char>(padlen - 1));
    }
    size_t at = out.size();
    out.resize(at + length);
    s.handler.on_body_copy(frame->hd.stream_id, std::span<char>(out.data() + at, length));
    if (padlen > 1) {
        out.append(padlen - 1, '\0');
    }
    return 0;
}

int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& s = impl_of(user_data);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        s.stats.goaway_sent = true;
        s.stats.goaway_sent_code = frame->goaway.error_code;
        if (frame->goaway.error_code != kNoError) {
            log::debug("http2: GOAWAY sent", {{"code", error_code_name(frame->goaway.error_code)},
                                              {"last_stream", frame->goaway.last_stream_id}});
        }
    }
    return 0;
}

int on_invalid_frame(nghttp2_session*, const nghttp2_frame* frame, int lib_error_code, void*) {
    log::debug("http2: invalid frame from peer", {{"type", static_cast<int>(frame->hd.type)},
                                                  {"stream", frame->hd.stream_id},
                                                  {"error", nghttp2_strerror(lib_error_code)}});
    return 0;
}

}  // namespace

ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t*, size_t length,
                  uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
    auto& s = impl_of(user_data);
    Stream* st = s.find(stream_id);
    if (st == nullptr || !st->body_active) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream: nothing to send from
    }
    BodyChunk chunk = s.handler.on_body_ready(stream_id, length);
    if (chunk.bytes > length) {
        CFD_BUG("http2: body source offered more than asked");
        chunk.bytes = length;
        chunk.end = false;  // the rest is still in the owner's buffer
    }
    if (chunk.bytes == 0 && !chunk.end) {
        return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (chunk.end) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        st->body_active = false;
        if (st->has_trailers_to_send) {
            // Trailers must follow the last DATA frame, so they are queued only now.
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            NvList nv(st->trailers_to_send);
            int rv = nghttp2_submit_trailer(s.ng, stream_id, nv.data(), nv.size());
            st->has_trailers_to_send = false;
            st->trailers_to_send.clear();
            if (rv != 0) {
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
        }
    }
    return static_cast<ssize_t>(chunk.bytes);
}

void install_callbacks(nghttp2_session_callbacks* cbs) {
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
}

}  // namespace cfd::http2
