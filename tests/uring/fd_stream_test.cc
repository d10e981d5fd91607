// net::FdStream on real pipes: both the blocking path (io_uring waits inside the kernel) and the
// O_NONBLOCK path (-EAGAIN, then the stream's own poll). The test's own ends of the pipes are
// always O_NONBLOCK, so that the test thread never blocks: it feeds and drains between turns
// of the reactor, and every wait is run_until() with a deadline.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "cfd/net/fd_stream.h"
#include "uring_util.h"

using namespace cfd;
using namespace cfd::test;
using cfd::net::FdStream;
using cfd::net::FdStreamOptions;

namespace {

// Records every callback. The stream is freed once on_close() returns: a test never touches
// its FdStream* after `closes` became 1.
struct Recorder : net::FdStreamHandler {
    std::vector<uint8_t> data;  // everything on_read() delivered, in order
    size_t chunks = 0;
    size_t max_chunk = 0;
    size_t chunks_after_eof = 0;
    int eofs = 0;
    int resumes = 0;
    size_t queued_at_resume = 0;
    bool writable_at_resume = false;
    int closes = 0;
    Error reason{};
    bool pause_in_read = false;  // on_read() calls pause_read()

    void on_read(FdStream& s, std::span<const uint8_t> b) override {
        data.insert(data.end(), b.begin(), b.end());
        ++chunks;
        max_chunk = std::max(max_chunk, b.size());
        if (eofs > 0) {
            ++chunks_after_eof;
        }
        if (pause_in_read) {
            s.pause_read();
        }
    }
    void on_read_eof(FdStream&) override { ++eofs; }
    void on_resume(FdStream& s) override {
        ++resumes;
        queued_at_resume = s.queued();
        writable_at_resume = s.writable();
    }
    void on_close(FdStream&, Error r) override {
        ++closes;
        reason = r;
    }
};

// A pipe whose ends the test closes itself (the stream never closes them).
struct Pipe {
    int r = -1;
    int w = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) == 0) {
            r = fds[0];
            w = fds[1];
        }
    }
    ~Pipe() {
        close_r();
        close_w();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    bool ok() const { return r >= 0 && w >= 0; }
    // The test's end never blocks; the stream's end (the read end when the stream reads this
    // pipe, the write end when it writes it) is O_NONBLOCK only when `nb`.
    void stream_reads(bool nb) {
        set_nonblocking(w);
        if (nb) {
            set_nonblocking(r);
        }
    }
    void stream_writes(bool nb) {
        set_nonblocking(r);
        if (nb) {
            set_nonblocking(w);
        }
    }
    void close_r() {
        if (r >= 0) {
            ::close(r);
            r = -1;
        }
    }
    void close_w() {
        if (w >= 0) {
            ::close(w);
            w = -1;
        }
    }
};

void ignore_sigpipe() {
    ::signal(SIGPIPE, SIG_IGN);
}

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

bool is_nonblocking(int fd) {
    return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

// Bytes waiting in a pipe.
size_t pipe_bytes(int fd) {
    int n = 0;
    if (::ioctl(fd, FIONREAD, &n) != 0) {
        return 0;
    }
    return size_t(n);
}

size_t pipe_capacity(int fd) {
    int n = ::fcntl(fd, F_GETPIPE_SZ);
    return n > 0 ? size_t(n) : 0;
}

// Index of the first byte of `v` that is not pattern(seed, i), or v.size().
size_t first_mismatch(uint64_t seed, const std::vector<uint8_t>& v) {
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != pattern(seed, i)) {
            return i;
        }
    }
    return v.size();
}

std::string pattern_string(uint64_t seed, size_t offset, size_t n) {
    std::string s(n, '\0');
    fill_pattern(seed, offset, reinterpret_cast<uint8_t*>(s.data()), n);
    return s;
}

// Writes up to n pattern bytes (from `offset`) into an O_NONBLOCK fd; returns how many went.
size_t feed(int fd, uint64_t seed, size_t offset, size_t n) {
    std::vector<uint8_t> buf(std::min<size_t>(n, 64 << 10));
    fill_pattern(seed, offset, buf.data(), buf.size());
    ssize_t w = ::write(fd, buf.data(), buf.size());
    return w > 0 ? size_t(w) : 0;
}

