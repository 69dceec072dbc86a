// SPDX-License-Identifier: MPL-2.0
// forward_state: what every session of one forward shares (settings, door gate, counters).
#pragma once

#include "portunusd/config/config.hpp"
#include "portunusd/calls/door_gate.hpp"
#include "portunusd/http/http_router.hpp"
#include "portunusd/session/forward_stats.hpp"
#include "portunusd/tls/tls_context.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

namespace portunusd {

/// Lets one warning through per interval and counts the rest, so a flood of refused requests
/// cannot flood the log as well. Thread-safe.
class log_throttle {
public:
    /// True when this occurrence should be logged; `suppressed` then says how many were not.
    bool allow(std::uint64_t& suppressed) noexcept
    {
        const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        auto last = last_.load(std::memory_order_relaxed);
        if (now - last >= interval_ && last_.compare_exchange_strong(last, now)) {
            suppressed = suppressed_.exchange(0);
            return true;
        }
        suppressed_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }

private:
    static constexpr std::int64_t interval_ =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::seconds(1)).count();
    std::atomic<std::int64_t> last_{std::numeric_limits<std::int64_t>::min() / 2};
    std::atomic<std::uint64_t> suppressed_{0};
};

struct forward_state {
    forward_config config;
    /// One per distinct door: tcp and udp have exactly one, the forward's door; http has one
    /// per door its router targets (the catch-all first, if any).
    std::vector<std::shared_ptr<door_gate>> gates;
    /// Where calls go: one entry per distinct door the forward names (the router's targets;
    /// tcp and udp have one), each the indices in `gates` of that door's instances: one gate,
    /// or one per instance of an [[app]] with instances > 1.
    std::vector<std::vector<std::size_t>> targets;

    /// The gate for the next call to `target`: of its instances, the one with the fewest calls
    /// running and queued that is not failing (any, if all are), other than `avoid` if another
    /// is there. Any thread.
    [[nodiscard]] std::size_t choose(std::size_t target, std::size_t avoid = static_cast<std::size_t>(-1)) const
    {
        const auto& candidates = targets[target];
        if (candidates.size() == 1) return candidates.front();
        std::size_t best = candidates.front();
        std::size_t best_load = static_cast<std::size_t>(-1);
        bool best_failing = true;
        for (const std::size_t g : candidates) {
            if (g == avoid) continue;
            const bool failing = gates[g]->failing();
            const std::size_t load = gates[g]->in_flight() + gates[g]->queued();
            if ((best_failing && !failing) || (failing == best_failing && load < best_load)) {
                best = g;
                best_load = load;
                best_failing = failing;
            }
        }
        return best;
    }
    std::shared_ptr<const http_router> router;     ///< http only
    /// tls and https: the server context, built from config.tls when the forward was made.
    /// Null there only if that failed, and then no connection is served in plaintext instead.
    std::shared_ptr<const tls::context> tls;
    /// What a protocol served by a room of its own keeps per forward, opaque here: an exec
    /// forward's exec_forward (exec/), which its session starter casts back.
    std::shared_ptr<void> room;
    std::shared_ptr<forward_stats> stats;
    log_throttle overflow_log;
    log_throttle failure_log;
};

} // namespace portunusd
