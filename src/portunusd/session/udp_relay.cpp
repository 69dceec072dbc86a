// SPDX-License-Identifier: MPL-2.0
// The udp relay.
#include "portunusd/session/udp_relay.hpp"

#include "portunusd/log/logging.hpp"
#include "portunusd/net/net_text.hpp"
#include "portunusd/session/session_core.hpp"

#include <spdlog/spdlog.h>

namespace portunusd {

namespace asio = boost::asio;

udp_relay::udp_relay(asio::ip::udp::socket socket, std::shared_ptr<forward_state> forward)
    : strand_(asio::make_strand(socket.get_executor())), socket_(std::move(socket)), forward_(std::move(forward)),
      // One byte more than allowed, so an oversize datagram can be told from a maximal one.
      buffer_(forward_->config.max_request + 1)
{
    // Replies are sent synchronously from the strand; non-blocking mode turns a full send
    // buffer into a dropped reply (as UDP may) instead of a stalled event loop.
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
}

void udp_relay::start()
{
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_receive(); });
}

void udp_relay::stop()
{
    asio::dispatch(strand_, [self = shared_from_this()] {
        self->stopped_ = true;
        // Stop receiving, but keep the socket until the calls in flight have sent their replies.
        boost::system::error_code ignored;
        self->socket_.cancel(ignored);
        if (self->in_flight_.load() == 0) self->socket_.close(ignored);
    });
}

void udp_relay::set_forward(std::shared_ptr<forward_state> forward)
{
    std::lock_guard lock(mutex_);
    forward_ = std::move(forward);
}

std::shared_ptr<forward_state> udp_relay::forward() const
{
    std::lock_guard lock(mutex_);
    return forward_;
}

void udp_relay::do_receive()
{
    if (stopped_) return;
    socket_.async_receive_from(asio::buffer(buffer_), sender_,
                               asio::bind_executor(strand_, [self = shared_from_this()](
                                                                const boost::system::error_code& ec, std::size_t n) {
                                   self->on_receive(ec, n);
                               }));
}

void udp_relay::on_receive(const boost::system::error_code& ec, std::size_t n)
{
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
        // ICMP errors from earlier sends surface here on Linux; they concern that datagram only.
        spdlog::debug("udp receive: {}", ec.message());
        return do_receive();
    }
    auto fwd = forward();
    fwd->stats->received(n);
    if (n > fwd->config.max_request) {
        fwd->stats->failed(failure_kind::too_large);
        spdlog::debug("forward {}: dropped a datagram over max_request from {}", fwd->config.name, endpoint_text(sender_));
        return do_receive();
    }
    fwd->stats->request();
    in_flight_.fetch_add(1);
    const auto to = sender_;
    auto self = shared_from_this();
    const bool queued = fwd->gates[fwd->choose(0)]->submit(std::string(buffer_.data(), n), [self, fwd, to, n](call_outcome outcome) {
        asio::dispatch(self->strand_, [self, fwd, to, n, outcome = std::move(outcome)]() mutable {
            self->on_reply(fwd, to, n, std::move(outcome));
        });
    }, strand_);
    if (!queued) {
        in_flight_.fetch_sub(1);
        fwd->stats->failed(failure_kind::queue_full);
        std::uint64_t suppressed = 0;
        if (fwd->overflow_log.allow(suppressed))
            spdlog::warn("forward {}: queue full, dropping datagrams ({} more since last warning)", fwd->config.name,
                         suppressed);
    }
    do_receive();
}

void udp_relay::on_reply(const std::shared_ptr<forward_state>& fwd, const asio::ip::udp::endpoint& to,
                         std::size_t bytes_in, call_outcome outcome)
{
    in_flight_.fetch_sub(1);
    std::string result = "ok";
    std::size_t sent = 0;
    fwd->stats->call_ended(outcome);
    if (outcome.ec) {
        result = "door error: " + outcome.ec.message();
        std::uint64_t suppressed = 0;
        if (fwd->failure_log.allow(suppressed))
            spdlog::warn("forward {}: door {}: {} ({} more since last warning)", fwd->config.name, fwd->config.door,
                         outcome.ec.message(), suppressed);
    } else if (!outcome.reply.empty()) {
        // A datagram send either goes whole or not at all; the socket is not blocking anyone.
        boost::system::error_code ec;
        sent = socket_.send_to(asio::buffer(outcome.reply), to, 0, ec);
        if (ec) result = "send error: " + ec.message();
        fwd->stats->sent(sent);
    }
    if (stopped_ && in_flight_.load() == 0) {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }
    // A datagram has no connection: its line's duration is its call's.
    if (access_logger())
        write_access_line({"udp", fwd->config.name, endpoint_text(to), {}, bytes_in, sent, result, outcome.duration});
}

} // namespace portunusd
