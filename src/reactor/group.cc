#include "cfd/reactor/group.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "cfd/core/log.h"

namespace cfd::reactor {

namespace {

// Pins the calling thread to the i-th CPU of the set we are allowed to run on.
void pin_to_cpu(uint32_t i) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        return;
    }
    int count = CPU_COUNT(&allowed);
    if (count <= 0) {
        return;
    }
    int want = int(i % uint32_t(count));
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &allowed)) {
            continue;
        }
        if (seen++ == want) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) != 0) {
                log::debug("could not pin reactor thread", {{"core", i}, {"cpu", cpu}});
            }
            return;
        }
    }
}

void wait_until(std::atomic<uint32_t>& a, uint32_t target) {
    for (uint32_t v = a.load(std::memory_order_acquire); v < target;
         v = a.load(std::memory_order_acquire)) {
        a.wait(v, std::memory_order_acquire);
    }
}

void bump(std::atomic<uint32_t>& a) {
    a.fetch_add(1, std::memory_order_acq_rel);
    a.notify_all();
}

}  // namespace

ReactorGroup::ReactorGroup(GroupOptions o) : opts_(std::move(o)) {
    n_ = opts_.threads;
    if (n_ == 0) {
        long c = ::sysconf(_SC_NPROCESSORS_ONLN);
        n_ = c > 0 ? uint32_t(c) : 1;
    }
    queues_.reserve(size_t(n_) * n_);
    for (uint32_t i = 0; i < n_ * n_; ++i) {
        queues_.push_back(std::make_unique<SpscQueue<Message>>(opts_.queue_capacity));
    }
    reactors_.assign(n_, nullptr);
}

ReactorGroup::~ReactorGroup() { stop(); }

Status ReactorGroup::start(std::function<void(Reactor&)> init) {
    if (started_.exchange(true)) {
        return Err{Errc::Invalid, 0, "reactor group already started"};
    }
    threads_.reserve(n_);
    for (uint32_t i = 0; i < n_; ++i) {
        threads_.emplace_back([this, i, &init] { thread_main(i, &init); });
    }
    wait_until(created_, n_);
    if (failed_.load() > 0) {
        abort_.store(true);
        go_.store(true);
        go_.notify_all();
        for (auto& t : threads_) {
            t.join();
        }
        threads_.clear();
        stopping_.store(true);
        return first_error_;
    }
    go_.store(true);
    go_.notify_all();
    // `init` lives on this stack frame: wait until every thread has run it.
    wait_until(inited_, n_);
    return {};
}

void ReactorGroup::thread_main(uint32_t i, std::function<void(Reactor&)>* init) {
    ReactorOptions ro = opts_.reactor;
    ro.index = i;
    ro.log_features = ro.log_features && i == 0;  // one line per process is enough
    if (opts_.pin) {
        pin_to_cpu(i);
    }
    auto r = Reactor::create(ro);
    if (!r) {
        if (failed_.fetch_add(1) == 0) {
            first_error_ = r.error();
        }
        bump(created_);
        return;
    }
    std::unique_ptr<Reactor> reactor = std::move(*r);
    reactor->group_ = this;
    reactors_[i] = reactor.get();
    bump(created_);
    go_.wait(false);
    if (abort_.load()) {
        return;
    }
    if (*init) {
        (*init)(*reactor);
    }
    bump(inited_);
    reactor->run();
    // Keep the ring alive until every loop has stopped: a peer may still ring our doorbell.
    bump(loops_done_);
    wait_until(loops_done_, n_);
}

Status ReactorGroup::post(uint32_t to, const Message& m) {
    if (to >= n_) {
        return Err{Errc::Invalid, 0, "post: no such reactor"};
    }
    if (stopping() || !go_.load() || abort_.load()) {
        return Err{Errc::Closed, 0, "post: group not running"};
    }
    Reactor* cur = current();
    if (cur != nullptr && cur->group_ == this) {
        return cur->post(to, m);
    }
    return reactors_[to]->post_external(m);
}

void ReactorGroup::stop() {
    if (threads_.empty()) {
        return;
    }
    stopping_.store(true, std::memory_order_release);
    for (Reactor* r : reactors_) {
        if (r != nullptr) {
            r->request_stop();
        }
    }
    for (auto& t : threads_) {
        t.join();
    }
    threads_.clear();
}

}  // namespace cfd::reactor
