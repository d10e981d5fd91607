// The edge's side of the registration RPC: a byte-in/byte-out Cap'n Proto RPC state machine
// serving one RegistrationServer capability to the connector on the control stream.
//
// It answers Bootstrap itself (export 0, senderHosted) and accepts Calls addressed either to that
// import or pipelined on the bootstrap question (promisedAnswer), as go-capnproto2 and the C++
// library both send them. Calls it understands become events; the owner answers each one later
// through the methods below, with the CallId the event carried. Finish, Release and Abort are
// handled here. Unknown interfaces and methods get an "unimplemented" exception Return; message
// types outside this subset get an Unimplemented echo. A protocol violation queues an Abort in
// `out` and fails the session.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/rpc/frame.h"
#include "cfd/rpc/types.h"

namespace cfd::rpc {

// The owner's handle on a call it must answer. Never reused within a session, unlike the peer's
// question ids, so a late answer can never land on a newer question.
using CallId = uint64_t;

struct RegisterCall {
    CallId id;
    RegisterRequest request;
};
struct UnregisterCall {
    CallId id;
};
struct UpdateConfigCall {
    CallId id;
    std::string config;  // opaque bytes (cloudflared sends JSON)
};
// The peer sent Finish before the owner answered: a Return "canceled" went out already, and
// answering this id now is a no-op returning NotFound.
struct CallCanceled {
    CallId id;
};
// The peer ended the session with Abort (cloudflared does on a clean close).
struct PeerAborted {
    std::string reason;
};

using ServerEvent =
    std::variant<RegisterCall, UnregisterCall, UpdateConfigCall, CallCanceled, PeerAborted>;

class RegistrationServer {
public:
    explicit RegistrationServer(Limits limits = {});

    // Consumes bytes the peer sent. Replies that need no owner decision (Return for Bootstrap,
    // exceptions, Unimplemented, Abort) are appended to `out`; what the owner must act on to
    // `events`. An error is final: send what is in `out`, then close the stream.
    [[nodiscard]] Status feed(std::string_view in, std::string& out,
                              std::vector<ServerEvent>& events);

    // Answers a RegisterCall.
    [[nodiscard]] Status accept_registration(CallId id, const ConnectionDetails& details,
                                             std::string& out);
    [[nodiscard]] Status refuse_registration(CallId id, const ConnectionError& error,
                                             std::string& out);
    // Answers an UnregisterCall or an UpdateConfigCall (both return nothing).
    [[nodiscard]] Status complete(CallId id, std::string& out);
    // Answers any call with an exception carrying `reason`.
    [[nodiscard]] Status fail(CallId id, std::string_view reason, std::string& out);

    // Ends the session from our side: appends an Abort carrying `reason`.
    void abort(std::string_view reason, std::string& out);

    size_t answers() const { return answers_.size(); }        // questions not yet Finished
    size_t pending_calls() const { return pending_.size(); }  // calls the owner owes
    uint32_t export_refs() const { return export_refs_; }     // peer's refs on the bootstrap cap
    bool closed() const { return closed_; }
    // Why the session failed or ended, for logs (never holds secrets).
    const std::string& detail() const { return detail_; }

private:
    struct Answer {
        bool is_bootstrap = false;
        bool returned = false;   // our Return went out
        bool holds_cap = false;  // the Return's capTable holds one ref on export 0
        Method method = Method::RegisterConnection;
        CallId call = 0;  // while the owner owes the Return
    };

    class Impl;
    friend class Impl;

    // What the owner answers with; it must fit the call's method.
    enum class Reply : uint8_t { Registration, Empty, Exception };
    [[nodiscard]] Result<uint32_t> take_pending(CallId id, Reply reply);
    [[nodiscard]] Status fail_session(Errc code, const char* op, std::string detail,
                                      std::string& out);

    Limits limits_;
    FrameReader frames_;
    std::unordered_map<uint32_t, Answer> answers_;  // by the peer's question id; bounded
    std::unordered_map<CallId, uint32_t> pending_;  // owner's handle -> question id
    CallId next_call_ = 1;
    uint32_t export_refs_ = 0;
    bool closed_ = false;
    std::string detail_;
};

}  // namespace cfd::rpc
