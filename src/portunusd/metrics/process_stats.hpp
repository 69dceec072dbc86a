// SPDX-License-Identifier: MPL-2.0
// process_stats: the daemon process's own resource use, as the Prometheus process_* metrics.
#pragma once

#include <optional>

namespace portunusd {

/// One reading of the process's resource use. A value the platform cannot tell is nullopt and
/// its metric is left out of the page.
struct process_stats {
    std::optional<double> resident_memory_bytes;
    std::optional<double> virtual_memory_bytes;
    std::optional<double> open_fds;
    std::optional<double> max_fds;         ///< the soft RLIMIT_NOFILE
    std::optional<double> cpu_seconds;     ///< user and system time together
    std::optional<double> start_time_unix; ///< seconds since the epoch
    std::optional<double> threads;
};

/// Reads the calling process's stats: /proc/self on Linux; getrusage(2), getrlimit(2) and the
/// descriptor directory elsewhere. Takes no lock and never blocks beyond reading procfs; never
/// throws (what cannot be read stays nullopt).
process_stats read_process_stats() noexcept;

} // namespace portunusd
