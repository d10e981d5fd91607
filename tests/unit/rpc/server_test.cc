// The edge's RPC server fed by hand-built messages: what go-capnproto2 (cloudflared) sends, and
// what a hostile or confused peer might.
#include <doctest/doctest.h>

#include <random>

#include "cfd/rpc/server.h"
#include "rpc_test_util.h"

using namespace cfd;
using namespace cfd::rpc;
using rpctest::Message;

namespace {

// go-capnproto2 builds every message in one segment (capnp.SingleSegment).
struct GoMessage {
    capnp::MallocMessageBuilder mb{2048};
    Message::Builder root() { return mb.getRoot<Message>(); }
    Message::Builder init() { return mb.initRoot<Message>(); }
    std::string bytes() {
        REQUIRE(mb.getSegmentsForOutput().size() == 1);
        return rpctest::serialize(mb);
    }
};

std::string go_bootstrap(uint32_t q) {
    GoMessage m;
    m.init().initBootstrap().setQuestionId(q);
    return m.bytes();
}

std::string go_finish(uint32_t q, bool release_result_caps) {
    GoMessage m;
    auto f = m.init().initFinish();
    f.setQuestionId(q);
    f.setReleaseResultCaps(release_result_caps);
    return m.bytes();
}

std::string go_release(uint32_t id, uint32_t count) {
    GoMessage m;
    auto r = m.init().initRelease();
    r.setId(id);
    r.setReferenceCount(count);
    return m.bytes();
}

std::string go_abort(const char* reason) {
    GoMessage m;
    auto e = m.init().initAbort();
    e.setReason(reason);
    e.setType(capnp::rpc::Exception::Type::FAILED);
    return m.bytes();
}

enum class Target { Promised, Imported };

// A Call as go-capnproto2's question.lockedPipelineCall (promised) or importClient (imported)
// writes it: target, interface and method ids, params with an explicit empty capTable.
std::string go_call(uint32_t q, Target target, uint32_t target_id, uint64_t interface_id,
                    uint16_t method, const RegisterRequest* req = nullptr,
                    const char* config = nullptr) {
    GoMessage m;
    auto call = m.init().initCall();
    call.setQuestionId(q);
    call.setInterfaceId(interface_id);
    call.setMethodId(method);
    auto t = call.initTarget();
    if (target == Target::Promised) {
        auto pa = t.initPromisedAnswer();
        pa.setQuestionId(target_id);
        pa.initTransform(0);
    } else {
        t.setImportedCap(target_id);
    }
    auto params = call.initParams();
    auto content = params.getContent();
    if (req != nullptr) {
        detail::encode(*req, content.initAs<detail::RegParams>());
    } else if (config != nullptr) {
        content.initAs<detail::ConfigParams>().setConfig(detail::as_data(std::string_view(config)));
    } else {
        content.initAs<schema::RegistrationServer::UnregisterConnectionParams>();
    }
    params.initCapTable(0);
    return m.bytes();
}

// The one Return in `bytes`.
struct SeenReturn {
    uint32_t answer = 0;
    capnp::rpc::Return::Which which{};
    std::string reason;
    capnp::rpc::Exception::Type type{};
};

SeenReturn only_return(const std::string& bytes) {
    SeenReturn r;
    size_t n = rpctest::each_message(bytes, [&](Message::Reader m) {
        REQUIRE(m.which() == Message::RETURN);
        auto ret = m.getReturn();
        r.answer = ret.getAnswerId();
        r.which = ret.which();
        if (ret.which() == capnp::rpc::Return::EXCEPTION) {
            r.reason = detail::to_string(ret.getException().getReason());
            r.type = ret.getException().getType();
        }
    });
    REQUIRE(n == 1);
    return r;
}

struct Edge {
    RegistrationServer server;
    std::string out;
    std::vector<ServerEvent> events;

    explicit Edge(Limits limits = {}) : server(limits) {}

    Status feed(const std::string& bytes) {
        out.clear();
        events.clear();
        return server.feed(bytes, out, events);
    }
};

}  // namespace

