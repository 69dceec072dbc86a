// SPDX-License-Identifier: MPL-2.0
// door_gate: one forward's door, its concurrency limit and its bounded queue.
#pragma once

#include "portunusd/caller_pool.hpp"
#include "portunusd/edge_poller.hpp"
#include "portunusd/lazy_deadline.hpp"

#include <portunus/door.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

namespace portunusd {

/// What a door call came to. `ec` is a door error (EBADF: door missing or dead, EINTR: the
/// application died mid-call, ETIMEDOUT: call_timeout) or empty on success.
struct call_outcome {
    std::error_code ec;
    std::string reply;
    std::chrono::microseconds duration{0};
};

/// Admits at most `max_concurrency` calls at once to one door and queues at most `queue` more;
/// past that, submit() refuses. Opens the door lazily and reopens it after EBADF, so an
/// application can restart or be upgraded under a running daemon. Thread-safe.
class door_gate : public std::enable_shared_from_this<door_gate> {
public:
    using completion = std::function<void(call_outcome)>;

    door_gate(std::string door_path, unsigned max_concurrency, std::size_t queue,
              std::chrono::milliseconds call_timeout, caller_pool& pool);

    /// Queues one call; `done` runs on a caller-pool thread, or, when `loop` is given and the
    /// backend allows it (userland doors), on `loop` after a call made without blocking from the
    /// event loop itself: no thread hand-off at all. `loop` must be the executor of an
    /// io_context that one thread runs. False when the queue is full (`done` is not called).
    bool submit(std::string request, completion done, boost::asio::any_io_executor loop = {});

    [[nodiscard]] std::size_t in_flight() const;
    [[nodiscard]] std::size_t queued() const;
    [[nodiscard]] const std::string& door_path() const noexcept { return path_; }

private:
    struct job {
        std::string request;
        completion done;
        boost::asio::any_io_executor loop;
    };
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    /// A door connection of one event loop: registered with the loop's edge_poller once,
    /// non-blocking, and reused call after call (door_client::take_connection), so a call costs
    /// a send and a receive, and its wait no system call. Touched only by that loop's thread.
    struct loop_connection : std::enable_shared_from_this<loop_connection> {
        loop_connection(const boost::asio::any_io_executor& loop, portunus::door_client d, portunus::unique_fd f,
                        std::uint64_t gen, bool opening);
        loop_connection(const loop_connection&) = delete;
        loop_connection& operator=(const loop_connection&) = delete;
        void on_deadline();

        portunus::door_client door;
        portunus::unique_fd fd;
        boost::asio::execution_context* context; ///< of the loop it belongs to
        edge_poller::registration readiness; ///< of fd, which outlives it (declared before)
        lazy_deadline deadline;
        const std::uint64_t generation; ///< of the door handle it came from
        std::shared_ptr<door_gate> gate; ///< set while a call runs on it
        job j;
        std::chrono::steady_clock::time_point started;
        bool timed_out = false;
        bool connecting; ///< opened by the loop; the server's greeting is not read yet
    };
    /// The idle loop connections of one io_context.
    struct loop_slot {
        const boost::asio::execution_context* context;
        std::vector<std::shared_ptr<loop_connection>> idle;
    };
    std::shared_ptr<loop_connection> take_loop_connection(const boost::asio::any_io_executor& loop);
    void put_loop_connection(std::shared_ptr<loop_connection> c);
    void wait_for_greeting(const std::shared_ptr<loop_connection>& c);
    void on_greeting(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e);
    void send_call(const std::shared_ptr<loop_connection>& c);
    void wait_for_reply(const std::shared_ptr<loop_connection>& c);
    void on_reply(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e);
    void hand_to_pool(const std::shared_ptr<loop_connection>& c);
    void finish(const std::shared_ptr<loop_connection>& c, call_outcome out, bool reusable);
#endif
    void start(job j);
    void start_on_pool(job j);
    bool start_on_loop(job& j);
    std::optional<job> next_or_release();
    call_outcome call(const std::string& request);
    portunus::door_client current_door(std::error_code& ec, bool reopen);

    const std::string path_;
    const unsigned max_concurrency_;
    const std::size_t queue_limit_;
    const std::chrono::milliseconds call_timeout_;
    caller_pool& pool_;

    mutable std::mutex mutex_;
    std::size_t running_ = 0;
    std::deque<job> waiting_;

    std::mutex door_mutex_;
    portunus::door_client door_;    // guarded by door_mutex_; copies share one connection pool
    std::uint64_t generation_ = 0;  // guarded by door_mutex_; bumped whenever door_ changes
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    std::vector<loop_slot> loop_slots_; // guarded by door_mutex_
#endif
};

} // namespace portunusd
