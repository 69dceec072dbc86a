// SPDX-License-Identifier: MPL-2.0
// A pass forward's connection: the socket goes to the application in one door call.
#include "portunusd/handoff/pass_session.hpp"

#include <portunus/pass.hpp>

#include <boost/asio/dispatch.hpp>
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace portunusd {

namespace {

portunus::pass_endpoint to_pass(const boost::asio::ip::tcp::endpoint& e)
{
    portunus::pass_endpoint p;
    p.port = e.port();
    if (e.address().is_v4()) {
        p.family = 4;
        const auto b = e.address().to_v4().to_bytes();
        std::copy(b.begin(), b.end(), p.address.begin());
    } else {
        p.family = 6;
        const auto b = e.address().to_v6().to_bytes();
        std::copy(b.begin(), b.end(), p.address.begin());
    }
    return p;
}

// The address the client reached, which the listener's own may not say (a wildcard).
std::optional<portunus::pass_endpoint> local_of(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
    portunus::pass_endpoint p;
    if (ss.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
        p.family = 4;
        std::memcpy(p.address.data(), &in->sin_addr, 4);
        p.port = ntohs(in->sin_port);
        return p;
    }
    if (ss.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        p.family = 6;
        std::memcpy(p.address.data(), &in6->sin6_addr, 16);
        p.port = ntohs(in6->sin6_port);
        return p;
    }
    return std::nullopt;
}

} // namespace

void pass_session::start_new(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                             session_registry& registry)
{
    std::make_shared<pass_session>(std::move(c), std::move(forward), limit, registry)->start();
}

std::string pass_session::header_for(int fd, std::string_view early) const
{
    portunus::pass_header h;
    h.hold = forward_->config.pass_hold;
    h.peer = to_pass(peer_);
    h.local = local_of(fd).value_or(to_pass(local_));
    if (forward_->config.proxy_protocol && client_ != peer_) h.origin = to_pass(client_);
    h.forward = forward_->config.name;
    h.early.assign(early);
    return portunus::serialize_pass_header(h);
}

void pass_session::on_start(std::string_view first)
{
    deadline_.clear(); // a PROXY header's; from here call_timeout bounds the call
    forward_->stats->request();
    if (const auto n = bytes_before_start()) forward_->stats->received(n);
    // Out of this loop's poller first: the application keeps the socket open after the
    // daemon's copy closes, and a registration would outlive the descriptor it was made for.
    auto passed = std::make_shared<const portunus::unique_fd>(socket_.release());
    std::string header = header_for(passed->get(), first);
    calling_ = true;
    auto self = self_as<pass_session>();
    const bool queued = forward_->gates[forward_->choose(0)]->submit_passing(
        std::move(header), passed, [self, passed](call_outcome outcome) {
            // A failed hand-off, or a held connection whose call failed or timed out, ends for
            // the client now, even while the application (or a message in flight to it) still
            // holds a copy of the socket: shutdown acts on the connection, not on a descriptor.
            if (outcome.ec || !outcome.reply.empty()) ::shutdown(passed->get(), SHUT_RDWR);
            boost::asio::dispatch(self->socket_.executor(),
                                  [self, outcome = std::move(outcome)] { self->on_answer(outcome); });
        });
    if (!queued) {
        calling_ = false;
        close_queue_full("calls in flight"); // `passed`, the last copy, closes on return
    }
}

void pass_session::on_answer(const call_outcome& outcome)
{
    calling_ = false;
    forward_->stats->call_ended(outcome);
    if (outcome.ec) {
        return close_door_error(outcome.ec);
    }
    if (!outcome.reply.empty()) {
        // The application answered instead of taking the socket: a door that serves no pass
        // calls, or a header it could not read. Its words, cut to a line.
        forward_->stats->failed(failure_kind::other);
        std::string why = outcome.reply.substr(0, std::min<std::size_t>(outcome.reply.find('\n'), 200));
        std::replace_if(why.begin(), why.end(), [](char c) { return c == '"' || static_cast<unsigned char>(c) < 0x20; }, '?');
        std::uint64_t suppressed = 0;
        if (forward_->failure_log.allow(suppressed))
            spdlog::warn("forward {}: door {} refused the connection: {} ({} more since last warning)",
                         forward_->config.name, forward_->config.door, why, suppressed);
        return close("refused: " + why);
    }
    close("passed");
}

void pass_session::on_closed(std::string_view reason)
{
    log_access({}, bytes_before_start(), 0, reason, started_);
}

} // namespace portunusd
