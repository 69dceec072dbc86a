// SPDX-License-Identifier: MPL-2.0
// Which thread takes the daemon's signals: the main one only.
#pragma once

#include <signal.h>

namespace portunusd {

/// The signals the daemon handles: SIGHUP, SIGINT, SIGTERM and SIGCHLD. main() blocks them on
/// its first line, so one that arrives before its handler is installed waits instead of killing
/// the process, and every thread the daemon starts inherits the block. Only the main thread
/// takes them, once it runs the main event loop (event_loops::run()). A door call that a signal
/// interrupts fails with EINTR and may already have run in the application (door_call(3C) is
/// not restartable), so no thread that calls doors may ever take one.
sigset_t handled_signals() noexcept;

/// Blocks the handled signals in the calling thread.
void block_handled_signals() noexcept;

/// Lets the calling thread take the handled signals (the main thread, while it runs the main loop).
void unblock_handled_signals() noexcept;

/// Blocks the handled signals in the calling thread for the guard's life, so that a thread it
/// starts meanwhile starts with them blocked, whatever thread starts it.
class handled_signals_blocked {
public:
    handled_signals_blocked() noexcept;
    ~handled_signals_blocked();
    handled_signals_blocked(const handled_signals_blocked&) = delete;
    handled_signals_blocked& operator=(const handled_signals_blocked&) = delete;

private:
    sigset_t saved_;
};

} // namespace portunusd
