// ReactorGroup: N reactor threads (one per core by default), each pinned to its core when the
// affinity mask allows, each running a per-core init function and then its loop. The group owns
// the N*N mailbox queues; any thread may post a message to core k. stop() makes every loop close
// its objects and exit, then joins the threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "cfd/core/result.h"
#include "cfd/reactor/mailbox.h"
#include "cfd/reactor/reactor.h"

namespace cfd::reactor {

struct GroupOptions {
    uint32_t threads = 0;           // 0: one per online CPU
    bool pin = true;                // pin reactor i to CPU i (mod the CPUs we may run on)
    uint32_t queue_capacity = 1024; // messages per ordered core pair
    ReactorOptions reactor;         // `index` is set per thread
};

class ReactorGroup {
public:
    explicit ReactorGroup(GroupOptions o = {});
    ~ReactorGroup();
    ReactorGroup(const ReactorGroup&) = delete;
    ReactorGroup& operator=(const ReactorGroup&) = delete;

    // Starts the threads, runs init(reactor) on each reactor's own thread, and returns once every
    // init returned. An error when a reactor could not be created (all threads are then gone).
    [[nodiscard]] Status start(std::function<void(Reactor&)> init = {});
    // Every loop closes its objects and exits; joins. Idempotent.
    void stop();

    uint32_t size() const { return n_; }
    bool stopping() const { return stopping_.load(std::memory_order_acquire); }
    // Any thread. From one of this group's reactor threads the lock-free pair queue is used,
    // otherwise the target's external queue. Busy when full.
    [[nodiscard]] Status post(uint32_t to, const Message& m);

    SpscQueue<Message>& queue(uint32_t from, uint32_t to) { return *queues_[from * n_ + to]; }
    Reactor& reactor(uint32_t i) { return *reactors_[i]; }

    // The reactor running on the calling thread, or nullptr.
    static Reactor* current();

private:
    void thread_main(uint32_t i, std::function<void(Reactor&)>* init);

    GroupOptions opts_;
    uint32_t n_ = 0;
    std::vector<std::unique_ptr<SpscQueue<Message>>> queues_;
    std::vector<Reactor*> reactors_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stopping_{false};
    std::atomic<uint32_t> created_{0};
    std::atomic<uint32_t> failed_{0};
    std::atomic<uint32_t> inited_{0};
    std::atomic<bool> go_{false};
    std::atomic<bool> abort_{false};
    std::atomic<uint32_t> loops_done_{0};
    Error first_error_{};
    std::atomic<bool> started_{false};
};

}  // namespace cfd::reactor
