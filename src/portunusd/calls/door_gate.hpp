// SPDX-License-Identifier: MPL-2.0
// door_gate: one forward's door, its concurrency limit and its bounded queue.
#pragma once

#include "portunusd/calls/caller_pool.hpp"
#include "portunusd/net/edge_poller.hpp"
#include "portunusd/net/lazy_deadline.hpp"

#include <portunus/door.hpp>
#if !defined(PORTUNUS_DOOR_ILLUMOS)
#include "door/uds/loop_client.hpp"
#endif

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
#include <unordered_map>
#include <utility>
#include <vector>

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

    /// Queues one call, which must end within call_timeout from now (ETIMEDOUT); `done` runs on a caller-pool thread, or, when `loop` is given and the
    /// backend allows it (userland doors), on `loop` after a call made without blocking from the
    /// event loop itself: no thread hand-off at all. `loop` must be the executor of an
    /// io_context that one thread runs. False when the queue is full (`done` is not called).
    bool submit(std::string request, completion done, boost::asio::any_io_executor loop = {});
    /// The same for a request whose application sees `head` then `body` as one message: a
    /// large body travels without being copied behind its head first.
    bool submit(std::string head, std::string body, completion done, boost::asio::any_io_executor loop);

    door_gate(const door_gate&) = delete;
    door_gate& operator=(const door_gate&) = delete;
    ~door_gate();

    /// For the daemon's exit, once the event loops have stopped: forgets the calls still
    /// waiting on batch links, whose completions will never run, so that nothing they hold (this
    /// gate among them) is kept alive in a cycle.
    void abandon_calls() noexcept;

    [[nodiscard]] std::size_t in_flight() const;
    [[nodiscard]] std::size_t queued() const;
    [[nodiscard]] const std::string& door_path() const noexcept { return path_; }

private:
    struct job {
        std::string request;
        std::string body; ///< sent right after `request`, as part of the same call
        completion done;
        boost::asio::any_io_executor loop;
        /// call_timeout after submit(): time in the queue and opening the door count too.
        std::chrono::steady_clock::time_point deadline;
    };
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    /// A door connection of one event loop: registered with the loop's edge_poller once,
    /// non-blocking, and reused call after call (door_client::take_connection), so a call costs
    /// a send and a receive, and its wait no system call. Touched only by that loop's thread.
    struct loop_connection : std::enable_shared_from_this<loop_connection> {
        loop_connection(const boost::asio::any_io_executor& loop, portunus::loop_client d, portunus::unique_fd f,
                        std::uint64_t gen, bool opening);
        loop_connection(const loop_connection&) = delete;
        loop_connection& operator=(const loop_connection&) = delete;
        void on_deadline();

        portunus::loop_client door;
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
    /// The batch link of one event loop: one door connection that carries every small call the
    /// loop makes to this door, several per message (door_client's batches). The calls made in
    /// one turn of the loop leave in one send, posted to run after that turn's handlers; the
    /// answers come back one by one and each completes its call. Touched only by its loop.
    struct batch_link : std::enable_shared_from_this<batch_link> {
        batch_link(const boost::asio::any_io_executor& loop, portunus::loop_client d, portunus::unique_fd f,
                   std::uint64_t gen);
        batch_link(const batch_link&) = delete;
        batch_link& operator=(const batch_link&) = delete;
        void on_deadline();

        struct pending {
            job j;
            std::chrono::steady_clock::time_point started;
        };
        portunus::loop_client door;
        portunus::unique_fd fd;
        boost::asio::any_io_executor loop;
        edge_poller::registration readiness; ///< of fd, which outlives it (declared before)
        lazy_deadline deadline;              ///< at or before the oldest outstanding call's
        const std::uint64_t generation;      ///< of the door handle it came from
        std::shared_ptr<door_gate> gate;     ///< set while calls are outstanding
        std::unordered_map<std::uint32_t, pending> outstanding;
        /// Bodies not sent yet, with the tags of their calls (which never reached the door).
        std::deque<std::pair<std::string, std::vector<std::uint32_t>>> unsent;
        std::uint32_t next_tag = 1;
        bool flush_posted = false;
        bool write_waiting = false;
        bool retired = false; ///< broken, or its door handle was replaced: takes no new calls
    };
    /// The idle loop connections of one io_context, and its batch link.
    struct loop_slot {
        const boost::asio::execution_context* context;
        std::vector<std::shared_ptr<loop_connection>> idle;
        std::shared_ptr<batch_link> batch;
    };
    std::shared_ptr<batch_link> batch_link_for(const boost::asio::any_io_executor& loop);
    void enqueue(const std::shared_ptr<batch_link>& link, job j);
    void flush(const std::shared_ptr<batch_link>& link);
    static void wait_for_answers(const std::shared_ptr<batch_link>& link);
    static void on_answers(const std::shared_ptr<batch_link>& link, const boost::system::error_code& e);
    void answer(const std::shared_ptr<batch_link>& link, std::uint32_t tag, std::error_code ec, std::string_view bytes);
    void expire(const std::shared_ptr<batch_link>& link);
    void break_link(const std::shared_ptr<batch_link>& link, std::error_code ec);
    void requeue_unsent(const std::shared_ptr<batch_link>& link);
    static void settle(const std::shared_ptr<batch_link>& link);
    void complete(job j, call_outcome out);
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
    void start_next(job j);
    void forget_door_after(const std::error_code& ec);
    void start_on_pool(job j);
    bool start_on_loop(job& j);
    std::optional<job> next_or_release();
    call_outcome call(const job& j);
    portunus::door_client current_door(std::error_code& ec, bool reopen, std::chrono::steady_clock::time_point deadline);

    const std::string path_;
    const unsigned max_concurrency_;
    const std::size_t queue_limit_;
    const std::chrono::milliseconds call_timeout_;
    caller_pool& pool_;

    mutable std::mutex mutex_;
    std::size_t running_ = 0;
    std::deque<job> waiting_;

    // Never held across a wait: opening a door happens outside it (see current_door()).
    std::mutex door_mutex_;
    portunus::door_client door_;    // guarded by door_mutex_; copies share one connection pool
    std::uint64_t generation_ = 0;  // guarded by door_mutex_; bumped whenever door_ changes
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    std::vector<loop_slot> loop_slots_; // guarded by door_mutex_
#endif
};

} // namespace portunusd