// Appends whatever an O_NONBLOCK fd holds to v.
void drain(int fd, std::vector<uint8_t>& v) {
    uint8_t buf[64 << 10];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n <= 0) {
            return;
        }
        v.insert(v.end(), buf, buf + n);
    }
}

// A few turns that do not wait: whatever is already complete gets dispatched.
// Runs the test case twice (doctest subcases): the stream's ends blocking, then O_NONBLOCK
// (which io_uring answers with -EAGAIN, so the stream polls before retrying).
bool nonblocking_subcase() {
    bool nb = false;
    SUBCASE("blocking fds") {
        nb = false;
    }
    SUBCASE("O_NONBLOCK fds") {
        nb = true;
    }
    return nb;
}

void spin(reactor::Reactor& r, int turns = 5) {
    for (int i = 0; i < turns; ++i) {
        r.run_once(Millis(0));
    }
}

}  // namespace

TEST_CASE("fd_stream: 1 MiB from the input pipe arrives in order, then EOF once" *
          doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    bool nb = nonblocking_subcase();
    CAPTURE(nb);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    Pipe out;
    REQUIRE(in.ok());
    REQUIRE(out.ok());
    in.stream_reads(nb);
    out.stream_writes(nb);
    REQUIRE(is_nonblocking(in.r) == nb);  // pipe2 gave two open files: the flags are separate

    Recorder rec;
    FdStreamOptions o;
    o.read_chunk = 16 << 10;
    auto s = FdStream::open(*r, in.r, out.w, &rec, o);
    REQUIRE(s);
    FdStream* st = *s;

    constexpr size_t kTotal = 1 << 20;
    constexpr uint64_t kSeed = 11;
    size_t fed = 0;
    REQUIRE(run_until(*r, [&] {
        if (fed < kTotal) {
            fed += feed(in.w, kSeed, fed, kTotal - fed);
        }
        return rec.data.size() >= kTotal;
    }));
    CHECK(rec.data.size() == kTotal);
    CHECK(first_mismatch(kSeed, rec.data) == kTotal);
    CHECK(rec.max_chunk <= o.read_chunk);
    CHECK(rec.chunks >= kTotal / o.read_chunk);
    CHECK(rec.eofs == 0);

    // Writer gone: exactly one on_read_eof, no more reads armed, no more data.
    in.close_w();
    REQUIRE(run_until(*r, [&] { return rec.eofs > 0; }));
    spin(*r);
    CHECK(rec.eofs == 1);
    CHECK(rec.chunks_after_eof == 0);
    CHECK(rec.data.size() == kTotal);
    CHECK(st->inflight() == 0);
    CHECK(st->state() == FdStream::State::Open);

    // "Writing still works" after EOF.
    REQUIRE(st->write("after eof"));
    std::vector<uint8_t> got;
    REQUIRE(run_until(*r, [&] {
        drain(out.r, got);
        return got.size() >= 9;
    }));
    CHECK(std::string(got.begin(), got.end()) == "after eof");

    st->close();
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
    CHECK(rec.reason.code == Errc::Closed);
    CHECK(rec.eofs == 1);
    CHECK(fd_open(in.r));
    CHECK(fd_open(out.w));
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

TEST_CASE("fd_stream: write() arrives intact at the other end of the output pipe" *
          doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    bool nb = nonblocking_subcase();
    CAPTURE(nb);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe out;
    REQUIRE(out.ok());
    out.stream_writes(nb);

    Recorder rec;
    auto s = FdStream::open(*r, -1, out.w, &rec);
    REQUIRE(s);
    FdStream* st = *s;

    constexpr size_t kTotal = 1 << 20;
    constexpr size_t kPiece = 48 << 10;  // not a divisor of the pipe size nor of kTotal
    constexpr uint64_t kSeed = 22;
    size_t written = 0;
    bool refused = false;
    std::vector<uint8_t> got;
    REQUIRE(run_until(*r, [&] {
        while (written < kTotal && st->writable()) {
            size_t n = std::min(kPiece, kTotal - written);
            if (!st->write(pattern_string(kSeed, written, n))) {
                refused = true;  // below out_cap while writable(): must not happen
                break;
            }
            written += n;
        }
        drain(out.r, got);
        return got.size() >= kTotal;
    }));
    CHECK(!refused);
    CHECK(got.size() == kTotal);
    CHECK(first_mismatch(kSeed, got) == kTotal);
    CHECK(run_until(*r, [&] { return st->queued() == 0; }));
    CHECK(rec.data.empty());

    st->close_after_flush();
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
    CHECK(rec.reason.code == Errc::Ok);
    drain(out.r, got);
    CHECK(got.size() == kTotal);
    CHECK(fd_open(out.w));
}

TEST_CASE("fd_stream: watermarks on an output pipe nobody reads" * doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    bool nb = nonblocking_subcase();
    CAPTURE(nb);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe out;
    REQUIRE(out.ok());
    out.stream_writes(nb);
    const size_t cap = pipe_capacity(out.w);
    REQUIRE(cap > 0);

    Recorder rec;
    FdStreamOptions o;
    o.out_cap = 512 << 10;
    o.high_water = 256 << 10;
    o.low_water = 96 << 10;
    REQUIRE(cap < o.low_water);  // so that the pipe alone cannot hold the low watermark
    auto s = FdStream::open(*r, -1, out.w, &rec, o);
    REQUIRE(s);
    FdStream* st = *s;

    constexpr uint64_t kSeed = 33;
    constexpr size_t kFirst = 128 << 10;
    constexpr size_t kPiece = 16 << 10;
    size_t written = 0;
    REQUIRE(st->write(pattern_string(kSeed, 0, kFirst)));
    written = kFirst;
    CHECK(st->writable());
    // The kernel took what the pipe holds; the rest waits in the stream, a write in flight.
    REQUIRE(run_until(*r, [&] {
        size_t in_pipe = pipe_bytes(out.r);
        return in_pipe > 0 && in_pipe + st->queued() == kFirst;
    }));
    CHECK(pipe_bytes(out.r) <= cap);
    CHECK(st->inflight() == 1);

    // writable() turns false exactly when queued() reaches high_water.
    while (st->writable()) {
        CHECK(st->queued() < o.high_water);
        REQUIRE(st->write(pattern_string(kSeed, written, kPiece)));
        written += kPiece;
        REQUIRE(written < 4 * size_t(o.out_cap));
    }
    CHECK(st->queued() >= o.high_water);
    CHECK(st->queued() < o.high_water + kPiece);

    // Not writable is advice: write() still accepts up to out_cap, exactly.
    Status last;
    for (;;) {
        last = st->write(pattern_string(kSeed, written, kPiece));
        if (!last) {
            break;
        }
        written += kPiece;
        REQUIRE(written < 4 * size_t(o.out_cap));
    }
    CHECK(last.error().code == Errc::Busy);
    CHECK(st->queued() <= o.out_cap);
    CHECK(st->queued() + kPiece > o.out_cap);
    size_t room = o.out_cap - st->queued();
    if (room > 0) {
        REQUIRE(st->write(pattern_string(kSeed, written, room)));
        written += room;
    }
    CHECK(st->queued() == o.out_cap);
    Status one = st->write("x");
    REQUIRE(!one);
    CHECK(one.error().code == Errc::Busy);
    CHECK(st->queued() == o.out_cap);  // a refused write queues nothing

    // Nobody reads: nothing moves, no on_resume.
    spin(*r);
    CHECK(rec.resumes == 0);
    CHECK(!st->writable());
    CHECK(st->queued() == o.out_cap);

    // Drain on the test side: on_resume comes once, as soon as queued() < low_water.
    std::vector<uint8_t> got;
    bool early = false;  // writable() again without on_resume
    bool late = false;   // below low_water without on_resume
    REQUIRE(run_until(*r, [&] {
        drain(out.r, got);
        if (rec.resumes == 0 && st->writable()) {
            early = true;
        }
        if (rec.resumes == 0 && st->queued() < o.low_water) {
            late = true;
        }
        return got.size() >= written && st->queued() == 0;
    }));
    CHECK(!early);
    CHECK(!late);
    CHECK(rec.resumes == 1);
    CHECK(rec.queued_at_resume < o.low_water);
    CHECK(rec.writable_at_resume);
    CHECK(got.size() == written);
    CHECK(first_mismatch(kSeed, got) == written);
    CHECK(rec.closes == 0);

    st->close();
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
    CHECK(rec.reason.code == Errc::Closed);
}

TEST_CASE("fd_stream: pause_read() lets at most one more chunk through" *
          doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    bool nb = nonblocking_subcase();
    CAPTURE(nb);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    REQUIRE(in.ok());
    in.stream_reads(nb);

    Recorder rec;
    FdStreamOptions o;
    o.read_chunk = 4096;
    auto s = FdStream::open(*r, in.r, -1, &rec, o);
    REQUIRE(s);
    FdStream* st = *s;
    spin(*r);  // the read (or its poll) is now waiting on the empty pipe
    CHECK(st->inflight() == 1);
    CHECK(rec.chunks == 0);

    // Paused from outside while the read is in flight: that read may still deliver.
    st->pause_read();
    constexpr uint64_t kSeed = 44;
    constexpr size_t kFed = 32 << 10;
    REQUIRE(feed(in.w, kSeed, 0, kFed) == kFed);
    REQUIRE(run_until(*r, [&] { return st->inflight() == 0; }));
    spin(*r);
    CHECK(rec.chunks <= 1);
    CHECK(rec.data.size() <= o.read_chunk);
    CHECK(pipe_bytes(in.r) == kFed - rec.data.size());  // nothing else was taken from the pipe
    size_t chunks = rec.chunks;

    // Paused from inside on_read(): not a single chunk more.
    rec.pause_in_read = true;
    st->resume_read();
    REQUIRE(run_until(*r, [&] { return rec.chunks > chunks && st->inflight() == 0; }));
    spin(*r);
    CHECK(rec.chunks == chunks + 1);
    CHECK(pipe_bytes(in.r) == kFed - rec.data.size());

    // resume_read() continues where it stopped.
    rec.pause_in_read = false;
    st->resume_read();
    REQUIRE(run_until(*r, [&] { return rec.data.size() >= kFed; }));
    CHECK(rec.data.size() == kFed);
    CHECK(first_mismatch(kSeed, rec.data) == kFed);
    CHECK(rec.max_chunk <= o.read_chunk);
    CHECK(rec.eofs == 0);

    st->close();
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
    CHECK(rec.reason.code == Errc::Closed);
}

TEST_CASE("fd_stream: start_paused reads nothing until resume_read()" *
          doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    REQUIRE(in.ok());
    set_nonblocking(in.w);
    REQUIRE(::write(in.w, "abc", 3) == 3);

    Recorder rec;
    FdStreamOptions o;
    o.start_paused = true;
    auto s = FdStream::open(*r, in.r, -1, &rec, o);
    REQUIRE(s);
    FdStream* st = *s;
    spin(*r);
    CHECK(st->inflight() == 0);
    CHECK(rec.chunks == 0);
    CHECK(pipe_bytes(in.r) == 3);

    st->resume_read();
    REQUIRE(run_until(*r, [&] { return rec.data.size() >= 3; }));
    CHECK(std::string(rec.data.begin(), rec.data.end()) == "abc");
    st->close();
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
}

TEST_CASE("fd_stream: close_after_flush() writes everything, then on_close(Ok); fds stay open" *
          doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    bool nb = nonblocking_subcase();
    CAPTURE(nb);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;   // stays empty: a read is in flight the whole time
    Pipe out;  // the test reads it only after close_after_flush()
    REQUIRE(in.ok());
    REQUIRE(out.ok());
    in.stream_reads(nb);
    out.stream_writes(nb);

    Recorder rec;
    auto s = FdStream::open(*r, in.r, out.w, &rec);
    REQUIRE(s);
    FdStream* st = *s;

    constexpr uint64_t kSeed = 55;
    constexpr size_t kTotal = 256 << 10;  // several times a pipe's capacity
    REQUIRE(st->write(pattern_string(kSeed, 0, kTotal / 2)));
    REQUIRE(st->write(pattern_string(kSeed, kTotal / 2, kTotal / 2)));
    REQUIRE(run_until(*r, [&] { return pipe_bytes(out.r) > 0; }));

    st->close_after_flush();
    Status late = st->write("late");
    REQUIRE(!late);
    CHECK(late.error().code == Errc::Closed);
    spin(*r);
    CHECK(rec.closes == 0);  // the pipe is full: the queue cannot be flushed yet
    CHECK(st->queued() > 0);

    std::vector<uint8_t> got;
    REQUIRE(run_until(*r, [&] {
        drain(out.r, got);
        return rec.closes == 1;
    }));
    drain(out.r, got);  // on_close came after the last byte went into the pipe
    CHECK(got.size() == kTotal);
    CHECK(first_mismatch(kSeed, got) == kTotal);
    CHECK(rec.reason.code == Errc::Ok);
    CHECK(rec.chunks == 0);

    // Neither fd was closed by the stream, and both still work.
    CHECK(fd_open(in.r));
    CHECK(fd_open(out.w));
    CHECK(::write(out.w, "z", 1) == 1);
    CHECK(::write(in.w, "y", 1) == 1);
    char c = 0;
    set_nonblocking(in.r);
    CHECK(::read(in.r, &c, 1) == 1);  // the cancelled read took nothing
    CHECK(c == 'y');
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

TEST_CASE("fd_stream: close_after_flush() with nothing queued closes from a completion" *
          doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    Pipe out;
    REQUIRE(in.ok());
    REQUIRE(out.ok());

    Recorder rec;
    auto s = FdStream::open(*r, in.r, out.w, &rec);
    REQUIRE(s);
    spin(*r);
    (*s)->close_after_flush();
    CHECK(rec.closes == 0);  // never from inside the owner's call
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
    CHECK(rec.reason.code == Errc::Ok);
    CHECK(fd_open(in.r));
    CHECK(fd_open(out.w));
}

TEST_CASE("fd_stream: close() while a read waits on an empty pipe completes" *
          doctest::skip(!uring_ok())) {
    bool nb = nonblocking_subcase();
    CAPTURE(nb);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    REQUIRE(in.ok());
    if (nb) {
        set_nonblocking(in.r);
    }

    Recorder rec;
    auto s = FdStream::open(*r, in.r, -1, &rec);
    REQUIRE(s);
    FdStream* st = *s;
    spin(*r);
    REQUIRE(st->inflight() == 1);  // the read (or its poll) is waiting

    st->close();
    CHECK(rec.closes == 0);  // on_close comes from a completion
    CHECK(st->state() == FdStream::State::Closing);
    CHECK(!st->write("x"));
    REQUIRE(run_until(
        *r, [&] { return rec.closes == 1; }, std::chrono::seconds(5)));
    CHECK(rec.reason.code == Errc::Closed);
    CHECK(rec.chunks == 0);
    CHECK(rec.eofs == 0);
    CHECK(fd_open(in.r));
    CHECK(fd_open(in.w));
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));

    // The cancelled read consumed nothing: a byte written now is still there to read.
    REQUIRE(::write(in.w, "q", 1) == 1);
    CHECK(pipe_bytes(in.r) == 1);
}

