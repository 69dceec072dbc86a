// SPDX-License-Identifier: MPL-2.0
// exec_children: the live children of every exec forward, reaped from the daemon's one SIGCHLD path.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace portunusd {

/// The children exec forwards started and nobody has reaped yet. A pid stays here until it is
/// reaped, so signalling one through signal() can never reach a process that reused its number.
/// Thread-safe; the mutex is held for non-blocking system calls only.
class exec_children {
public:
    /// Gets the child's wait status, on the loop it was added with.
    using on_exit = std::function<void(int status)>;

    exec_children() = default;
    exec_children(const exec_children&) = delete;
    exec_children& operator=(const exec_children&) = delete;
    ~exec_children() { kill_all(); }

    /// Kills (SIGKILL, each whole process group) every child not reaped yet and forgets them,
    /// dropping what their sessions hold: no child outlives the daemon. At exit.
    void kill_all() noexcept;

    /// Watches `pid`. A child that exited before it was added is reaped here at once, since
    /// its SIGCHLD may have come and gone already. `done` is posted to `loop`. Any thread.
    void add(pid_t pid, boost::asio::any_io_executor loop, on_exit done);
    /// Reaps every child that has exited, without waiting: the daemon's SIGCHLD handler calls
    /// it on the main loop. Any thread.
    void reap();
    /// Sends `sig` to the process group of `pid` (its own: the child runs in a session of its
    /// own) if it is still ours. False when it has been reaped already.
    bool signal(pid_t pid, int sig);
    [[nodiscard]] std::size_t size() const;

private:
    struct entry {
        boost::asio::any_io_executor loop;
        on_exit done;
    };
    /// Reaps `pid` if it exited; the caller holds mutex_. True when reaped.
    static bool try_reap(pid_t pid, int& status) noexcept;

    mutable std::mutex mutex_;
    std::unordered_map<pid_t, entry> live_;
};

} // namespace portunusd
