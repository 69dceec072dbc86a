// SPDX-License-Identifier: MPL-2.0
// Counting one forward's traffic and summing it for a snapshot.
#include "portunusd/session/forward_stats.hpp"

#include <algorithm>

namespace portunusd {

failure_kind failure_of(const std::error_code& ec) noexcept
{
    if (ec == std::errc::timed_out) return failure_kind::timeout;
    // Nobody serves the door (yet): the application is down, restarting, or was never started.
    if (ec == std::errc::bad_file_descriptor || ec == std::errc::no_such_file_or_directory ||
        ec == std::errc::connection_refused || ec == std::errc::permission_denied)
        return failure_kind::door_gone;
    if (ec == std::errc::interrupted) return failure_kind::interrupted;
    if (ec == std::errc::argument_list_too_long || ec == std::errc::message_size) return failure_kind::too_large;
    return failure_kind::other;
}

void forward_stats::daemon_response(int status) noexcept
{
    if (status >= 400 && status < 500) c_.add(status_4xx);
    else if (status == 502) c_.add(status_502);
    else if (status == 503) c_.add(status_503);
    else if (status == 504) c_.add(status_504);
}

void forward_stats::call_ended(const call_outcome& o) noexcept
{
    if (o.ec) failed(failure_of(o.ec));
    const auto micros = static_cast<std::uint64_t>(std::max<std::int64_t>(o.duration.count(), 0));
    c_.add(call_micros, micros);
    const double seconds = static_cast<double>(micros) / 1e6;
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(call_duration_bounds.begin(), call_duration_bounds.end(), seconds) - call_duration_bounds.begin());
    c_.add(first_bucket + bucket);
}

forward_counts forward_stats::totals() const noexcept
{
    forward_counts t;
    // Closed first: a connection that opens and closes between the two reads then counts as
    // open for this snapshot, never as a negative number.
    const auto gone = c_.sum(closed);
    t.connections = c_.sum(connections);
    t.connections_open = t.connections >= gone ? t.connections - gone : 0;
    t.requests = c_.sum(requests);
    t.bytes_in = c_.sum(bytes_in);
    t.bytes_out = c_.sum(bytes_out);
    const auto failures = [this](failure_kind k) { return c_.sum(first_failure + static_cast<std::size_t>(k)); };
    t.timeouts = failures(failure_kind::timeout);
    t.door_gone = failures(failure_kind::door_gone);
    t.interrupted = failures(failure_kind::interrupted);
    t.queue_full = failures(failure_kind::queue_full);
    t.too_large = failures(failure_kind::too_large);
    t.other_errors = failures(failure_kind::other);
    t.status_400 = c_.sum(status_4xx);
    t.status_502 = c_.sum(status_502);
    t.status_503 = c_.sum(status_503);
    t.status_504 = c_.sum(status_504);
    t.tls_handshake_failures = c_.sum(tls_failures);
    for (std::size_t i = 0; i < t.call_duration.buckets.size(); ++i) {
        t.call_duration.buckets[i] = c_.sum(first_bucket + i);
        t.call_duration.count += t.call_duration.buckets[i];
    }
    t.call_duration.sum_seconds = static_cast<double>(c_.sum(call_micros)) / 1e6;
    return t;
}

} // namespace portunusd
