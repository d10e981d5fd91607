#include "rpc/capnp_impl.h"

#include <kj/exception.h>

namespace cfd::rpc::detail {
namespace {

std::vector<kj::ArrayPtr<const capnp::word>> segments_of(const Frame& frame) {
    std::vector<kj::ArrayPtr<const capnp::word>> segs;
    segs.reserve(frame.segment_words.size());
    const auto* base = reinterpret_cast<const capnp::word*>(frame.words.data());
    size_t at = 0;
    for (uint32_t n : frame.segment_words) {
        segs.emplace_back(base + at, n);
        at += n;
    }
    return segs;
}

capnp::ReaderOptions options_for(const Frame& frame) {
    capnp::ReaderOptions o;
    // The default allows 64 MiB of traversal whatever the message size; a small message with
    // many pointers to one place must not cost more than a few passes over itself.
    o.traversalLimitInWords = 4 * frame.words.size() + 64;
    o.nestingLimit = 32;
    return o;
}

}  // namespace

MessageIn::MessageIn(const Frame& frame)
    : segments_(segments_of(frame)), reader_(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>(
                                                 segments_.data(), segments_.size()),
                                             options_for(frame)),
      no_caps_(kj::Array<kj::Maybe<kj::Own<capnp::ClientHook>>>()) {}

capnp::rpc::Message::Reader MessageIn::root() {
    return no_caps_.imbue(reader_.getRoot<capnp::rpc::Message>());
}

void append_message(capnp::MessageBuilder& builder, std::string& out) {
    kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
    auto bytes = words.asBytes();
    out.append(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

std::string to_string(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::string to_string(capnp::Data::Reader d) {
    return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

capnp::Text::Reader as_text(const std::string& s) { return {s.c_str(), s.size()}; }

capnp::Data::Reader as_data(std::string_view s) {
    return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

void set_exception(capnp::rpc::Exception::Builder e, std::string_view reason,
                   capnp::rpc::Exception::Type type) {
    e.setReason(capnp::Text::Reader(reason.data(), reason.size()));
    e.setType(type);
}

void append_abort(std::string& out, std::string_view reason) {
    capnp::MallocMessageBuilder mb;
    set_exception(mb.initRoot<capnp::rpc::Message>().initAbort(), reason);
    append_message(mb, out);
}

void append_exception_return(std::string& out, uint32_t question, std::string_view reason,
                             capnp::rpc::Exception::Type type) {
    capnp::MallocMessageBuilder mb;
    auto ret = mb.initRoot<capnp::rpc::Message>().initReturn();
    ret.setAnswerId(question);
    set_exception(ret.initException(), reason, type);
    append_message(mb, out);
}

std::string describe(const kj::Exception& e) {
    auto d = e.getDescription();
    return std::string(d.cStr(), d.size());
}

void encode(const RegisterRequest& req, RegParams::Builder b) {
    auto auth = b.initAuth();
    auth.setAccountTag(as_text(req.auth.account_tag));
    auth.setTunnelSecret(as_data(req.auth.tunnel_secret));
    b.setTunnelId(as_data(req.tunnel_id.raw()));
    b.setConnIndex(req.conn_index);
    auto opts = b.initOptions();
    auto client = opts.initClient();
    client.setClientId(as_data(req.options.client.client_id.raw()));
    auto features = client.initFeatures(unsigned(req.options.client.features.size()));
    for (size_t i = 0; i < req.options.client.features.size(); ++i) {
        features.set(unsigned(i), as_text(req.options.client.features[i]));
    }
    client.setVersion(as_text(req.options.client.version));
    client.setArch(as_text(req.options.client.arch));
    opts.setOriginLocalIp(as_data(req.options.origin_local_ip));
    opts.setReplaceExisting(req.options.replace_existing);
    opts.setCompressionQuality(req.options.compression_quality);
    opts.setNumPreviousAttempts(req.options.num_previous_attempts);
}

Result<RegisterRequest> decode(RegParams::Reader r, const Limits& limits) {
    RegisterRequest req;
    auto auth = r.getAuth();
    if (auth.getAccountTag().size() > limits.max_text_bytes ||
        auth.getTunnelSecret().size() > limits.max_text_bytes) {
        return Err{Errc::Invalid, 0, "auth field too large"};
    }
    req.auth.account_tag = to_string(auth.getAccountTag());
    req.auth.tunnel_secret = to_string(auth.getTunnelSecret());
    auto tunnel_id = Uuid::from_bytes(to_string(r.getTunnelId()));
    if (!tunnel_id) {
        return Err{Errc::Invalid, 0, "tunnelId is not a 16-byte UUID"};
    }
    req.tunnel_id = *tunnel_id;
    req.conn_index = r.getConnIndex();

    auto opts = r.getOptions();
    auto client = opts.getClient();
    auto client_id = Uuid::from_bytes(to_string(client.getClientId()));
    if (!client_id) {
        return Err{Errc::Invalid, 0, "clientId is not a 16-byte UUID"};
    }
    req.options.client.client_id = *client_id;
    auto features = client.getFeatures();
    if (features.size() > limits.max_features) {
        return Err{Errc::Invalid, 0, "too many features"};
    }
    for (auto f : features) {
        if (f.size() > limits.max_text_bytes) {
            return Err{Errc::Invalid, 0, "feature name too large"};
        }
        req.options.client.features.push_back(to_string(f));
    }
    if (client.getVersion().size() > limits.max_text_bytes ||
        client.getArch().size() > limits.max_text_bytes ||
        opts.getOriginLocalIp().size() > limits.max_text_bytes) {
        return Err{Errc::Invalid, 0, "client info field too large"};
    }
    req.options.client.version = to_string(client.getVersion());
    req.options.client.arch = to_string(client.getArch());
    req.options.origin_local_ip = to_string(opts.getOriginLocalIp());
    req.options.replace_existing = opts.getReplaceExisting();
    req.options.compression_quality = opts.getCompressionQuality();
    req.options.num_previous_attempts = opts.getNumPreviousAttempts();
    return req;
}

void encode(const ConnectionDetails& d, RegResults::Builder b) {
    auto details = b.initResult().getResult().initConnectionDetails();
    details.setUuid(as_data(d.uuid.raw()));
    details.setLocationName(as_text(d.location_name));
    details.setTunnelIsRemotelyManaged(d.tunnel_is_remotely_managed);
}

void encode(const ConnectionError& e, RegResults::Builder b) {
    auto err = b.initResult().getResult().initError();
    err.setCause(as_text(e.cause));
    err.setRetryAfter(e.retry_after_ns);
    err.setShouldRetry(e.should_retry);
}

}  // namespace cfd::rpc::detail