TEST_CASE("fd_stream: close(reason) with a read and a blocked write in flight" *
          doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    bool nb = nonblocking_subcase();
    CAPTURE(nb);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    Pipe out;
    REQUIRE(in.ok());
    REQUIRE(out.ok());
    set_nonblocking(out.r);
    if (nb) {
        set_nonblocking(in.r);
        set_nonblocking(out.w);
    }

    Recorder rec;
    auto s = FdStream::open(*r, in.r, out.w, &rec);
    REQUIRE(s);
    FdStream* st = *s;
    REQUIRE(st->write(std::string(256 << 10, 'w')));
    REQUIRE(run_until(*r, [&] { return pipe_bytes(out.r) > 0; }));
    spin(*r);
    CHECK(st->inflight() == 2);  // read (or poll) + write (or poll)

    st->close(Error{Errc::Protocol, 0, "test"});
    REQUIRE(run_until(
        *r, [&] { return rec.closes == 1; }, std::chrono::seconds(5)));
    CHECK(rec.reason.code == Errc::Protocol);
    CHECK(std::string(rec.reason.op) == "test");
    CHECK(fd_open(in.r));
    CHECK(fd_open(out.w));
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
    // Nothing is written after on_close: the pipe holds only what went in before.
    size_t before = pipe_bytes(out.r);
    spin(*r);
    CHECK(pipe_bytes(out.r) == before);
}

