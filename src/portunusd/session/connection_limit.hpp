// SPDX-License-Identifier: MPL-2.0
// connection_limit: max_connections across every tcp listener; listeners pause while it is full.
#pragma once

#include "portunusd/session/forward_state.hpp"

#include <cstddef>
#include <memory>
#include <functional>
#include <mutex>
#include <vector>

namespace portunusd {

/// Counts open tcp connections against a maximum. A listener admits each accepted connection
/// with try_open(); when full it leaves a resume callback, which runs once a connection closes
/// (on the closing thread: it must only post work). Checking and counting happen under one
/// lock, so several listeners together never pass the maximum. Thread-safe.
class connection_limit {
public:
    explicit connection_limit(std::size_t max) : max_(max) {}

    /// Counts one more connection and returns true, or, when full, keeps `resume` for later.
    bool try_open(std::function<void()> resume)
    {
        std::lock_guard lock(mutex_);
        if (open_ < max_) {
            ++open_;
            return true;
        }
        waiting_.push_back(std::move(resume));
        return false;
    }
    void clear_waiters()
    {
        std::vector<std::function<void()>> drop;
        {
            std::lock_guard lock(mutex_);
            drop.swap(waiting_);
        }
    }
    void closed()
    {
        std::vector<std::function<void()>> resume;
        {
            std::lock_guard lock(mutex_);
            --open_;
            resume.swap(waiting_);
        }
        for (auto& r : resume) r();
    }
    void set_max(std::size_t max)
    {
        std::vector<std::function<void()>> resume;
        {
            std::lock_guard lock(mutex_);
            max_ = max;
            if (open_ < max_) resume.swap(waiting_);
        }
        for (auto& r : resume) r();
    }
    [[nodiscard]] std::size_t open() const
    {
        std::lock_guard lock(mutex_);
        return open_;
    }

private:
    mutable std::mutex mutex_;
    std::size_t max_;
    std::size_t open_ = 0;
    std::vector<std::function<void()>> waiting_;
};

/// One open connection, counted in its forward's statistics and in the limit for as long as
/// the session that owns it lives.
class connection_slot {
public:
    connection_slot(std::shared_ptr<forward_stats> stats, connection_limit& limit)
        : stats_(std::move(stats)), limit_(limit)
    {
        stats_->connection_opened();
    }
    connection_slot(const connection_slot&) = delete;
    connection_slot& operator=(const connection_slot&) = delete;
    ~connection_slot()
    {
        stats_->connection_closed();
        limit_.closed();
    }

private:
    std::shared_ptr<forward_stats> stats_;
    connection_limit& limit_;
};

} // namespace portunusd
