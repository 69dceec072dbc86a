// SPDX-License-Identifier: MPL-2.0
// door_gate: one forward's door, its concurrency limit and its bounded queue.
#pragma once

#include "portunusd/calls/call_engine.hpp"
#include "portunusd/calls/caller_pool.hpp"
#include "portunusd/calls/caller_pool_engine.hpp"
#if !defined(PORTUNUS_DOOR_ILLUMOS)
#include "portunusd/calls/batch_link_engine.hpp"
#include "portunusd/calls/loop_connection_engine.hpp"
#endif

#include "portunusd/metrics/snapshot.hpp"
#include "portunusd/net/file_identity.hpp"
#include "portunusd/net/loop_counters.hpp"

#include <portunus/door.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

namespace portunusd {

/// Counters of a gate's engines (zero for those the backend lacks), for tests and metrics.
struct gate_stats {
    engine_counts caller_pool;
    engine_counts loop_connection;
    engine_counts batch_link;
};

/// Admits at most `max_concurrency` calls at once to one door and queues at most `queue` more;
/// past that, submit() refuses. An admitted call goes to one of the gate's engines: on an event
/// loop (userland doors) the loop's batch link for a small call or a connection of the loop's
/// own, else the caller pool. Opens the door lazily and reopens it after EBADF, so an
/// application can restart or be upgraded under a running daemon. Thread-safe.
class door_gate : public std::enable_shared_from_this<door_gate> {
public:
    using completion = std::function<void(call_outcome)>;

    /// `loops`: the number of event loops that submit calls (each counts on its own lines).
    door_gate(std::string door_path, unsigned max_concurrency, std::size_t queue,
              std::chrono::milliseconds call_timeout, caller_pool& pool, std::size_t loops = 1);

    /// Queues one call, which must end within call_timeout from now (ETIMEDOUT); `done` runs on
    /// a caller-pool thread, or, when `loop` is given and the backend allows it (userland
    /// doors), on `loop` after a call made without blocking from the event loop itself: no
    /// thread hand-off at all. `loop` must be the executor of an io_context that one thread
    /// runs. False when the queue is full (`done` is not called).
    bool submit(std::string request, completion done, boost::asio::any_io_executor loop = {});
    /// The same for a request whose application sees `head` then `body` as one message: a
    /// large body travels without being copied behind its head first.
    bool submit(std::string head, std::string body, completion done, boost::asio::any_io_executor loop);
    /// The same for a call that carries `passed` (a duplicate of it, on each attempt): always
    /// made on the caller pool, since batches and loop connections carry no descriptors, and
    /// `done` runs on a pool thread.
    bool submit_passing(std::string request, std::shared_ptr<const portunus::unique_fd> passed, completion done);

    door_gate(const door_gate&) = delete;
    door_gate& operator=(const door_gate&) = delete;
    ~door_gate();

    /// For the daemon's exit, once the event loops have stopped: forgets the calls still
    /// waiting on batch links, whose completions will never run, so that nothing they hold (this
    /// gate among them) is kept alive in a cycle.
    void abandon_calls() noexcept;

    [[nodiscard]] std::size_t in_flight() const;
    [[nodiscard]] std::size_t queued() const;
    [[nodiscard]] gate_stats stats() const noexcept;
    /// The door's state and counters now (for status and metrics). Looks at the door path, so
    /// it costs a stat(); any thread.
    [[nodiscard]] door_snapshot snapshot() const;
    /// Calls ended so far (answered or not); cheap, any thread.
    [[nodiscard]] std::uint64_t calls_ended() const noexcept { return counters_.sum(calls_ended_); }
    /// True while the door's last open or call failed for want of the door, or while whatever
    /// supervises its server says none serves it (no lock).
    [[nodiscard]] bool failing() const noexcept
    {
        return down_.load(std::memory_order_relaxed) || last_failure_.load(std::memory_order_relaxed) != 0;
    }
    /// From the supervisor of the door's server: it exited (false), or a new one serves (true,
    /// which also forgets the last failure, so the door is chosen again at once).
    void set_serving(bool serving) noexcept
    {
        down_.store(!serving, std::memory_order_relaxed);
        if (serving) last_failure_.store(0, std::memory_order_relaxed);
    }
    /// Called (on a caller-pool thread) when the door will not open: wakes whatever starts the
    /// application on demand and returns how long that may take, zero when nothing will. Set
    /// once, before the first call.
    void set_starter(std::function<std::chrono::milliseconds()> starter) { starter_ = std::move(starter); }
    [[nodiscard]] const std::string& door_path() const noexcept { return path_; }

private:
    friend class caller_pool_engine;
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    friend class loop_connection_engine;
    friend class batch_link_engine;
#endif

    bool admit(call_job j);
    void start(call_job j);
    void start_next(call_job j);
    std::optional<call_job> next_or_release();

    // For the engines.
    /// Ends a call: reports it, then starts the next queued one (on its own loop).
    void complete(call_job j, call_outcome out);
    /// Ends a call and returns the next queued one, which the caller starts; none releases the
    /// call's place.
    std::optional<call_job> finish(call_job& j, call_outcome out);
    /// EBADF means the call never ran (the application restarted, or was upgraded, since the
    /// door was opened), so it may run once more on a door opened again. True when `j` must be
    /// retried on the caller pool; `generation` is that of the door handle that failed.
    bool should_retry(call_engine& from, call_job& j, const std::error_code& ec, std::uint64_t generation);
    /// Gives a call an engine could not make to the caller pool, which opens doors and waits;
    /// `ec` is what stopped it (EBADF from the door handle of `generation`: a retry), if anything.
    void hand_to_pool(call_engine& from, call_job j, const std::error_code& ec, std::uint64_t generation);
    void forget_door_after(const std::error_code& ec);
    /// The door handle, opened within `deadline` (outside door_mutex_) if it is not open yet.
    portunus::door_client current_door(std::error_code& ec, std::chrono::steady_clock::time_point deadline,
                                       std::uint64_t& generation);

    const std::string path_;
    const unsigned max_concurrency_;
    const std::size_t queue_limit_;
    const std::chrono::milliseconds call_timeout_;

    mutable std::mutex mutex_;
    std::size_t running_ = 0;
    std::deque<call_job> waiting_;
    std::size_t peak_running_ = 0;      // guarded by mutex_
    std::uint64_t refused_queue_full_ = 0; // guarded by mutex_

    enum : std::size_t { calls_ended_, calls_failed, calls_reopened, counter_count };
    loop_counters<counter_count> counters_;

    // Never held across a wait: opening a door happens outside it (see current_door()). The
    // loop engines keep their per-loop state under it too, so a call takes one lock.
    mutable std::mutex door_mutex_;
    portunus::door_client door_;   // guarded by door_mutex_; copies share one connection pool
    std::uint64_t generation_ = 0; // guarded by door_mutex_; bumped whenever door_ changes
    long server_pid_ = 0;          // guarded by door_mutex_; of the last door opened
    // What made the door fail last (0: nothing since it last answered), and which file was at
    // the path then: a new file there means a new instance, which may well answer.
    std::atomic<int> last_failure_{0};
    std::atomic<bool> down_{false};
    file_identity failed_file_; // of the file that failed; guarded by door_mutex_

    std::function<std::chrono::milliseconds()> starter_;

    caller_pool_engine pool_engine_;
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    loop_connection_engine loop_engine_;
    batch_link_engine batch_engine_;
#endif
};

} // namespace portunusd