TEST_CASE("fd_stream: an output pipe without a reader closes the stream with EPIPE" *
          doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    bool nb = nonblocking_subcase();
    CAPTURE(nb);
    bool while_blocked = false;
    SUBCASE("reader gone before the write") {
        while_blocked = false;
    }
    SUBCASE("reader gone while the write waits on a full pipe") {
        while_blocked = true;
    }
    CAPTURE(while_blocked);

    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;  // a read in flight too: the close must cancel it
    Pipe out;
    REQUIRE(in.ok());
    REQUIRE(out.ok());
    set_nonblocking(out.r);
    if (nb) {
        set_nonblocking(in.r);
        set_nonblocking(out.w);
    }

    Recorder rec;
    auto s = FdStream::open(*r, in.r, out.w, &rec);
    REQUIRE(s);
    FdStream* st = *s;
    if (while_blocked) {
        REQUIRE(st->write(std::string(256 << 10, 'e')));
        REQUIRE(run_until(*r, [&] { return pipe_bytes(out.r) > 0; }));
        spin(*r);
        CHECK(rec.closes == 0);
        out.close_r();
    } else {
        out.close_r();
        REQUIRE(st->write("hello"));
    }
    REQUIRE(run_until(
        *r, [&] { return rec.closes == 1; }, std::chrono::seconds(5)));
    CHECK(rec.reason.code == Errc::Syscall);
    CHECK(rec.reason.sys == EPIPE);
    CHECK(fd_open(in.r));
    CHECK(fd_open(out.w));
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
}