TEST_CASE("rpc server: golden bytes of go-capnproto2's bootstrap + registerConnection") {
    // Bootstrap{questionId: 0} exactly as go-capnproto2 puts it on the wire: framing header,
    // root pointer, Message{which = bootstrap(8)}, Bootstrap{questionId = 0}.
    const uint8_t golden[] = {
        0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,  // 1 segment of 5 words
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,  // root: struct, 1 data word, 1 ptr
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // Message union tag 8 = bootstrap
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,  // -> Bootstrap: 1 data word, 1 ptr
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // questionId = 0
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // deprecatedObjectId = null
    };
    std::string boot(reinterpret_cast<const char*>(golden), sizeof(golden));
    CHECK(boot == go_bootstrap(0));  // the test's builders write the very same bytes

    RegisterRequest req = rpctest::sample_request();
    std::string call = go_call(1, Target::Promised, 0, kRegistrationInterfaceId,
                               uint16_t(Method::RegisterConnection), &req);
    Edge edge;
    // cloudflared writes both before reading anything.
    REQUIRE(edge.feed(boot + call));

    // The bootstrap Return: content is capability 0 of a capTable naming our export.
    size_t n = rpctest::each_message(edge.out, [&](Message::Reader m) {
        REQUIRE(m.which() == Message::RETURN);
        auto ret = m.getReturn();
        CHECK(ret.getAnswerId() == 0);
        REQUIRE(ret.which() == capnp::rpc::Return::RESULTS);
        auto results = ret.getResults();
        CHECK(results.getContent().getPointerType() == capnp::PointerType::CAPABILITY);
        REQUIRE(results.getCapTable().size() == 1);
        auto desc = results.getCapTable()[0];
        REQUIRE(desc.which() == capnp::rpc::CapDescriptor::SENDER_HOSTED);
        CHECK(desc.getSenderHosted() == 0);
    });
    CHECK(n == 1);
    REQUIRE(edge.events.size() == 1);
    REQUIRE(std::holds_alternative<RegisterCall>(edge.events[0]));
    auto reg = std::get<RegisterCall>(edge.events[0]);
    CHECK(reg.request.tunnel_id == req.tunnel_id);
    CHECK(reg.request.auth.tunnel_secret == req.auth.tunnel_secret);
    CHECK(reg.request.options.client.features == req.options.client.features);
    CHECK(edge.server.export_refs() == 1);

    // go-capnproto2 finishes the bootstrap keeping the capability (releaseResultCaps=false).
    REQUIRE(edge.feed(go_finish(0, false)));
    CHECK(edge.out.empty());
    CHECK(edge.server.export_refs() == 1);

    REQUIRE(edge.server.accept_registration(reg.id, ConnectionDetails{Uuid::random(), "MCI", false},
                                            edge.out));
    rpctest::each_message(edge.out, [&](Message::Reader m) {
        REQUIRE(m.which() == Message::RETURN);
        CHECK(m.getReturn().getAnswerId() == 1);
        auto details = m.getReturn()
                           .getResults()
                           .getContent()
                           .getAs<detail::RegResults>()
                           .getResult()
                           .getResult();
        REQUIRE(details.which() == schema::ConnectionResponse::Result::CONNECTION_DETAILS);
        CHECK(details.getConnectionDetails().getLocationName() == "MCI");
    });
    REQUIRE(edge.feed(go_finish(1, false)));
    CHECK(edge.server.answers() == 0);

    // Later calls go to the import; question id 0 is free again and go-capnproto2 reuses it.
    REQUIRE(edge.feed(go_call(0, Target::Imported, 0, kRegistrationInterfaceId,
                              uint16_t(Method::UnregisterConnection))));
    REQUIRE(edge.events.size() == 1);
    auto un = std::get<UnregisterCall>(edge.events[0]);
    REQUIRE(edge.server.complete(un.id, edge.out));
    CHECK(only_return(edge.out).which == capnp::rpc::Return::RESULTS);
    REQUIRE(edge.feed(go_finish(0, false)));

    // cloudflared's Close: Release of the import, then Abort.
    REQUIRE(edge.feed(go_release(0, 1) + go_abort("rpc: shutdown")));
    CHECK(edge.server.export_refs() == 0);
    REQUIRE(edge.events.size() == 1);
    CHECK(std::get<PeerAborted>(edge.events[0]).reason == "rpc: shutdown");
    CHECK(edge.server.closed());
    CHECK(edge.server.feed("x", edge.out, edge.events).error().code == Errc::Closed);
}

TEST_CASE("rpc server: calls on the promised answer and on the imported cap both land") {
    Edge edge;
    REQUIRE(edge.feed(go_bootstrap(5)));
    REQUIRE(edge.feed(go_call(6, Target::Promised, 5, kRegistrationInterfaceId, 2, nullptr, "{}")));
    REQUIRE(edge.events.size() == 1);
    CHECK(std::get<UpdateConfigCall>(edge.events[0]).config == "{}");
    REQUIRE(edge.feed(
        go_call(7, Target::Imported, 0, kRegistrationInterfaceId, 2, nullptr, "{\"a\":1}")));
    REQUIRE(edge.events.size() == 1);
    CHECK(std::get<UpdateConfigCall>(edge.events[0]).config == "{\"a\":1}");
    CHECK(edge.server.pending_calls() == 2);
}

