#include "cfd/control/http_server.h"

#include <unistd.h>

#include <algorithm>

#include "cfd/http1/writer.h"

namespace cfd::control {

namespace {

http1::Limits parser_limits(const HttpServerLimits& l) {
    http1::Limits p;
    p.max_header_bytes = l.max_header_bytes;
    p.max_headers = l.max_headers;
    p.max_target_bytes = l.max_target_bytes;
    p.max_chunk_ext_bytes = 256;
    return p;
}

}  // namespace

// --- HttpExchange ----------------------------------------------------------------------------

HttpExchange::HttpExchange(HttpRoutes& routes, const HttpServerLimits& limits)
    : routes_(routes), limits_(limits), parser_(parser_limits(limits)) {}

void HttpExchange::answer(std::string& out, const HttpReply& r, bool keep) {
    http1::Headers hs;
    if (!r.body.empty() && !r.content_type.empty()) {
        hs.push_back({"Content-Type", r.content_type});
    }
    if (r.status == 405) {
        hs.push_back({"Allow", "GET"});
    }
    // Probes and scrapers must always see the current state, never a cached one.
    hs.push_back({"Cache-Control", "no-store"});
    if (!http1::write_response_head(out, static_cast<uint16_t>(r.status), hs,
                                    http1::Framing::content_length(r.body.size()), !keep)) {
        // Our own routes produced a bad head (a status outside 100..999): a bug, answered 500.
        CFD_ASSERT(false);
        http1::write_error_response(out, 500, "", false);
        closing_ = true;
        return;
    }
    out.append(r.body);
    if (!keep) {
        closing_ = true;
    }
}

void HttpExchange::refuse(std::string& out, int status, std::string_view text) {
    http1::write_error_response(out, static_cast<uint16_t>(status), text, false);
    closing_ = true;
}

void HttpExchange::feed(std::string_view in, std::string& out) {
    if (closing_) {
        return;
    }
    in_.append(in);
    std::string_view v = in_;
    size_t used = 0;
    while (!closing_) {
        http1::Step st = parser_.feed(v.substr(used));
        used += parser_.consumed();
        if (st == http1::Step::NeedMore) {
            break;
        }
        switch (st) {
        case http1::Step::HeadDone:
            body_bytes_ = 0;
            if (parser_.head().body == http1::BodyKind::Length &&
                parser_.head().content_length > limits_.max_body_bytes) {
                refuse(out, 413, "");
            }
            break;
        case http1::Step::Body:
            // A GET's body means nothing here: counted against the bound and dropped.
            body_bytes_ += parser_.body().size();
            if (body_bytes_ > limits_.max_body_bytes) {
                refuse(out, 413, "");
            }
            break;
        case http1::Step::MessageDone: {
            requests_++;
            const http1::RequestHead& h = parser_.head();
            bool keep = parser_.keep_alive();
            if (h.method != "GET") {
                answer(out, HttpReply{405, "text/plain; charset=utf-8", "405 method not allowed\n"},
                       keep);
                break;
            }
            std::string_view path = h.path;
            path = path.substr(0, path.find('?'));
            answer(out, routes_.get(path), keep);
            break;
        }
        case http1::Step::Error:
            refuse(out, parser_.error().status, parser_.error().reason);
            break;
        default:
            // Upgrade (nothing here speaks another protocol) or an event feed() never reports.
            refuse(out, 400, "");
            break;
        }
    }
    in_.erase(0, used);
}

// --- HttpServer ------------------------------------------------------------------------------

class HttpServer::Client final : public net::ConnHandler {
public:
    Client(HttpServer& s, reactor::TimePoint now)
        : s_(s), exchange_(s.routes_, s.limits_), last_active_(now) {}

    void attach(net::Connection* c) { conn_ = c; }
    net::Connection* conn() const { return conn_; }
    reactor::TimePoint last_active() const { return last_active_; }

    void on_recv(net::Connection& c, net::LentBuf data) override {
        last_active_ = c.reactor().now();
        std::string out;
        exchange_.feed({reinterpret_cast<const char*>(data.data()), data.size()}, out);
        data.release();
        if (!out.empty() &&
            !c.send({reinterpret_cast<const uint8_t*>(out.data()), out.size()})) {
            // The client does not read its answers: it gets no more.
            c.close();
            return;
        }
        if (exchange_.closing()) {
            c.close_after_flush();
        }
    }

    void on_close(net::Connection&, Error) override {
        conn_ = nullptr;
        s_.client_closed(this);
    }

private:
    HttpServer& s_;
    HttpExchange exchange_;
    net::Connection* conn_ = nullptr;
    reactor::TimePoint last_active_;
};

HttpServer::HttpServer(reactor::Reactor& r, HttpRoutes& routes, const HttpServerLimits& l)
    : r_(r), routes_(routes), limits_(l) {}

HttpServer::~HttpServer() = default;

Result<std::unique_ptr<HttpServer>> HttpServer::open(reactor::Reactor& r,
                                                     const net::SockAddr& addr,
                                                     HttpRoutes& routes,
                                                     const HttpServerLimits& l) {
    std::unique_ptr<HttpServer> s(new HttpServer(r, routes, l));
    auto lst = net::Listener::open(r, addr, s.get(), net::ListenOptions{64, l.reuse_port, false});
    if (!lst) {
        return lst.error();
    }
    s->listener_ = *lst;
    s->local_ = (*lst)->local();
    s->arm_sweep();
    return s;
}

void HttpServer::arm_sweep() {
    // Idle clients are found by a sweep rather than a timer each: a client costs no timer
    // churn per request, and an idle one lives at most 1.5 idle timeouts.
    Millis every = std::max(Millis{100}, limits_.idle_timeout / 2);
    if (auto t = r_.add_timer(every, this); t) {
        sweep_ = *t;
    }
}

void HttpServer::on_accept(net::Listener&, int fd) {
    if (closed_ || clients_.size() >= limits_.max_connections) {
        ::close(fd);
        refused_++;
        return;
    }
    auto client = std::make_unique<Client>(*this, r_.now());
    net::ConnOptions co;
    co.out_cap = 1 << 20;  // a /metrics answer is kilobytes; a client piling up more is stuck
    co.high_water = 256 << 10;
    co.low_water = 64 << 10;
    co.buf_quota = 4;
    auto c = net::Connection::adopt(r_, fd, client.get(), co);
    if (!c) {
        return;  // adopt closed the fd
    }
    client->attach(*c);
    Client* key = client.get();
    clients_[key] = std::move(client);
}

void HttpServer::on_listener_closed(net::Listener&) { listener_ = nullptr; }

void HttpServer::client_closed(Client* c) {
    auto it = clients_.find(c);
    if (it != clients_.end()) {
        dead_.push_back(std::move(it->second));
        clients_.erase(it);
    }
}

void HttpServer::on_timer(reactor::TimerId, uint64_t) {
    sweep_ = {};
    dead_.clear();
    reactor::TimePoint now = r_.now();
    for (auto& [key, c] : clients_) {
        if (c->conn() != nullptr && now - c->last_active() >= limits_.idle_timeout) {
            c->conn()->close(Error{Errc::TimedOut, 0, "idle"});
        }
    }
    if (!closed_) {
        arm_sweep();
    }
}

void HttpServer::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (sweep_) {
        r_.cancel_timer(sweep_);
        sweep_ = {};
    }
    if (listener_ != nullptr) {
        listener_->close();
    }
    for (auto& [key, c] : clients_) {
        if (c->conn() != nullptr) {
            c->conn()->close();
        }
    }
}

}  // namespace cfd::control