TEST_CASE("fd_stream: regular files, read and written at the file position" *
          doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    char in_path[] = "/tmp/cfd_fd_stream_in_XXXXXX";
    char out_path[] = "/tmp/cfd_fd_stream_out_XXXXXX";
    int in_fd = ::mkstemp(in_path);
    int out_fd = ::mkstemp(out_path);
    REQUIRE(in_fd >= 0);
    REQUIRE(out_fd >= 0);
    ::unlink(in_path);
    ::unlink(out_path);

    constexpr uint64_t kSeed = 66;
    constexpr size_t kTotal = (200 << 10) + 123;  // not a multiple of the read chunk
    std::string blob = pattern_string(kSeed, 0, kTotal);
    REQUIRE(::write(in_fd, blob.data(), blob.size()) == ssize_t(kTotal));
    REQUIRE(::lseek(in_fd, 0, SEEK_SET) == 0);

    Recorder rec;
    FdStreamOptions o;
    o.read_chunk = 16 << 10;
    auto s = FdStream::open(*r, in_fd, out_fd, &rec, o);
    REQUIRE(s);
    FdStream* st = *s;
    REQUIRE(run_until(*r, [&] { return rec.eofs > 0; }));
    CHECK(rec.eofs == 1);
    CHECK(rec.data.size() == kTotal);
    CHECK(first_mismatch(kSeed, rec.data) == kTotal);

    // Three writes in a row: each continues where the previous one ended.
    REQUIRE(st->write(blob.substr(0, 1000)));
    REQUIRE(st->write(blob.substr(1000, 100000)));
    REQUIRE(st->write(blob.substr(101000)));
    st->close_after_flush();
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
    CHECK(rec.reason.code == Errc::Ok);
    CHECK(fd_open(in_fd));
    CHECK(fd_open(out_fd));
    std::string back(kTotal + 10, '\0');
    CHECK(::pread(out_fd, back.data(), back.size(), 0) == ssize_t(kTotal));
    back.resize(kTotal);
    CHECK(back == blob);
    ::close(in_fd);
    ::close(out_fd);
}

