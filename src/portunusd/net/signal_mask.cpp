// SPDX-License-Identifier: MPL-2.0
// The handled signals' mask, in one place.
#include "portunusd/net/signal_mask.hpp"

#include <pthread.h>

#include <initializer_list>

namespace portunusd {

sigset_t handled_signals() noexcept
{
    sigset_t set;
    sigemptyset(&set);
    for (const int s : {SIGHUP, SIGINT, SIGTERM, SIGCHLD}) sigaddset(&set, s);
    return set;
}

void block_handled_signals() noexcept
{
    const sigset_t set = handled_signals();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void unblock_handled_signals() noexcept
{
    const sigset_t set = handled_signals();
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

handled_signals_blocked::handled_signals_blocked() noexcept
{
    const sigset_t set = handled_signals();
    ::pthread_sigmask(SIG_BLOCK, &set, &saved_);
}

handled_signals_blocked::~handled_signals_blocked()
{
    ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
}

} // namespace portunusd
