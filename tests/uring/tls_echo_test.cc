#include <doctest/doctest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "cfd/reactor/group.h"
#include "cfd/tls/certgen.h"
#include "cfd/tls/context.h"
#include "tls_link.h"
#include "uring_util.h"

using namespace cfd;
using namespace cfd::test;
using cfd::reactor::Message;
using cfd::reactor::Reactor;

namespace {

// The byte stream: a random block of prime length repeated, so that no chunk boundary lines up
// with the period and a reordering or a lost chunk shows. The block carries a copy of its head
// after its end, so any window of up to kWindow bytes is contiguous.
constexpr size_t kPeriod = 1048573;
constexpr size_t kWindow = 64 * 1024;

struct Stream {
    std::vector<char> block;
    Stream() {
        block.resize(kPeriod + kWindow);
        std::mt19937_64 rng(42);
        for (size_t i = 0; i < kPeriod; i += 8) {
            uint64_t v = rng();
            std::memcpy(block.data() + i, &v, std::min<size_t>(8, kPeriod - i));
        }
        std::memcpy(block.data() + kPeriod, block.data(), kWindow);
    }
    // Up to kWindow contiguous bytes of the stream from `offset`.
    const char* at(uint64_t offset) const { return block.data() + offset % kPeriod; }
};

const Stream& stream() {
    static Stream s;
    return s;
}

// A streaming checksum independent of how the bytes were chunked: FNV-1a over 8-byte words,
// carrying a partial word from one call to the next.
struct Checksum {
    uint64_t h = 0xcbf29ce484222325ULL;
    uint8_t part[8];
    size_t np = 0;
    void word(uint64_t w) { h = (h ^ w) * 0x100000001b3ULL; }
    void add(const char* p, size_t n) {
        while (n > 0 && np > 0 && np < 8) {
            part[np++] = uint8_t(*p++);
            --n;
            if (np == 8) {
                uint64_t w;
                std::memcpy(&w, part, 8);
                word(w);
                np = 0;
            }
        }
        while (n >= 8) {
            uint64_t w;
            std::memcpy(&w, p, 8);
            word(w);
            p += 8;
            n -= 8;
        }
        while (n > 0) {
            part[np++] = uint8_t(*p++);
            --n;
        }
    }
    uint64_t value() const {
        uint64_t v = h;
        for (size_t i = 0; i < np; ++i) {
            v = (v ^ part[i]) * 0x100000001b3ULL;
        }
        return v;
    }
};

struct Done {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;
    void arrive() {
        std::lock_guard<std::mutex> lock(mu);
        ++count;
        cv.notify_all();
    }
    bool wait_for(int n, std::chrono::seconds limit) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, limit, [&] { return count >= n; });
    }
};

// Echoes plaintext; stops reading while the session or the socket will not take more.
struct EchoTlsServer : TlsLink {
    using TlsLink::TlsLink;
    std::string backlog;  // at most one read's worth: reading stops when it is non-empty
    bool stalled = false;
    void on_plain(std::string_view d) override {
        if (stalled) {
            backlog.append(d);
            return;
        }
        size_t k = write_plain(d);
        if (k < d.size()) {
            backlog.assign(d.substr(k));
            stalled = true;
            set_reading(false);
        }
    }
    void on_writable() override {
        while (!backlog.empty()) {
            size_t k = write_plain(backlog);
            if (k == 0) {
                return;
            }
            backlog.erase(0, k);
        }
        if (stalled) {
            stalled = false;
            set_reading(true);
        }
    }
    void on_link_closed(Error) override { delete this; }
};

struct EchoTlsClient : TlsLink {
    using TlsLink::TlsLink;
    uint64_t total = 0;
    uint64_t sent = 0;
    uint64_t received = 0;
    bool mismatch = false;
    Checksum sent_sum;
    Checksum recv_sum;
    Error why{};
    std::string cipher;
    std::string version;
    Done* done = nullptr;

    void on_writable() override {
        if (cipher.empty()) {
            cipher = std::string(session().cipher());
            version = std::string(session().version());
        }
        while (sent < total) {
            size_t n = size_t(std::min<uint64_t>(kWindow, total - sent));
            const char* p = stream().at(sent);
            size_t k = write_plain({p, n});
            sent_sum.add(p, k);
            sent += k;
            if (k < n) {
                return;  // on_writable() again after back-pressure
            }
        }
    }
    void on_plain(std::string_view d) override {
        size_t off = 0;
        while (off < d.size()) {
            size_t n = std::min(d.size() - off, kWindow);
            if (std::memcmp(d.data() + off, stream().at(received), n) != 0) {
                mismatch = true;
            }
            received += n;
            off += n;
        }
        recv_sum.add(d.data(), d.size());
        if (received >= total) {
            close(Error{Errc::Ok, 0, ""});
        }
    }
    void on_link_closed(Error e) override {
        why = e;
        done->arrive();
    }
};

