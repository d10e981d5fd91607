#include "cfd/rpc/server.h"

#include <limits>

#include "cfd/core/log.h"
#include "rpc/capnp_impl.h"

namespace cfd::rpc {
namespace {

using capnp::rpc::Exception;
using capnp::rpc::Message;

// The one capability we export: the RegistrationServer handed out by Bootstrap.
constexpr uint32_t kBootstrapExport = 0;

void send_canceled(std::string& out, uint32_t question) {
    capnp::MallocMessageBuilder mb;
    auto ret = mb.initRoot<Message>().initReturn();
    ret.setAnswerId(question);
    ret.setCanceled();
    detail::append_message(mb, out);
}

// Return for a Bootstrap: the content is a capability pointer to entry 0 of the capTable, which
// names our export. Cap'n Proto writes capability pointers only through a capability table, so a
// placeholder hook stands in for the object; only its index reaches the wire.
void send_bootstrap_return(std::string& out, uint32_t question) {
    capnp::MallocMessageBuilder mb;
    auto ret = mb.initRoot<Message>().initReturn();
    ret.setAnswerId(question);
    auto results = ret.initResults();
    capnp::BuilderCapabilityTable caps;
    caps.imbue(results.getContent())
        .setAs<capnp::Capability>(capnp::Capability::Client(capnp::newBrokenCap("placeholder")));
    results.initCapTable(1)[0].setSenderHosted(kBootstrapExport);
    detail::append_message(mb, out);
}

bool all_noop(capnp::List<capnp::rpc::PromisedAnswer::Op>::Reader ops) {
    for (auto op : ops) {
        if (op.which() != capnp::rpc::PromisedAnswer::Op::NOOP) {
            return false;
        }
    }
    return true;
}

}  // namespace

// The message handlers: they see Cap'n Proto types, which the public header may not name.
class RegistrationServer::Impl {
public:
    static Status on_message(RegistrationServer& s, const Frame& frame, std::string& out,
                             std::vector<ServerEvent>& events);

private:
    static Status on_bootstrap(RegistrationServer& s, capnp::rpc::Bootstrap::Reader boot,
                               std::string& out);
    static Status on_call(RegistrationServer& s, capnp::rpc::Call::Reader call, std::string& out,
                          std::vector<ServerEvent>& events);
    static Status on_finish(RegistrationServer& s, capnp::rpc::Finish::Reader fin, std::string& out,
                            std::vector<ServerEvent>& events);
    static Status on_release(RegistrationServer& s, capnp::rpc::Release::Reader rel,
                             std::string& out);
    static Status admit_question(RegistrationServer& s, uint32_t question, std::string& out);
    static const char* check_target(RegistrationServer& s, capnp::rpc::MessageTarget::Reader t);
};

Status RegistrationServer::Impl::on_message(RegistrationServer& s, const Frame& frame,
                                            std::string& out, std::vector<ServerEvent>& events) {
    try {
        detail::MessageIn in(frame);
        auto msg = in.root();
        switch (msg.which()) {
        case Message::BOOTSTRAP: return on_bootstrap(s, msg.getBootstrap(), out);
        case Message::CALL: return on_call(s, msg.getCall(), out, events);
        case Message::FINISH: return on_finish(s, msg.getFinish(), out, events);
        case Message::RELEASE: return on_release(s, msg.getRelease(), out);
        case Message::ABORT: {
            auto reason = detail::to_string(msg.getAbort().getReason());
            s.closed_ = true;
            s.detail_ = "peer aborted: " + reason;
            events.emplace_back(std::in_place_type<PeerAborted>, PeerAborted{std::move(reason)});
            return {};
        }
        case Message::UNIMPLEMENTED:
            // The peer did not understand something we sent. Answering would risk a loop of
            // echoes (go-capnproto2 ignores these too); our Returns need nothing back.
            log::debug("rpc: peer sent unimplemented");
            return {};
        default: {
            // Resolve, Disembargo, Provide, Accept, Join and whatever comes later: we never
            // export promises or take part in three-party handoffs.
            capnp::MallocMessageBuilder mb;
            mb.initRoot<Message>().setUnimplemented(msg);
            detail::append_message(mb, out);
            return {};
        }
        }
    } catch (const kj::Exception& e) {
        return s.fail_session(Errc::Protocol, "rpc: malformed message",
                              "malformed message: " + detail::describe(e), out);
    } catch (...) {
        return s.fail_session(Errc::Protocol, "rpc: malformed message", "malformed message", out);
    }
}

Status RegistrationServer::Impl::admit_question(RegistrationServer& s, uint32_t question,
                                                std::string& out) {
    if (s.answers_.count(question) != 0) {
        return s.fail_session(Errc::Protocol, "rpc: question id reused",
                              "question id " + std::to_string(question) + " still in use", out);
    }
    if (s.answers_.size() >= s.limits_.max_questions) {
        return s.fail_session(
            Errc::Busy, "rpc: too many questions",
            "more than " + std::to_string(s.limits_.max_questions) + " questions in flight", out);
    }
    return {};
}

Status RegistrationServer::Impl::on_bootstrap(RegistrationServer& s,
                                              capnp::rpc::Bootstrap::Reader boot,
                                              std::string& out) {
    uint32_t q = boot.getQuestionId();
    if (auto st = admit_question(s, q, out); !st) {
        return st;
    }
    if (s.export_refs_ == std::numeric_limits<uint32_t>::max()) {
        return s.fail_session(Errc::Busy, "rpc: too many references", "reference count overflow",
                              out);
    }
    send_bootstrap_return(out, q);
    s.export_refs_++;
    Answer a;
    a.is_bootstrap = true;
    a.returned = true;
    a.holds_cap = true;
    s.answers_[q] = a;
    return {};
}

// nullptr when `t` names our RegistrationServer, else why not.
const char* RegistrationServer::Impl::check_target(RegistrationServer& s,
                                                   capnp::rpc::MessageTarget::Reader t) {
    switch (t.which()) {
    case capnp::rpc::MessageTarget::IMPORTED_CAP:
        if (t.getImportedCap() != kBootstrapExport || s.export_refs_ == 0) {
            return "call to an unknown capability";
        }
        return nullptr;
    case capnp::rpc::MessageTarget::PROMISED_ANSWER: {
        auto pa = t.getPromisedAnswer();
        auto it = s.answers_.find(pa.getQuestionId());
        if (it == s.answers_.end()) {
            return "call pipelined on an unknown question";
        }
        // A bootstrap answer's content is the capability itself: only an empty transform (or
        // no-ops) leads to it. Other answers carry no capabilities at all.
        if (!it->second.is_bootstrap || !all_noop(pa.getTransform())) {
            return "no capability at that pipelined target";
        }
        return nullptr;
    }
    }
    return "unsupported message target";
}

Status RegistrationServer::Impl::on_call(RegistrationServer& s, capnp::rpc::Call::Reader call,
                                         std::string& out, std::vector<ServerEvent>& events) {
    uint32_t q = call.getQuestionId();
    if (auto st = admit_question(s, q, out); !st) {
        return st;
    }
    // From here on the question exists until the peer's Finish, whatever we answer.
    Answer a;
    a.returned = true;
    s.answers_[q] = a;

    if (const char* why = check_target(s, call.getTarget())) {
        detail::append_exception_return(out, q, why);
        return {};
    }
    if (call.getSendResultsTo().which() != capnp::rpc::Call::SendResultsTo::CALLER) {
        detail::append_exception_return(out, q, "results can only be sent to the caller",
                                        Exception::Type::UNIMPLEMENTED);
        return {};
    }
    if (call.getInterfaceId() != kRegistrationInterfaceId) {
        detail::append_exception_return(out, q, "interface not implemented",
                                        Exception::Type::UNIMPLEMENTED);
        return {};
    }
    uint16_t method = call.getMethodId();
    if (method > uint16_t(Method::UpdateLocalConfiguration)) {
        detail::append_exception_return(out, q, "method not implemented",
                                        Exception::Type::UNIMPLEMENTED);
        return {};
    }

    // Bad parameters fail this call only; the session goes on, as with any callee error.
    CallId id = s.next_call_;
    ServerEvent ev = UnregisterCall{id};
    try {
        auto content = call.getParams().getContent();
        if (method == uint16_t(Method::RegisterConnection)) {
            auto req = detail::decode(content.getAs<detail::RegParams>(), s.limits_);
            if (!req) {
                detail::append_exception_return(
                    out, q, std::string("invalid registerConnection params: ") + req.error().op);
                return {};
            }
            ev = RegisterCall{id, std::move(*req)};
        } else if (method == uint16_t(Method::UpdateLocalConfiguration)) {
            auto config = content.getAs<detail::ConfigParams>().getConfig();
            ev = UpdateConfigCall{id, detail::to_string(config)};
        }
    } catch (const kj::Exception& e) {
        detail::append_exception_return(out, q, "invalid params: " + detail::describe(e));
        return {};
    }
    s.next_call_++;
    a.returned = false;
    a.call = id;
    a.method = Method(method);
    s.answers_[q] = a;
    s.pending_[id] = q;
    events.push_back(std::move(ev));
    return {};
}

Status RegistrationServer::Impl::on_finish(RegistrationServer& s, capnp::rpc::Finish::Reader fin,
                                           std::string& out, std::vector<ServerEvent>& events) {
    auto it = s.answers_.find(fin.getQuestionId());
    if (it == s.answers_.end()) {
        // Nothing is kept for it, so nothing to free; go-capnproto2 only logs these too.
        log::debug("rpc: finish for an unknown question", {{"question", fin.getQuestionId()}});
        return {};
    }
    Answer a = it->second;
    s.answers_.erase(it);
    if (!a.returned) {
        // The caller gave up; the question id stays taken on its side until a Return arrives.
        send_canceled(out, fin.getQuestionId());
        s.pending_.erase(a.call);
        events.emplace_back(std::in_place_type<CallCanceled>, CallCanceled{a.call});
    }
    if (a.holds_cap && fin.getReleaseResultCaps() && s.export_refs_ > 0) {
        s.export_refs_--;
    }
    return {};
}

Status RegistrationServer::Impl::on_release(RegistrationServer& s, capnp::rpc::Release::Reader rel,
                                            std::string& out) {
    if (rel.getId() != kBootstrapExport || rel.getReferenceCount() > s.export_refs_) {
        return s.fail_session(Errc::Protocol, "rpc: release of an unknown capability",
                              "release of export " + std::to_string(rel.getId()) + " x" +
                                  std::to_string(rel.getReferenceCount()) + ", held " +
                                  std::to_string(s.export_refs_),
                              out);
    }
    s.export_refs_ -= rel.getReferenceCount();
    return {};
}

RegistrationServer::RegistrationServer(Limits limits)
    : limits_(limits), frames_(FrameLimits{limits.max_segments, limits.max_message_bytes}) {}

Status RegistrationServer::fail_session(Errc code, const char* op, std::string why,
                                        std::string& out) {
    if (!closed_) {
        detail::append_abort(out, why);
    }
    closed_ = true;
    detail_ = std::move(why);
    return Err{code, 0, op};
}

Status RegistrationServer::feed(std::string_view in, std::string& out,
                                std::vector<ServerEvent>& events) {
    if (closed_) {
        return Err{Errc::Closed, 0, "rpc: session closed"};
    }
    Frame frame;
    while (!in.empty() && !closed_) {
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

Result<uint32_t> RegistrationServer::take_pending(CallId id, Reply reply) {
    auto it = pending_.find(id);
    if (it == pending_.end()) {
        return Err{Errc::NotFound, 0, "rpc: no such call (answered or canceled)"};
    }
    uint32_t q = it->second;
    auto ans = answers_.find(q);
    CFD_CHECK(ans != answers_.end());  // pending_ only names open answers
    bool is_register = ans->second.method == Method::RegisterConnection;
    if ((reply == Reply::Registration && !is_register) || (reply == Reply::Empty && is_register)) {
        return Err{Errc::Invalid, 0, "rpc: answer does not match the call's method"};
    }
    pending_.erase(it);
    ans->second.returned = true;
    ans->second.call = 0;
    return q;
}

namespace {

template <class Fill>
Status send_results(bool closed, std::string& out, uint32_t question, Fill fill) {
    if (closed) {
        return Err{Errc::Closed, 0, "rpc: session closed"};
    }
    try {
        capnp::MallocMessageBuilder mb;
        auto ret = mb.initRoot<Message>().initReturn();
        ret.setAnswerId(question);
        auto results = ret.initResults();
        fill(results.getContent());
        results.initCapTable(0);
        detail::append_message(mb, out);
    } catch (const kj::Exception& e) {
        // Only the owner's values get here (a field beyond Cap'n Proto's size limits). The
        // peer still needs an answer to its question.
        log::warn("rpc: cannot encode results", {{"error", detail::describe(e)}});
        detail::append_exception_return(out, question, "edge could not encode the results");
    }
    return {};
}

}  // namespace

Status RegistrationServer::accept_registration(CallId id, const ConnectionDetails& details,
                                               std::string& out) {
    auto q = take_pending(id, Reply::Registration);
    if (!q) {
        return q.error();
    }
    return send_results(closed_, out, *q, [&](capnp::AnyPointer::Builder content) {
        detail::encode(details, content.initAs<detail::RegResults>());
    });
}

Status RegistrationServer::refuse_registration(CallId id, const ConnectionError& error,
                                               std::string& out) {
    auto q = take_pending(id, Reply::Registration);
    if (!q) {
        return q.error();
    }
    return send_results(closed_, out, *q, [&](capnp::AnyPointer::Builder content) {
        detail::encode(error, content.initAs<detail::RegResults>());
    });
}

Status RegistrationServer::complete(CallId id, std::string& out) {
    // unregisterConnection and updateLocalConfiguration both return an empty struct.
    auto q = take_pending(id, Reply::Empty);
    if (!q) {
        return q.error();
    }
    return send_results(closed_, out, *q, [](capnp::AnyPointer::Builder content) {
        content.initAs<schema::RegistrationServer::UnregisterConnectionResults>();
    });
}

Status RegistrationServer::fail(CallId id, std::string_view reason, std::string& out) {
    auto q = take_pending(id, Reply::Exception);
    if (!q) {
        return q.error();
    }
    if (closed_) {
        return Err{Errc::Closed, 0, "rpc: session closed"};
    }
    // The reason is the owner's text: clamp it rather than fail on an absurd size.
    detail::append_exception_return(out, *q, reason.substr(0, 4096));
    return {};
}

void RegistrationServer::abort(std::string_view reason, std::string& out) {
    if (!closed_) {
        detail::append_abort(out, reason);
    }
    closed_ = true;
    detail_ = std::string(reason);
}

}  // namespace cfd::rpc
