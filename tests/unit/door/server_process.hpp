// SPDX-License-Identifier: MPL-2.0
// server_process: the helper door_test_server as a fixture that is always killed and reaped.
#pragma once

#include "door_test_support.hpp"

#include <sys/types.h>

#include <optional>

namespace portunus::test {

/// How to start the helper door_test_server (see the comment at the top of its source).
struct server_options {
    std::string mode = "echo";
    bool park = false;
    bool refuse_descriptors = false;
    unsigned max_threads = 0;
    long idle_timeout_ms = 0;
    long sleep_ms = 0;
    /// Non-zero: serve()'s drain limit after a stop signal (serve mode only).
    long drain_limit_ms = 0;
    /// Non-empty: the helper is a client that calls the door at the path with these bytes.
    std::string client_call{};
};

/// The helper server, started with posix_spawn (the test process has threads, so no fork) with
/// a release pipe on its stdin and its stdout on a pipe read here. The constructor returns once
/// the helper printed "ready" and, with `park`, its main thread is parked (throws otherwise);
/// the destructor kills and reaps it. Not thread-safe, except pid(), task_count(),
/// fd_count(), tasks_in_syscall().
class server_process {
public:
    server_process(const std::string& path, const server_options& options);
    ~server_process();
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// The next line the helper printed, without its newline; nullopt on timeout or EOF.
    std::optional<std::string> next_line(std::chrono::milliseconds timeout);
    /// Waits until `count` lines equal to `line` have been printed; false on timeout.
    bool wait_lines(std::string_view line, std::size_t count, std::chrono::milliseconds timeout);

    /// Lets `count` calls blocked in "block" mode go.
    void release(std::size_t count);
    /// Lets every blocked call go, and every later one at once.
    void release_all() noexcept;

    /// Sends `signal`; false if the process is already reaped.
    bool kill(int signal) noexcept;
    /// Reaps the process; its wait status, or nullopt if it is still running after `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    /// The helper's threads that serve calls (Linux: /proc/PID/task, whose parked main thread is
    /// one of the pool; illumos: /proc/PID/lwp less the main thread, which never serves), and
    /// its open descriptors (/proc/PID/fd).
    [[nodiscard]] long task_count() const;
    [[nodiscard]] long fd_count() const;
    /// Threads blocked in system call `number` right now (/proc/PID/task/TID/syscall); -1 on
    /// illumos, where only the uds-only tests would ask.
    [[nodiscard]] long tasks_in_syscall(long number) const;

private:
    void stop() noexcept;
    pid_t pid_ = -1;
    bool reaped_ = false;
    unique_fd release_;
    unique_fd output_;
    std::string pending_;
};

} // namespace portunus::test