constexpr uint32_t kConnectTo = 20;

struct ServerSide : net::AcceptHandler {
    const tls::Context* ctx = nullptr;
    net::ConnOptions opts;
    int accepted = 0;
    void on_accept(net::Listener& l, int fd) override {
        auto s = tls::Session::server(*ctx);
        if (!s) {
            ::close(fd);
            return;
        }
        auto* link = new EchoTlsServer(std::move(*s));
        auto c = net::Connection::adopt(l.reactor(), fd, link, opts);
        if (!c) {
            delete link;
            return;
        }
        link->attach(*c);
        ++accepted;
    }
};

struct ClientSide : reactor::MessageHandler {
    EchoTlsClient* client = nullptr;
    net::ConnOptions opts;
    bool connect_failed = false;
    void on_message(Reactor& r, const Message& m) override {
        if (m.tag != kConnectTo) {
            return;
        }
        auto c = net::Connection::connect(r, net::SockAddr::loopback_v4(uint16_t(m.a)),
                                          Millis(10000), client, opts);
        if (!c) {
            connect_failed = true;
            client->done->arrive();
        }
    }
};

}  // namespace

TEST_CASE("uring: TLS echo moves 1 GiB over loopback with bounded memory" *
          doctest::skip(!uring_ok())) {
    constexpr uint64_t kTotal = 1ull << 30;
    // Peak RSS may grow by at most 64 MiB. Checked in the release build only: under ASan every
    // freed block (wolfSSL's per-record buffers included) waits in a 256 MiB quarantine plus
    // its shadow, which says nothing about our bounds.
    constexpr long kRssBoundKib = 64 * 1024;

    auto ca = tls::generate_ca("cfdtunnel test CA", 2);
    REQUIRE(ca);
    auto leaf = tls::generate_leaf(*ca, "h2.cftunnel.com", {"h2.cftunnel.com"}, 2);
    REQUIRE(leaf);
    tls::ServerOptions so;
    so.cert_pem = leaf->cert_pem;
    so.key_pem = leaf->key_pem;
    auto server_ctx = tls::Context::server(so);
    REQUIRE(server_ctx);
    tls::ClientOptions co;
    co.ca_pem = ca->cert_pem;
    auto client_ctx = tls::Context::client(co);
    REQUIRE(client_ctx);
    auto cs = tls::Session::client(*client_ctx, "h2.cftunnel.com");
    REQUIRE(cs);
    (void)stream();

    Done done;
    EchoTlsClient client(std::move(*cs));
    client.total = kTotal;
    client.done = &done;
    ServerSide server;
    server.ctx = &*server_ctx;
    ClientSide client_side;
    client_side.client = &client;

    reset_vm_hwm();
    long hwm_before = vm_hwm_kib();
    reactor::GroupOptions go;
    go.threads = 2;
    go.reactor.buf_count = 256;  // 4 MiB of receive chunks per reactor
    go.reactor.log_features = false;
    reactor::ReactorGroup g(go);
    REQUIRE(g.start([&](Reactor& r) {
        if (r.index() == 0) {
            auto l = net::Listener::open(r, net::SockAddr::loopback_v4(0), &server);
            REQUIRE(l);
            Message m;
            m.tag = kConnectTo;
            m.a = (*l)->port();
            CHECK(r.post(1, m));
        } else {
            r.set_message_handler(&client_side);
        }
    }));
    bool finished = done.wait_for(1, std::chrono::seconds(600));
    g.stop();
    long hwm_after = vm_hwm_kib();

    REQUIRE(finished);
    CHECK(!client_side.connect_failed);
    CHECK(server.accepted == 1);
    CHECK(client.why.code == Errc::Ok);
    CHECK(client.sent == kTotal);
    CHECK(client.received == kTotal);
    CHECK(!client.mismatch);
    CHECK(client.sent_sum.value() == client.recv_sum.value());
    MESSAGE("TLS " << client.version << " " << client.cipher << ", peak RSS growth "
                   << (hwm_after - hwm_before) / 1024 << " MiB");
    CHECK(client.version == "TLSv1.3");
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(hwm_after - hwm_before < kRssBoundKib);
#else
    (void)kRssBoundKib;
#endif
}
