// SPDX-License-Identifier: MPL-2.0
// call_engine: what a door_gate hands an admitted call to, and the counters each engine keeps.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
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

/// One admitted call.
struct call_job {
    std::string request;
    std::string body; ///< sent right after `request`, as part of the same call
    std::function<void(call_outcome)> done;
    boost::asio::any_io_executor loop; ///< empty: the caller pool makes the call
    /// call_timeout after submit(): time in the queue and opening the door count too.
    std::chrono::steady_clock::time_point deadline;
    /// The door answered EBADF once already (the call did not run): no second retry.
    bool retried = false;
};

/// What is left of a deadline for a door operation; zero when it has passed (a zero timeout
/// would mean "for ever" to door_client).
inline std::chrono::milliseconds time_left(std::chrono::steady_clock::time_point deadline)
{
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? left : std::chrono::milliseconds{0};
}

/// What one engine did, for tests and metrics. Read at any time; each count only grows.
struct engine_counts {
    std::uint64_t started = 0;        ///< calls the engine took
    std::uint64_t completed = 0;      ///< calls it ended (success or error)
    std::uint64_t retried = 0;        ///< calls it sent to the pool again after EBADF
    std::uint64_t handed_to_pool = 0; ///< calls it gave the pool otherwise (a door not at hand)
};

/// One way of making a door call. The gate admits a call, then offers it to its engines in
/// turn; an engine takes it (true, the job is moved from) or leaves it (false, untouched).
/// Every engine ends each call it took through the gate (door_gate::complete), or hands it to
/// the caller pool, so that admission sees every call end exactly once.
class call_engine {
public:
    call_engine() = default;
    call_engine(const call_engine&) = delete;
    call_engine& operator=(const call_engine&) = delete;
    virtual ~call_engine() = default;

    virtual bool start(call_job& j) = 0;

    [[nodiscard]] engine_counts stats() const noexcept
    {
        return {started_.load(std::memory_order_relaxed), completed_.load(std::memory_order_relaxed),
                retried_.load(std::memory_order_relaxed), handed_to_pool_.load(std::memory_order_relaxed)};
    }

    // Relaxed: counters order nothing; a loop adds to them without a fence.
    void count_started() noexcept { started_.fetch_add(1, std::memory_order_relaxed); }
    void count_completed() noexcept { completed_.fetch_add(1, std::memory_order_relaxed); }
    void count_retried() noexcept { retried_.fetch_add(1, std::memory_order_relaxed); }
    void count_handed_to_pool() noexcept { handed_to_pool_.fetch_add(1, std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> started_{0};
    std::atomic<std::uint64_t> completed_{0};
    std::atomic<std::uint64_t> retried_{0};
    std::atomic<std::uint64_t> handed_to_pool_{0};
};

} // namespace portunusd
