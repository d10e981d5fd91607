// Session::read_from (ciphertext borrowed for one call instead of copied by feed) and
// Session::write with an OutputSink (records handed over instead of queued).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cfd/tls/session.h"
#include "tls_test_util.h"

using namespace cfd;
using namespace cfd::tls;

namespace {

using test::connected;
using test::Pair;

std::string pattern(size_t n, uint32_t seed) {
    std::string s(n, '\0');
    uint32_t x = seed;
    for (auto& c : s) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

// Takes `from`'s pending output as one string.
std::string take_output(Session& from) {
    std::string out(from.pending_output());
    from.consume_output(out.size());
    return out;
}

// Lends `ct` to `to` with a `cap`-byte buffer until all of it is used and no more plaintext
// comes, appending the plaintext to `got`. Checks that nothing stays buffered on our side.
void lend_all(Session& to, std::string_view ct, size_t cap, std::string* got) {
    std::vector<char> buf(cap);
    for (int calls = 0;; calls++) {
        REQUIRE(calls < 1000000);
        auto r = to.read_from(ct, buf.data(), cap);
        REQUIRE_MESSAGE(r, describe(r.error()));
        REQUIRE(r->used <= ct.size());
        REQUIRE(r->plain <= cap);
        // Only a full buffer leaves ciphertext unused.
        CHECK((r->used == ct.size() || r->plain == cap));
        got->append(buf.data(), r->plain);
        ct.remove_prefix(r->used);
        if (r->used > 0) {
            CHECK(to.buffered_input() == 0);  // fed bytes go first, then the span
        }
        if (r->plain == 0 && ct.empty()) {
            return;
        }
    }
}

// A sink that takes at most `limit` bytes per call (SIZE_MAX: all), recording them.
struct RecordingSink final : OutputSink {
    size_t limit = SIZE_MAX;
    size_t calls = 0;
    std::string taken;
    size_t take_ciphertext(std::string_view c) override {
        calls++;
        size_t n = std::min(c.size(), limit);
        taken.append(c.data(), n);
        return n;
    }
};

}  // namespace

TEST_CASE("tls: read_from decrypts records split at every byte boundary") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    // Three records of different sizes; each round cuts their ciphertext at another offset.
    const std::string a = "x";
    const std::string b = pattern(300, 1);
    const std::string c = pattern(1000, 2);
    const std::string plain = a + b + c;
    size_t total = 0;
    for (size_t cut = 0;; cut++) {
        REQUIRE(p.cli.write(a));
        REQUIRE(p.cli.write(b));
        REQUIRE(p.cli.write(c));
        std::string ct = take_output(p.cli);
        total = ct.size();
        REQUIRE(total == plain.size() + 3 * 22);
        if (cut > total) {
            break;
        }
        std::string got;
        std::string_view v(ct);
        lend_all(p.srv, v.substr(0, cut), 64 * 1024, &got);
        lend_all(p.srv, v.substr(cut), 64 * 1024, &got);
        REQUIRE_MESSAGE(got == plain, "cut at " << cut);
    }
}

TEST_CASE("tls: read_from fed one byte at a time, and 1 MiB in one span") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    std::string small = pattern(5000, 3);
    REQUIRE(p.cli.write(small));
    std::string ct = take_output(p.cli);
    std::string got;
    for (char ch : ct) {
        lend_all(p.srv, std::string_view(&ch, 1), 64 * 1024, &got);
    }
    CHECK(got == small);

    // Far more than kMaxBufferedInput in one span: read_from never refuses (nothing is buffered
    // on our side) and wolfSSL holds at most one record between calls.
    std::string big = pattern(1 << 20, 4);
    std::string big_ct;
    for (size_t sent = 0; sent < big.size();) {
        auto n = p.cli.write(std::string_view(big).substr(sent));
        REQUIRE(n);
        sent += *n;
        big_ct += take_output(p.cli);
    }
    REQUIRE(big_ct.size() > Session::kMaxBufferedInput);
    got.clear();
    lend_all(p.srv, big_ct, 64 * 1024, &got);
    CHECK(got == big);
    CHECK(p.srv.trim() == 0);
}

