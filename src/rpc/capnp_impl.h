// Private to src/rpc: the bridge between Frames and Cap'n Proto readers/builders, and the
// conversions between the schema's structs and the plain ones of cfd/rpc/types.h.
// Everything here may throw kj::Exception on malformed input; the public classes catch it.
#pragma once

#include <capnp/capability.h>
#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>

#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/rpc/frame.h"
#include "cfd/rpc/types.h"
#include "rpc/tunnelrpc.capnp.h"

namespace cfd::rpc::detail {

using RegParams = schema::RegistrationServer::RegisterConnectionParams;
using RegResults = schema::RegistrationServer::RegisterConnectionResults;
using ConfigParams = schema::RegistrationServer::UpdateLocalConfigurationParams;

// A received Frame read as an rpc.capnp Message, in place (the Frame must outlive this).
class MessageIn {
public:
    explicit MessageIn(const Frame& frame);
    MessageIn(const MessageIn&) = delete;
    MessageIn& operator=(const MessageIn&) = delete;

    // The root, imbued with an empty capability table so that a capability pointer anywhere
    // in it reads as a broken capability (or fails to copy) instead of reaching a null table.
    capnp::rpc::Message::Reader root();

private:
    std::vector<kj::ArrayPtr<const capnp::word>> segments_;
    capnp::SegmentArrayMessageReader reader_;
    capnp::ReaderCapabilityTable no_caps_;
};

// Appends `builder` in stream framing.
void append_message(capnp::MessageBuilder& builder, std::string& out);

std::string to_string(capnp::Text::Reader t);
std::string to_string(capnp::Data::Reader d);
// Explicit sizes: a std::string converted through kj::StringPtr would stop at a NUL byte.
capnp::Text::Reader as_text(const std::string& s);
capnp::Data::Reader as_data(std::string_view s);

void set_exception(capnp::rpc::Exception::Builder e, std::string_view reason,
                   capnp::rpc::Exception::Type type = capnp::rpc::Exception::Type::FAILED);

// Appends an Abort (the session's last message) or a Return carrying an exception.
void append_abort(std::string& out, std::string_view reason);
void append_exception_return(
    std::string& out, uint32_t question, std::string_view reason,
    capnp::rpc::Exception::Type type = capnp::rpc::Exception::Type::FAILED);

// Text of a caught kj::Exception, without the library's file and line.
std::string describe(const kj::Exception& e);

void encode(const RegisterRequest& req, RegParams::Builder b);
[[nodiscard]] Result<RegisterRequest> decode(RegParams::Reader r, const Limits& limits);

void encode(const ConnectionDetails& d, RegResults::Builder b);
void encode(const ConnectionError& e, RegResults::Builder b);

}  // namespace cfd::rpc::detail
