// SPDX-License-Identifier: MPL-2.0
// The high-water caller pool.
#include "portunusd/caller_pool.hpp"

namespace portunusd {

caller_pool::~caller_pool()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void caller_pool::submit(std::function<void()> job)
{
    std::unique_lock lock(mutex_);
    jobs_.push_back(std::move(job));
    // Idle threads already promised to earlier queued jobs do not count. A new thread counts
    // itself idle as soon as it starts, so it is not counted twice here.
    if (idle_ >= jobs_.size()) {
        lock.unlock();
        wake_.notify_one();
        return;
    }
    try {
        threads_.emplace_back([this] { run(); });
    } catch (const std::system_error&) {
        // Out of threads: the job waits for a busy one, which the per-forward limits bound.
    }
}

std::size_t caller_pool::threads() const
{
    std::lock_guard lock(mutex_);
    return threads_.size();
}

void caller_pool::run()
{
    std::unique_lock lock(mutex_);
    ++idle_;
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) { // stopping, and nothing left to finish
            --idle_;
            return;
        }
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        --idle_;
        lock.unlock();
        job();
        lock.lock();
        ++idle_;
    }
}

} // namespace portunusd
