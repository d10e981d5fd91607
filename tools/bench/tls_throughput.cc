// Bytes per second through the reactor's TLS path on loopback: a client reactor encrypts and
// sends, a server reactor receives into provided buffers, decrypts and counts. TLS 1.3 with
// AES-128-GCM, one connection, two reactor threads. Prints one line per run and a summary:
//   tls_throughput: 2048 MiB in 1.52 s = 1412.3 MB/s (TLSv1.3 TLS13-AES128-GCM-SHA256)
// Usage: bench_tls [MiB to send (default 2048)]
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "../../tests/uring/tls_link.h"
#include "cfd/core/log.h"
#include "cfd/net/listener.h"
#include "cfd/reactor/features.h"
#include "cfd/reactor/group.h"
#include "cfd/tls/certgen.h"
#include "cfd/tls/context.h"

using namespace cfd;
using cfd::reactor::Message;
using cfd::reactor::Reactor;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kConnectTo = 1;
constexpr size_t kChunk = 64 * 1024;

// Socket out-queue sizing, from the environment for experiments (bytes).
net::ConnOptions conn_options() {
    net::ConnOptions o;
    if (const char* v = std::getenv("CFD_BENCH_OUT_CAP")) {
        o.out_cap = uint32_t(std::strtoul(v, nullptr, 10));
        o.high_water = o.out_cap / 2;
        o.low_water = o.out_cap / 8;
    }
    return o;
}

struct Finish {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool ok = false;
    Clock::time_point end;
    void set(bool success) {
        std::lock_guard<std::mutex> lock(mu);
        if (!done) {
            done = true;
            ok = success;
            end = Clock::now();
        }
        cv.notify_all();
    }
};

struct Sink : test::TlsLink {
    using TlsLink::TlsLink;
    uint64_t want = 0;
    uint64_t got = 0;
    Finish* finish = nullptr;
    void on_plain(std::string_view d) override {
        got += d.size();
        if (got >= want) {
            finish->set(true);
            close(Error{Errc::Ok, 0, ""});
        }
    }
    void on_link_closed(Error) override {
        if (got < want) {
            finish->set(false);
        }
        delete this;
    }
};

struct Source : test::TlsLink {
    using TlsLink::TlsLink;
    uint64_t total = 0;
    uint64_t sent = 0;
    const char* data = nullptr;
    Clock::time_point start;
    std::string cipher;
    std::string version;
    Finish* finish = nullptr;
    void on_writable() override {
        if (cipher.empty()) {
            cipher = std::string(session().cipher());
            version = std::string(session().version());
            start = Clock::now();  // the clock starts after the handshake
        }
        while (sent < total) {
            size_t n = size_t(std::min<uint64_t>(kChunk, total - sent));
            size_t k = write_plain({data, n});
            sent += k;
            if (k < n) {
                return;
            }
        }
    }
    void on_plain(std::string_view) override {}
    void on_link_closed(Error e) override {
        if (e.code != Errc::Ok && sent < total) {
            finish->set(false);
        }
    }
};

struct Server : net::AcceptHandler {
    const tls::Context* ctx = nullptr;
    uint64_t want = 0;
    Finish* finish = nullptr;
    void on_accept(net::Listener& l, int fd) override {
        auto s = tls::Session::server(*ctx);
        if (!s) {
            ::close(fd);
            finish->set(false);
            return;
        }
        auto* sink = new Sink(std::move(*s));
        sink->want = want;
        sink->finish = finish;
        auto c = net::Connection::adopt(l.reactor(), fd, sink, conn_options());
        if (!c) {
            delete sink;
            finish->set(false);
            return;
        }
        sink->attach(*c);
    }
};

struct Client : reactor::MessageHandler {
    Source* source = nullptr;
    void on_message(Reactor& r, const Message& m) override {
        if (m.tag != kConnectTo) {
            return;
        }
        auto c = net::Connection::connect(r, net::SockAddr::loopback_v4(uint16_t(m.a)),
                                          Millis(10000), source, conn_options());
        if (!c) {
            source->finish->set(false);
        }
    }
};

// CPU time of each reactor thread, read from the main thread: on a shared machine the wall clock
// also counts time other processes held the cores; bytes / (busiest thread's CPU time) is what
// the path sustains with a core per reactor.
clockid_t g_thread_clock[2];

