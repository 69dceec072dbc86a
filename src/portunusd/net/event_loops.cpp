// SPDX-License-Identifier: MPL-2.0
// Running, stopping and tearing down the daemon's event loops.
#include "portunusd/net/event_loops.hpp"

#include "portunusd/net/edge_poller.hpp"
#include "portunusd/net/loop_counters.hpp"
#include "portunusd/net/signal_mask.hpp"

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>

#include <algorithm>
#include <thread>

namespace portunusd {

event_loops::event_loops(unsigned count)
{
    for (unsigned i = 0; i < std::max(count, 1u); ++i) {
        loops_.push_back(std::make_unique<loop>());
        // The loop's readiness set needs a descriptor of its own: take it at start-up, where a
        // failure is fatal and reported, not at the first wait, which may come when the
        // descriptor table is full and could then only fail that connection or worse.
        boost::asio::use_service<edge_poller>(*loops_.back());
        // Only the main loop may run out of work (when stopping); the others wait for sessions.
        if (i > 0)
            keep_running_.push_back(
                boost::asio::prefer(loops_.back()->get_executor(), boost::asio::execution::outstanding_work.tracked));
    }
}

event_loops::~event_loops()
{
    keep_running_.clear();
    for (auto& l : loops_) l->shutdown();
}

boost::asio::io_context& event_loops::next() noexcept
{
    return *loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
}

namespace {
thread_local std::size_t loop_index = static_cast<std::size_t>(-1);
} // namespace

std::size_t this_loop_index() noexcept
{
    return loop_index;
}

void set_this_loop_index(std::size_t index) noexcept
{
    loop_index = index;
}

void event_loops::run()
{
    std::vector<std::thread> threads;
    {
        const handled_signals_blocked blocked; // the other loops never take a signal
        for (std::size_t i = 1; i < loops_.size(); ++i)
            threads.emplace_back([this, i] {
                set_this_loop_index(i);
                loops_[i]->run();
            });
    }
    set_this_loop_index(0);
    // The main loop's thread is the one that takes the daemon's signals (signal_mask.hpp).
    unblock_handled_signals();
    loops_.front()->run();
    block_handled_signals();
    // The main thread goes on to destroy what the loops owned, as a thread that runs no loop.
    set_this_loop_index(static_cast<std::size_t>(-1));
    stop();
    for (auto& t : threads) t.join();
}

void event_loops::stop() noexcept
{
    for (auto& l : loops_) l->stop();
}

} // namespace portunusd
