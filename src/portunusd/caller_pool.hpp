// SPDX-License-Identifier: MPL-2.0
// caller_pool: the threads that make blocking door calls, so the event loop never blocks.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace portunusd {

/// Runs jobs on threads that grow at the high-water mark of jobs in flight: a job that finds no
/// idle thread gets a new one; threads are reused and never reaped (like a door server pool).
/// Thread-safe. The destructor finishes queued jobs, then joins every thread.
class caller_pool {
public:
    caller_pool() = default;
    caller_pool(const caller_pool&) = delete;
    caller_pool& operator=(const caller_pool&) = delete;
    ~caller_pool();

    void submit(std::function<void()> job);
    [[nodiscard]] std::size_t threads() const;

private:
    void run();

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    bool stopping_ = false;
};

} // namespace portunusd
