// The connector's RPC client fed by hand-built edge replies, including unfriendly ones.
#include <doctest/doctest.h>

#include <random>

#include "cfd/rpc/client.h"
#include "cfd/rpc/server.h"
#include "rpc_test_util.h"

using namespace cfd;
using namespace cfd::rpc;
using rpctest::Message;

namespace {

struct Connector {
    RegistrationClient client;
    std::string out;
    std::vector<ClientEvent> events;

    explicit Connector(Limits limits = {}) : client(limits) {}

    Status feed(const std::string& bytes) {
        out.clear();
        events.clear();
        return client.feed(bytes, out, events);
    }
};

// A bootstrap Return whose capTable holds `entries` descriptors, the content naming `index`.
std::string bootstrap_return(uint32_t q, unsigned entries, unsigned index, bool promise) {
    capnp::MallocMessageBuilder mb;
    auto ret = mb.initRoot<Message>().initReturn();
    ret.setAnswerId(q);
    auto results = ret.initResults();
    capnp::BuilderCapabilityTable caps;
    auto content = caps.imbue(results.getContent());
    for (unsigned i = 0; i <= index; ++i) {
        content.setAs<capnp::Capability>(capnp::Capability::Client(capnp::newBrokenCap("x")));
    }
    auto table = results.initCapTable(entries);
    for (unsigned i = 0; i < entries; ++i) {
        if (promise) {
            table[i].setSenderPromise(100 + i);
        } else {
            table[i].setSenderHosted(100 + i);
        }
    }
    return rpctest::serialize(mb);
}

std::string exception_return(uint32_t q, const char* reason) {
    capnp::MallocMessageBuilder mb;
    auto ret = mb.initRoot<Message>().initReturn();
    ret.setAnswerId(q);
    auto e = ret.initException();
    e.setReason(reason);
    return rpctest::serialize(mb);
}

}  // namespace

TEST_CASE("rpc client: Bootstrap first, calls pipelined on it until its Return") {
    Connector c;
    c.client.start(c.out);
    auto q = c.client.register_connection(rpctest::sample_request(), c.out);
    REQUIRE(q);
    CHECK(*q == 1);
    size_t n = 0;
    rpctest::each_message(c.out, [&](Message::Reader m) {
        if (n++ == 0) {
            REQUIRE(m.which() == Message::BOOTSTRAP);
            CHECK(m.getBootstrap().getQuestionId() == 0);
            return;
        }
        REQUIRE(m.which() == Message::CALL);
        auto call = m.getCall();
        CHECK(call.getInterfaceId() == 0xf71695ec7fe85497ULL);
        CHECK(call.getMethodId() == 0);
        REQUIRE(call.getTarget().which() == capnp::rpc::MessageTarget::PROMISED_ANSWER);
        CHECK(call.getTarget().getPromisedAnswer().getQuestionId() == 0);
        CHECK(call.getTarget().getPromisedAnswer().getTransform().size() == 0);
    });
    CHECK(n == 2);

    // The edge answers with a capTable of three, content naming entry 2 (a promise): the
    // client imports that one and finishes the bootstrap question keeping it.
    REQUIRE(c.feed(bootstrap_return(0, 3, 2, true)));
    CHECK(c.client.has_capability());
    rpctest::each_message(c.out, [](Message::Reader m) {
        REQUIRE(m.which() == Message::FINISH);
        CHECK(m.getFinish().getQuestionId() == 0);
        CHECK(!m.getFinish().getReleaseResultCaps());
    });
    c.out.clear();
    REQUIRE(c.client.unregister_connection(c.out));
    rpctest::each_message(c.out, [](Message::Reader m) {
        REQUIRE(m.which() == Message::CALL);
        CHECK(m.getCall().getQuestionId() == 0);  // the lowest free id, reused
        REQUIRE(m.getCall().getTarget().which() == capnp::rpc::MessageTarget::IMPORTED_CAP);
        CHECK(m.getCall().getTarget().getImportedCap() == 102);
    });
    // Closing releases that import once.
    c.out.clear();
    c.client.close(c.out);
    size_t releases = 0;
    rpctest::each_message(c.out, [&](Message::Reader m) {
        if (m.which() == Message::RELEASE) {
            CHECK(m.getRelease().getId() == 102);
            CHECK(m.getRelease().getReferenceCount() == 1);
            ++releases;
        }
    });
    CHECK(releases == 1);
}

TEST_CASE("rpc client: a failed bootstrap ends the session with the reason") {
    Connector c;
    c.client.start(c.out);
    REQUIRE(c.client.register_connection(rpctest::sample_request(), c.out));
    auto st = c.feed(exception_return(0, "no such service"));
    REQUIRE(!st);
    CHECK(c.client.detail().find("no such service") != std::string::npos);
    CHECK(rpctest::kinds(c.out) == std::vector<Message::Which>{Message::FINISH, Message::ABORT});

    // A Return whose content is not a capability is no better.
    Connector d;
    d.client.start(d.out);
    capnp::MallocMessageBuilder mb;
    auto ret = mb.initRoot<Message>().initReturn();
    ret.setAnswerId(0);
    ret.initResults().getContent().initAs<schema::ConnectionError>();
    CHECK(!d.feed(rpctest::serialize(mb)));
    CHECK(!d.client.has_capability());
}

