#include "cfd/edge/raw_session.h"

namespace cfd::edge {

RawSession::RawSession(PublicRouter& router, PublicIo& io, std::string authority,
                       std::string client)
    : router_(router), io_(io), authority_(std::move(authority)), client_(std::move(client)) {}

RawSession::~RawSession() {
    if (tunnel_ != nullptr) {
        tunnel_->set_stream_user(sid_, nullptr);
        if (unconsumed_ > 0) {
            tunnel_->consume(sid_, static_cast<size_t>(unconsumed_));
        }
        tunnel_->reset_stream(sid_, http2::kCancel);
    }
}

void RawSession::start() {
    RouteResult r = router_.route(authority_);
    if (r.kind != RouteResult::Kind::Ok || r.conn == nullptr) {
        close(true);  // a byte stream has no way to say why: the connection just closes
        return;
    }
    StreamRequest req;
    req.method = "GET";
    req.authority = authority_;
    req.path = "/";
    req.has_body = true;
    req.proxy_src = client_;
    req.client_ip = std::string_view(client_).substr(0, client_.rfind(':'));
    req.connector = &r.connector;
    auto sid = r.conn->open_stream(req, static_cast<StreamSink*>(this));
    if (!sid) {
        close(true);
        return;
    }
    tunnel_ = r.conn;
    sid_ = *sid;
}

void RawSession::feed(std::string_view bytes) {
    if (closed_) {
        return;
    }
    pending_.append(bytes);
    push();
}

void RawSession::feed_eof() {
    eof_ = true;
    push();
}

void RawSession::push() {
    if (tunnel_ == nullptr || !connected_ || end_sent_) {
        return;
    }
    size_t n = tunnel_->write_body(sid_, pending_, eof_);
    pending_.erase(0, n);
    if (pending_.empty() && eof_) {
        end_sent_ = true;
    }
    if (wants_input()) {
        io_.input_room();
    }
}

void RawSession::on_writable() {
    if (tunnel_ != nullptr && unconsumed_ > 0) {
        uint64_t n = unconsumed_;
        unconsumed_ = 0;
        tunnel_->consume(sid_, static_cast<size_t>(n));
    }
}

void RawSession::close(bool abort) {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (abort) {
        io_.abort();
    } else {
        io_.close_after_flush();
    }
}

void RawSession::on_tunnel_response(StreamTarget& t, int32_t sid, int status,
                                    std::vector<http2::HeaderPair>&&, bool end) {
    if (&t != tunnel_ || sid != sid_) {
        return;
    }
    if (status != 200 || end) {
        close(true);  // no rule, or the origin is unreachable: nothing to relay
        return;
    }
    connected_ = true;
    push();
}

void RawSession::on_tunnel_data(StreamTarget& t, int32_t sid, std::string_view bytes) {
    if (&t != tunnel_ || sid != sid_ || !connected_ || closed_ || !io_.send(bytes)) {
        t.consume(sid, bytes.size());
        if (&t == tunnel_ && sid == sid_) {
            close(true);
        }
        return;
    }
    if (io_.writable() && unconsumed_ == 0) {
        t.consume(sid, bytes.size());
    } else {
        unconsumed_ += bytes.size();
    }
}

void RawSession::on_tunnel_end(StreamTarget& t, int32_t sid) {
    if (&t == tunnel_ && sid == sid_) {
        close(false);  // the origin's side ended: what it sent goes out first
    }
}

void RawSession::on_tunnel_close(StreamTarget& t, int32_t sid, uint32_t code) {
    if (&t != tunnel_ || sid != sid_) {
        return;
    }
    tunnel_ = nullptr;
    sid_ = -1;
    unconsumed_ = 0;
    close(code != http2::kNoError);
}

void RawSession::on_tunnel_room(StreamTarget& t, int32_t sid) {
    if (&t == tunnel_ && sid == sid_) {
        push();
    }
}

}  // namespace cfd::edge
