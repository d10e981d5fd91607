// RFC 6455 framing, sans I/O, for both roles: a Decoder fed bytes in any split, an Encoder that
// appends frames to a caller's out-queue.
//
// The decoder streams data-frame payloads out as they arrive instead of collecting whole
// messages: a TCP tunnel (cfdtunnel access tcp, tcp:// ingress) only wants the bytes, and the
// caller's own bounded queue is then the only buffer. Control frames (<= 125 bytes) are
// collected whole. Usage:
//
//     std::string_view in = received;
//     for (;;) {
//         ws::Event e = dec.next(in, payload_out);      // `in` advances past what was used
//         if (e == ws::Event::NeedMore) { break; }
//         if (e == ws::Event::Ping) { enc.frame(out, ws::Opcode::Pong, dec.control()); }
//         if (e == ws::Event::Close) { ... dec.close_code() ... }
//         if (e == ws::Event::Error) { enc.close(out, dec.error_code(), ""); break; }
//     }
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace cfd::ws {

enum class Opcode : uint8_t {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xa,
};

// Our side of the connection. A Server receives masked frames and sends unmasked ones; a Client
// the reverse (RFC 6455 §5.1: a frame masked the wrong way is a protocol error).
enum class Role : uint8_t { Client, Server };

// Close codes (RFC 6455 §7.4.1).
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseUnsupportedData = 1003;
inline constexpr uint16_t kCloseNoStatus = 1005;  // never sent: "the Close had no code"
inline constexpr uint16_t kCloseAbnormal = 1006;  // never sent: "no Close at all"
inline constexpr uint16_t kCloseInvalidPayload = 1007;
inline constexpr uint16_t kClosePolicy = 1008;
inline constexpr uint16_t kCloseTooBig = 1009;
inline constexpr uint16_t kCloseInternalError = 1011;

inline constexpr size_t kMaxControlPayload = 125;
inline constexpr size_t kMaxHeader = 14;  // 2 + 8 (64-bit length) + 4 (masking key)

// Whether a peer may send `code` in a Close frame (§7.4: 1004-1006, 1015 and unassigned codes
// below 3000 may not).
bool close_code_valid(uint16_t code);

struct DecoderLimits {
    // A frame announcing more payload is refused with 1009 as soon as its header is in.
    uint64_t max_frame = 16 << 20;
    // The sum of a fragmented message's frames; 0: unbounded (a tunnel's byte stream, where
    // messages are just chunks and nothing is collected).
    uint64_t max_message = 0;
};

enum class Event : uint8_t {
    NeedMore,  // the input is used up
    Data,      // payload bytes of a text or binary message were appended (maybe zero of them)
    Ping,      // a whole control frame: control() is its payload
    Pong,
    Close,     // the peer's Close: close_code(), close_reason(); later input is ignored
    Error,     // error_code() is the Close code to send; every later call returns Error
};

class Decoder {
public:
    explicit Decoder(Role ours, DecoderLimits limits = {}) : role_(ours), limits_(limits) {}

    // Decodes from the front of `in`, advancing it past the bytes used. Data payload is
    // unmasked and appended to `data` (at most what `in` held: the input bounds the growth).
    Event next(std::string_view& in, std::string& data);

    // Data: the opcode of the message being received (Text or Binary), and whether the bytes
    // just delivered ended it (its final frame is complete).
    Opcode message_opcode() const { return message_op_; }
    bool message_done() const { return message_done_; }

    // Ping/Pong/Close: the frame's payload, valid until the next call.
    std::string_view control() const { return {ctrl_.data(), ctrl_len_}; }
    // Close: the peer's code (kCloseNoStatus when its Close carried none) and reason.
    uint16_t close_code() const { return close_code_; }
    std::string_view close_reason() const;

    // Error: the code our Close should carry (1002 or 1009) and why, for logs.
    uint16_t error_code() const { return error_code_; }
    const char* error_reason() const { return error_reason_; }

    bool closed() const { return state_ == State::Closed; }

private:
    enum class State : uint8_t { Header, Payload, Closed, Failed };

    Event fail(uint16_t code, const char* why);
    Event header_done();
    Event control_done();
    void unmask_append(std::string_view src, std::string& out);

    Role role_;
    DecoderLimits limits_;
    State state_ = State::Header;

    std::array<uint8_t, kMaxHeader> hdr_{};
    size_t hdr_len_ = 0;

    // The frame whose payload is being read.
    Opcode op_ = Opcode::Binary;
    bool fin_ = false;
    bool masked_ = false;
    std::array<uint8_t, 4> mask_{};
    uint64_t remaining_ = 0;
    uint64_t offset_ = 0;  // payload bytes of this frame already read: the mask's phase

    // The data message in progress (fragmented across frames).
    bool in_message_ = false;
    bool message_done_ = false;
    Opcode message_op_ = Opcode::Binary;
    uint64_t message_bytes_ = 0;

    std::array<char, kMaxControlPayload> ctrl_{};
    size_t ctrl_len_ = 0;
    uint16_t close_code_ = 0;

    uint16_t error_code_ = 0;
    const char* error_reason_ = "";
};

// Appends one frame to `out`. `mask`: the masking key of a client's frame, nullptr for a
// server's (unmasked). Control frames must be fin and at most 125 bytes: the caller's duty.
void encode_frame(std::string& out, Opcode op, std::string_view payload, bool fin,
                  const std::array<uint8_t, 4>* mask);

// Frames for one role: a Client masks every frame with a fresh random key (RFC 6455 §5.3; the
// keys come from the kernel's CSPRNG, fetched in batches).
class Encoder {
public:
    explicit Encoder(Role ours) : role_(ours) {}

    void frame(std::string& out, Opcode op, std::string_view payload, bool fin = true);
    // A Close with `code` and `reason` (cut to fit 125 bytes). kCloseNoStatus sends none.
    void close(std::string& out, uint16_t code, std::string_view reason = {});

private:
    std::array<uint8_t, 4> next_key();

    Role role_;
    std::array<uint8_t, 256> pool_{};
    size_t pool_off_ = sizeof(pool_);
};

}  // namespace cfd::ws
