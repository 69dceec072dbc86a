// SPDX-License-Identifier: MPL-2.0
// caller_pool: the threads that make blocking door calls, so the event loop never blocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace portunusd {

/// Runs jobs on threads that grow at the high-water mark of jobs in flight: a job that finds no
/// idle thread gets a new one. A thread idle for `idle_timeout` leaves, so a burst (the warm-up
/// before event loops have door connections of their own, say) does not pin its threads.
/// Thread-safe. The destructor finishes queued jobs, then joins every thread.
class caller_pool {
public:
    explicit caller_pool(std::chrono::milliseconds idle_timeout = std::chrono::seconds(30))
        : idle_timeout_(idle_timeout)
    {
    }
    caller_pool(const caller_pool&) = delete;
    caller_pool& operator=(const caller_pool&) = delete;
    ~caller_pool();

    void submit(std::function<void()> job);
    /// Threads running or waiting for jobs (not those that left).
    [[nodiscard]] std::size_t threads() const;

private:
    using thread_list = std::list<std::thread>;
    void run(thread_list::iterator self);
    void join_finished(std::unique_lock<std::mutex>& lock);

    const std::chrono::milliseconds idle_timeout_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    thread_list threads_;  ///< live threads
    thread_list finished_; ///< threads that left, to be joined
    std::size_t idle_ = 0;
    bool stopping_ = false;
};

} // namespace portunusd
