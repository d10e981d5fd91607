// Against Cap'n Proto's own C++ RPC system (libcapnp-rpc), over an in-memory kj pipe: the
// library's client bootstraps and calls our server, and our client calls the library's server.
// It checks that our byte-level state machines speak the standard protocol, not just each other.
#include <doctest/doctest.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "cfd/rpc/client.h"
#include "cfd/rpc/server.h"
#include "rpc_test_util.h"

using namespace cfd;
using namespace cfd::rpc;
namespace sch = cfd::rpc::schema;

namespace {

kj::ArrayPtr<const kj::byte> bytes_of(std::string_view s) {
    return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// Our server behind one end of the pipe, answering as an edge would: account "bad" is refused.
struct EdgeSide {
    explicit EdgeSide(kj::AsyncIoStream& stream) : io(stream) {}

    kj::AsyncIoStream& io;
    RegistrationServer server;
    std::vector<RegisterRequest> registrations;
    std::vector<std::string> configs;
    int unregisters = 0;
    bool peer_aborted = false;
    bool feed_failed = false;
    char buf[4096];

    kj::Promise<void> run() {
        return io.tryRead(buf, 1, sizeof(buf)).then([this](size_t n) -> kj::Promise<void> {
            if (n == 0) {
                return kj::READY_NOW;
            }
            std::string out;
            std::vector<ServerEvent> events;
            feed_failed = !server.feed(std::string_view(buf, n), out, events);
            for (auto& ev : events) {
                answer(ev, out);
            }
            auto owned = kj::heapString(out.data(), out.size());
            auto written = io.write(owned.begin(), owned.size()).attach(kj::mv(owned));
            if (feed_failed || server.closed()) {
                return written;
            }
            return written.then([this]() { return run(); });
        });
    }

    void answer(ServerEvent& ev, std::string& out) {
        if (auto* reg = std::get_if<RegisterCall>(&ev)) {
            registrations.push_back(reg->request);
            if (reg->request.auth.account_tag == "bad") {
                (void)server.refuse_registration(
                    reg->id, ConnectionError{"Unauthorized: unknown tunnel", 0, false}, out);
            } else {
                (void)server.accept_registration(
                    reg->id,
                    ConnectionDetails{Uuid::parse("14e2e624-0d32-4a21-a88c-64acf9484dac").value(),
                                      "DFW", true},
                    out);
            }
        } else if (auto* cfg = std::get_if<UpdateConfigCall>(&ev)) {
            configs.push_back(cfg->config);
            (void)server.complete(cfg->id, out);
        } else if (auto* un = std::get_if<UnregisterCall>(&ev)) {
            ++unregisters;
            (void)server.complete(un->id, out);
        } else if (std::holds_alternative<PeerAborted>(ev)) {
            peer_aborted = true;
        }
    }
};

void fill(sch::RegistrationServer::RegisterConnectionParams::Builder p,
          const RegisterRequest& req) {
    detail::encode(req, p);
}

}  // namespace

TEST_CASE("rpc interop: Cap'n Proto's C++ RPC client registers against our server") {
    kj::EventLoop loop;
    kj::WaitScope ws(loop);
    auto pipe = kj::newTwoWayPipe();
    EdgeSide edge(*pipe.ends[1]);
    bool serve_threw = false;
    auto serving = edge.run().eagerlyEvaluate([&](kj::Exception&&) { serve_threw = true; });
    {
        capnp::TwoPartyVatNetwork net(*pipe.ends[0], capnp::rpc::twoparty::Side::CLIENT);
        auto rpc = capnp::makeRpcClient(net);
        capnp::MallocMessageBuilder vat;
        vat.initRoot<capnp::rpc::twoparty::VatId>().setSide(capnp::rpc::twoparty::Side::SERVER);
        auto cap = rpc.bootstrap(vat.getRoot<capnp::rpc::twoparty::VatId>())
                       .castAs<sch::RegistrationServer>();

        // Sent before the bootstrap Return is seen: pipelined on the promised answer. The
        // library sends Finish when the response is dropped, hence the scope.
        RegisterRequest want = rpctest::sample_request();
        {
            auto req = cap.registerConnectionRequest();
            fill(req, want);
            auto resp = req.send().wait(ws);
            auto result = resp.getResult().getResult();
            REQUIRE(result.isConnectionDetails());
            CHECK(result.getConnectionDetails().getLocationName() == "DFW");
            CHECK(result.getConnectionDetails().getTunnelIsRemotelyManaged());
        }
        REQUIRE(edge.registrations.size() == 1);
        const RegisterRequest& got = edge.registrations[0];
        CHECK(got.auth.tunnel_secret == want.auth.tunnel_secret);
        CHECK(got.tunnel_id == want.tunnel_id);
        CHECK(got.options.client.client_id == want.options.client.client_id);
        CHECK(got.options.client.features == want.options.client.features);
        CHECK(got.options.origin_local_ip == want.options.origin_local_ip);
        CHECK(got.conn_index == want.conn_index);

        RegisterRequest bad = want;
        bad.auth.account_tag = "bad";
        auto req2 = cap.registerConnectionRequest();
        fill(req2, bad);
        {
            auto resp = req2.send().wait(ws);
            auto refused = resp.getResult().getResult();
            REQUIRE(refused.isError());
            CHECK(kj::StringPtr(refused.getError().getCause()).startsWith("Unauthorized:"));
            CHECK(!refused.getError().getShouldRetry());
        }

        auto cfg = cap.updateLocalConfigurationRequest();
        cfg.setConfig(bytes_of("{\"warp-routing\":{}}"));
        cfg.send().wait(ws);
        cap.unregisterConnectionRequest().send().wait(ws);
        CHECK(edge.configs == std::vector<std::string>{"{\"warp-routing\":{}}"});
        CHECK(edge.unregisters == 1);

        // A method the server lacks comes back as the library's "unimplemented" exception.
        auto odd = cap.typelessRequest(kRegistrationInterfaceId, 9, capnp::MessageSize{4, 0});
        odd.initAs<sch::RegistrationServer::UnregisterConnectionParams>();
        auto type = odd.send()
                        .then([](auto&&) { return kj::Exception::Type::FAILED; },
                              [](kj::Exception&& e) { return e.getType(); })
                        .wait(ws);
        CHECK(type == kj::Exception::Type::UNIMPLEMENTED);

        // Dropping the capability makes the library send Release and its last Finish; let the
        // loop run until they arrived (bounded: each turn delivers what was queued).
        cap = nullptr;
        for (int i = 0; i < 100 && (edge.server.export_refs() != 0 || edge.server.answers() != 0);
             ++i) {
            kj::evalLater([]() {}).wait(ws);
        }
        CHECK(edge.server.export_refs() == 0);
        CHECK(edge.server.answers() == 0);
        CHECK(edge.server.pending_calls() == 0);
    }
    pipe.ends[0] = nullptr;  // end of stream for our server
    serving.wait(ws);
    CHECK(!serve_threw);
    CHECK(!edge.feed_failed);
}

namespace {

// The library's server: registers everyone at "MCI", refuses any configuration.
class LibraryEdge final : public sch::RegistrationServer::Server {
public:
    int registered = 0;
    int unregistered = 0;
    std::string arch;

protected:
    kj::Promise<void> registerConnection(RegisterConnectionContext ctx) override {
        ++registered;
        arch = ctx.getParams().getOptions().getClient().getArch();
        auto d = ctx.getResults(capnp::MessageSize{64, 4})
                     .initResult()
                     .getResult()
                     .initConnectionDetails();
        auto id = Uuid::parse("71490dec-190f-4652-a70a-cd001fe6fdcf").value();
        d.setUuid(bytes_of(id.raw()));
        d.setLocationName("MCI");
        return kj::READY_NOW;
    }
    kj::Promise<void> unregisterConnection(UnregisterConnectionContext) override {
        ++unregistered;
        return kj::READY_NOW;
    }
    kj::Promise<void> updateLocalConfiguration(UpdateLocalConfigurationContext) override {
        return KJ_EXCEPTION(FAILED, "configuration refused");
    }
};

}  // namespace

TEST_CASE("rpc interop: our client registers against Cap'n Proto's C++ RPC server") {
    kj::EventLoop loop;
    kj::WaitScope ws(loop);
    auto pipe = kj::newTwoWayPipe();
    auto owned = kj::heap<LibraryEdge>();
    LibraryEdge& lib = *owned;
    capnp::TwoPartyVatNetwork net(*pipe.ends[0], capnp::rpc::twoparty::Side::SERVER);
    auto rpc = capnp::makeRpcServer(net, kj::mv(owned));
    kj::AsyncIoStream& io = *pipe.ends[1];

    RegistrationClient client;
    std::string out;
    std::vector<ClientEvent> events;
    char buf[4096];
    auto flush = [&]() {
        if (!out.empty()) {
            io.write(out.data(), out.size()).wait(ws);
            out.clear();
        }
    };
    // Reads until one event arrived; a stalled exchange fails inside kj's wait (nothing left
    // to run), never hangs.
    auto next_event = [&]() -> ClientEvent {
        events.clear();
        while (events.empty()) {
            size_t n = io.tryRead(buf, 1, sizeof(buf)).wait(ws);
            REQUIRE(n > 0);
            REQUIRE(client.feed(std::string_view(buf, n), out, events));
            flush();
        }
        REQUIRE(events.size() == 1);
        return events[0];
    };

    client.start(out);
    auto q = client.register_connection(rpctest::sample_request(), out);
    REQUIRE(q);
    flush();
    auto ev = next_event();
    REQUIRE(std::holds_alternative<Registered>(ev));
    CHECK(std::get<Registered>(ev).question == *q);
    CHECK(std::get<Registered>(ev).details.location_name == "MCI");
    CHECK(lib.registered == 1);
    CHECK(lib.arch == "linux_amd64");
    CHECK(client.has_capability());

    REQUIRE(client.update_local_configuration("{}", out));
    flush();
    ev = next_event();
    REQUIRE(std::holds_alternative<CallFailed>(ev));
    CHECK(std::get<CallFailed>(ev).reason.find("configuration refused") != std::string::npos);

    REQUIRE(client.unregister_connection(out));
    flush();
    ev = next_event();
    CHECK(std::holds_alternative<Unregistered>(ev));
    CHECK(lib.unregistered == 1);
    CHECK(client.outstanding() == 0);

    client.close(out);
    flush();
    ws.poll();
}
