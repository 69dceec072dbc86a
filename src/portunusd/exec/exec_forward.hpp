// SPDX-License-Identifier: MPL-2.0
// exec_forward: what the connections of one exec forward share: the program, its admission and its stderr.
#pragma once

#include "portunusd/config/config.hpp"
#include "portunusd/exec/exec_children.hpp"
#include "portunusd/exec/exec_spawn.hpp"

#include <portunus/unique_fd.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace portunusd {

/// One exec forward as configured: the program prepared for spawning, max_concurrency live
/// children with a queue of `queue` connections behind them, and the pipe its children write
/// their stderr into. Made on the main loop; admit(), release() and spawn() from any loop.
class exec_forward {
public:
    /// Looks up the account (supervise's set_account()) and starts the stderr relay on `main`.
    /// A lookup that fails (an account deleted since the check) is reported by every spawn().
    exec_forward(const forward_config& f, std::shared_ptr<exec_children> children, boost::asio::io_context& main);

    enum class admission { run, queued, refused };
    /// A slot for one more child (run), or a place in the queue: `turn` is called, from the
    /// thread that releases a slot, once the slot is this connection's, and `ticket` names the
    /// place for withdraw(). Refused past the queue.
    admission admit(std::function<void()> turn, std::uint64_t& ticket);
    /// A queued connection that closed (call_timeout, a drain) leaves the queue at once, so
    /// that closed connections never hold places that live ones are refused for. False when
    /// its turn has come already (then `turn` runs, or has run, and must give the slot back).
    bool withdraw(std::uint64_t ticket);
    /// Gives a slot back: a child was reaped, or a connection whose turn came had closed.
    void release();

    /// Starts the program for one connection (exec_program::spawn), with the ucspi-tcp
    /// variables of `client` and `local` in its environment. `job` must outlive the child's
    /// reaping.
    pid_t spawn(int socket, const boost::asio::ip::tcp::endpoint& client,
                const boost::asio::ip::tcp::endpoint& local, spawn_job& job, std::string& error) const;

    [[nodiscard]] exec_children& children() const noexcept { return *children_; }
    [[nodiscard]] const std::string& program() const noexcept { return config_.command.front(); }
    [[nodiscard]] std::size_t running() const;

private:
    forward_config config_;
    std::shared_ptr<exec_children> children_;
    std::optional<exec_program> program_;
    std::string setup_error_; ///< why program_ is empty
    portunus::unique_fd stderr_write_;
    mutable std::mutex mutex_;
    std::size_t running_ = 0;                 // guarded by mutex_
    std::uint64_t next_ticket_ = 1;                                   // guarded by mutex_
    std::deque<std::pair<std::uint64_t, std::function<void()>>> queue_; // guarded by mutex_
};

} // namespace portunusd
