#include <doctest/doctest.h>

#include <vector>

#include "cfd/core/duration.h"
#include "cfd/reactor/features.h"
#include "cfd/reactor/mailbox.h"
#include "cfd/reactor/op.h"
#include "cfd/reactor/timers.h"

using namespace cfd::reactor;
using cfd::Millis;

namespace {
struct Recorder : TimerTarget {
    std::vector<uint64_t> fired;
    void on_timer(TimerId, uint64_t arg) override { fired.push_back(arg); }
};
}  // namespace

TEST_CASE("reactor: op tags round-trip kind, generation and slot") {
    uint64_t t = make_tag(OpKind::Send, 0xabcdef, 0x12345678);
    Tag s = split_tag(t);
    CHECK(s.kind == OpKind::Send);
    CHECK(s.gen == 0xabcdef);
    CHECK(s.slot == 0x12345678);
    CHECK(split_tag(make_tag(OpKind::Recv, 0x1000001, 1)).gen == 1);  // 24 bits kept
    CHECK(next_gen(kGenMask) == 1);
    CHECK(next_gen(7) == 8);
}

TEST_CASE("reactor: timers fire in deadline order, ties in insertion order") {
    TimerQueue q;
    Recorder r;
    TimePoint t0{};
    REQUIRE(q.add(t0 + Millis(30), &r, 3));
    REQUIRE(q.add(t0 + Millis(10), &r, 1));
    REQUIRE(q.add(t0 + Millis(20), &r, 2));
    REQUIRE(q.add(t0 + Millis(20), &r, 22));
    CHECK(q.next_deadline() == t0 + Millis(10));
    TimerQueue::Fired f;
    CHECK(!q.pop_due(t0 + Millis(5), &f));
    while (q.pop_due(t0 + Millis(25), &f)) {
        f.target->on_timer(f.id, f.arg);
    }
    CHECK(r.fired == std::vector<uint64_t>{1, 2, 22});
    CHECK(q.live() == 1);
}

TEST_CASE("reactor: cancelled timers never fire and churn stays bounded") {
    TimerQueue q;
    Recorder r;
    TimePoint t0{};
    auto keep = q.add(t0 + Millis(1), &r, 7);
    REQUIRE(keep);
    for (int i = 0; i < 100000; ++i) {
        auto id = q.add(t0 + Millis(5), &r, 99);
        REQUIRE(id);
        CHECK(q.cancel(*id));
        CHECK(!q.cancel(*id));  // twice is harmless
    }
    CHECK(q.heap_size() < 200);
    TimerQueue::Fired f;
    while (q.pop_due(t0 + Millis(100), &f)) {
        f.target->on_timer(f.id, f.arg);
    }
    CHECK(r.fired == std::vector<uint64_t>{7});
    CHECK(!q.cancel(*keep));  // already fired
}

TEST_CASE("reactor: timer queue refuses beyond its bound") {
    TimerQueue q(2);
    Recorder r;
    CHECK(q.add(TimePoint{}, &r, 1));
    CHECK(q.add(TimePoint{}, &r, 2));
    auto third = q.add(TimePoint{}, &r, 3);
    REQUIRE(!third);
    CHECK(third.error().code == cfd::Errc::Busy);
}

TEST_CASE("reactor: spsc queue is bounded and FIFO") {
    SpscQueue<int> q(3);  // rounds up to 4
    CHECK(q.capacity() == 4);
    for (int i = 0; i < 4; ++i) {
        CHECK(q.push(i));
    }
    CHECK(!q.push(9));
    int v = -1;
    for (int i = 0; i < 4; ++i) {
        REQUIRE(q.pop(&v));
        CHECK(v == i);
    }
    CHECK(!q.pop(&v));
    CHECK(q.empty());
}

TEST_CASE("reactor: kernel release parsing") {
    auto v = parse_kernel_release("6.1.0-13-amd64");
    REQUIRE(v);
    CHECK(v->major == 6);
    CHECK(v->minor == 1);
    CHECK(!parse_kernel_release("linux"));
    CHECK(!parse_kernel_release("6"));
    CHECK(!parse_kernel_release(""));
}