TEST_CASE("rpc client: call exceptions and cancellations become CallFailed") {
    Connector c;
    c.client.start(c.out);
    auto q = c.client.register_connection(rpctest::sample_request(), c.out);
    REQUIRE(q);
    REQUIRE(c.feed(bootstrap_return(0, 1, 0, false) + exception_return(*q, "boom")));
    REQUIRE(c.events.size() == 1);
    auto failed = std::get<CallFailed>(c.events[0]);
    CHECK(failed.question == *q);
    CHECK(failed.reason == "boom");
    CHECK(rpctest::kinds(c.out) == std::vector<Message::Which>{Message::FINISH, Message::FINISH});

    q = c.client.update_local_configuration("{}", c.out);
    REQUIRE(q);
    capnp::MallocMessageBuilder mb;
    auto ret = mb.initRoot<Message>().initReturn();
    ret.setAnswerId(*q);
    ret.setCanceled();
    REQUIRE(c.feed(rpctest::serialize(mb)));
    REQUIRE(c.events.size() == 1);
    CHECK(std::get<CallFailed>(c.events[0]).method == Method::UpdateLocalConfiguration);
    CHECK(c.client.outstanding() == 0);
}

TEST_CASE("rpc client: a Return for a question never asked is a protocol error") {
    Connector c;
    c.client.start(c.out);
    auto st = c.feed(exception_return(9, "who?"));
    REQUIRE(!st);
    CHECK(st.error().code == Errc::Protocol);
    CHECK(rpctest::kinds(c.out) == std::vector<Message::Which>{Message::ABORT});
    CHECK(c.client.closed());
}

TEST_CASE("rpc client: what the edge asks of the connector gets a polite refusal") {
    Connector c;
    c.client.start(c.out);
    std::string in;
    {
        capnp::MallocMessageBuilder mb;
        mb.initRoot<Message>().initBootstrap().setQuestionId(0);
        in += rpctest::serialize(mb);
    }
    {
        capnp::MallocMessageBuilder mb;
        auto call = mb.initRoot<Message>().initCall();
        call.setQuestionId(1);
        call.initTarget().setImportedCap(0);
        in += rpctest::serialize(mb);
    }
    {
        capnp::MallocMessageBuilder mb;
        mb.initRoot<Message>().initFinish().setQuestionId(0);
        in += rpctest::serialize(mb);
    }
    {
        capnp::MallocMessageBuilder mb;
        mb.initRoot<Message>().initResolve().setPromiseId(4);
        in += rpctest::serialize(mb);
    }
    REQUIRE(c.feed(in));
    CHECK(rpctest::kinds(c.out) ==
          std::vector<Message::Which>{Message::RETURN, Message::RETURN, Message::UNIMPLEMENTED});
    CHECK(c.events.empty());
    CHECK(!c.client.closed());
}

TEST_CASE("rpc client: an Unimplemented echo of a call fails that call only") {
    Connector c;
    c.client.start(c.out);
    auto q = c.client.unregister_connection(c.out);
    REQUIRE(q);
    std::string sent = c.out;
    // Echo the second message (the Call) back inside Unimplemented.
    capnp::MallocMessageBuilder mb;
    size_t i = 0;
    rpctest::each_message(sent, [&](Message::Reader m) {
        if (i++ == 1) {
            mb.initRoot<Message>().setUnimplemented(m);
        }
    });
    REQUIRE(c.feed(rpctest::serialize(mb)));
    REQUIRE(c.events.size() == 1);
    CHECK(std::get<CallFailed>(c.events[0]).question == *q);
    CHECK(c.client.outstanding() == 1);  // the bootstrap still waits
}

TEST_CASE("rpc client: questions outstanding are bounded") {
    Limits limits;
    limits.max_questions = 4;
    Connector c(limits);
    c.client.start(c.out);
    for (int i = 0; i < 3; ++i) {
        REQUIRE(c.client.unregister_connection(c.out));
    }
    auto q = c.client.unregister_connection(c.out);
    REQUIRE(!q);
    CHECK(q.error().code == Errc::Busy);
    RegistrationClient fresh;
    std::string out;
    CHECK(fresh.unregister_connection(out).error().code == Errc::Invalid);  // no start()
    CHECK(out.empty());
}

TEST_CASE("rpc client: server replies delivered one byte at a time") {
    RegistrationClient client;
    RegistrationServer server;
    std::string to_server;
    std::string to_client;
    std::vector<ClientEvent> cev;
    std::vector<ServerEvent> sev;
    client.start(to_server);
    REQUIRE(client.register_connection(rpctest::sample_request(), to_server));
    REQUIRE(server.feed(to_server, to_client, sev));
    to_server.clear();
    REQUIRE(sev.size() == 1);
    REQUIRE(server.accept_registration(std::get<RegisterCall>(sev[0]).id,
                                       ConnectionDetails{Uuid::random(), "DFW", false}, to_client));
    for (char ch : to_client) {
        REQUIRE(client.feed(std::string_view(&ch, 1), to_server, cev));
    }
    REQUIRE(cev.size() == 1);
    CHECK(std::get<Registered>(cev[0]).details.location_name == "DFW");
    // The two Finishes went back and close the server's books.
    to_client.clear();
    REQUIRE(server.feed(to_server, to_client, sev));
    CHECK(server.answers() == 0);
}

TEST_CASE("rpc client: random edge bytes never crash it") {
    std::string valid = bootstrap_return(0, 1, 0, false) + exception_return(1, "x");
    std::mt19937 rng(777);
    int ok = 0;
    int failed = 0;
    for (int round = 0; round < 2000; ++round) {
        std::string bytes = valid;
        int flips = 1 + int(rng() % 8);
        for (int i = 0; i < flips; ++i) {
            bytes[rng() % bytes.size()] = char(rng());
        }
        Connector c;
        c.client.start(c.out);
        REQUIRE(c.client.register_connection(rpctest::sample_request(), c.out));
        auto st = c.feed(bytes);
        if (st) {
            ++ok;
        } else {
            ++failed;
            CHECK(c.client.closed());
        }
    }
    CHECK(ok > 0);
    CHECK(failed > 0);
}
