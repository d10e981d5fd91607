// One client of an edge TCP listener (--tcp-listen ADDR=HOSTNAME), sans I/O: its bytes go down
// a tunnel stream marked as raw TCP (Cf-Cloudflared-Proxy-Src = the client's address,
// :authority = HOSTNAME:PORT), to the connector's tcp:// or ssh:// rule for HOSTNAME, and the
// stream's bytes come back, with the same flow control as a body both ways.
//
// The client's bytes wait (bounded) until the connector answers 200 (its origin connected);
// any other answer, or a stream that ends or fails, closes the client's connection. The
// client's EOF ends the stream's body; the stream's end closes the client once flushed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/edge/public_session.h"

namespace cfd::edge {

class RawSession final : public StreamSink {
public:
    static constexpr size_t kMaxInput = 64 << 10;  // client bytes held for the tunnel

    // `authority` is HOSTNAME:PORT, `client` the client's "ip:port".
    RawSession(PublicRouter& router, PublicIo& io, std::string authority, std::string client);
    ~RawSession() override;
    RawSession(const RawSession&) = delete;
    RawSession& operator=(const RawSession&) = delete;

    // Opens the stream; the client's connection closes at once when nothing serves it.
    void start();
    void feed(std::string_view bytes);
    void feed_eof();
    void on_writable();
    bool wants_input() const { return !closed_ && pending_.size() < kMaxInput; }

    // StreamSink
    void on_tunnel_response(StreamTarget& t, int32_t sid, int status,
                            std::vector<http2::HeaderPair>&& headers, bool end) override;
    void on_tunnel_data(StreamTarget& t, int32_t sid, std::string_view bytes) override;
    void on_tunnel_end(StreamTarget& t, int32_t sid) override;
    void on_tunnel_close(StreamTarget& t, int32_t sid, uint32_t code) override;
    void on_tunnel_room(StreamTarget& t, int32_t sid) override;

private:
    void push();
    void close(bool abort);

    PublicRouter& router_;
    PublicIo& io_;
    std::string authority_;
    std::string client_;
    StreamTarget* tunnel_ = nullptr;
    int32_t sid_ = -1;
    std::string pending_;  // client bytes the tunnel has not taken
    bool eof_ = false;     // the client's side ended
    bool end_sent_ = false;
    bool connected_ = false;  // the connector answered 200
    bool closed_ = false;
    uint64_t unconsumed_ = 0;  // stream bytes sent while the client was not writable
};

}  // namespace cfd::edge
