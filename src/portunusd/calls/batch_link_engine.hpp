// SPDX-License-Identifier: MPL-2.0
// batch_link_engine: small door calls of an event loop sent several per message on the loop's batch link (userland doors).
#pragma once

#include "portunusd/calls/call_engine.hpp"
#include "portunusd/net/edge_poller.hpp"
#include "portunusd/net/lazy_deadline.hpp"

#include "door/uds/loop_client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace portunusd {

class door_gate;
class loop_connection_engine;

/// The batch link of one event loop: one door connection that carries every small call the
/// loop makes to a door, several per message. The calls made in one turn of the loop leave in
/// one send, posted to run after that turn's handlers; the answers come back one by one and
/// each completes its call. Touched only by its loop.
struct batch_link : std::enable_shared_from_this<batch_link> {
    batch_link(const boost::asio::any_io_executor& loop, portunus::loop_client d, portunus::unique_fd f,
               std::uint64_t gen);
    batch_link(const batch_link&) = delete;
    batch_link& operator=(const batch_link&) = delete;
    void on_deadline();

    struct pending {
        call_job j;
        std::chrono::steady_clock::time_point started;
    };
    portunus::loop_client door;
    portunus::unique_fd fd;
    boost::asio::any_io_executor loop;
    edge_poller::registration readiness; ///< of fd, which outlives it (declared before)
    lazy_deadline deadline;              ///< at or before the oldest outstanding call's
    const std::uint64_t generation;      ///< of the door handle it came from
    std::shared_ptr<door_gate> gate;     ///< set while calls are outstanding
    std::unordered_map<std::uint32_t, pending> outstanding;
    /// Bodies not sent yet, with the tags of their calls (which never reached the door).
    std::deque<std::pair<std::string, std::vector<std::uint32_t>>> unsent;
    std::uint32_t next_tag = 1;
    bool flush_posted = false;
    bool write_waiting = false;
    bool retired = false; ///< broken, or its door handle was replaced: takes no new calls
};

/// Takes a call of at most loop_client::batch_call_max bytes from an event loop whose batch link
/// to the door is at hand (made on first use from a connection the loop engine has, once the
/// server's greeting advertised batches); leaves any other call. Its links are guarded by the
/// gate's door_mutex_.
class batch_link_engine final : public call_engine {
public:
    batch_link_engine(door_gate& gate, loop_connection_engine& connections) : gate_(gate), connections_(connections) {}
    /// Stops the links' waits for answers, on their own loops, so their connections close.
    ~batch_link_engine() override;
    bool start(call_job& j) override;
    /// See door_gate::abandon_calls().
    void abandon_calls() noexcept;

private:
    struct loop_link {
        const boost::asio::execution_context* context;
        std::shared_ptr<batch_link> link;
    };
    std::shared_ptr<batch_link> link_for(const boost::asio::any_io_executor& loop);
    void enqueue(const std::shared_ptr<batch_link>& link, call_job j);
    void flush(const std::shared_ptr<batch_link>& link);
    static void wait_for_answers(const std::shared_ptr<batch_link>& link);
    static void on_answers(const std::shared_ptr<batch_link>& link, const boost::system::error_code& e);
    void answer(const std::shared_ptr<batch_link>& link, std::uint32_t tag, std::error_code ec, std::string_view bytes);
    void expire(const std::shared_ptr<batch_link>& link);
    void break_link(const std::shared_ptr<batch_link>& link, std::error_code ec);
    void requeue_unsent(const std::shared_ptr<batch_link>& link, const std::error_code& ec);
    static void settle(const std::shared_ptr<batch_link>& link);
    /// The engine of the gate a link holds (the gate keeps it alive).
    static batch_link_engine& of(door_gate& gate) noexcept;
    friend struct batch_link;

    door_gate& gate_;
    loop_connection_engine& connections_;
    std::vector<loop_link> links_; // guarded by the gate's door_mutex_
};

} // namespace portunusd
