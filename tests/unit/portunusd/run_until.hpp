// SPDX-License-Identifier: MPL-2.0
// run_until: drives an io_context until a condition holds or a deadline passes.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace portunusd_test {

/// Runs `loop` in short slices until `done()` or `limit` has passed; returns `done()`. A lost
/// wake-up then fails its test instead of hanging it.
template <typename Pred>
bool run_until(boost::asio::io_context& loop, Pred done, std::chrono::milliseconds limit = std::chrono::seconds(2))
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        loop.restart();
        loop.run_for(std::chrono::milliseconds(10));
    }
    return done();
}

} // namespace portunusd_test
