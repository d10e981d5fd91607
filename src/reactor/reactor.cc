#include "cfd/reactor/reactor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cfd/core/log.h"
#include "cfd/reactor/features.h"
#include "cfd/reactor/group.h"

namespace cfd::reactor {

namespace {
constexpr uint32_t kCqeBatch = 256;
constexpr auto kStopGrace = std::chrono::seconds(5);
thread_local Reactor* t_current = nullptr;
}  // namespace

Reactor* ReactorGroup::current() { return t_current; }

void IoObject::retire() {
    retired_ = true;
    if (inflight_ == 0) {
        reactor_->schedule_free(*this);
    }
}

void LentBuf::release() {
    if (reactor_ != nullptr) {
        Reactor* r = reactor_;
        reactor_ = nullptr;
        r->return_buffer(bid_, owner_);
    }
}

Reactor::Reactor(const ReactorOptions& o) : opts_(o), timers_(o.max_timers) {}

Result<std::unique_ptr<Reactor>> Reactor::create(const ReactorOptions& o) {
    if (auto k = check_kernel(); !k) {
        return k.error();
    }
    std::unique_ptr<Reactor> r(new Reactor(o));
    if (auto s = r->init(); !s) {
        return s.error();
    }
    return r;
}

Status Reactor::init() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = opts_.cq_entries;
    int rc = io_uring_queue_init_params(opts_.sq_entries, &ring_, &p);
    if (rc != 0) {
        return Err{Errc::Syscall, -rc, "io_uring_setup (SINGLE_ISSUER|DEFER_TASKRUN)"};
    }
    ring_ready_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG)) {
        return Err{Errc::Unsupported, 0, "io_uring lacks EXT_ARG (wait with timeout)"};
    }
    if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_); probe != nullptr) {
        has_msg_ring_ =
            opts_.use_msg_ring && io_uring_opcode_supported(probe, IORING_OP_MSG_RING) != 0;
        io_uring_free_probe(probe);
    }
    if (auto s = bufs_.init(&ring_, 0, opts_.buf_count, opts_.buf_chunk); !s) {
        return s;
    }
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) {
        return Err{Errc::Syscall, errno, "eventfd"};
    }
    now_ = Clock::now();
    t_current = this;  // this thread's reactor from now on (init functions may post)
    arm_eventfd();
    if (opts_.log_features) {
        log::info("io_uring reactor started",
                  {{"core", opts_.index}, {"features", features_line()}});
    }
    return {};
}

Reactor::~Reactor() {
    if (t_current == this) {
        t_current = nullptr;
    }
    // Objects still alive here are past the stop grace: the kernel cancels their requests when
    // the ring goes away. Destroy them first so no LentBuf outlives the buffer memory.
    for (auto& e : slab_) {
        e.obj.reset();
    }
    bufs_.destroy();
    if (ring_ready_) {
        io_uring_queue_exit(&ring_);
    }
    if (efd_ >= 0) {
        ::close(efd_);
    }
}

Result<IoObject*> Reactor::adopt(std::unique_ptr<IoObject> obj) {
    if (stop_started_) {
        return Err{Errc::Closed, 0, "reactor stopping"};
    }
    uint32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else if (slab_.size() < opts_.max_objects) {
        slot = uint32_t(slab_.size());
        slab_.emplace_back();
    } else {
        return Err{Errc::Busy, 0, "reactor slab full"};
    }
    SlabEntry& e = slab_[slot];
    obj->reactor_ = this;
    obj->slot_ = slot;
    obj->gen_ = e.gen;
    e.obj = std::move(obj);
    ++live_;
    return e.obj.get();
}

IoObject* Reactor::find(Handle h) const {
    if (h.gen == 0 || h.slot >= slab_.size()) {
        return nullptr;
    }
    const SlabEntry& e = slab_[h.slot];
    return e.gen == h.gen ? e.obj.get() : nullptr;
}

io_uring_sqe* Reactor::get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
        (void)io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
    }
    // With SUBMIT_ALL a submit empties the SQ unless the kernel is out of memory.
    CFD_CHECK(sqe != nullptr);
    return sqe;
}

void Reactor::reserve_sqes(unsigned n) {
    if (io_uring_sq_space_left(&ring_) < n) {
        (void)io_uring_submit(&ring_);
    }
}

