// The connector's side of the registration RPC: a byte-in/byte-out Cap'n Proto RPC client of
// the edge's RegistrationServer, run on the control stream.
//
//   RegistrationClient c;
//   c.start(out);                                    // Bootstrap (question 0)
//   auto q = c.register_connection(req, out);        // pipelined on the bootstrap answer
//   ... send `out` on the stream; for each chunk received:
//   c.feed(bytes, out, events);                      // Registered / Refused / CallFailed ...
//
// Calls made before the bootstrap Return target promisedAnswer{bootstrap question}, later ones
// the imported capability, as Cap'n Proto's own clients do. Every question the client is done
// with gets a Finish. A feed() error (peer Abort, protocol violation) ends the session; detail()
// says why.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/rpc/frame.h"
#include "cfd/rpc/types.h"

namespace cfd::rpc {

struct Registered {
    uint32_t question;
    ConnectionDetails details;
};
struct Refused {
    uint32_t question;
    ConnectionError error;
};
struct Unregistered {
    uint32_t question;
};
struct ConfigUpdated {
    uint32_t question;
};
// A call came back with an exception (or canceled, or a result we could not read).
struct CallFailed {
    uint32_t question;
    Method method;
    std::string reason;
};

using ClientEvent = std::variant<Registered, Refused, Unregistered, ConfigUpdated, CallFailed>;

class RegistrationClient {
public:
    explicit RegistrationClient(Limits limits = {});

    // Appends the Bootstrap message. Call once, first.
    void start(std::string& out);

    // Each appends one Call and returns its question id, which the matching event carries.
    [[nodiscard]] Result<uint32_t> register_connection(const RegisterRequest& req,
                                                       std::string& out);
    [[nodiscard]] Result<uint32_t> unregister_connection(std::string& out);
    [[nodiscard]] Result<uint32_t> update_local_configuration(std::string_view config,
                                                              std::string& out);

    // Consumes bytes the edge sent. Finish messages and replies to anything the edge asks of
    // us go to `out`; call outcomes to `events`. An error is final.
    [[nodiscard]] Status feed(std::string_view in, std::string& out,
                              std::vector<ClientEvent>& events);

    // Releases the edge's capability and aborts the session, as cloudflared's Close does.
    void close(std::string& out);

    size_t outstanding() const { return questions_.size(); }  // questions without a Return
    bool has_capability() const { return import_.has_value(); }
    bool closed() const { return closed_; }
    const std::string& detail() const { return detail_; }

private:
    struct Question {
        bool is_bootstrap = false;
        Method method = Method::RegisterConnection;
    };

    class Impl;
    friend class Impl;

    [[nodiscard]] Result<uint32_t> new_question(bool is_bootstrap, Method method);
    [[nodiscard]] Status fail_session(Errc code, const char* op, std::string why, std::string& out);

    Limits limits_;
    FrameReader frames_;
    std::unordered_map<uint32_t, Question> questions_;  // bounded by limits_.max_questions
    bool started_ = false;
    std::optional<uint32_t> bootstrap_question_;  // while its Return is awaited
    std::optional<uint32_t> import_;              // the edge's export id for its server
    uint32_t import_refs_ = 0;
    bool closed_ = false;
    std::string detail_;
};

}  // namespace cfd::rpc
