#include "cfd/rpc/client.h"

#include "cfd/core/log.h"
#include "rpc/capnp_impl.h"

namespace cfd::rpc {
namespace {

using capnp::rpc::Exception;
using capnp::rpc::Message;

// A bootstrap Return with more entries than this in its capTable is not one we can use.
constexpr unsigned kMaxBootstrapCaps = 16;

void send_finish(std::string& out, uint32_t question, bool release_result_caps) {
    capnp::MallocMessageBuilder mb;
    auto fin = mb.initRoot<Message>().initFinish();
    fin.setQuestionId(question);
    fin.setReleaseResultCaps(release_result_caps);
    detail::append_message(mb, out);
}

// Which capTable entry the content pointer names. Cap'n Proto reads capability pointers only
// through a table of hooks, so each entry gets a distinct placeholder and we see which comes back.
std::optional<unsigned> cap_index(capnp::rpc::Payload::Reader payload) {
    auto table = payload.getCapTable();
    if (table.size() == 0 || table.size() > kMaxBootstrapCaps) {
        return std::nullopt;
    }
    auto hooks = kj::heapArrayBuilder<kj::Maybe<kj::Own<capnp::ClientHook>>>(table.size());
    const capnp::ClientHook* ids[kMaxBootstrapCaps] = {};
    for (unsigned i = 0; i < table.size(); ++i) {
        auto h = capnp::newBrokenCap("placeholder");
        ids[i] = h.get();
        hooks.add(kj::mv(h));
    }
    capnp::ReaderCapabilityTable caps(hooks.finish());
    auto content = caps.imbue(payload.getContent());
    if (content.getPointerType() != capnp::PointerType::CAPABILITY) {
        return std::nullopt;
    }
    auto hook = capnp::ClientHook::from(content.getAs<capnp::Capability>());
    for (unsigned i = 0; i < table.size(); ++i) {
        if (hook.get() == ids[i]) {
            return i;
        }
    }
    return std::nullopt;
}

const char* method_name(Method m) {
    switch (m) {
    case Method::RegisterConnection: return "registerConnection";
    case Method::UnregisterConnection: return "unregisterConnection";
    case Method::UpdateLocalConfiguration: return "updateLocalConfiguration";
    }
    return "unknown";
}

}  // namespace

class RegistrationClient::Impl {
public:
    static Status on_message(RegistrationClient& c, const Frame& frame, std::string& out,
                             std::vector<ClientEvent>& events);
    static Result<uint32_t> call(RegistrationClient& c, Method method, std::string& out,
                                 const RegisterRequest* req, std::string_view config);

private:
    static Status on_return(RegistrationClient& c, capnp::rpc::Return::Reader ret, std::string& out,
                            std::vector<ClientEvent>& events);
    static Status on_bootstrap_return(RegistrationClient& c, capnp::rpc::Return::Reader ret,
                                      std::string& out);
    static ClientEvent call_outcome(uint32_t q, Method method, capnp::rpc::Return::Reader ret);
    static Status on_unimplemented(RegistrationClient& c, Message::Reader echoed, std::string& out,
                                   std::vector<ClientEvent>& events);
};

RegistrationClient::RegistrationClient(Limits limits)
    : limits_(limits), frames_(FrameLimits{limits.max_segments, limits.max_message_bytes}) {}

Result<uint32_t> RegistrationClient::new_question(bool is_bootstrap, Method method) {
    if (closed_) {
        return Err{Errc::Closed, 0, "rpc: session closed"};
    }
    if (questions_.size() >= limits_.max_questions) {
        return Err{Errc::Busy, 0, "rpc: too many questions outstanding"};
    }
    // The lowest free id, as go-capnproto2 and the C++ library pick: ids stay small and an id
    // is reused only once its Return came and our Finish went.
    uint32_t q = 0;
    while (questions_.count(q) != 0) {
        ++q;
    }
    questions_[q] = Question{is_bootstrap, method};
    return q;
}

Status RegistrationClient::fail_session(Errc code, const char* op, std::string why,
                                        std::string& out) {
    if (!closed_) {
        detail::append_abort(out, why);
    }
    closed_ = true;
    detail_ = std::move(why);
    return Err{code, 0, op};
}

void RegistrationClient::start(std::string& out) {
    CFD_CHECK(!started_);  // a second Bootstrap would be a caller bug, not peer input
    started_ = true;
    auto q = new_question(true, Method::RegisterConnection);
    CFD_CHECK(q.has_value());  // the table is empty at this point
    bootstrap_question_ = *q;
    capnp::MallocMessageBuilder mb;
    mb.initRoot<Message>().initBootstrap().setQuestionId(*q);
    detail::append_message(mb, out);
}

Result<uint32_t> RegistrationClient::Impl::call(RegistrationClient& c, Method method,
                                                std::string& out, const RegisterRequest* req,
                                                std::string_view config) {
    if (!c.import_ && !c.bootstrap_question_) {
        return Err{Errc::Invalid, 0, "rpc: no capability (start() first, or bootstrap failed)"};
    }
    auto q = c.new_question(false, method);
    if (!q) {
        return q.error();
    }
    try {
        capnp::MallocMessageBuilder mb;
        auto call = mb.initRoot<Message>().initCall();
        call.setQuestionId(*q);
        call.setInterfaceId(kRegistrationInterfaceId);
        call.setMethodId(uint16_t(method));
        auto target = call.initTarget();
        if (c.import_) {
            target.setImportedCap(*c.import_);
        } else {
            // Pipelined: the edge resolves it once it has answered the Bootstrap.
            auto pa = target.initPromisedAnswer();
            pa.setQuestionId(*c.bootstrap_question_);
            pa.initTransform(0);
        }
        auto params = call.initParams();
        auto content = params.getContent();
        switch (method) {
        case Method::RegisterConnection:
            detail::encode(*req, content.initAs<detail::RegParams>());
            break;
        case Method::UnregisterConnection:
            content.initAs<schema::RegistrationServer::UnregisterConnectionParams>();
            break;
        case Method::UpdateLocalConfiguration:
            content.initAs<detail::ConfigParams>().setConfig(detail::as_data(config));
            break;
        }
        params.initCapTable(0);
        detail::append_message(mb, out);
    } catch (const kj::Exception& e) {
        // Only our own values get here (a field over Cap'n Proto's size limits).
        c.questions_.erase(*q);
        log::warn("rpc: cannot encode call",
                  {{"method", method_name(method)}, {"error", detail::describe(e)}});
        return Err{Errc::Invalid, 0, "rpc: cannot encode call"};
    }
    return q;
}

Result<uint32_t> RegistrationClient::register_connection(const RegisterRequest& req,
                                                         std::string& out) {
    return Impl::call(*this, Method::RegisterConnection, out, &req, {});
}

Result<uint32_t> RegistrationClient::unregister_connection(std::string& out) {
    return Impl::call(*this, Method::UnregisterConnection, out, nullptr, {});
}

Result<uint32_t> RegistrationClient::update_local_configuration(std::string_view config,
                                                                std::string& out) {
    if (config.size() + 4096 > limits_.max_message_bytes) {
        return Err{Errc::Invalid, 0, "rpc: configuration too large"};
    }
    return Impl::call(*this, Method::UpdateLocalConfiguration, out, nullptr, config);
}

Status RegistrationClient::feed(std::string_view in, std::string& out,
                                std::vector<ClientEvent>& events) {
    if (closed_) {
        return Err{Errc::Closed, 0, "rpc: session closed"};
    }
    Frame frame;
    while (!in.empty()) {
        auto got = frames_.read(in, frame);
        if (!got) {
            return fail_session(got.error().code, got.error().op, got.error().op, out);
        }
        if (!*got) {
            break;
        }
        if (auto st = Impl::on_message(*this, frame, out, events); !st) {
            return st;
        }
    }
    return {};
}

void RegistrationClient::close(std::string& out) {
    if (closed_) {
        return;
    }
    if (import_ && import_refs_ > 0) {
        capnp::MallocMessageBuilder mb;
        auto rel = mb.initRoot<Message>().initRelease();
        rel.setId(*import_);
        rel.setReferenceCount(import_refs_);
        detail::append_message(mb, out);
        import_refs_ = 0;
    }
    detail::append_abort(out, "connector closing the registration session");
    closed_ = true;
    detail_ = "closed";
}

Status RegistrationClient::Impl::on_message(RegistrationClient& c, const Frame& frame,
                                            std::string& out, std::vector<ClientEvent>& events) {
    try {
        detail::MessageIn in(frame);
        auto msg = in.root();
        switch (msg.which()) {
        case Message::RETURN: return on_return(c, msg.getReturn(), out, events);
        case Message::ABORT:
            c.closed_ = true;
            c.detail_ = "edge aborted: " + detail::to_string(msg.getAbort().getReason());
            return Err{Errc::Closed, 0, "rpc: edge aborted the session"};
        case Message::BOOTSTRAP:
            // The connector serves nothing on this stream (cloudflared neither).
            detail::append_exception_return(out, msg.getBootstrap().getQuestionId(),
                                            "no bootstrap interface here", Exception::Type::FAILED);
            return {};
        case Message::CALL:
            detail::append_exception_return(out, msg.getCall().getQuestionId(),
                                            "no capability here", Exception::Type::UNIMPLEMENTED);
            return {};
        case Message::FINISH:
        case Message::RELEASE:
            // We answered at once and exported nothing: there is nothing left to free.
            return {};
        case Message::UNIMPLEMENTED:
            return on_unimplemented(c, msg.getUnimplemented(), out, events);
        default: {
            capnp::MallocMessageBuilder mb;
            mb.initRoot<Message>().setUnimplemented(msg);
            detail::append_message(mb, out);
            return {};
        }
        }
    } catch (const kj::Exception& e) {
        return c.fail_session(Errc::Protocol, "rpc: malformed message",
                              "malformed message: " + detail::describe(e), out);
    } catch (...) {
        return c.fail_session(Errc::Protocol, "rpc: malformed message", "malformed message", out);
    }
}

Status RegistrationClient::Impl::on_unimplemented(RegistrationClient& c, Message::Reader echoed,
                                                  std::string& out,
                                                  std::vector<ClientEvent>& events) {
    // The edge did not understand one of our messages. Only a Bootstrap or a Call leaves a
    // question waiting; anything else (Finish, Release, Abort) needs nothing more.
    uint32_t q = 0;
    if (echoed.which() == Message::BOOTSTRAP) {
        q = echoed.getBootstrap().getQuestionId();
    } else if (echoed.which() == Message::CALL) {
        q = echoed.getCall().getQuestionId();
    } else {
        return {};
    }
    auto it = c.questions_.find(q);
    if (it == c.questions_.end()) {
        return {};
    }
    Question question = it->second;
    c.questions_.erase(it);
    if (question.is_bootstrap) {
        return c.fail_session(Errc::Unsupported, "rpc: edge does not implement bootstrap",
                              "edge does not implement bootstrap", out);
    }
    events.emplace_back(std::in_place_type<CallFailed>,
                        CallFailed{q, question.method, "call not implemented by the edge"});
    return {};
}

Status RegistrationClient::Impl::on_return(RegistrationClient& c, capnp::rpc::Return::Reader ret,
                                           std::string& out, std::vector<ClientEvent>& events) {
    uint32_t q = ret.getAnswerId();
    auto it = c.questions_.find(q);
    if (it == c.questions_.end()) {
        return c.fail_session(Errc::Protocol, "rpc: return for an unknown question",
                              "return for unknown question " + std::to_string(q), out);
    }
    Question question = it->second;
    if (question.is_bootstrap) {
        return on_bootstrap_return(c, ret, out);
    }
    // Decode before touching any state: a malformed result throws to on_message's handler.
    ClientEvent ev = call_outcome(q, question.method, ret);
    c.questions_.erase(q);
    send_finish(out, q, true);
    events.push_back(std::move(ev));
    return {};
}

Status RegistrationClient::Impl::on_bootstrap_return(RegistrationClient& c,
                                                     capnp::rpc::Return::Reader ret,
                                                     std::string& out) {
    uint32_t q = ret.getAnswerId();
    std::string why;
    if (ret.which() == capnp::rpc::Return::RESULTS) {
        auto results = ret.getResults();
        auto index = cap_index(results);
        if (index) {
            auto desc = results.getCapTable()[*index];
            if (desc.which() == capnp::rpc::CapDescriptor::SENDER_HOSTED ||
                desc.which() == capnp::rpc::CapDescriptor::SENDER_PROMISE) {
                // A promise is used like a hosted cap: calls to it reach the edge either way
                // (go-capnproto2 does the same).
                c.import_ = desc.which() == capnp::rpc::CapDescriptor::SENDER_HOSTED
                                ? desc.getSenderHosted()
                                : desc.getSenderPromise();
                c.import_refs_++;
                c.questions_.erase(q);
                c.bootstrap_question_.reset();
                // We keep the capability, so the edge must not release it with the answer.
                send_finish(out, q, false);
                return {};
            }
        }
        why = "bootstrap returned no usable capability";
    } else if (ret.which() == capnp::rpc::Return::EXCEPTION) {
        why = "bootstrap failed: " + detail::to_string(ret.getException().getReason());
    } else {
        why = "bootstrap returned no results";
    }
    c.questions_.erase(q);
    c.bootstrap_question_.reset();
    send_finish(out, q, true);
    return c.fail_session(Errc::Protocol, "rpc: bootstrap failed", why, out);
}

ClientEvent RegistrationClient::Impl::call_outcome(uint32_t q, Method method,
                                                   capnp::rpc::Return::Reader ret) {
    switch (ret.which()) {
    case capnp::rpc::Return::RESULTS: break;
    case capnp::rpc::Return::EXCEPTION:
        return CallFailed{q, method, detail::to_string(ret.getException().getReason())};
    case capnp::rpc::Return::CANCELED: return CallFailed{q, method, "canceled by the edge"};
    default: return CallFailed{q, method, "unsupported kind of return"};
    }
    if (method == Method::UnregisterConnection) {
        return Unregistered{q};
    }
    if (method == Method::UpdateLocalConfiguration) {
        return ConfigUpdated{q};
    }
    auto result = ret.getResults().getContent().getAs<detail::RegResults>().getResult().getResult();
    switch (result.which()) {
    case schema::ConnectionResponse::Result::ERROR: {
        auto e = result.getError();
        return Refused{q, ConnectionError{detail::to_string(e.getCause()), e.getRetryAfter(),
                                          e.getShouldRetry()}};
    }
    case schema::ConnectionResponse::Result::CONNECTION_DETAILS: {
        auto d = result.getConnectionDetails();
        auto uuid = Uuid::from_bytes(detail::to_string(d.getUuid()));
        if (!uuid) {
            return CallFailed{q, method, "connection details carry no 16-byte uuid"};
        }
        return Registered{q, ConnectionDetails{*uuid, detail::to_string(d.getLocationName()),
                                               d.getTunnelIsRemotelyManaged()}};
    }
    }
    return CallFailed{q, method, "unknown kind of connection response"};
}

}  // namespace cfd::rpc