io_uring_sqe* Reactor::prep(IoObject& owner, OpKind kind) {
    CFD_ASSERT(owner.reactor_ == this);
    io_uring_sqe* sqe = get_sqe();
    // The caller fills the SQE with io_uring_prep_*, which clears user_data: set it after.
    ++owner.inflight_;
    io_uring_sqe_set_data64(sqe, make_tag(kind, owner.gen_, owner.slot_));
    return sqe;
}

void Reactor::submit_untracked_nop(Handle h) {
    // CQE contract: exactly one CQE, res 0, with h's tag; no object counts it.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, make_tag(OpKind::Nop, h.gen, h.slot));
}

LentBuf Reactor::take_buffer(const IoObject& owner, int32_t res, uint32_t flags) {
    CFD_ASSERT(flags & IORING_CQE_F_BUFFER);
    auto bid = uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
    bufs_.taken();
    uint32_t len = res > 0 ? uint32_t(res) : 0;
    return LentBuf(this, bufs_.chunk(bid), std::min(len, bufs_.chunk_size()), bid, owner.handle());
}

void Reactor::return_buffer(uint16_t bid, Handle owner) {
    bufs_.give_back(bid);
    if (IoObject* o = find(owner); o != nullptr) {
        o->on_buffer_returned();
    }
    if (!buf_waiters_.empty()) {
        buf_waiters_wake_ = true;
    }
}

void Reactor::wait_for_buffers(IoObject& o) {
    ++stats_.enobufs_waits;
    if (!o.waiting_buffers_) {
        o.waiting_buffers_ = true;
        buf_waiters_.push_back(o.handle());  // at most once per object: bounded by the slab
    }
    // A buffer may have come back between the kernel's -ENOBUFS and now.
    if (bufs_.out() < bufs_.count()) {
        buf_waiters_wake_ = true;
    }
}

void Reactor::wake_buffer_waiters() {
    buf_waiters_wake_ = false;
    std::vector<Handle> waiters;
    waiters.swap(buf_waiters_);
    for (Handle h : waiters) {
        if (IoObject* o = find(h); o != nullptr) {
            o->waiting_buffers_ = false;
            o->on_buffers_available();
        }
    }
}

Result<TimerId> Reactor::add_timer(Millis after, TimerTarget* t, uint64_t arg) {
    return timers_.add(Clock::now() + after, t, arg);
}

Result<TimerId> Reactor::add_timer_at(TimePoint when, TimerTarget* t, uint64_t arg) {
    return timers_.add(when, t, arg);
}

void Reactor::fire_timers() {
    now_ = Clock::now();
    TimerQueue::Fired f;
    // Timers added by a callback for "now" run on the next turn, so a zero-delay re-arm loop
    // cannot starve completions.
    TimePoint limit = now_;
    while (timers_.pop_due(limit, &f)) {
        f.target->on_timer(f.id, f.arg);
    }
}

void Reactor::arm_eventfd() {
    // CQE contract: one CQE, res 8 (the counter was read) or -errno; re-armed unless stopping.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, efd_, &efd_value_, sizeof(efd_value_), 0);
    io_uring_sqe_set_data64(sqe, make_tag(OpKind::EventRead, 0, 0));
    efd_armed_ = true;
    ++internal_inflight_;
}

void Reactor::wake_by_eventfd() {
    uint64_t one = 1;
    // Non-blocking eventfd: the write only fails when the counter would overflow, and then the
    // reader is certainly going to wake anyway.
    ssize_t n = ::write(efd_, &one, sizeof(one));
    (void)n;
}

void Reactor::dispatch(uint64_t user_data, int32_t res, uint32_t flags) {
    ++stats_.cqes;
    Tag t = split_tag(user_data);
    if (t.gen == 0) {
        dispatch_internal(t, res, flags);
        return;
    }
    if (t.slot >= slab_.size() || slab_[t.slot].gen != t.gen || !slab_[t.slot].obj) {
        ++stats_.stale_cqes;
        if (flags & IORING_CQE_F_BUFFER) {
            // The kernel consumed a chunk for a dead connection: put it back.
            bufs_.taken();
            bufs_.give_back(uint16_t(flags >> IORING_CQE_BUFFER_SHIFT));
        }
        return;
    }
    IoObject* o = slab_[t.slot].obj.get();
    if (!(flags & IORING_CQE_F_MORE)) {
        if (o->inflight_ > 0) {
            --o->inflight_;
        } else {
            CFD_BUG("final CQE for an object with nothing in flight");
        }
    }
    o->on_cqe(t.kind, res, flags);
    if (o->retired_ && o->inflight_ == 0) {
        schedule_free(*o);
    }
}