TEST_CASE("fd_stream: one socket as both ends (a ProxyCommand's stdin and stdout)" *
          doctest::skip(!uring_ok())) {
    ignore_sigpipe();
    auto r = make_reactor();
    REQUIRE(r);
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    set_nonblocking(sv[1]);

    Recorder rec;
    auto s = FdStream::open(*r, sv[0], sv[0], &rec);
    REQUIRE(s);
    FdStream* st = *s;
    REQUIRE(::write(sv[1], "ping", 4) == 4);
    REQUIRE(run_until(*r, [&] { return rec.data.size() >= 4; }));
    CHECK(std::string(rec.data.begin(), rec.data.end()) == "ping");
    REQUIRE(st->write("pong"));
    std::vector<uint8_t> got;
    REQUIRE(run_until(*r, [&] {
        drain(sv[1], got);
        return got.size() >= 4;
    }));
    CHECK(std::string(got.begin(), got.end()) == "pong");

    // A read waiting and a write stuck on a full socket, both on the same fd: one close.
    REQUIRE(st->write(std::string(1 << 20, 'p')));  // more than the socket buffers hold
    spin(*r);
    CHECK(st->inflight() == 2);
    st->close();
    REQUIRE(run_until(
        *r, [&] { return rec.closes == 1; }, std::chrono::seconds(5)));
    CHECK(rec.reason.code == Errc::Closed);
    CHECK(fd_open(sv[0]));
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("fd_stream: a pty, read blocking; close() while the read waits" *
          doctest::skip(!uring_ok())) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
        MESSAGE("no pty available: skipped");
        if (master >= 0) {
            ::close(master);
        }
        return;
    }
    const char* name = ::ptsname(master);
    REQUIRE(name != nullptr);
    int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(slave >= 0);
    termios t{};
    REQUIRE(::tcgetattr(slave, &t) == 0);
    ::cfmakeraw(&t);
    REQUIRE(::tcsetattr(slave, TCSANOW, &t) == 0);
    set_nonblocking(master);

    auto r = make_reactor();
    REQUIRE(r);
    Recorder rec;
    auto s = FdStream::open(*r, slave, slave, &rec);
    REQUIRE(s);
    FdStream* st = *s;
    REQUIRE(::write(master, "tty-in", 6) == 6);
    REQUIRE(run_until(
        *r, [&] { return rec.data.size() >= 6; }, std::chrono::seconds(5)));
    CHECK(std::string(rec.data.begin(), rec.data.end()) == "tty-in");
    REQUIRE(st->write("tty-out"));
    std::vector<uint8_t> got;
    REQUIRE(run_until(
        *r,
        [&] {
            drain(master, got);
            return got.size() >= 7;
        },
        std::chrono::seconds(5)));
    CHECK(std::string(got.begin(), got.end()) == "tty-out");

    spin(*r);
    CHECK(st->inflight() == 1);  // the next read waits on the tty
    st->close();
    REQUIRE(run_until(
        *r, [&] { return rec.closes == 1; }, std::chrono::seconds(5)));
    CHECK(rec.reason.code == Errc::Closed);
    CHECK(rec.data.size() == 6);
    CHECK(fd_open(slave));
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
    ::close(slave);
    ::close(master);
}

