// SPDX-License-Identifier: MPL-2.0
// Retiring pool threads of a native door (on revoke, and idle_timeout's reaper): a thread leaves
// the pool only by taking a call of this process's own with the retire token.
#include "door/illumos/illumos_server_impl.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace portunus {

// Recognised by content alone: the token is random and never leaves this process. The caller's
// pid cannot be required: when the retire call was interrupted after this thread took it, the
// caller is gone, door_ucred() fails (EINVAL) and there is no pid, yet the token must still
// retire a thread and never reach the handler.
bool door_server::impl::is_retire_call(const char* argp, std::size_t size, uint_t n_desc) const noexcept
{
    return argp != nullptr && size == retire_token_.size() && n_desc == 0 &&
           std::memcmp(argp, retire_token_.data(), size) == 0;
}

void door_server::impl::retire_this_thread() noexcept
{
    std::lock_guard lock(mutex_);
    --idle_;
    --threads_;
    if (retiring_ > 0) --retiring_;
    changed_.notify_all();
}

// Returns false when retiring should stop: the door refused the call outright.
bool door_server::impl::send_retire() noexcept
{
    door_arg_t arg{};
    arg.data_ptr = reinterpret_cast<char*>(retire_token_.data());
    arg.data_size = retire_token_.size();
    const int rc = ::door_call(door_fd_.get(), &arg);
    const int error = rc == 0 ? 0 : errno;
    if (rc == 0 && arg.rbuf != nullptr) ::munmap(arg.rbuf, arg.rsize);
    // EINTR: a thread was handed the call (door_call() in door_sys.c reports EINTR only once
    // door_get_server() gave it one, whether the thread then quit or a signal cut our wait for
    // it short). That thread recognises the token whatever happened to us and acknowledges the
    // retirement itself (retire_this_thread() takes it off retiring_), so it is not counted
    // here: retiring_ reaches zero only through acknowledged retirements.
    if (error == EINTR) return true;
    std::lock_guard lock(mutex_);
    --retiring_;
    changed_.notify_all();
    // EAGAIN: a signal cut short the wait for a free thread; nothing was delivered, try again.
    return error == EAGAIN;
}

// Retires threads until `keep` are left. Each call waits for a thread to finish its call in
// flight and take the retire call, so this also drains the calls in flight.
void door_server::impl::retire_threads(std::size_t keep) noexcept
{
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return threads_ <= keep || threads_ - retiring_ > keep; });
        if (threads_ <= keep) return;
        ++retiring_;
        lock.unlock();
        const bool go_on = send_retire();
        lock.lock();
        if (!go_on) return;
    }
}

// Nothing in illumos reaps door threads, so idle_timeout is enforced here: the fewest idle
// threads over the last idle_timeout (tracked per quarter) were not needed all that time, and
// that many are retired. Which ones go is the kernel's choice; pool threads are interchangeable.
void door_server::impl::reap_loop() noexcept
{
    const auto tick = std::max(options_.idle_timeout / 4, std::chrono::milliseconds{1});
    std::array<std::size_t, 4> lows{};
    std::size_t ticks = 0;
    std::unique_lock lock(mutex_);
    idle_low_ = idle_;
    for (;;) {
        if (reaper_wake_.wait_for(lock, tick, [this] { return revoking_; })) return;
        lows[ticks++ % lows.size()] = idle_low_;
        idle_low_ = idle_;
        if (ticks < lows.size()) continue;
        const std::size_t floor = std::max<std::size_t>(1, parkers_);
        std::size_t surplus = *std::min_element(lows.begin(), lows.end());
        bool retired = false;
        // Never take the last idle thread: a retire call that did would make a real caller wait.
        while (surplus > 0 && !revoking_ && threads_ - retiring_ > floor && idle_ >= retiring_ + 2) {
            --surplus;
            ++retiring_;
            lock.unlock();
            const bool sent = send_retire();
            lock.lock();
            if (!sent) break;
            retired = true;
        }
        if (retired) {
            ticks = 0;
            idle_low_ = idle_;
        }
    }
}

// Also run by ~impl, when nothing can be revoking concurrently any more.
void door_server::impl::stop_reaper() noexcept
{
    if (!reaper_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        revoking_ = true;
    }
    reaper_wake_.notify_all();
    reaper_.join();
}

} // namespace portunus
