// SPDX-License-Identifier: MPL-2.0
// The high-water caller pool.
#include "portunusd/calls/caller_pool.hpp"

#include "portunusd/net/signal_mask.hpp"

namespace portunusd {

caller_pool::~caller_pool()
{
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
    // Threads leave the live list as they finish; each one is joined here.
    while (!threads_.empty() || !finished_.empty()) {
        if (finished_.empty()) {
            wake_.wait(lock, [this] { return !finished_.empty(); });
            continue;
        }
        join_finished(lock);
    }
}

void caller_pool::join_finished(std::unique_lock<std::mutex>& lock)
{
    thread_list done;
    done.swap(finished_);
    lock.unlock();
    for (auto& t : done) t.join();
    lock.lock();
}

void caller_pool::submit(std::function<void()> job)
{
    std::unique_lock lock(mutex_);
    if (!finished_.empty()) join_finished(lock);
    jobs_.push_back(std::move(job));
    // Idle threads already promised to earlier queued jobs do not count. A new thread counts
    // itself idle as soon as it starts, so it is not counted twice here.
    if (idle_ >= jobs_.size()) {
        lock.unlock();
        wake_.notify_one();
        return;
    }
    try {
        // The new thread waits for this lock before it looks at its own list entry.
        auto self = threads_.emplace(threads_.end());
        // A pool thread calls doors, so it must never take a signal (signal_mask.hpp), even
        // when the main loop's thread, which takes them, starts it.
        const handled_signals_blocked blocked;
        *self = std::thread([this, self] { run(self); });
    } catch (const std::system_error&) {
        threads_.pop_back();
        // Out of threads: the job waits for a busy one, which the per-forward limits bound.
    }
}

std::size_t caller_pool::threads() const
{
    std::lock_guard lock(mutex_);
    return threads_.size();
}

void caller_pool::run(thread_list::iterator self)
{
    std::unique_lock lock(mutex_);
    ++idle_;
    for (;;) {
        const bool woken =
            wake_.wait_for(lock, idle_timeout_, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty() && (stopping_ || !woken)) break; // stopping, or idle too long
        if (jobs_.empty()) continue;
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        --idle_;
        lock.unlock();
        job();
        lock.lock();
        ++idle_;
    }
    --idle_;
    finished_.splice(finished_.end(), threads_, self);
    // The destructor may be waiting for this thread to show up in finished_.
    wake_.notify_all();
}

} // namespace portunusd
