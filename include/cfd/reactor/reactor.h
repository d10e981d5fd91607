// The per-core event loop. One Reactor per thread, created on that thread and used only there
// (the ring is SINGLE_ISSUER | DEFER_TASKRUN). It owns:
//   - the ring and its completion dispatch (op tags with generations, see op.h),
//   - a slab of IoObjects (connections, listeners) addressed by Handle{slot, gen},
//   - a provided-buffer ring whose chunks are lent to connections' owners,
//   - timers, and the receiving side of the cross-core mailboxes.
// Nothing here blocks or takes a lock on the data path; only post_external() (control thread to
// reactor) uses a mutex.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "cfd/core/duration.h"
#include "cfd/core/result.h"
#include "cfd/reactor/buf_ring.h"
#include "cfd/reactor/mailbox.h"
#include "cfd/reactor/op.h"
#include "cfd/reactor/timers.h"

namespace cfd::reactor {

class Reactor;
class ReactorGroup;

struct ReactorOptions {
    uint32_t index = 0;            // this reactor's core index within its group
    uint32_t sq_entries = 512;
    uint32_t cq_entries = 8192;
    uint32_t buf_chunk = 16384;    // bytes per provided buffer
    uint32_t buf_count = 1024;     // provided buffers (power of two, <= 32768)
    uint32_t max_objects = 65536;  // slab capacity: connections + listeners
    uint32_t max_timers = 1 << 20;
    uint32_t external_queue = 4096;  // post_external() capacity
    bool use_msg_ring = true;        // false: doorbells through the eventfd (the fallback path)
    bool log_features = true;
};

// Something with operations in flight on the ring: lives in the reactor's slab, which frees it
// only once it retired and its in-flight count is 0 (every final CQE seen, F_MORE clear).
class IoObject {
public:
    virtual ~IoObject() = default;

    // One completion of an operation this object submitted through Reactor::prep(). When
    // `flags` lacks IORING_CQE_F_MORE this was the operation's last CQE, and inflight() already
    // excludes it.
    virtual void on_cqe(OpKind kind, int32_t res, uint32_t flags) = 0;
    // The reactor is stopping: close, so that the slab drains.
    virtual void on_reactor_stop() = 0;
    // A LentBuf this object received came back to the ring.
    virtual void on_buffer_returned() {}
    // Buffers are available again after this object called Reactor::wait_for_buffers().
    virtual void on_buffers_available() {}

    Reactor& reactor() const { return *reactor_; }
    Handle handle() const { return Handle{slot_, gen_}; }
    uint32_t inflight() const { return inflight_; }
    bool retired() const { return retired_; }

protected:
    // Frees this object once inflight() is 0 (now, or when the last CQE arrives). The object
    // is destroyed after the current completion batch, never during one of its own callbacks.
    void retire();

private:
    friend class Reactor;
    Reactor* reactor_ = nullptr;
    uint32_t slot_ = 0;
    uint32_t gen_ = 0;
    uint32_t inflight_ = 0;
    bool retired_ = false;
    bool freeing_ = false;
    bool waiting_buffers_ = false;  // already in the reactor's buffer-waiter list
};

class MessageHandler {
public:
    virtual ~MessageHandler() = default;
    virtual void on_message(Reactor& r, const Message& m) = 0;
};

// Called once per loop turn. Returning true asks for another turn without blocking (e.g. a
// producer whose mailbox push got Busy retries next turn).
class TurnHook {
public:
    virtual ~TurnHook() = default;
    virtual bool on_turn(Reactor& r) = 0;
};

class Reactor {
public:
    // Must be called on the thread that will run the reactor. Refuses kernels older than 6.1.
    [[nodiscard]] static Result<std::unique_ptr<Reactor>> create(const ReactorOptions& o = {});
    ~Reactor();
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;

    uint32_t index() const { return opts_.index; }
    const ReactorOptions& options() const { return opts_; }

    // --- slab ---------------------------------------------------------------------------
    // Busy when the slab is full (the object is destroyed).
    [[nodiscard]] Result<IoObject*> adopt(std::unique_ptr<IoObject> obj);
    IoObject* find(Handle h) const;
    size_t live_objects() const { return live_; }

    // --- submission ---------------------------------------------------------------------
    // An SQE whose CQE(s) go to owner.on_cqe(kind, ...); counts one in-flight op on `owner`
    // until its final CQE. Flushes the SQ to the kernel when it is full.
    io_uring_sqe* prep(IoObject& owner, OpKind kind);
    // The user_data prep() would put on an SQE: lets an owner cancel one of its ops by tag.
    static uint64_t tag_of(const IoObject& o, OpKind kind) {
        return make_tag(kind, o.gen_, o.slot_);
    }
    // Makes room for n consecutive SQEs (linked chains must not be split by a flush).
    void reserve_sqes(unsigned n);
    // Test hook: a NOP carrying `h`'s tag that no object counts in flight. Used to prove that
    // a completion for a dead (slot, gen) is dropped.
    void submit_untracked_nop(Handle h);

