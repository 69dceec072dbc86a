// SPDX-License-Identifier: MPL-2.0
// forward_stats: what one forward's sessions count (connections, requests, bytes, failures by kind, call durations).
#pragma once

#include "portunusd/calls/call_engine.hpp"
#include "portunusd/metrics/snapshot.hpp"
#include "portunusd/net/loop_counters.hpp"

#include <cstddef>
#include <cstdint>
#include <system_error>

namespace portunusd {

/// The kinds of failure a request can come to, one counter each (see forward_counts).
enum class failure_kind { timeout, door_gone, interrupted, queue_full, too_large, other };

/// The kind a door call error belongs to.
[[nodiscard]] failure_kind failure_of(const std::error_code& ec) noexcept;

/// Counters of one forward, kept across reloads while its listen address stays. Each event loop
/// counts on its own cache lines (loop_counters), so counting costs a load and a store.
class forward_stats {
public:
    /// `loops`: the number of event loops (the daemon's `threads`).
    explicit forward_stats(std::size_t loops = 1) : c_(loops) {}

    void connection_opened() noexcept { c_.add(connections); }
    void connection_closed() noexcept { c_.add(closed); }
    void request() noexcept { c_.add(requests); }
    void received(std::size_t n) noexcept { c_.add(bytes_in, n); }
    void sent(std::size_t n) noexcept { c_.add(bytes_out, n); }
    void failed(failure_kind kind) noexcept { c_.add(first_failure + static_cast<std::size_t>(kind)); }
    /// A tls or https connection whose handshake failed or timed out.
    void tls_handshake_failed() noexcept { c_.add(tls_failures); }
    /// A response the daemon made itself (http): counted by class, 4xx together.
    void daemon_response(int status) noexcept;
    /// A door call that ended, answered or not: its duration, and its failure if any.
    void call_ended(const call_outcome& o) noexcept;

    [[nodiscard]] forward_counts totals() const noexcept;

private:
    enum : std::size_t {
        connections,
        closed,
        requests,
        bytes_in,
        bytes_out,
        first_failure, // then one per failure_kind
        status_4xx = first_failure + 6,
        status_502,
        status_503,
        status_504,
        call_micros,
        tls_failures,
        first_bucket, // then one per duration bucket, +Inf last
        count = first_bucket + call_duration_bounds.size() + 1
    };
    loop_counters<count> c_;
};

} // namespace portunusd
