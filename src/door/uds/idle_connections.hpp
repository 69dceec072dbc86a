// SPDX-License-Identifier: MPL-2.0
// The idle connections of one door_client, on shelves that calling threads do not share.
#pragma once

#include <portunus/unique_fd.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <new>
#include <vector>

namespace portunus::uds {

// One shared list behind one mutex made every call of every thread take that mutex twice and
// hand its connection to whichever thread came next: with 16 callers on two CPUs the lock's
// cache line and the shuffled server threads cost more than the socket round trip itself (door
// calls ran at 0.6x of raw sockets; with one shelf per thread, 0.77x). So each thread puts its
// connection back on its own shelf and takes it from there on its next call, which keeps one
// client thread talking to one sticky server thread, and falls back to the other shelves only
// when its own is empty.
class idle_connections {
public:
    static constexpr std::size_t shelves = 16;
    // Past this a returned connection is closed: enough for a daemon's per-route concurrency.
    static constexpr std::size_t max_per_shelf = 16;

    idle_connections() = default;
    idle_connections(const idle_connections&) = delete;
    idle_connections& operator=(const idle_connections&) = delete;
    ~idle_connections()
    {
        for (auto& s : shelves_) {
            const int fd = s.spare.exchange(-1);
            if (fd >= 0) unique_fd{fd};
        }
    }

    // An invalid unique_fd when every shelf is empty.
    unique_fd take()
    {
        const std::size_t home = home_shelf();
        for (std::size_t i = 0; i < shelves; ++i) {
            shelf& s = shelves_[(home + i) % shelves];
            if (const int fd = s.spare.exchange(-1, std::memory_order_acquire); fd >= 0) return unique_fd{fd};
            std::lock_guard lock(s.mutex);
            if (!s.fds.empty()) {
                unique_fd fd = std::move(s.fds.back());
                s.fds.pop_back();
                return fd;
            }
        }
        return {};
    }

    void give_back(unique_fd fd)
    {
        shelf& s = shelves_[home_shelf()];
        int empty = -1;
        if (s.spare.compare_exchange_strong(empty, fd.get(), std::memory_order_release, std::memory_order_relaxed)) {
            (void)fd.release();
            return;
        }
        std::lock_guard lock(s.mutex);
        if (s.fds.size() < max_per_shelf) s.fds.push_back(std::move(fd));
    }

private:
    // The thread that calls one call after another finds its connection in `spare`, an atomic
    // exchange instead of a mutex taken twice per call; more connections wait under the mutex.
    struct alignas(64) shelf {
        std::atomic<int> spare{-1}; // a descriptor, or -1
        std::mutex mutex;
        std::vector<unique_fd> fds; // guarded by mutex
    };

    // Threads are numbered in the order they first call; threads 0..15 each get a shelf of
    // their own, later ones share.
    static std::size_t home_shelf() noexcept
    {
        static std::atomic<std::size_t> next{0};
        thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
        return mine % shelves;
    }

    std::array<shelf, shelves> shelves_;
};

} // namespace portunus::uds
