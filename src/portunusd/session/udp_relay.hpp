// SPDX-License-Identifier: MPL-2.0
// udp_relay: one datagram, one door call; a non-empty reply goes back to the sender.
#pragma once

#include "portunusd/session/forward_state.hpp"

#include <boost/asio.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace portunusd {

/// Owns the socket of one udp forward. Datagrams are received continuously; calls run
/// concurrently up to the forward's limits, past which datagrams are dropped and counted.
class udp_relay : public std::enable_shared_from_this<udp_relay> {
public:
    udp_relay(boost::asio::ip::udp::socket socket, std::shared_ptr<forward_state> forward);

    void start();
    void stop();
    void set_forward(std::shared_ptr<forward_state> forward);
    [[nodiscard]] std::shared_ptr<forward_state> forward() const;
    /// Calls started and not yet answered.
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_.load(); }

private:
    void do_receive();
    void on_receive(const boost::system::error_code& ec, std::size_t n);
    void on_reply(const std::shared_ptr<forward_state>& forward, const boost::asio::ip::udp::endpoint& to,
                  std::size_t bytes_in, call_outcome outcome);

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    boost::asio::ip::udp::socket socket_;
    mutable std::mutex mutex_;
    std::shared_ptr<forward_state> forward_; // guarded by mutex_
    std::vector<char> buffer_;
    boost::asio::ip::udp::endpoint sender_;
    std::atomic<std::size_t> in_flight_{0};
    bool stopped_ = false;
};

} // namespace portunusd
