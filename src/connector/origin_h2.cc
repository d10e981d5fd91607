#include "cfd/connector/origin_h2.h"

#include <vector>

#include "cfd/core/log.h"

namespace cfd::connector {

Result<std::unique_ptr<OriginH2>> OriginH2::create(Owner* owner, size_t max_streams) {
    std::unique_ptr<OriginH2> h(new OriginH2(owner, max_streams == 0 ? 1 : max_streams));
    http2::Settings s;
    // We never serve streams the origin opens (push is off); this only bounds nonsense.
    s.max_concurrent_streams = 100;
    s.stream_window = kStreamWindow;
    // Every stream may hold its whole window toward slow tunnel readers without starving the
    // others: the connection window covers all of them.
    s.connection_window = static_cast<int32_t>(kStreamWindow * static_cast<int32_t>(h->max_));
    auto session = http2::Session::create(http2::Role::Client, *h, s);
    if (!session) {
        return session.error();
    }
    h->session_ = std::move(*session);
    return h;
}

OriginH2::~OriginH2() = default;

OriginH2::Entry* OriginH2::find(int32_t h2id) {
    auto it = streams_.find(h2id);
    return it == streams_.end() ? nullptr : &it->second;
}

void OriginH2::notify() {
    if (io_depth_ == 0 && owner_ != nullptr) {
        owner_->h2_output_ready();
    }
}

Status OriginH2::feed(std::string_view bytes) {
    io_depth_++;
    Status st = session_->recv(bytes);
    io_depth_--;
    if (!st) {
        failed_ = true;
    }
    return st;
}

Result<size_t> OriginH2::produce(std::string& out, size_t high) {
    io_depth_++;
    auto r = session_->send(out, high);
    io_depth_--;
    if (!r) {
        failed_ = true;
    }
    return r;
}

Result<int32_t> OriginH2::open(OriginH2Sink& sink, int32_t tunnel_id, http2::HeaderSpan headers,
                               bool has_body) {
    if (!accepting()) {
        return Err{Errc::Busy, 0, "origin http2 connection not accepting streams"};
    }
    auto id = session_->submit_request(headers, has_body);
    if (!id) {
        return id.error();
    }
    streams_[*id] = Entry{&sink, tunnel_id};
    notify();
    return *id;
}

void OriginH2::body_more(int32_t h2id) {
    if (find(h2id) != nullptr) {
        (void)session_->resume_data(h2id);
        notify();
    }
}

void OriginH2::consume(int32_t h2id, size_t n) {
    if (n > 0 && find(h2id) != nullptr) {
        session_->consume(h2id, n);
        notify();
    }
}

void OriginH2::cancel(int32_t h2id) {
    Entry* e = find(h2id);
    if (e == nullptr) {
        return;
    }
    e->sink = nullptr;
    // on_stream_close() forgets the entry; until then events for it go nowhere.
    (void)session_->rst_stream(h2id, http2::kCancel);
    notify();
}

void OriginH2::lost() {
    failed_ = true;
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, e] : streams) {
        if (e.sink != nullptr) {
            e.sink->h2_closed(e.tunnel_id, http2::kInternalError, false);
        }
    }
}

void OriginH2::detach_all() {
    for (auto& [id, e] : streams_) {
        e.sink = nullptr;
    }
}

void OriginH2::shut_down() {
    goaway_ = true;  // no new stream on it either way
    (void)session_->goaway(http2::kNoError);
    notify();
}

bool OriginH2::accepting() const {
    return !goaway_ && !failed_ && session_->want_read() && streams_.size() < max_;
}

bool OriginH2::over() const {
    return failed_ || (!session_->want_read() && !session_->want_write()) ||
           (goaway_ && streams_.empty() && !session_->want_write());
}

void OriginH2::on_response(int32_t stream_id, int status, http2::Headers&& headers,
                           bool end_stream) {
    Entry* e = find(stream_id);
    if (e != nullptr && e->sink != nullptr) {
        e->sink->h2_response(e->tunnel_id, status, std::move(headers), end_stream);
    }
}

void OriginH2::on_data(int32_t stream_id, std::string_view bytes) {
    Entry* e = find(stream_id);
    if (e != nullptr && e->sink != nullptr) {
        e->sink->h2_data(e->tunnel_id, bytes);
        return;
    }
    // Nobody takes them: the window reopens now.
    session_->consume(stream_id, bytes.size());
}

void OriginH2::on_stream_end(int32_t stream_id) {
    Entry* e = find(stream_id);
    if (e != nullptr && e->sink != nullptr) {
        e->sink->h2_end(e->tunnel_id);
    }
}

void OriginH2::on_stream_close(int32_t stream_id, uint32_t error_code) {
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) {
        return;
    }
    Entry e = it->second;
    streams_.erase(it);
    if (e.sink != nullptr) {
        e.sink->h2_closed(e.tunnel_id, error_code, error_code == http2::kRefusedStream);
    }
}

http2::BodyChunk OriginH2::on_body_ready(int32_t stream_id, size_t max_bytes) {
    Entry* e = find(stream_id);
    if (e == nullptr || e->sink == nullptr) {
        return {0, true};  // cancelled: the reset follows
    }
    return e->sink->h2_body_ready(e->tunnel_id, max_bytes);
}

void OriginH2::on_body_copy(int32_t stream_id, std::span<char> dest) {
    Entry* e = find(stream_id);
    CFD_CHECK(e != nullptr && e->sink != nullptr);  // it promised these bytes a moment ago
    e->sink->h2_body_copy(e->tunnel_id, dest);
}

void OriginH2::on_goaway(int32_t last_stream_id, uint32_t error_code) {
    goaway_ = true;
    log::debug("origin sent GOAWAY", {{"lastStream", last_stream_id},
                                      {"code", http2::error_code_name(error_code)}});
}

}  // namespace cfd::connector
