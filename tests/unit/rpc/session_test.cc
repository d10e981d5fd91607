// The connector's RPC client registering against the edge's RPC server, in memory.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "cfd/core/log.h"
#include "cfd/rpc/client.h"
#include "cfd/rpc/server.h"
#include "rpc_test_util.h"

using namespace cfd;
using namespace cfd::rpc;

namespace {

// Both ends, with the bytes in flight between them and the events each side saw.
struct Link {
    RegistrationClient client;
    RegistrationServer server;
    std::string to_server;
    std::string to_client;
    std::vector<ClientEvent> client_events;
    std::vector<ServerEvent> server_events;

    // Delivers bytes both ways until neither side has anything left to say. Every round
    // consumes what was queued, so this ends after a bounded number of rounds.
    void pump() {
        for (int round = 0; round < 16 && (!to_server.empty() || !to_client.empty()); ++round) {
            std::string s = std::move(to_server);
            to_server.clear();
            if (!s.empty()) {
                REQUIRE(server.feed(s, to_client, server_events));
            }
            std::string c = std::move(to_client);
            to_client.clear();
            if (!c.empty()) {
                REQUIRE(client.feed(c, to_server, client_events));
            }
        }
        REQUIRE(to_server.empty());
        REQUIRE(to_client.empty());
    }

    template <class T> T take_server_event() {
        REQUIRE(server_events.size() == 1);
        REQUIRE(std::holds_alternative<T>(server_events.front()));
        T ev = std::get<T>(std::move(server_events.front()));
        server_events.clear();
        return ev;
    }
    template <class T> T take_client_event() {
        REQUIRE(client_events.size() == 1);
        REQUIRE(std::holds_alternative<T>(client_events.front()));
        T ev = std::get<T>(std::move(client_events.front()));
        client_events.clear();
        return ev;
    }
};

ConnectionDetails sample_details() {
    return ConnectionDetails{Uuid::parse("14e2e624-0d32-4a21-a88c-64acf9484dac").value(), "DFW",
                             true};
}

}  // namespace

TEST_CASE("rpc: client registers against server, every field arrives intact") {
    Link l;
    l.client.start(l.to_server);
    auto q = l.client.register_connection(rpctest::sample_request(), l.to_server);
    REQUIRE(q);
    // Bootstrap and the pipelined call leave in one flight, before any reply.
    CHECK(rpctest::kinds(l.to_server) == std::vector<rpctest::Message::Which>{
                                             rpctest::Message::BOOTSTRAP, rpctest::Message::CALL});
    l.pump();
    CHECK(l.client.has_capability());

    auto call = l.take_server_event<RegisterCall>();
    RegisterRequest want = rpctest::sample_request();
    const RegisterRequest& got = call.request;
    CHECK(got.auth.account_tag == want.auth.account_tag);
    CHECK(got.auth.tunnel_secret == want.auth.tunnel_secret);
    CHECK(got.tunnel_id == want.tunnel_id);
    CHECK(got.conn_index == 3);
    CHECK(got.options.client.client_id == want.options.client.client_id);
    CHECK(got.options.client.features == want.options.client.features);
    CHECK(got.options.client.version == "2026.11.0");
    CHECK(got.options.client.arch == "linux_amd64");
    CHECK(got.options.origin_local_ip == std::string("\xc0\xa8\x01\x02", 4));
    CHECK(got.options.replace_existing);
    CHECK(got.options.compression_quality == 2);
    CHECK(got.options.num_previous_attempts == 5);

    REQUIRE(l.server.accept_registration(call.id, sample_details(), l.to_client));
    l.pump();
    auto reg = l.take_client_event<Registered>();
    CHECK(reg.question == *q);
    CHECK(reg.details.uuid == sample_details().uuid);
    CHECK(reg.details.location_name == "DFW");
    CHECK(reg.details.tunnel_is_remotely_managed);
    // Both questions finished: nothing left on either side but the one export reference.
    CHECK(l.client.outstanding() == 0);
    CHECK(l.server.answers() == 0);
    CHECK(l.server.pending_calls() == 0);
    CHECK(l.server.export_refs() == 1);
}

