#include "cfd/edge/upstream.h"

#include "cfd/edge/public_session.h"

namespace cfd::edge {

std::string no_connector_page(std::string_view host) {
    return "Error 1033: Cloudflare Tunnel error. The tunnel routed for " + std::string(host) +
           " has no connector running.";
}

bool Upstream::idempotent_method(std::string_view m) {
    return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" ||
           m == "DELETE";
}

void Upstream::start(bool idempotent) {
    tunnel_ = nullptr;
    sid_ = -1;
    attempts_ = 0;
    tried_.clear();
    idempotent_ = idempotent;
    body_pending_.clear();
    end_pending_ = false;
    body_written_ = 0;
    end_written_ = false;
    replay_.clear();
    replayable_ = true;
    unconsumed_ = 0;
}

bool Upstream::open(PublicRouter& router, const RouteResult& first, const StreamRequest& req,
                    StreamSink* sink) {
    RouteResult r = first;
    StreamRequest sr = req;
    while (attempts_ < kMaxAttempts) {
        attempts_++;
        sr.connector = &r.connector;
        auto sid = r.conn->open_stream(sr, sink);
        // open_stream() flushes: a stream whose head could not leave (its connection just got
        // GOAWAY) may be closed before the call returns, its close event lost on us since we
        // did not know the id yet. It lost its user with that event: count it as refused.
        if (sid && r.conn->stream_user(*sid) == nullptr) {
            sid = Err{Errc::Busy, 0, "stream closed at once"};
        }
        if (sid) {
            epoch_++;
            tunnel_ = r.conn;
            sid_ = *sid;
            connector_ = r.connector;
            return true;
        }
        tried_.push_back(r.connector);
        r = router.route(req.authority, tried_);
        if (r.kind != RouteResult::Kind::Ok || r.conn == nullptr) {
            return false;
        }
    }
    return false;
}

bool Upstream::retry(PublicRouter& router, uint32_t code, const StreamRequest& req,
                     StreamSink* sink) {
    // REFUSED_STREAM: the connector never processed it (RFC 9113 §8.7), so even a POST whose
    // body went out may go again; anything else could have reached the origin.
    bool unprocessed = code == http2::kRefusedStream;
    if (attempts_ >= kMaxAttempts ||
        (body_written_ > 0 && !(replayable_ && (idempotent_ || unprocessed)))) {
        return false;
    }
    tried_.push_back(connector_);
    RouteResult r = router.route(req.authority, tried_);
    if (r.kind != RouteResult::Kind::Ok || r.conn == nullptr) {
        return false;
    }
    // The new stream gets the body again from its first byte.
    body_pending_.insert(0, replay_);
    std::string().swap(replay_);
    body_written_ = 0;
    end_pending_ = end_pending_ || end_written_;
    end_written_ = false;
    if (!open(router, r, req, sink)) {
        return false;
    }
    router.on_retry();
    return true;
}

bool Upstream::push_body() {
    if (!tunnel_) {
        drop_body();
        return true;
    }
    if (body_pending_.empty() && !end_pending_) {
        return true;
    }
    StreamTarget* t = tunnel_;
    uint64_t epoch = epoch_;
    size_t n = t->write_body(sid_, body_pending_, end_pending_);
    if (epoch != epoch_) {
        // The stream ended inside write_body() (its connection flushed and delivered the close)
        // and a retry may have set the body up again for another: the bytes just taken went
        // with the old stream and are already accounted for by that retry.
        return body_pending_.empty() && !end_pending_;
    }
    if (n > 0) {
        body_written_ += n;
        // Kept while a retry could use it (a small body): an idempotent request may go again
        // after any failure before its response, any request after a refused stream.
        if (replayable_ && replay_.size() + n <= kMaxReplay) {
            replay_.append(body_pending_, 0, n);
        } else if (replayable_) {
            replayable_ = false;
            std::string().swap(replay_);
        }
    }
    body_pending_.erase(0, n);
    if (body_pending_.empty()) {
        end_written_ = end_written_ || end_pending_;
        end_pending_ = false;
        return true;
    }
    return false;
}

void Upstream::drop_body() {
    body_pending_.clear();
    end_pending_ = false;
}

void Upstream::took(size_t n, bool now) {
    if (!tunnel_ || n == 0) {
        return;
    }
    if (now && unconsumed_ == 0) {
        tunnel_->consume(sid_, n);
    } else {
        unconsumed_ += n;
    }
}

void Upstream::settle() {
    if (tunnel_ && unconsumed_ > 0) {
        uint64_t n = unconsumed_;
        unconsumed_ = 0;
        tunnel_->consume(sid_, static_cast<size_t>(n));
    }
}

void Upstream::detach(bool complete) {
    if (!tunnel_) {
        return;
    }
    StreamTarget* t = tunnel_;
    int32_t sid = sid_;
    epoch_++;
    tunnel_ = nullptr;
    sid_ = -1;
    t->set_stream_user(sid, nullptr);
    if (unconsumed_ > 0) {
        t->consume(sid, static_cast<size_t>(unconsumed_));
        unconsumed_ = 0;
    }
    if (!complete) {
        t->reset_stream(sid, http2::kCancel);
    }
}

void Upstream::lost() {
    epoch_++;
    tunnel_ = nullptr;
    sid_ = -1;
    unconsumed_ = 0;
}

}  // namespace cfd::edge
