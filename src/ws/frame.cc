#include "cfd/ws/frame.h"

#include <algorithm>
#include <cstring>

#include "cfd/core/uuid.h"

namespace cfd::ws {

namespace {

bool is_control(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

bool known_opcode(uint8_t op) {
    switch (op) {
    case 0x0:
    case 0x1:
    case 0x2:
    case 0x8:
    case 0x9:
    case 0xa: return true;
    default: return false;
    }
}

}  // namespace

bool close_code_valid(uint16_t code) {
    if (code >= 3000 && code <= 4999) {
        return true;  // registered (3xxx) and private (4xxx) codes
    }
    switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014: return true;
    default: return false;
    }
}

Event Decoder::fail(uint16_t code, const char* why) {
    state_ = State::Failed;
    error_code_ = code;
    error_reason_ = why;
    return Event::Error;
}

std::string_view Decoder::close_reason() const {
    return ctrl_len_ > 2 ? std::string_view(ctrl_.data() + 2, ctrl_len_ - 2) : std::string_view();
}

void Decoder::unmask_append(std::string_view src, std::string& out) {
    size_t base = out.size();
    out.append(src);
    if (!masked_) {
        return;
    }
    char* p = out.data() + base;
    for (size_t i = 0; i < src.size(); i++) {
        p[i] = static_cast<char>(static_cast<uint8_t>(p[i]) ^ mask_[(offset_ + i) & 3]);
    }
}

// The header is complete in hdr_: check it against the protocol and our limits.
Event Decoder::header_done() {
    uint8_t b0 = hdr_[0];
    uint8_t b1 = hdr_[1];
    fin_ = (b0 & 0x80) != 0;
    masked_ = (b1 & 0x80) != 0;
    op_ = static_cast<Opcode>(b0 & 0x0f);
    size_t pos = 2;
    uint64_t len = b1 & 0x7f;
    if (len == 126) {
        len = uint64_t(hdr_[2]) << 8 | hdr_[3];
        pos = 4;
        if (len < 126) {
            return fail(kCloseProtocolError, "length not in its shortest form");
        }
    } else if (len == 127) {
        len = 0;
        for (size_t i = 0; i < 8; i++) {
            len = len << 8 | hdr_[2 + i];
        }
        pos = 10;
        if ((len >> 63) != 0) {
            return fail(kCloseProtocolError, "64-bit length with its top bit set");
        }
        if (len <= 0xffff) {
            return fail(kCloseProtocolError, "length not in its shortest form");
        }
    }
    if (masked_) {
        std::memcpy(mask_.data(), hdr_.data() + pos, 4);
    }
    if (is_control(op_)) {
        if (!fin_) {
            return fail(kCloseProtocolError, "fragmented control frame");
        }
        if (len > kMaxControlPayload) {
            return fail(kCloseProtocolError, "control frame over 125 bytes");
        }
    } else if (op_ == Opcode::Continuation) {
        if (!in_message_) {
            return fail(kCloseProtocolError, "continuation frame outside a message");
        }
    } else if (in_message_) {
        return fail(kCloseProtocolError, "new message before the previous one ended");
    }
    if (len > limits_.max_frame) {
        return fail(kCloseTooBig, "frame over the size limit");
    }
    if (!is_control(op_)) {
        uint64_t total = (op_ == Opcode::Continuation ? message_bytes_ : 0) + len;
        if (limits_.max_message != 0 && total > limits_.max_message) {
            return fail(kCloseTooBig, "message over the size limit");
        }
        if (op_ != Opcode::Continuation) {
            message_op_ = op_;
            message_bytes_ = 0;
        }
        in_message_ = !fin_;
        message_bytes_ = total;
    }
    remaining_ = len;
    offset_ = 0;
    ctrl_len_ = 0;
    hdr_len_ = 0;
    state_ = State::Payload;
    return Event::NeedMore;  // the caller goes on with the payload
}

Event Decoder::control_done() {
    state_ = State::Header;
    switch (op_) {
    case Opcode::Ping: return Event::Ping;
    case Opcode::Pong: return Event::Pong;
    default: break;
    }
    // Close.
    if (ctrl_len_ == 1) {
        return fail(kCloseProtocolError, "close frame with a one-byte payload");
    }
    if (ctrl_len_ == 0) {
        close_code_ = kCloseNoStatus;
    } else {
        close_code_ = static_cast<uint16_t>(static_cast<uint8_t>(ctrl_[0]) << 8 |
                                            static_cast<uint8_t>(ctrl_[1]));
        if (!close_code_valid(close_code_)) {
            return fail(kCloseProtocolError, "close frame with an invalid code");
        }
    }
    state_ = State::Closed;
    return Event::Close;
}

Event Decoder::next(std::string_view& in, std::string& data) {
    for (;;) {
        switch (state_) {
        case State::Failed: return Event::Error;
        case State::Closed:
            // Nothing may follow a Close (§5.5.1): whatever does is dropped.
            in = {};
            return Event::NeedMore;
        case State::Header: {
            if (in.empty()) {
                return Event::NeedMore;
            }
            if (hdr_len_ < 2) {
                size_t n = std::min<size_t>(2 - hdr_len_, in.size());
                std::memcpy(hdr_.data() + hdr_len_, in.data(), n);
                hdr_len_ += n;
                in.remove_prefix(n);
                if (hdr_len_ < 2) {
                    return Event::NeedMore;
                }
                // Checks that need only the first two bytes, before waiting for more.
                if ((hdr_[0] & 0x70) != 0) {
                    return fail(kCloseProtocolError, "reserved bits set (no extension agreed)");
                }
                if (!known_opcode(hdr_[0] & 0x0f)) {
                    return fail(kCloseProtocolError, "unknown opcode");
                }
                bool masked = (hdr_[1] & 0x80) != 0;
                if (role_ == Role::Server && !masked) {
                    return fail(kCloseProtocolError, "unmasked frame from a client");
                }
                if (role_ == Role::Client && masked) {
                    return fail(kCloseProtocolError, "masked frame from a server");
                }
            }
            uint8_t l7 = hdr_[1] & 0x7f;
            size_t need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((hdr_[1] & 0x80) ? 4 : 0);
            size_t n = std::min(need - hdr_len_, in.size());
            if (n > 0) {  // `in` may be empty (and its data() null) after the first two bytes
                std::memcpy(hdr_.data() + hdr_len_, in.data(), n);
            }
            hdr_len_ += n;
            in.remove_prefix(n);
            if (hdr_len_ < need) {
                return Event::NeedMore;
            }
            if (header_done() == Event::Error) {
                return Event::Error;
            }
            if (!is_control(op_) && remaining_ == 0) {
                // An empty data frame: report it, so that a message made of nothing ends.
                state_ = State::Header;
                message_done_ = fin_;
                return Event::Data;
            }
            if (is_control(op_) && remaining_ == 0) {
                return control_done();
            }
            continue;
        }
        case State::Payload: {
            if (in.empty()) {
                return Event::NeedMore;
            }
            size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
            if (is_control(op_)) {
                std::memcpy(ctrl_.data() + ctrl_len_, in.data(), n);
                if (masked_) {
                    for (size_t i = 0; i < n; i++) {
                        ctrl_[ctrl_len_ + i] = static_cast<char>(
                            static_cast<uint8_t>(ctrl_[ctrl_len_ + i]) ^ mask_[(offset_ + i) & 3]);
                    }
                }
                ctrl_len_ += n;
            } else {
                unmask_append(in.substr(0, n), data);
            }
            in.remove_prefix(n);
            offset_ += n;
            remaining_ -= n;
            if (is_control(op_)) {
                if (remaining_ != 0) {
                    return Event::NeedMore;
                }
                return control_done();
            }
            message_done_ = remaining_ == 0 && fin_;
            if (remaining_ == 0) {
                state_ = State::Header;
            }
            return Event::Data;
        }
        }
    }
}

void encode_frame(std::string& out, Opcode op, std::string_view payload, bool fin,
                  const std::array<uint8_t, 4>* mask) {
    uint8_t hdr[kMaxHeader];
    size_t n = 0;
    hdr[n++] = static_cast<uint8_t>((fin ? 0x80 : 0) | static_cast<uint8_t>(op));
    uint8_t mbit = mask != nullptr ? 0x80 : 0;
    uint64_t len = payload.size();
    if (len < 126) {
        hdr[n++] = static_cast<uint8_t>(mbit | len);
    } else if (len <= 0xffff) {
        hdr[n++] = static_cast<uint8_t>(mbit | 126);
        hdr[n++] = static_cast<uint8_t>(len >> 8);
        hdr[n++] = static_cast<uint8_t>(len);
    } else {
        hdr[n++] = static_cast<uint8_t>(mbit | 127);
        for (int i = 7; i >= 0; i--) {
            hdr[n++] = static_cast<uint8_t>(len >> (8 * i));
        }
    }
    if (mask != nullptr) {
        std::memcpy(hdr + n, mask->data(), 4);
        n += 4;
    }
    out.append(reinterpret_cast<const char*>(hdr), n);
    size_t base = out.size();
    out.append(payload);
    if (mask != nullptr) {
        char* p = out.data() + base;
        for (size_t i = 0; i < payload.size(); i++) {
            p[i] = static_cast<char>(static_cast<uint8_t>(p[i]) ^ (*mask)[i & 3]);
        }
    }
}

std::array<uint8_t, 4> Encoder::next_key() {
    if (pool_off_ + 4 > pool_.size()) {
        random_bytes(pool_.data(), pool_.size());  // one getrandom per 64 frames
        pool_off_ = 0;
    }
    std::array<uint8_t, 4> k;
    std::memcpy(k.data(), pool_.data() + pool_off_, 4);
    pool_off_ += 4;
    return k;
}

void Encoder::frame(std::string& out, Opcode op, std::string_view payload, bool fin) {
    if (role_ == Role::Client) {
        std::array<uint8_t, 4> k = next_key();
        encode_frame(out, op, payload, fin, &k);
        return;
    }
    encode_frame(out, op, payload, fin, nullptr);
}

void Encoder::close(std::string& out, uint16_t code, std::string_view reason) {
    if (code == kCloseNoStatus || code == kCloseAbnormal) {
        frame(out, Opcode::Close, {});
        return;
    }
    char buf[kMaxControlPayload];
    buf[0] = static_cast<char>(code >> 8);
    buf[1] = static_cast<char>(code & 0xff);
    size_t r = std::min(reason.size(), kMaxControlPayload - 2);
    if (r > 0) {  // an empty reason's data() may be null
        std::memcpy(buf + 2, reason.data(), r);
    }
    frame(out, Opcode::Close, std::string_view(buf, 2 + r));
}

}  // namespace cfd::ws