void Reactor::dispatch_internal(Tag t, int32_t res, uint32_t flags) {
    (void)flags;
    switch (t.kind) {
    case OpKind::Doorbell:
        ++stats_.doorbells_received;
        drain_mailboxes();
        break;
    case OpKind::MsgRingSent:
        // Only failures post a CQE (CQE_SKIP_SUCCESS): fall back to the target's eventfd.
        if (res < 0 && group_ != nullptr && t.slot < group_->size()) {
            group_->reactor(t.slot).wake_by_eventfd();
        }
        break;
    case OpKind::EventRead:
        --internal_inflight_;
        efd_armed_ = false;
        drain_mailboxes();
        if (!stop_started_ && res != -ECANCELED) {
            arm_eventfd();
        }
        break;
    case OpKind::Nop:
        break;  // our own cancel of the eventfd read at stop
    default:
        ++stats_.stale_cqes;
        break;
    }
}

void Reactor::schedule_free(IoObject& o) {
    if (!o.freeing_) {
        o.freeing_ = true;
        graveyard_.push_back(o.handle());
    }
}

void Reactor::free_retired() {
    while (!graveyard_.empty()) {
        std::vector<Handle> dead;
        dead.swap(graveyard_);
        for (Handle h : dead) {
            SlabEntry& e = slab_[h.slot];
            if (e.gen != h.gen || !e.obj) {
                continue;
            }
            // Destroying may release LentBufs (which look the owner up: it is still there).
            std::unique_ptr<IoObject> obj = std::move(e.obj);
            obj.reset();
            e.gen = next_gen(e.gen);
            free_slots_.push_back(h.slot);
            --live_;
        }
    }
}

void Reactor::add_turn_hook(TurnHook* h) { hooks_.push_back(h); }

void Reactor::remove_turn_hook(TurnHook* h) { std::erase(hooks_, h); }

void Reactor::run_once(std::optional<Millis> max_wait) {
    t_current = this;
    ++stats_.loop_turns;
    now_ = Clock::now();

    bool busy = drain_again_ || buf_waiters_wake_ || !graveyard_.empty();
    for (size_t i = 0; i < hooks_.size(); ++i) {
        busy = hooks_[i]->on_turn(*this) || busy;
    }
    std::optional<Millis> wait = max_wait;
    if (auto d = timers_.next_deadline(); d) {
        auto until = std::chrono::ceil<Millis>(*d - Clock::now());
        until = std::max(until, Millis(0));
        if (!wait || until < *wait) {
            wait = until;
        }
    }
    if (busy || (stop_started_ && live_ == 0)) {
        wait = Millis(0);
    }
    if (stop_started_ && (!wait || *wait > Millis(100))) {
        wait = Millis(100);  // re-check the stop grace now and then
    }

    int rc;
    if (wait && wait->count() == 0) {
        rc = io_uring_submit_and_get_events(&ring_);
    } else if (wait) {
        __kernel_timespec ts{};
        ts.tv_sec = wait->count() / 1000;
        ts.tv_nsec = (wait->count() % 1000) * 1000000;
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    } else {
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        log::warn("io_uring wait failed", {{"core", opts_.index}, {"errno", -rc}});
    }

    // Copy a batch out and hand the CQ slots back before running handlers: handlers submit,
    // and the kernel can keep posting while we work.
    struct Done {
        uint64_t ud;
        int32_t res;
        uint32_t flags;
    };
    Done batch[kCqeBatch];
    for (;;) {
        io_uring_cqe* cqes[kCqeBatch];
        unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kCqeBatch);
        if (n == 0) {
            break;
        }
        for (unsigned i = 0; i < n; ++i) {
            batch[i] = Done{cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
        }
        io_uring_cq_advance(&ring_, n);
        for (unsigned i = 0; i < n; ++i) {
            dispatch(batch[i].ud, batch[i].res, batch[i].flags);
        }
        if (n < kCqeBatch) {
            break;
        }
    }
    // After the wait, so that a turn that slept until a deadline fires that timer.
    fire_timers();
    if (drain_again_) {
        drain_mailboxes();
    }
    if (buf_waiters_wake_) {
        wake_buffer_waiters();
    }
    free_retired();
    if (stop_requested() && !stop_started_) {
        begin_stop();
    }
}

