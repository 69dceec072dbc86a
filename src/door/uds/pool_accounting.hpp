// SPDX-License-Identifier: MPL-2.0
// The uds server's thread pool counters, the only ways they change, and the decisions drawn from them.
#pragma once

#include <cassert>
#include <cstddef>

namespace portunus::uds {

// Every pool thread is in exactly one state:
// - idle: free to take a call on any connection (in epoll_wait, or reading a connection that
//   epoll reported, before a call starts);
// - busy: running a call it took as an idle thread;
// - sticky: bound to its last connection, waiting there for the next call in a blocking receive
//   or running it. A sticky thread's calls change no count: none would change the idle count,
//   which is all the pool decides on, and skipping the mutex there is what lets 16 callers on
//   two CPUs run at the speed of raw sockets.
// So idle + busy + sticky == total always, revoked or not.
//
// No member locks anything: each is called with the server's mutex (door_server::impl::mutex)
// held, so that a decision (reap, stick, start another) and the transition it leads to are one
// step that no other thread sees half done.
class pool_accounting {
public:
    // max_threads 0: no cap.
    explicit pool_accounting(std::size_t max_threads = 0) noexcept : max_threads_(max_threads) {}

    [[nodiscard]] std::size_t total() const noexcept { return total_; }
    [[nodiscard]] std::size_t idle() const noexcept { return idle_; }
    [[nodiscard]] std::size_t busy() const noexcept { return busy_; }
    [[nodiscard]] std::size_t sticky() const noexcept { return sticky_; }
    [[nodiscard]] bool revoked() const noexcept { return revoked_; }

    // A thread joins as idle: one about to be started, or a caller of park().
    void add_idle() noexcept
    {
        ++total_;
        ++idle_;
        check();
    }

    // An idle thread leaves: it ends, or it could not be started after add_idle().
    void remove_idle() noexcept
    {
        assert(idle_ > 0);
        --total_;
        --idle_;
        check();
    }

    // An idle thread whose wait timed out leaves only while another idle one stays, since the
    // last idle thread is what lets the next call start at once. True: it has been counted out.
    [[nodiscard]] bool reap_spare() noexcept
    {
        if (revoked_ || idle_ <= 1) return false;
        remove_idle();
        return true;
    }

    // An idle thread starts a call. True: it must start another thread first (see must_start_another).
    [[nodiscard]] bool idle_to_busy() noexcept
    {
        shift(idle_, busy_);
        return must_start_another();
    }

    // illumos's high-water rule: a thread that took the last idle slot adds one before it runs
    // its call, as libc's depletion callback does, so the pool tracks peak concurrency plus
    // one. Not after revoke, and never past the cap (a capped pool makes callers wait instead).
    [[nodiscard]] bool must_start_another() const noexcept
    {
        return idle_ == 0 && !revoked_ && (max_threads_ == 0 || total_ < max_threads_);
    }

    // Whether a thread whose call is done may wait for the next call on the same connection:
    // only while another thread is idle to serve every other connection, and only in an
    // uncapped pool, where a capped one could leave a call on another connection waiting for a
    // thread held by a quiet one.
    [[nodiscard]] bool may_stick() const noexcept { return !revoked_ && max_threads_ == 0 && idle_ > 0; }

    void busy_to_idle() noexcept { shift(busy_, idle_); }

    // Only when may_stick().
    void busy_to_sticky() noexcept
    {
        assert(may_stick());
        shift(busy_, sticky_);
    }

    // The sticky thread's connection went quiet, closed or failed.
    void sticky_to_idle() noexcept { shift(sticky_, idle_); }

    // False when it already was: revoking happens once.
    [[nodiscard]] bool revoke() noexcept
    {
        if (revoked_) return false;
        revoked_ = true;
        return true;
    }

private:
    // One thread changes state.
    void shift(std::size_t& from, std::size_t& to) noexcept
    {
        assert(from > 0);
        --from;
        ++to;
        check();
    }
    void check() const noexcept { assert(idle_ + busy_ + sticky_ == total_); }

    std::size_t max_threads_;
    std::size_t total_ = 0;
    std::size_t idle_ = 0;
    std::size_t busy_ = 0;
    std::size_t sticky_ = 0;
    bool revoked_ = false;
};

} // namespace portunus::uds