TEST_CASE("tls: read_from with a small buffer stops early and resumes where it stopped") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    std::string data = pattern(3 * Session::kMaxRecordPlaintext + 123, 5);
    REQUIRE(p.cli.write(data));
    std::string ct = take_output(p.cli);
    // A full buffer leaves the rest of the span unused, for the caller to lend again.
    char buf[100];
    auto r = p.srv.read_from(ct, buf, sizeof(buf));
    REQUIRE(r);
    CHECK(r->plain == sizeof(buf));
    CHECK(r->used < ct.size());
    CHECK(std::string_view(buf, sizeof(buf)) == std::string_view(data).substr(0, sizeof(buf)));
    std::string got(buf, sizeof(buf));
    lend_all(p.srv, std::string_view(ct).substr(r->used), 64 * 1024, &got);
    CHECK(got == data);
    for (size_t cap : {size_t{1}, size_t{7}, size_t{16383}, size_t{16384}, size_t{16385}}) {
        REQUIRE(p.cli.write(data));
        std::string again = take_output(p.cli);
        got.clear();
        lend_all(p.srv, again, cap, &got);
        REQUIRE_MESSAGE(got == data, "cap " << cap);
    }
}

TEST_CASE("tls: read_from serves fed bytes first; feed keeps its Busy limit") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    std::string data = pattern(Session::kMaxBufferedInput + 100000, 6);
    std::string ct;
    for (size_t sent = 0; sent < data.size();) {
        auto n = p.cli.write(std::string_view(data).substr(sent));
        REQUIRE(n);
        sent += *n;
        ct += take_output(p.cli);
    }
    // Feed until feed refuses: the bound still holds for copied input.
    size_t fed = 0;
    const size_t step = 16384;
    for (;;) {
        auto st = p.srv.feed(std::string_view(ct).substr(fed, step));
        if (!st) {
            CHECK(st.error().code == Errc::Busy);
            break;
        }
        fed += step;
        REQUIRE(fed < ct.size());
    }
    CHECK(p.srv.buffered_input() == fed);
    CHECK(fed <= Session::kMaxBufferedInput);
    // The rest is lent: the buffered bytes come out first, then the span's, in order.
    std::string got;
    lend_all(p.srv, std::string_view(ct).substr(fed), 64 * 1024, &got);
    CHECK(got == data);
    CHECK(p.srv.buffered_input() == 0);
}

TEST_CASE("tls: handshake and ticket through read_from only") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto sctx = test::server_ctx(pki.leaf);
    auto cctx = test::client_ctx(pki.ca);
    auto srv = Session::server(sctx);
    auto cli = Session::client(cctx, "h2.cftunnel.com");
    REQUIRE(srv);
    REQUIRE(cli);
    char buf[256];
    // cap 0: the handshake runs, nothing is read.
    for (int round = 0; round < 20 && !(cli->handshake_done() && srv->handshake_done()); round++) {
        std::string to_srv = take_output(*cli);
        auto rs = srv->read_from(to_srv, buf, 0);
        REQUIRE(rs);
        CHECK(rs->used == to_srv.size());
        CHECK(rs->plain == 0);
        std::string to_cli = take_output(*srv);
        auto rc = cli->read_from(to_cli, buf, 0);
        REQUIRE(rc);
        CHECK(rc->plain == 0);
        // The client finishes on the server's flight and must not take the ticket that may
        // follow it in the same span with cap 0; a later call gets it.
        if (rc->used < to_cli.size()) {
            REQUIRE(cli->handshake_done());
            auto more = cli->read_from(std::string_view(to_cli).substr(rc->used), buf, 1);
            REQUIRE(more);
            CHECK(more->plain == 0);
            CHECK(more->used == to_cli.size() - rc->used);
        }
    }
    REQUIRE(cli->handshake_done());
    REQUIRE(srv->handshake_done());
    // The server's ticket reaches the client with application data behind it, all in one span.
    std::string to_cli = take_output(*srv);
    REQUIRE(srv->write("after the ticket"));
    to_cli += take_output(*srv);
    std::string got;
    lend_all(*cli, to_cli, sizeof(buf), &got);
    CHECK(got == "after the ticket");
    auto t = cli->save_ticket();
    CHECK(t);
    REQUIRE(cli->write("to the server"));
    got.clear();
    lend_all(*srv, take_output(*cli), sizeof(buf), &got);
    CHECK(got == "to the server");
}