    // --- provided buffers -----------------------------------------------------------------
    uint16_t buf_group() const { return bufs_.group(); }
    uint32_t buf_chunk() const { return bufs_.chunk_size(); }
    uint32_t buffers_out() const { return bufs_.out(); }
    uint32_t buffer_count() const { return bufs_.count(); }
    // Turns a recv CQE that carries IORING_CQE_F_BUFFER into a loan to `owner`'s owner.
    LentBuf take_buffer(const IoObject& owner, int32_t res, uint32_t flags);
    // After -ENOBUFS: call o.on_buffers_available() once buffers come back.
    void wait_for_buffers(IoObject& o);

    // --- timers ---------------------------------------------------------------------------
    [[nodiscard]] Result<TimerId> add_timer(Millis after, TimerTarget* t, uint64_t arg = 0);
    [[nodiscard]] Result<TimerId> add_timer_at(TimePoint when, TimerTarget* t, uint64_t arg = 0);
    bool cancel_timer(TimerId id) { return timers_.cancel(id); }
    TimePoint now() const { return now_; }
    size_t live_timers() const { return timers_.live(); }

    // --- loop -----------------------------------------------------------------------------
    // Runs until request_stop() and every object closed (or a grace of a few seconds passed).
    void run();
    // One turn: fire due timers, submit, wait for at least one CQE (at most max_wait; forever
    // when nullopt and nothing is pending), dispatch the batch, free retired objects.
    void run_once(std::optional<Millis> max_wait = std::nullopt);
    // Any thread.
    void request_stop();
    bool stop_requested() const { return stop_requested_.load(std::memory_order_acquire); }
    void add_turn_hook(TurnHook* h);
    void remove_turn_hook(TurnHook* h);

    // --- messages -------------------------------------------------------------------------
    void set_message_handler(MessageHandler* h) { msg_handler_ = h; }
    // From this reactor's thread to reactor `to` of the same group (itself included). Busy when
    // that pair's queue is full, Closed when the group is stopping. Never blocks.
    [[nodiscard]] Status post(uint32_t to, Message m);
    // From any thread (control thread): a mutex-protected queue plus an eventfd doorbell.
    [[nodiscard]] Status post_external(Message m);

    struct Stats {
        uint64_t cqes = 0;
        uint64_t stale_cqes = 0;        // completions for a (slot, gen) no longer live
        uint64_t enobufs_waits = 0;
        uint64_t doorbells_sent = 0;
        uint64_t doorbells_received = 0;
        uint64_t messages_received = 0;
        uint64_t loop_turns = 0;
    };
    const Stats& stats() const { return stats_; }
    int ring_fd() const { return ring_.ring_fd; }
    bool has_msg_ring() const { return has_msg_ring_; }

private:
    friend class LentBuf;
    friend class IoObject;
    friend class ReactorGroup;

    explicit Reactor(const ReactorOptions& o);
    Status init();
    io_uring_sqe* get_sqe();
    void dispatch(uint64_t user_data, int32_t res, uint32_t flags);
    void dispatch_internal(Tag t, int32_t res, uint32_t flags);
    void schedule_free(IoObject& o);
    void free_retired();
    void return_buffer(uint16_t bid, Handle owner);
    void wake_buffer_waiters();
    void fire_timers();
    void arm_eventfd();
    void begin_stop();
    void drain_mailboxes();
    void ring_doorbell(Reactor& target);
    void wake_by_eventfd();

    struct SlabEntry {
        std::unique_ptr<IoObject> obj;
        uint32_t gen = 1;
    };

    ReactorOptions opts_;
    io_uring ring_{};
    bool ring_ready_ = false;
    bool has_msg_ring_ = false;
    BufRing bufs_;
    TimerQueue timers_;
    TimePoint now_{};
    Stats stats_;

    std::vector<SlabEntry> slab_;
    std::vector<uint32_t> free_slots_;
    size_t live_ = 0;
    std::vector<Handle> graveyard_;
    std::vector<Handle> buf_waiters_;
    bool buf_waiters_wake_ = false;
    std::vector<TurnHook*> hooks_;

    // Eventfd: external posts, stop requests, and the doorbell when MSG_RING is missing.
    int efd_ = -1;
    uint64_t efd_value_ = 0;
    bool efd_armed_ = false;
    uint32_t internal_inflight_ = 0;

    std::atomic<bool> stop_requested_{false};
    bool stop_started_ = false;
    TimePoint stop_deadline_{};

    // Mailbox receiving side.
    ReactorGroup* group_ = nullptr;
    MessageHandler* msg_handler_ = nullptr;
    std::atomic<bool> signalled_{false};  // a doorbell is on its way: producers need not ring
    bool drain_again_ = false;
    std::mutex external_mu_;
    std::deque<Message> external_;
};

}  // namespace cfd::reactor
