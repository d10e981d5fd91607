// The WebSocket opening handshake (RFC 6455 §4), client side, and SHA-1 for its accept key.
//
// SHA-1 is our own small implementation rather than wolfSSL's: wolfSSL is called only from
// src/tls, and this digest protects nothing (it only proves the server understood WebSocket).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/result.h"
#include "cfd/http1/message.h"

namespace cfd::ws {

inline constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// FIPS 180-4 SHA-1 of `data`.
std::array<uint8_t, 20> sha1(std::string_view data);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view client_key);

// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string new_client_key();

// Appends "GET `path` HTTP/1.1" with Host, Upgrade, Connection, Sec-WebSocket-Key and
// Sec-WebSocket-Version 13. Invalid when host or path would inject header bytes.
[[nodiscard]] Status write_client_request(std::string& out, std::string_view host,
                                          std::string_view path, std::string_view key);

// Checks the server's answer to that request: 101, Upgrade: websocket, Connection: upgrade,
// and Sec-WebSocket-Accept matching `key`. Protocol with `why` naming what is wrong.
[[nodiscard]] Status check_server_response(const http1::ResponseHead& head, std::string_view key,
                                           const char** why);

}  // namespace cfd::ws