TEST_CASE("rpc: refused registration carries the cause and no retry") {
    Link l;
    l.client.start(l.to_server);
    REQUIRE(l.client.register_connection(rpctest::sample_request(), l.to_server));
    l.pump();
    auto call = l.take_server_event<RegisterCall>();
    ConnectionError refusal{"Unauthorized: Invalid tunnel secret", 0, false};
    REQUIRE(l.server.refuse_registration(call.id, refusal, l.to_client));
    l.pump();
    auto refused = l.take_client_event<Refused>();
    CHECK(refused.error.cause.rfind("Unauthorized:", 0) == 0);
    CHECK(!refused.error.should_retry);
    CHECK(refused.error.retry_after_ns == 0);

    // A retryable refusal keeps its delay, in nanoseconds.
    REQUIRE(l.client.register_connection(rpctest::sample_request(), l.to_server));
    l.pump();
    call = l.take_server_event<RegisterCall>();
    REQUIRE(l.server.refuse_registration(
        call.id, ConnectionError{"too many connectors", 5'000'000'000, true}, l.to_client));
    l.pump();
    refused = l.take_client_event<Refused>();
    CHECK(refused.error.should_retry);
    CHECK(refused.error.retry_after_ns == 5'000'000'000);
}

TEST_CASE("rpc: unregister and updateLocalConfiguration after registration") {
    Link l;
    l.client.start(l.to_server);
    REQUIRE(l.client.register_connection(rpctest::sample_request(), l.to_server));
    l.pump();
    REQUIRE(l.server.accept_registration(l.take_server_event<RegisterCall>().id, sample_details(),
                                         l.to_client));
    l.pump();
    l.take_client_event<Registered>();

    // Now the client targets the imported capability, not the bootstrap answer.
    std::string config = R"({"ingress":[{"service":"http://localhost:8080"}]})";
    auto q = l.client.update_local_configuration(config, l.to_server);
    REQUIRE(q);
    rpctest::each_message(l.to_server, [](rpctest::Message::Reader m) {
        REQUIRE(m.which() == rpctest::Message::CALL);
        CHECK(m.getCall().getTarget().which() == capnp::rpc::MessageTarget::IMPORTED_CAP);
    });
    l.pump();
    auto upd = l.take_server_event<UpdateConfigCall>();
    CHECK(upd.config == config);
    REQUIRE(l.server.complete(upd.id, l.to_client));
    l.pump();
    CHECK(l.take_client_event<ConfigUpdated>().question == *q);

    q = l.client.unregister_connection(l.to_server);
    REQUIRE(q);
    l.pump();
    auto un = l.take_server_event<UnregisterCall>();
    // Answering with the wrong kind of result is refused, and the call stays owed.
    CHECK(!l.server.accept_registration(un.id, sample_details(), l.to_client));
    REQUIRE(l.server.complete(un.id, l.to_client));
    CHECK(l.server.complete(un.id, l.to_client).error().code == Errc::NotFound);
    l.pump();
    CHECK(l.take_client_event<Unregistered>().question == *q);

    // Closing releases the capability and aborts, as cloudflared does.
    l.client.close(l.to_server);
    l.pump();
    auto aborted = l.take_server_event<PeerAborted>();
    CHECK(!aborted.reason.empty());
    CHECK(l.server.export_refs() == 0);
    CHECK(l.server.closed());
    CHECK(l.server.answers() == 0);
}

TEST_CASE("rpc: an exception from the server reaches the client as CallFailed") {
    Link l;
    l.client.start(l.to_server);
    auto q = l.client.register_connection(rpctest::sample_request(), l.to_server);
    REQUIRE(q);
    l.pump();
    REQUIRE(
        l.server.fail(l.take_server_event<RegisterCall>().id, "store unavailable", l.to_client));
    l.pump();
    auto failed = l.take_client_event<CallFailed>();
    CHECK(failed.question == *q);
    CHECK(failed.method == Method::RegisterConnection);
    CHECK(failed.reason == "store unavailable");
    CHECK(l.client.outstanding() == 0);
    CHECK(l.server.answers() == 0);
}

TEST_CASE("rpc: the server aborting ends the client's session with the reason") {
    Link l;
    l.client.start(l.to_server);
    REQUIRE(l.client.register_connection(rpctest::sample_request(), l.to_server));
    l.pump();
    l.server.abort("edge shutting down", l.to_client);
    auto st = l.client.feed(l.to_client, l.to_server, l.client_events);
    REQUIRE(!st);
    CHECK(st.error().code == Errc::Closed);
    CHECK(l.client.detail().find("edge shutting down") != std::string::npos);
    CHECK(l.client.closed());
    CHECK(!l.client.register_connection(rpctest::sample_request(), l.to_server));
}

TEST_CASE("rpc: the tunnel secret never reaches the logs or the error texts") {
    char path[] = "/tmp/cfd-rpc-log-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    unlink(path);
    log::Level saved = log::level();
    log::set_level(log::Level::Debug);
    log::set_fd(fd);

    RegisterRequest req = rpctest::sample_request();
    req.auth.tunnel_secret = "S3CR3T-0123456789abcdef0123456789";
    Link l;
    l.client.start(l.to_server);
    REQUIRE(l.client.register_connection(req, l.to_server));
    l.pump();
    REQUIRE(l.server.refuse_registration(l.take_server_event<RegisterCall>().id,
                                         ConnectionError{"Unauthorized: bad secret", 0, false},
                                         l.to_client));
    l.pump();
    l.take_client_event<Refused>();
    // Odd but legal traffic that the module logs about, then a fatal error.
    std::string odd;
    {
        capnp::MallocMessageBuilder mb;
        mb.initRoot<capnp::rpc::Message>().initFinish().setQuestionId(99);
        odd += rpctest::serialize(mb);
    }
    REQUIRE(l.server.feed(odd, l.to_client, l.server_events));
    CHECK(!l.server.feed(std::string(16, '\xff'), l.to_client, l.server_events));

    log::set_fd(2);
    log::set_level(saved);
    std::string logged;
    char buf[4096];
    ssize_t n = 0;
    REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        logged.append(buf, size_t(n));
    }
    close(fd);
    CHECK(logged.find("finish for an unknown question") != std::string::npos);  // it did log
    CHECK(logged.find("S3CR3T") == std::string::npos);
    CHECK(l.server.detail().find("S3CR3T") == std::string::npos);
    CHECK(l.client.detail().find("S3CR3T") == std::string::npos);
}
