// SPDX-License-Identifier: MPL-2.0
// loop_connection_engine: door calls made on an event loop over a connection the loop owns (userland doors).
#pragma once

#include "portunusd/calls/call_engine.hpp"
#include "portunusd/net/edge_poller.hpp"
#include "portunusd/net/lazy_deadline.hpp"

#include "door/uds/loop_client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>

#include <memory>
#include <utility>
#include <vector>

namespace portunusd {

class door_gate;

/// A door connection of one event loop: registered with the loop's edge_poller once,
/// non-blocking, and reused call after call (loop_client::take_connection), so a call costs a
/// send and a receive, and its wait no system call. Touched only by that loop's thread.
struct loop_connection : std::enable_shared_from_this<loop_connection> {
    loop_connection(const boost::asio::any_io_executor& loop, portunus::loop_client d, portunus::unique_fd f,
                    std::uint64_t gen, bool opening);
    loop_connection(const loop_connection&) = delete;
    loop_connection& operator=(const loop_connection&) = delete;
    void on_deadline();

    portunus::loop_client door;
    portunus::unique_fd fd;
    boost::asio::execution_context* context; ///< of the loop it belongs to
    edge_poller::registration readiness;     ///< of fd, which outlives it (declared before)
    lazy_deadline deadline;
    const std::uint64_t generation; ///< of the door handle it came from
    std::shared_ptr<door_gate> gate; ///< set while a call runs on it
    call_job j;
    std::chrono::steady_clock::time_point started;
    bool timed_out = false;
    bool connecting; ///< opened by the loop; the server's greeting is not read yet
};

/// Makes a call on the caller's event loop over one of the loop's connections: an idle one, one
/// adopted from the door handle's pool, or one opened without blocking. Leaves the call when
/// the door is not open yet or no connection can be had; gives it to the pool when the door
/// fails under it. Its idle connections are guarded by the gate's door_mutex_.
class loop_connection_engine final : public call_engine {
public:
    explicit loop_connection_engine(door_gate& gate) : gate_(gate) {}
    bool start(call_job& j) override;

    /// With door_mutex_ held: an idle connection of `context` to the door handle of
    /// `generation`, for the batch link engine to turn into a link; an empty fd when none.
    std::pair<portunus::unique_fd, edge_poller::registration> take_idle_locked(const boost::asio::execution_context* context,
                                                                               std::uint64_t generation);

private:
    struct loop_idle {
        const boost::asio::execution_context* context;
        std::vector<std::shared_ptr<loop_connection>> idle;
    };
    std::shared_ptr<loop_connection> take(const boost::asio::any_io_executor& loop);
    void put(std::shared_ptr<loop_connection> c);
    void wait_for_greeting(const std::shared_ptr<loop_connection>& c);
    void on_greeting(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e);
    void send_call(const std::shared_ptr<loop_connection>& c);
    void wait_for_reply(const std::shared_ptr<loop_connection>& c);
    void on_reply(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e);
    void to_pool(const std::shared_ptr<loop_connection>& c, const std::error_code& ec);
    void finish(const std::shared_ptr<loop_connection>& c, call_outcome out, bool reusable);

    door_gate& gate_;
    std::vector<loop_idle> loops_; // guarded by the gate's door_mutex_
};

} // namespace portunusd
