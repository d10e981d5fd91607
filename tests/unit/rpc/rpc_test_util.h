// Shared by the rpc tests: reading what a session wrote, building messages by hand.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/rpc/frame.h"
#include "cfd/rpc/types.h"
#include "rpc/capnp_impl.h"

namespace rpctest {

using capnp::rpc::Message;

inline std::string serialize(capnp::MessageBuilder& mb) {
    std::string out;
    cfd::rpc::detail::append_message(mb, out);
    return out;
}

// Calls `f` on every message in `bytes`, which must hold whole messages only.
inline size_t each_message(std::string_view bytes, const std::function<void(Message::Reader)>& f) {
    cfd::rpc::FrameReader reader;
    cfd::rpc::Frame frame;
    size_t n = 0;
    while (!bytes.empty()) {
        auto got = reader.read(bytes, frame);
        REQUIRE(got);
        REQUIRE(*got);
        cfd::rpc::detail::MessageIn in(frame);
        f(in.root());
        ++n;
    }
    return n;
}

// The kinds of the messages in `bytes`, in order.
inline std::vector<Message::Which> kinds(std::string_view bytes) {
    std::vector<Message::Which> out;
    each_message(bytes, [&](Message::Reader m) { out.push_back(m.which()); });
    return out;
}

inline cfd::rpc::RegisterRequest sample_request() {
    cfd::rpc::RegisterRequest r;
    r.auth.account_tag = "5ab4e9dfbd435d24068829fda0077963";
    r.auth.tunnel_secret = std::string("\x01\x00\xff secret bytes \x7f", 18);
    r.tunnel_id = cfd::Uuid::parse("610a53bd-ed0c-4afe-92b5-ca0238153410").value();
    r.conn_index = 3;
    r.options.client.client_id = cfd::Uuid::parse("71490dec-190f-4652-a70a-cd001fe6fdcf").value();
    r.options.client.features = {"serialized_headers", "allow_remote_config",
                                 "support_datagram_v2"};
    r.options.client.version = "2026.11.0";
    r.options.client.arch = "linux_amd64";
    r.options.origin_local_ip = std::string("\xc0\xa8\x01\x02", 4);
    r.options.replace_existing = true;
    r.options.compression_quality = 2;
    r.options.num_previous_attempts = 5;
    return r;
}

}  // namespace rpctest
