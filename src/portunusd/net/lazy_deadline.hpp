// SPDX-License-Identifier: MPL-2.0
// lazy_deadline: a timeout that is moved on every request without touching the timer queue.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

namespace portunusd {

/// One timeout of a connection or call, set and cleared on every request. Re-arming an Asio
/// timer each time costs a timer-queue operation and often a timerfd_settime(2); this timer
/// instead stays armed at the deadline it was first given and, when it wakes, either re-arms for
/// the deadline now in force or reports expiry. A busy connection thus pays one timer operation
/// per timeout period instead of several per request.
///
/// Not thread-safe: use it from the owner's executor only. The owner calls cancel() when it
/// closes; until then a pending wake-up keeps the owner alive through `owner`.
class lazy_deadline {
public:
    using clock = std::chrono::steady_clock;

    explicit lazy_deadline(const boost::asio::any_io_executor& ex) : timer_(ex) {}

    /// Expires `after` from now, replacing any deadline set before; `owner->on_deadline()` runs
    /// then, on the timer's executor.
    template <typename Owner>
    void set(std::chrono::milliseconds after, const std::shared_ptr<Owner>& owner)
    {
        due_ = clock::now() + after;
        // A wake-up already due no later than the new deadline will re-arm itself when it comes.
        if (armed_ && wake_at_ <= due_) return;
        arm(owner);
    }

    /// Expires at `due` unless an earlier deadline is set already; for an owner whose deadline
    /// is the earliest of several (a door connection carrying many calls).
    template <typename Owner>
    void set_earlier(clock::time_point due, const std::shared_ptr<Owner>& owner)
    {
        if (due >= due_) return;
        due_ = due;
        if (armed_ && wake_at_ <= due_) return;
        arm(owner);
    }

    /// No deadline until the next set(); a pending wake-up finds nothing to do.
    void clear() noexcept { due_ = clock::time_point::max(); }

    /// For the owner's close(): no deadline, and the pending wake-up goes now (aborted).
    void cancel() noexcept
    {
        clear();
        armed_ = false;
        ++generation_;
        timer_.cancel();
    }

private:
    template <typename Owner>
    void arm(const std::shared_ptr<Owner>& owner)
    {
        armed_ = true;
        wake_at_ = due_;
        const std::uint64_t generation = ++generation_;
        timer_.expires_at(wake_at_);
        timer_.async_wait([this, owner, generation](const boost::system::error_code& ec) {
            // A wake-up that was replaced by an earlier one, or cancelled, is not ours any more.
            if (ec || generation != generation_) return;
            armed_ = false;
            if (due_ == clock::time_point::max()) return;
            if (clock::now() < due_) return arm(owner);
            due_ = clock::time_point::max();
            owner->on_deadline();
        });
    }

    boost::asio::steady_timer timer_;
    clock::time_point due_ = clock::time_point::max();
    clock::time_point wake_at_{};
    std::uint64_t generation_ = 0;
    bool armed_ = false;
};

} // namespace portunusd
