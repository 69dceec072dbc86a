// SPDX-License-Identifier: MPL-2.0
// The signal mask every server thread the door library starts begins with, on both backends.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace portunus::detail {

/// Every signal but the synchronous ones, which the kernel directs at the thread that caused
/// them (a fault must still kill or be handled where it happens; abort() must still abort).
/// door_call(3C) is not restartable and a handler's own system calls fail with EINTR, so a
/// signal meant for the process (SIGHUP, SIGTERM, SIGCHLD, SIGUSR1...) must never be delivered
/// to a door thread: with this mask it goes to a thread of the application's that has it open.
inline sigset_t pool_thread_signal_mask() noexcept
{
    sigset_t mask;
    sigfillset(&mask);
    for (const int synchronous : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT})
        sigdelset(&mask, synchronous);
    return mask;
}

/// The asynchronous signals a handler is installed for right now: the ones that would interrupt
/// a door thread's system calls (ignored signals are discarded; a default action that ends the
/// process must stay possible, so those are not blocked for a thread the application lends the
/// pool through park()).
inline sigset_t caught_signal_mask() noexcept
{
    const sigset_t pool = pool_thread_signal_mask();
    sigset_t mask;
    sigemptyset(&mask);
    for (int s = 1; s < NSIG; ++s) {
        struct sigaction current {};
        if (sigismember(&pool, s) != 1 || ::sigaction(s, nullptr, &current) != 0) continue;
        if (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN) sigaddset(&mask, s);
    }
    return mask;
}

/// Puts the pool mask on the calling thread for as long as it lives, then restores the old one.
/// A thread inherits its creator's mask (pthread_create(3C)), so starting threads inside one of
/// these scopes starts them with the pool mask from their first instruction: no signal can
/// slip in before the new thread could block it itself.
class pool_signal_scope {
public:
    pool_signal_scope() noexcept : pool_signal_scope(pool_thread_signal_mask(), SIG_SETMASK) {}
    /// Adds `mask` to the calling thread's mask instead (SIG_BLOCK), or sets it (SIG_SETMASK).
    pool_signal_scope(const sigset_t& mask, int how) noexcept { ::pthread_sigmask(how, &mask, &saved_); }
    ~pool_signal_scope() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
    pool_signal_scope(const pool_signal_scope&) = delete;
    pool_signal_scope& operator=(const pool_signal_scope&) = delete;

private:
    sigset_t saved_;
};

} // namespace portunus::detail