TEST_CASE("rpc server: bad targets, unknown interfaces and methods get exception Returns") {
    Edge edge;
    REQUIRE(edge.feed(go_bootstrap(0)));

    REQUIRE(edge.feed(go_call(1, Target::Promised, 0, kRegistrationInterfaceId, 9)));
    auto r = only_return(edge.out);
    CHECK(r.answer == 1);
    CHECK(r.which == capnp::rpc::Return::EXCEPTION);
    CHECK(r.type == capnp::rpc::Exception::Type::UNIMPLEMENTED);
    CHECK(r.reason == "method not implemented");
    CHECK(edge.events.empty());

    REQUIRE(edge.feed(go_call(2, Target::Imported, 0, 0x1234, 0)));
    r = only_return(edge.out);
    CHECK(r.type == capnp::rpc::Exception::Type::UNIMPLEMENTED);
    CHECK(r.reason == "interface not implemented");

    REQUIRE(edge.feed(go_call(3, Target::Imported, 42, kRegistrationInterfaceId, 1)));
    CHECK(only_return(edge.out).reason == "call to an unknown capability");

    REQUIRE(edge.feed(go_call(4, Target::Promised, 99, kRegistrationInterfaceId, 1)));
    CHECK(only_return(edge.out).reason == "call pipelined on an unknown question");

    // Pipelining on a call's answer finds no capability there.
    REQUIRE(edge.feed(go_call(5, Target::Promised, 1, kRegistrationInterfaceId, 1)));
    CHECK(only_return(edge.out).reason == "no capability at that pipelined target");

    // Parameters that decode but make no sense fail the call, not the session.
    RegisterRequest req = rpctest::sample_request();
    GoMessage m;
    auto call = m.init().initCall();
    call.setQuestionId(6);
    call.setInterfaceId(kRegistrationInterfaceId);
    call.setMethodId(0);
    call.initTarget().setImportedCap(0);
    auto params = call.initParams().getContent().initAs<detail::RegParams>();
    detail::encode(req, params);
    params.setTunnelId(detail::as_data("short"));
    REQUIRE(edge.feed(m.bytes()));
    r = only_return(edge.out);
    CHECK(r.reason.find("tunnelId") != std::string::npos);
    CHECK(edge.events.empty());
    CHECK(!edge.server.closed());

    // Every one of those questions is still open until the peer finishes it.
    CHECK(edge.server.answers() == 7);
    for (uint32_t q = 0; q <= 6; ++q) {
        REQUIRE(edge.feed(go_finish(q, true)));
    }
    CHECK(edge.server.answers() == 0);
    CHECK(edge.server.export_refs() == 0);  // releaseResultCaps on the bootstrap answer
}

TEST_CASE("rpc server: Finish before the answer cancels the call") {
    Edge edge;
    REQUIRE(edge.feed(go_bootstrap(0)));
    RegisterRequest req = rpctest::sample_request();
    REQUIRE(edge.feed(go_call(1, Target::Promised, 0, kRegistrationInterfaceId, 0, &req)));
    CallId id = std::get<RegisterCall>(edge.events.at(0)).id;
    REQUIRE(edge.feed(go_finish(1, true)));
    auto r = only_return(edge.out);
    CHECK(r.answer == 1);
    CHECK(r.which == capnp::rpc::Return::CANCELED);
    REQUIRE(edge.events.size() == 1);
    CHECK(std::get<CallCanceled>(edge.events[0]).id == id);
    CHECK(edge.server.pending_calls() == 0);
    // The late answer goes nowhere, even though question id 1 is asked again meanwhile.
    REQUIRE(edge.feed(go_call(1, Target::Imported, 0, kRegistrationInterfaceId, 1)));
    std::string late;
    CHECK(edge.server.accept_registration(id, ConnectionDetails{}, late).error().code ==
          Errc::NotFound);
    CHECK(late.empty());
    // Finish for a question never asked is ignored.
    REQUIRE(edge.feed(go_finish(77, true)));
    CHECK(edge.out.empty());
}

TEST_CASE("rpc server: Release bookkeeping, and over-release is a protocol error") {
    Edge edge;
    REQUIRE(
        edge.feed(go_bootstrap(0) + go_bootstrap(1) + go_finish(0, false) + go_finish(1, false)));
    CHECK(edge.server.export_refs() == 2);
    REQUIRE(edge.feed(go_release(0, 1)));
    CHECK(edge.server.export_refs() == 1);
    auto st = edge.feed(go_release(0, 2));
    REQUIRE(!st);
    CHECK(st.error().code == Errc::Protocol);
    CHECK(rpctest::kinds(edge.out) == std::vector<Message::Which>{Message::ABORT});
    CHECK(edge.server.closed());
}

