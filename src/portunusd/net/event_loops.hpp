// SPDX-License-Identifier: MPL-2.0
// event_loops: one io_context per event-loop thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <vector>

namespace portunusd {

/// The daemon's event loops: one io_context per thread, each run by that thread alone, so the
/// handlers of a connection, its door connections and its timers never race and need neither
/// strands nor locks, and threads never contend for one epoll set. Listeners and signals live on
/// the main loop; new connections go to each loop in turn.
class event_loops {
public:
    explicit event_loops(unsigned count);
    /// Shuts every loop down before destroying any: an object of one loop may be owned by a
    /// handler of another, and must not outlive its own loop.
    ~event_loops();
    event_loops(const event_loops&) = delete;
    event_loops& operator=(const event_loops&) = delete;

    /// The loop of the thread that calls run(); listeners, signals and control work run there.
    [[nodiscard]] boost::asio::io_context& main() noexcept { return *loops_.front(); }
    /// The loop for the next new connection (round robin). Any thread.
    [[nodiscard]] boost::asio::io_context& next() noexcept;
    [[nodiscard]] std::size_t size() const noexcept { return loops_.size(); }

    /// Runs the main loop on the calling thread and every other loop on a thread of its own;
    /// returns once stop() was called and every thread has finished.
    void run();
    /// Stops every loop. Any thread.
    void stop() noexcept;

private:
    /// Makes execution_context::shutdown() reachable for the destructor.
    struct loop : boost::asio::io_context {
        loop() : boost::asio::io_context(1) {}
        using boost::asio::io_context::shutdown;
    };
    std::vector<std::unique_ptr<loop>> loops_;
    std::vector<boost::asio::any_io_executor> keep_running_; ///< executors that track work
    std::atomic<std::size_t> next_{0};
};

} // namespace portunusd
