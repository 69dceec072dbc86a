// SPDX-License-Identifier: MPL-2.0
// call_engine: what a door_gate hands an admitted call to, and the counters each engine keeps.
#pragma once

#include "portunusd/net/loop_counters.hpp"

#include <portunus/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
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
    /// A descriptor the call carries (a pass forward's client socket). Each attempt sends a
    /// duplicate, so that a retry after EBADF still has it; the original closes with the last
    /// owner. Only the caller pool sends descriptors.
    std::shared_ptr<const portunus::unique_fd> passed{};
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
    call_engine() : counts_(std::make_unique<loop_counters<4>>(1)) {}
    call_engine(const call_engine&) = delete;
    call_engine& operator=(const call_engine&) = delete;
    virtual ~call_engine() = default;

    virtual bool start(call_job& j) = 0;

    /// Gives each of `loops` event loops counters of its own; before the first call only.
    void count_per_loop(std::size_t loops) { counts_ = std::make_unique<loop_counters<4>>(loops); }

    [[nodiscard]] engine_counts stats() const noexcept
    {
        return {counts_->sum(n_started), counts_->sum(n_completed), counts_->sum(n_retried), counts_->sum(n_handed_to_pool)};
    }

    void count_started() noexcept { counts_->add(n_started); }
    void count_completed() noexcept { counts_->add(n_completed); }
    void count_retried() noexcept { counts_->add(n_retried); }
    void count_handed_to_pool() noexcept { counts_->add(n_handed_to_pool); }

private:
    enum : std::size_t { n_started, n_completed, n_retried, n_handed_to_pool };
    std::unique_ptr<loop_counters<4>> counts_;
};

} // namespace portunusd
