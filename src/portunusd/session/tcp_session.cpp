// SPDX-License-Identifier: MPL-2.0
// The tcp relay: chunk in, door call, reply out.
#include "portunusd/session/tcp_session.hpp"

#include "portunusd/session/connection_limit.hpp"
#include "portunusd/log/logging.hpp"
#include "portunusd/net/net_text.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace portunusd {

namespace asio = boost::asio;

namespace {
// The most one read takes; a chunk larger than this arrives as several calls anyway.
constexpr std::size_t read_block_size = 65536;
} // namespace

void session_registry::add(const std::shared_ptr<session_base>& s)
{
    std::lock_guard lock(mutex_);
    sessions_.emplace(s.get(), s);
}

void session_registry::remove(const session_base* s)
{
    std::lock_guard lock(mutex_);
    sessions_.erase(s);
}

void session_registry::drain_all()
{
    std::vector<std::shared_ptr<session_base>> all;
    {
        std::lock_guard lock(mutex_);
        for (auto& [key, weak] : sessions_)
            if (auto s = weak.lock()) all.push_back(std::move(s));
    }
    for (auto& s : all) s->drain();
}

std::size_t session_registry::size() const
{
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

tcp_session::tcp_session(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                         session_registry& registry)
    : socket_(c.loop, std::move(c.fd)), deadline_(c.loop), forward_(std::move(forward)),
      slot_(forward_->stats, limit), registry_(registry), peer_(c.peer)
{
}

void tcp_session::start()
{
    registry_.add(shared_from_this());
    // The first request must arrive within read_timeout: a client that connects and says
    // nothing holds a connection slot, which is how slowloris-style attacks starve a server.
    asio::dispatch(socket_.executor(), [self = shared_from_this()] {
        self->arm_timer(self->forward_->config.read_timeout, "read timeout");
        // A client usually sends its request right after connecting: read before waiting, which
        // saves registering the wait when the bytes are already there.
        self->on_readable({});
    });
}

void tcp_session::drain()
{
    asio::dispatch(socket_.executor(), [self = shared_from_this()] {
        self->draining_ = true;
        if (!self->calling_ && self->reply_.empty()) self->close("shutdown");
    });
}

void tcp_session::do_read()
{
    if (draining_) return close("shutdown");
    arm_timer(forward_->config.idle_timeout, "idle timeout");
    if (more_to_read_) {
        // The last read filled its room: bytes may be waiting that no new edge will announce.
        more_to_read_ = false;
        return on_readable({});
    }
    wait_readable();
}

// Waiting for readability first and then sizing the read to what has arrived means an idle
// connection holds no buffer at all, whatever max_request allows.
void tcp_session::wait_readable()
{
    socket_.async_wait(edge_poller::wait_for::read,
                       [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void tcp_session::on_readable(const boost::system::error_code& ec)
{
    if (closed_) return;
    if (ec) return close("read error: " + ec.message());
    // Read into the thread's block and copy out what arrived: an idle connection holds no
    // buffer, and a request costs neither a FIONREAD nor a zero-filled allocation of the maximum.
    static thread_local std::unique_ptr<char[]> block(new char[read_block_size]);
    const std::size_t room = std::min<std::size_t>(read_block_size, forward_->config.max_request);
    // Never blocks: readiness can be stale, and the loop must never wait.
    const ssize_t n = socket_.receive(block.get(), room);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait_readable();
    if (n < 0) return close("read error: " + std::error_code(errno, std::system_category()).message());
    if (n == 0) return close("client closed");
    // A short read emptied the socket: later bytes come with an edge of their own, and a FIN
    // that came with these keeps the poller reporting the socket readable.
    more_to_read_ = static_cast<std::size_t>(n) == room;
    on_read(std::string(block.get(), static_cast<std::size_t>(n)));
}

void tcp_session::on_read(std::string chunk)
{
    const std::size_t n = chunk.size();
    deadline_.clear();
    bytes_in_ += n;
    forward_->stats->bytes_in.fetch_add(n, std::memory_order_relaxed);
    forward_->stats->requests.fetch_add(1, std::memory_order_relaxed);
    calling_ = true;
    ++calls_;
    auto self = shared_from_this();
    const bool queued = forward_->gate->submit(std::move(chunk), [self](call_outcome outcome) {
        asio::dispatch(self->socket_.executor(),
                   [self, outcome = std::move(outcome)]() mutable { self->on_reply(std::move(outcome)); });
    }, socket_.executor());
    if (!queued) {
        calling_ = false;
        forward_->stats->rejected.fetch_add(1, std::memory_order_relaxed);
        std::uint64_t suppressed = 0;
        if (forward_->overflow_log.allow(suppressed))
            spdlog::warn("forward {}: queue full ({} calls in flight, {} queued), closing {} ({} more since last "
                         "warning)",
                         forward_->config.name, forward_->config.max_concurrency, forward_->config.queue, endpoint_text(peer_),
                         suppressed);
        close("queue full");
    }
}

void tcp_session::on_reply(call_outcome outcome)
{
    calling_ = false;
    if (closed_) return;
    if (outcome.ec) {
        forward_->stats->door_errors.fetch_add(1, std::memory_order_relaxed);
        std::uint64_t suppressed = 0;
        if (forward_->failure_log.allow(suppressed))
            spdlog::warn("forward {}: door {}: {} ({} more since last warning)", forward_->config.name,
                         forward_->config.door, outcome.ec.message(), suppressed);
        return close("door error: " + outcome.ec.message());
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
    socket_.async_wait(edge_poller::wait_for::write, [self = shared_from_this()](const boost::system::error_code& e) {
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
    forward_->stats->bytes_out.fetch_add(n, std::memory_order_relaxed);
    reply_.clear();
    written_ = 0;
    write_stalled_ = false;
    if (ec) return close("write error: " + ec.message());
    if (forward_->config.once) return close("done");
    do_read();
}

void tcp_session::arm_timer(std::chrono::milliseconds after, const char* reason)
{
    timer_reason_ = reason;
    deadline_.set(after, shared_from_this());
}

void tcp_session::on_deadline()
{
    if (closed_) return;
    if (!reply_.empty()) socket_.reset_on_close(); // the client stopped reading
    close(timer_reason_);
}

void tcp_session::close(std::string_view reason)
{
    if (closed_) return;
    const auto self = shared_from_this(); // pending waits dropped below may hold the last reference
    closed_ = true;
    deadline_.cancel();
    socket_.close(); // sends the FIN; a shutdown() first would only cost a system call

    registry_.remove(this);
    if (auto log = access_logger()) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
        log->info("tcp forward={} client={} calls={} in={} out={} result=\"{}\" duration_ms={}", forward_->config.name,
                  endpoint_text(peer_), calls_, bytes_in_, bytes_out_, reason, ms.count());
    }
    if (spdlog::should_log(spdlog::level::debug))
        spdlog::debug("forward {}: {} closed: {}", forward_->config.name, endpoint_text(peer_), reason);
}

} // namespace portunusd