void Reactor::begin_stop() {
    stop_started_ = true;
    stop_deadline_ = Clock::now() + kStopGrace;
    for (size_t i = 0; i < slab_.size(); ++i) {
        IoObject* o = slab_[i].obj.get();
        if (o != nullptr && !o->retired_) {
            o->on_reactor_stop();
        }
    }
    if (efd_armed_) {
        // CQE contract: one CQE for the cancel itself; the read then ends with -ECANCELED.
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, make_tag(OpKind::EventRead, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, make_tag(OpKind::Nop, 0, 0));
    }
}

void Reactor::run() {
    t_current = this;
    for (;;) {
        run_once();
        if (stop_started_) {
            if (live_ == 0 && internal_inflight_ == 0) {
                break;
            }
            if (Clock::now() > stop_deadline_) {
                log::warn("reactor stop: objects still busy after the grace period",
                          {{"core", opts_.index}, {"objects", live_}});
                break;
            }
        }
    }
    // Complete anything already posted (e.g. the cancel's own CQE) before the ring goes away.
    (void)io_uring_submit_and_get_events(&ring_);
}

void Reactor::request_stop() {
    stop_requested_.store(true, std::memory_order_release);
    wake_by_eventfd();
}

Status Reactor::post(uint32_t to, Message m) {
    CFD_ASSERT(t_current == this);
    if (group_ == nullptr || to >= group_->size()) {
        return Err{Errc::Invalid, 0, "post: no such reactor"};
    }
    if (group_->stopping()) {
        return Err{Errc::Closed, 0, "post: group stopping"};
    }
    m.from = opts_.index;
    if (!group_->queue(opts_.index, to).push(m)) {
        return Err{Errc::Busy, 0, "post: mailbox full"};
    }
    ring_doorbell(group_->reactor(to));
    return {};
}

Status Reactor::post_external(Message m) {
    {
        std::lock_guard<std::mutex> lock(external_mu_);
        if (external_.size() >= opts_.external_queue) {
            return Err{Errc::Busy, 0, "post: external queue full"};
        }
        m.from = UINT32_MAX;
        external_.push_back(m);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!signalled_.exchange(true, std::memory_order_seq_cst)) {
        wake_by_eventfd();
    }
    return {};
}

void Reactor::ring_doorbell(Reactor& target) {
    // Pairs with the fence in drain_mailboxes(): either the consumer sees our push, or we see
    // signalled_ cleared and ring.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (target.signalled_.exchange(true, std::memory_order_seq_cst)) {
        return;  // a doorbell is already on its way; the consumer drains everything
    }
    if (&target == this) {
        drain_again_ = true;
        return;
    }
    ++stats_.doorbells_sent;
    if (!has_msg_ring_) {
        target.wake_by_eventfd();
        return;
    }
    // CQE contract: the target ring gets one CQE tagged Doorbell (res 0). Our side gets a CQE
    // only on failure (IOSQE_CQE_SKIP_SUCCESS), tagged MsgRingSent with the target's index.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_msg_ring(sqe, target.ring_fd(), 0, make_tag(OpKind::Doorbell, 0, 0), 0);
    io_uring_sqe_set_data64(sqe, make_tag(OpKind::MsgRingSent, 0, target.index()));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    // Submit now: the consumer must not wait for our next loop turn to learn about the message.
    (void)io_uring_submit(&ring_);
}

void Reactor::drain_mailboxes() {
    drain_again_ = false;
    signalled_.store(false, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    Message m;
    if (group_ != nullptr) {
        for (uint32_t from = 0; from < group_->size(); ++from) {
            SpscQueue<Message>& q = group_->queue(from, opts_.index);
            // At most one queue's worth per turn, so a fast producer cannot starve the loop.
            size_t budget = q.capacity();
            while (budget > 0 && q.pop(&m)) {
                --budget;
                ++stats_.messages_received;
                if (msg_handler_ != nullptr) {
                    msg_handler_->on_message(*this, m);
                }
            }
            if (budget == 0 && !q.empty()) {
                drain_again_ = true;
            }
        }
    }
    for (;;) {
        {
            std::lock_guard<std::mutex> lock(external_mu_);
            if (external_.empty()) {
                break;
            }
            m = external_.front();
            external_.pop_front();
        }
        ++stats_.messages_received;
        if (msg_handler_ != nullptr) {
            msg_handler_->on_message(*this, m);
        }
    }
}

}  // namespace cfd::reactor