TEST_CASE("rpc server: a flood of questions is bounded") {
    Limits limits;
    limits.max_questions = 16;
    Edge edge(limits);
    std::string flood = go_bootstrap(0);
    for (uint32_t q = 1; q < 100; ++q) {
        flood += go_call(q, Target::Imported, 0, kRegistrationInterfaceId, 1);
    }
    auto st = edge.feed(flood);
    REQUIRE(!st);
    CHECK(st.error().code == Errc::Busy);
    CHECK(edge.server.answers() == 16);
    CHECK(edge.server.pending_calls() == 15);
    CHECK(edge.events.size() == 15);
    auto kinds = rpctest::kinds(edge.out);
    REQUIRE(!kinds.empty());
    CHECK(kinds.back() == Message::ABORT);
    CHECK(kinds.size() == 2);  // the bootstrap Return, then the Abort
}

TEST_CASE("rpc server: a question id still in use is a protocol error") {
    Edge edge;
    REQUIRE(edge.feed(go_bootstrap(0)));
    auto st = edge.feed(go_call(0, Target::Imported, 0, kRegistrationInterfaceId, 1));
    REQUIRE(!st);
    CHECK(st.error().code == Errc::Protocol);
    CHECK(rpctest::kinds(edge.out) == std::vector<Message::Which>{Message::ABORT});
}

TEST_CASE("rpc server: message types outside the subset are echoed as Unimplemented") {
    Edge edge;
    GoMessage m;
    auto d = m.init().initDisembargo();
    d.initTarget().setImportedCap(0);
    d.getContext().setSenderLoopback(3);
    REQUIRE(edge.feed(m.bytes()));
    size_t n = rpctest::each_message(edge.out, [](Message::Reader r) {
        REQUIRE(r.which() == Message::UNIMPLEMENTED);
        auto echoed = r.getUnimplemented();
        REQUIRE(echoed.which() == Message::DISEMBARGO);
        CHECK(echoed.getDisembargo().getContext().getSenderLoopback() == 3);
    });
    CHECK(n == 1);
    // And an Unimplemented from the peer is not answered at all (no echo loops).
    GoMessage u;
    u.init().initUnimplemented().initReturn().setAnswerId(0);
    REQUIRE(edge.feed(u.bytes()));
    CHECK(edge.out.empty());
    CHECK(!edge.server.closed());
}

TEST_CASE("rpc server: a valid frame with garbage inside fails cleanly with an Abort") {
    // Root pointer far outside the segment.
    const uint8_t bad[] = {0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                           0xfc, 0xff, 0xff, 0x7f, 0x01, 0x00, 0x01, 0x00};
    Edge edge;
    auto st = edge.feed(std::string(reinterpret_cast<const char*>(bad), sizeof(bad)));
    REQUIRE(!st);
    CHECK(st.error().code == Errc::Protocol);
    CHECK(rpctest::kinds(edge.out) == std::vector<Message::Which>{Message::ABORT});
    CHECK(edge.server.detail().find("malformed") != std::string::npos);
}

TEST_CASE("rpc server: a capability pointer where params should be is refused, not followed") {
    Edge edge;
    REQUIRE(edge.feed(go_bootstrap(0)));
    GoMessage m;
    auto call = m.init().initCall();
    call.setQuestionId(1);
    call.setInterfaceId(kRegistrationInterfaceId);
    call.setMethodId(0);
    call.initTarget().setImportedCap(0);
    capnp::BuilderCapabilityTable caps;
    caps.imbue(call.initParams().getContent())
        .setAs<capnp::Capability>(capnp::Capability::Client(capnp::newBrokenCap("x")));
    REQUIRE(edge.feed(m.bytes()));
    CHECK(only_return(edge.out).which == capnp::rpc::Return::EXCEPTION);
    CHECK(edge.events.empty());
}

TEST_CASE("rpc server: random bytes and mutated messages never crash it") {
    RegisterRequest req = rpctest::sample_request();
    std::string valid = go_bootstrap(0) +
                        go_call(1, Target::Promised, 0, kRegistrationInterfaceId, 0, &req) +
                        go_finish(0, false);
    std::mt19937 rng(12345);
    int ok = 0;
    int failed = 0;
    for (int round = 0; round < 2000; ++round) {
        std::string bytes = valid;
        int flips = 1 + int(rng() % 8);
        for (int i = 0; i < flips; ++i) {
            bytes[rng() % bytes.size()] = char(rng());
        }
        if (round % 4 == 0) {
            bytes.resize(rng() % bytes.size());
        }
        Edge edge;
        auto st = edge.feed(bytes);
        // Either it went through, or it failed and said so with an Abort.
        if (!st) {
            CHECK(edge.server.closed());
            ++failed;
        } else {
            ++ok;
        }
        CHECK(edge.server.answers() <= Limits{}.max_questions);
    }
    // Both outcomes were exercised, so the loop tested something.
    CHECK(ok > 0);
    CHECK(failed > 0);
}