TEST_CASE("tls: read_from hands over data before close_notify, then reports Closed") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    REQUIRE(p.cli.write("last words"));
    p.cli.shutdown();
    std::string ct = take_output(p.cli);
    const std::string trailing = "junk after close_notify";
    ct += trailing;
    char buf[64];
    auto r = p.srv.read_from(ct, buf, sizeof(buf));
    REQUIRE(r);
    CHECK(std::string_view(buf, r->plain) == "last words");
    CHECK(r->used == ct.size() - trailing.size());  // nothing after close_notify is taken
    auto r2 = p.srv.read_from(std::string_view(ct).substr(r->used), buf, sizeof(buf));
    REQUIRE(!r2);
    CHECK(r2.error().code == Errc::Closed);
    // The other direction still works (TLS 1.3 closes each on its own).
    REQUIRE(p.srv.write("reply"));
}

TEST_CASE("tls: read_from fails on a corrupted record and on junk, and stays failed") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    REQUIRE(p.cli.write("good"));
    REQUIRE(p.cli.write("bad"));
    std::string ct = take_output(p.cli);
    ct[ct.size() - 3] ^= 0x40;  // a bit of the second record's GCM tag
    char buf[64];
    // The good record's plaintext comes out; the failure is reported by the next call.
    auto r = p.srv.read_from(ct, buf, sizeof(buf));
    REQUIRE(r);
    CHECK(std::string_view(buf, r->plain) == "good");
    auto r2 = p.srv.read_from({}, buf, sizeof(buf));
    REQUIRE(!r2);
    CHECK(r2.error().code == Errc::Tls);
    CHECK(!p.srv.pending_output().empty());  // an alert for the peer
    auto r3 = p.srv.read_from("more", buf, sizeof(buf));
    REQUIRE(!r3);
    CHECK(r3.error().code == Errc::Tls);
    CHECK(!p.srv.feed("more"));

    // A server lent a record header claiming 65535 bytes and 1 MiB of junk fails without
    // taking (or buffering) the junk.
    auto sctx = test::server_ctx(pki.leaf);
    auto srv = Session::server(sctx);
    REQUIRE(srv);
    std::string junk = std::string("\x16\x03\x03\xff\xff", 5) + std::string(1 << 20, 'A');
    auto j = srv->read_from(junk, buf, sizeof(buf));
    REQUIRE(!j);
    CHECK(j.error().code == Errc::Tls);
    CHECK(srv->buffered_input() == 0);
}

TEST_CASE("tls: write with a sink hands records over in order, the rest stays pending") {
    auto pki = test::make_pki({"h2.cftunnel.com"});
    auto p = connected(pki);
    std::string data = pattern(4 * Session::kMaxRecordPlaintext + 10, 7);

    // A sink that takes everything: nothing is left pending, one call per record.
    RecordingSink all;
    auto n = p.cli.write(data, all);
    REQUIRE(n);
    CHECK(*n == data.size());
    CHECK(p.cli.pending_output().empty());
    CHECK(all.calls == 5);
    CHECK(all.taken.size() == data.size() + 5 * 22);
    std::string got;
    lend_all(p.srv, all.taken, 64 * 1024, &got);
    CHECK(got == data);

    // A sink that takes a little per call: once a record is left partly pending, later records
    // queue behind it rather than jump ahead through the sink.
    RecordingSink some;
    some.limit = 1000;
    n = p.cli.write(data, some);
    REQUIRE(n);
    CHECK(*n == data.size());
    CHECK(some.calls == 1);
    CHECK(some.taken.size() == 1000);
    std::string wire = some.taken + take_output(p.cli);
    got.clear();
    lend_all(p.srv, wire, 64 * 1024, &got);
    CHECK(got == data);

    // A sink that takes nothing leaves write() bounded by the watermark as usual.
    RecordingSink none;
    none.limit = 0;
    std::string big = pattern(2 << 20, 8);
    auto m = p.cli.write(big, none);
    REQUIRE(m);
    CHECK(*m < big.size());
    CHECK(p.cli.pending_output().size() >= Session::kOutputHighWater);
    CHECK(p.cli.pending_output().size() <= Session::kOutputHighWater + 16406);
    CHECK(none.taken.empty());
    got.clear();
    lend_all(p.srv, take_output(p.cli), 64 * 1024, &got);
    CHECK(got == std::string_view(big).substr(0, *m));

    // Before the handshake the sink is never called.
    auto cctx = test::client_ctx(pki.ca);
    auto fresh = Session::client(cctx);
    REQUIRE(fresh);
    RecordingSink unused;
    CHECK(!fresh->write("early", unused));
    CHECK(unused.calls == 0);
}
