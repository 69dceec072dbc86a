// SPDX-License-Identifier: MPL-2.0
// The tcp relay: chunk in, door call, reply out.
#include "portunusd/session/tcp_session.hpp"

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>

namespace portunusd {

namespace asio = boost::asio;

void tcp_session::on_start(std::string_view first)
{
    // The first request must arrive within read_timeout: a client that connects and says
    // nothing holds a connection slot, which is how slowloris-style attacks starve a server.
    arm_timer(forward_->config.read_timeout, "read timeout");
    if (!first.empty()) {
        carried_.assign(first);
        return take_carried();
    }
    // A client usually sends its request right after connecting: read before waiting, which
    // saves registering the wait when the bytes are already there.
    on_readable({});
}

void tcp_session::do_read()
{
    if (draining_) return close("shutdown");
    arm_timer(forward_->config.idle_timeout, "idle timeout");
    if (!carried_.empty()) return take_carried();
    if (more_to_read_) {
        // The last read filled its room: bytes may be waiting that no new edge will announce.
        more_to_read_ = false;
        return on_readable({});
    }
    wait_readable();
}

// Waiting for readability first and then sizing the read to what has arrived means an idle
// connection holds no buffer at all, whatever max_request allows.
void tcp_session::on_readable(const boost::system::error_code& ec)
{
    if (closed_) return;
    if (ec) return close(io_error("read", ec.message()));
    const auto r = read_block(forward_->config.max_request);
    if (r.error == EAGAIN) return wait_readable();
    if (r.error) return close(io_error("read", std::error_code(r.error, std::system_category()).message()));
    if (r.bytes.empty()) return close("client closed");
    on_read(std::string(r.bytes));
}

void tcp_session::take_carried()
{
    // A chunk is never larger than a read of max_request would have made.
    const std::size_t n = std::min(carried_.size(), forward_->config.max_request);
    std::string chunk = carried_.substr(0, n);
    carried_.erase(0, n);
    if (carried_.empty()) std::string().swap(carried_);
    on_read(std::move(chunk));
}

void tcp_session::on_read(std::string chunk)
{
    const std::size_t n = chunk.size();
    deadline_.clear();
    bytes_in_ += n;
    forward_->stats->received(n);
    forward_->stats->request();
    calling_ = true;
    ++calls_;
    auto self = self_as<tcp_session>();
    const bool queued = forward_->gates[forward_->choose(0)]->submit(std::move(chunk), [self](call_outcome outcome) {
        asio::dispatch(self->socket_.executor(),
                   [self, outcome = std::move(outcome)]() mutable { self->on_reply(std::move(outcome)); });
    }, socket_.executor());
    if (!queued) {
        calling_ = false;
        close_queue_full("calls in flight");
    }
}

void tcp_session::on_reply(call_outcome outcome)
{
    calling_ = false;
    if (closed_) return;
    forward_->stats->call_ended(outcome);
    if (outcome.ec) {
        return close_door_error(outcome.ec);
    }
    if (outcome.reply.empty()) {
        if (forward_->config.once) return close("done");
        return do_read();
    }
    reply_ = std::move(outcome.reply);
    do_write();
}

void tcp_session::do_write()
{
    // Most replies fit in the socket's send buffer: one send, no wait and nothing posted.
    boost::system::error_code ec;
    const std::size_t before = written_;
    written_ += socket_.send_some(reply_.data() + written_, reply_.size() - written_, ec);
    if (ec || written_ == reply_.size()) return on_write(ec, written_);
    // A client that stops reading would otherwise pin the reply (and the slot) forever, but one
    // that reads slowly and steadily keeps it: the reply waits at most read_timeout for the
    // client to take any of it.
    if (!write_stalled_ || written_ > before) {
        write_stalled_ = true;
        arm_timer(forward_->config.read_timeout, "write timeout");
    }
    socket_.async_wait(edge_poller::wait_for::write, [self = self_as<tcp_session>()](const boost::system::error_code& e) {
        if (self->closed_) return;
        if (e) return self->on_write(e, self->written_);
        self->do_write();
    });
}

void tcp_session::on_write(const boost::system::error_code& ec, std::size_t n)
{
    if (closed_) return;
    deadline_.clear();
    bytes_out_ += n;
    forward_->stats->sent(n);
    reply_.clear();
    written_ = 0;
    write_stalled_ = false;
    if (ec) return close(io_error("write", ec.message()));
    if (forward_->config.once) return close("done");
    do_read();
}

void tcp_session::on_timeout(const char* reason)
{
    if (!reply_.empty()) socket_.reset_on_close(); // the client stopped reading
    close(reason);
}

void tcp_session::on_closed(std::string_view reason)
{
    log_access(tcp_access_fields{calls_}, bytes_in_, bytes_out_, reason, started_);
}

} // namespace portunusd
