// SPDX-License-Identifier: MPL-2.0
// daemon_snapshot: what a running daemon reports about itself at one moment, in plain values.
// The server fills it (server::snapshot()); `portunus status`, /metrics and /health render it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace portunusd {

/// Upper bounds (seconds) of the door call duration histogram's buckets; +Inf is implied.
inline constexpr std::array<double, 14> call_duration_bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                             0.025,  0.05,    0.1,    0.25,  0.5,    1.0,  2.5};

/// A cumulative-free histogram: buckets[i] counts calls of at most bounds[i] seconds and more
/// than bounds[i-1]; the last entry counts the rest (+Inf). Renderers make it cumulative.
struct duration_histogram {
    std::array<std::uint64_t, call_duration_bounds.size() + 1> buckets{};
    std::uint64_t count = 0;
    double sum_seconds = 0;

    duration_histogram& operator+=(const duration_histogram& o) noexcept
    {
        for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
        count += o.count;
        sum_seconds += o.sum_seconds;
        return *this;
    }
};

/// One door a forward calls (tcp and udp: one; http: one per door its routes name).
struct door_snapshot {
    std::string path;
    /// "open": a handle is open and its last call did not fail for want of the door;
    /// "unopened": no call needed it yet (nothing is known);
    /// "missing": nothing that could be a door is at the path now;
    /// "failing": the path is there but the last attempt to open or call it failed.
    std::string state;
    long server_pid = 0; ///< the serving process, once a handle was open; else 0
    std::uint64_t in_flight = 0;      ///< calls running now
    std::uint64_t peak_in_flight = 0; ///< most calls running at once since start
    std::uint64_t queued = 0;         ///< calls waiting for a place now
    std::uint64_t calls = 0;          ///< calls ended (with an answer or an error)
    std::uint64_t errors = 0;         ///< calls ended with an error
    std::uint64_t reopens = 0;        ///< calls sent again on a door opened again after EBADF
    std::uint64_t queue_full = 0;     ///< calls refused because the queue was full
};

/// Counters of one forward since it started (kept across reloads that change it), summed over
/// every event loop at the moment of the snapshot.
struct forward_counts {
    std::uint64_t connections = 0;      ///< tcp/http connections accepted
    std::uint64_t connections_open = 0; ///< tcp/http connections open now
    std::uint64_t requests = 0;         ///< requests (http), connections' requests (tcp), datagrams (udp) that reached a door gate
    std::uint64_t bytes_in = 0;         ///< bytes read from clients
    std::uint64_t bytes_out = 0;        ///< bytes written to clients
    // Failures by kind. A request counts in at most one of the first five.
    std::uint64_t timeouts = 0;    ///< door calls that ran out of call_timeout (ETIMEDOUT)
    std::uint64_t door_gone = 0;   ///< door missing or revoked, even after one reopen (EBADF, ENOENT, ...)
    std::uint64_t interrupted = 0; ///< the application died or threw mid-call (EINTR)
    std::uint64_t queue_full = 0;  ///< refused: max_concurrency and queue were full
    std::uint64_t too_large = 0;   ///< refused: request or reply beyond a configured limit
    std::uint64_t other_errors = 0;
    // http only: responses the daemon made itself.
    std::uint64_t status_400 = 0; ///< every 4xx the daemon made: malformed, too large, no route (400, 404, 405, 408, 413, 414, 431...)
    std::uint64_t status_502 = 0;
    std::uint64_t status_503 = 0;
    std::uint64_t status_504 = 0;
    // tls and https only.
    std::uint64_t tls_handshake_failures = 0; ///< handshakes that failed or ran out of handshake_timeout
    duration_histogram call_duration; ///< door calls that got an answer or an error
};

struct forward_snapshot {
    std::string name;
    std::string protocol; ///< as written: "tcp", "udp", "http", "tls", "https", "pass" or "exec"
    std::string listen;   ///< as written in the configuration
    std::vector<door_snapshot> doors;
    forward_counts counts;
    std::int64_t tls_not_after = 0; ///< tls and https: when the certificate served expires (epoch seconds); else 0
};

/// One [[app]] the daemon supervises.
struct app_snapshot {
    std::string name;
    std::string door;
    /// "stopped", "starting", "serving", "backing_off" (waiting to restart after a crash),
    /// "stopping" or "idle" (stopped after idle_stop, starts again on the next call).
    std::string state;
    long pid = 0;                 ///< of the process new calls go to; 0 when none
    std::uint64_t restarts = 0;   ///< processes started again after one exited unasked
    std::uint64_t starts = 0;     ///< processes started, for any reason
    std::string last_exit;        ///< how the last process ended ("exit 1", "signal 9"); empty if none did
};

struct daemon_snapshot {
    std::string version;
    long pid = 0;
    double uptime_seconds = 0;
    double start_time_unix = 0;
    std::string config_file;
    double config_loaded_unix = 0; ///< when the running configuration was read (start or reload)
    bool draining = false;
    std::vector<forward_snapshot> forwards; ///< in configuration order
    std::vector<app_snapshot> apps;         ///< in configuration order
};

} // namespace portunusd