namespace {
// Closes the stream from inside on_read(), on the first chunk.
struct CloseInRead : Recorder {
    void on_read(FdStream& s, std::span<const uint8_t> b) override {
        Recorder::on_read(s, b);
        s.close(Error{Errc::Protocol, 0, "enough"});
    }
};
}  // namespace

TEST_CASE("fd_stream: close() from inside on_read(): no further callbacks but on_close" *
          doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    REQUIRE(in.ok());
    set_nonblocking(in.w);
    REQUIRE(feed(in.w, 77, 0, 32 << 10) == (32 << 10));
    in.close_w();  // EOF right behind the data

    CloseInRead rec;
    FdStreamOptions o;
    o.read_chunk = 4096;
    auto s = FdStream::open(*r, in.r, -1, &rec, o);
    REQUIRE(s);
    REQUIRE(run_until(*r, [&] { return rec.closes == 1; }));
    spin(*r);
    CHECK(rec.chunks == 1);
    CHECK(rec.eofs == 0);
    CHECK(rec.closes == 1);
    CHECK(rec.reason.code == Errc::Protocol);
    CHECK(pipe_bytes(in.r) == (32 << 10) - rec.data.size());
}

TEST_CASE("fd_stream: a stopping reactor closes the stream" * doctest::skip(!uring_ok())) {
    auto r = make_reactor();
    REQUIRE(r);
    Pipe in;
    REQUIRE(in.ok());
    Recorder rec;
    auto s = FdStream::open(*r, in.r, -1, &rec);
    REQUIRE(s);
    spin(*r);
    r->request_stop();
    REQUIRE(run_until(
        *r, [&] { return rec.closes == 1; }, std::chrono::seconds(5)));
    CHECK(rec.reason.code == Errc::Closed);
    CHECK(run_until(*r, [&] { return r->live_objects() == 0; }));
    CHECK(fd_open(in.r));
}