double cpu_seconds(clockid_t c) {
    timespec ts{};
    clock_gettime(c, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

int fail(const char* what, const Error& e) {
    std::fprintf(stderr, "tls_throughput: %s: %s\n", what, tls::describe(e).c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2048;
    if (mib == 0) {
        mib = 2048;
    }
    if (!reactor::uring_ok()) {
        std::fprintf(stderr, "tls_throughput: io_uring unavailable: %s\n",
                     reactor::features_line().c_str());
        return 77;
    }
    log::set_level(log::Level::Warn);
    auto ca = tls::generate_ca("bench CA", 1);
    if (!ca) {
        return fail("generate_ca", ca.error());
    }
    auto leaf = tls::generate_leaf(*ca, "h2.cftunnel.com", {"h2.cftunnel.com"}, 1);
    if (!leaf) {
        return fail("generate_leaf", leaf.error());
    }
    tls::ServerOptions so;
    so.cert_pem = leaf->cert_pem;
    so.key_pem = leaf->key_pem;
    auto sctx = tls::Context::server(so);
    if (!sctx) {
        return fail("server context", sctx.error());
    }
    tls::ClientOptions co;
    co.ca_pem = ca->cert_pem;
    auto cctx = tls::Context::client(co);
    if (!cctx) {
        return fail("client context", cctx.error());
    }
    auto cs = tls::Session::client(*cctx, "h2.cftunnel.com");
    if (!cs) {
        return fail("client session", cs.error());
    }

    static char payload[kChunk];
    for (size_t i = 0; i < kChunk; ++i) {
        payload[i] = char(i * 131 + 7);
    }
    Finish finish;
    Source source(std::move(*cs));
    source.total = mib << 20;
    source.data = payload;
    source.finish = &finish;
    Server server;
    server.ctx = &*sctx;
    server.want = source.total;
    server.finish = &finish;
    Client client;
    client.source = &source;

    reactor::GroupOptions go;
    go.threads = 2;
    if (const char* v = std::getenv("CFD_BENCH_CHUNK")) {
        go.reactor.buf_chunk = uint32_t(std::strtoul(v, nullptr, 10));
        go.reactor.buf_count = std::max<uint32_t>(16, (16u << 20) / go.reactor.buf_chunk);
    }
    reactor::ReactorGroup g(go);
    auto started = g.start([&](Reactor& r) {
        pthread_getcpuclockid(pthread_self(), &g_thread_clock[r.index()]);
        if (r.index() == 0) {
            auto l = net::Listener::open(r, net::SockAddr::loopback_v4(0), &server);
            if (!l) {
                finish.set(false);
                return;
            }
            Message m;
            m.tag = kConnectTo;
            m.a = (*l)->port();
            if (!r.post(1, m)) {
                finish.set(false);
            }
        } else {
            r.set_message_handler(&client);
        }
    });
    if (!started) {
        return fail("reactor group", started.error());
    }
    {
        std::unique_lock<std::mutex> lock(finish.mu);
        finish.cv.wait_for(lock, std::chrono::seconds(600), [&] { return finish.done; });
    }
    // Includes the handshake and certificate checks: a few milliseconds.
    double cpu_server = cpu_seconds(g_thread_clock[0]);
    double cpu_client = cpu_seconds(g_thread_clock[1]);
    g.stop();
    if (!finish.done || !finish.ok) {
        std::fprintf(stderr, "tls_throughput: transfer failed\n");
        return 1;
    }
    double secs = std::chrono::duration<double>(finish.end - source.start).count();
    double mbps = double(source.total) / secs / 1e6;
    double busiest = std::max(cpu_server, cpu_client);
    std::printf("tls_throughput: %llu MiB in %.2f s = %.1f MB/s (%s %s)\n",
                static_cast<unsigned long long>(mib), secs, mbps, source.version.c_str(),
                source.cipher.c_str());
    std::printf("tls_throughput_cpu: client %.2f s, server %.2f s of CPU = %.1f MB/s per core\n",
                cpu_client, cpu_server, double(source.total) / busiest / 1e6);
    return 0;
}
