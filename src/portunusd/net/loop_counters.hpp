// SPDX-License-Identifier: MPL-2.0
// loop_counters: counters that each event loop adds to on its own cache lines, summed when read.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace portunusd {

/// The index of the event loop the calling thread runs (0 is the main loop), or a value of at
/// least the number of loops for a thread that runs none (the caller pool, a control thread).
[[nodiscard]] std::size_t this_loop_index() noexcept;
/// Called by event_loops on each loop's thread before it runs.
void set_this_loop_index(std::size_t index) noexcept;

/// `N` counters per event loop, plus one shared set for threads that run no loop. A loop adds
/// to its own set with a plain load and store (one writer, so nothing is lost and no locked
/// instruction or shared cache line is paid on the hot path); other threads add atomically to
/// the shared set. Reading sums every set; a sum read while loops count is a moment's value,
/// and each counter only grows.
template <std::size_t N>
class loop_counters {
public:
    explicit loop_counters(std::size_t loops) : loops_(loops), sets_(std::make_unique<set[]>(loops + 1)) {}

    void add(std::size_t which, std::uint64_t n = 1) noexcept
    {
        const std::size_t loop = this_loop_index();
        if (loop < loops_) {
            auto& c = sets_[loop].v[which];
            c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        } else {
            sets_[loops_].v[which].fetch_add(n, std::memory_order_relaxed);
        }
    }

    [[nodiscard]] std::uint64_t sum(std::size_t which) const noexcept
    {
        std::uint64_t total = 0;
        for (std::size_t i = 0; i <= loops_; ++i) total += sets_[i].v[which].load(std::memory_order_relaxed);
        return total;
    }

private:
    // A set of its own cache lines, so that two loops never write to one line.
    struct alignas(64) set {
        std::array<std::atomic<std::uint64_t>, N> v{};
    };
    std::size_t loops_;
    std::unique_ptr<set[]> sets_;
};

} // namespace portunusd
