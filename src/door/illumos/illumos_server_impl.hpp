// SPDX-License-Identifier: MPL-2.0
// The native backend's door_server::impl: the door, its private pool's counters and its rules.
// Internal to src/door/illumos (illumos_call.cpp: the door procedure, a call's pool rules and its
// reply; illumos_server.cpp: pool threads, create, attach, revoke, park; illumos_retire.cpp:
// retiring threads and the idle reaper).
#pragma once

#include "door/illumos/illumos_door.hpp"

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace portunus {

// The pool is private to the door and its rules are ours. DOOR_NO_DEPLETION_CB switches libc's
// depletion callback off: for a door_xcreate()d door it only works on threads libc started
// itself, and park() stand-ins and replacement threads are started here. enter_call() applies the
// high-water rule instead, before the handler runs, as the callback would. The counters mirror
// what the kernel knows about the pool, all under mutex_.
//
// A thread leaves the pool only by returning from the door procedure (libc then ends it). To
// retire one, this process calls its own door with retire_token_: whichever idle thread takes
// the call quits, and the kernel fails that call with EINTR. Revocation does the same to every
// thread before door_revoke(), because threads waiting on a revoked door are never woken.
struct door_server::impl : std::enable_shared_from_this<impl> {
    door_handler handler_;
    door_options options_;
    unique_fd door_fd_; // given up to door_revoke(), which closes it
    std::uint64_t uniquifier_ = 0;
    std::array<unsigned char, 16> retire_token_{};

    mutable std::mutex mutex_;
    std::condition_variable changed_;     // revoke() and park() wait on it
    std::condition_variable reaper_wake_; // only revoke() wakes the reaper early
    std::size_t threads_ = 0;             // waiting, serving or starting; park() stand-ins included
    std::size_t idle_ = 0;                // waiting in door_return()
    std::size_t in_flight_ = 0;           // handlers running
    std::size_t parkers_ = 0;             // callers blocked in park()
    std::size_t retiring_ = 0;            // retire calls sent that no thread has taken yet
    std::size_t idle_low_ = 0;            // fewest idle threads since the reaper's last tick
    bool revoking_ = false;
    bool revoked_ = false;

    std::mutex path_mutex_;
    std::string path_; // where attach() put the door; empty when it is not attached

    std::thread reaper_;

    ~impl();
    bool start_thread() noexcept;
    void thread_starting() noexcept;
    void thread_waiting() noexcept;
    void thread_gone(bool was_waiting) noexcept;
    bool is_retire_call(const char* argp, std::size_t size, uint_t n_desc) const noexcept;
    void retire_this_thread() noexcept;
    bool send_retire() noexcept;
    void retire_threads(std::size_t keep) noexcept;
    void reap_loop() noexcept;
    void stop_reaper() noexcept;
    void attach(const std::string& path, std::error_code& ec);
    bool names_this_door(const std::string& path) const noexcept;
    void detach() noexcept;
    void revoke() noexcept;
    void park();
};

// Every client can read the door's cookie with door_info(3C): it must not give away a heap
// address, so the server's address travels masked with a per-process random value.
void* door_cookie(door_server::impl* d) noexcept;
door_server::impl& server_from_cookie(void* cookie) noexcept;
// Whether this thread is running a call of `d`: a handler that revokes or parks its own door
// cannot wait for its own call to end.
bool serving_call_of(const door_server::impl* d) noexcept;

} // namespace portunus

// The procedure door_xcreate() is given (illumos_call.cpp).
extern "C" void portunus_illumos_door_procedure(void* cookie, char* argp, size_t arg_size, door_desc_t* dp,
                                                uint_t n_desc);
