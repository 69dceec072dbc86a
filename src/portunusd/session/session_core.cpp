// SPDX-License-Identifier: MPL-2.0
// The session core: start, deadline, read step, the single close, and the one access-log format.
#include "portunusd/session/session_core.hpp"

#include "portunusd/log/logging.hpp"
#include "portunusd/net/net_text.hpp"

#include <boost/asio/dispatch.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

namespace portunusd {

namespace {

template <typename Buffer>
void append_access_line(Buffer& buf, const access_line& l)
{
    auto out = std::back_inserter(buf);
    fmt::format_to(out, "{} forward={} client={} ", l.proto, l.forward, l.client);
    if (const auto* t = std::get_if<tcp_access_fields>(&l.own)) fmt::format_to(out, "calls={} ", t->calls);
    if (const auto* h = std::get_if<http_access_fields>(&l.own)) {
        // The path without its query: queries often carry tokens that have no place in a log.
        const auto path = h->target.substr(0, h->target.find('?'));
        fmt::format_to(out, "method={} path=\"{}\" status={} ", h->method.empty() ? "-" : h->method, path,
                       h->status);
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(l.duration).count();
    fmt::format_to(out, "in={} out={} result=\"{}\" duration_ms={:.3f}", l.in, l.out, l.result,
                   static_cast<double>(us) / 1000.0);
}

} // namespace

std::string access_line_text(const access_line& line)
{
    std::string text;
    append_access_line(text, line);
    return text;
}

namespace {

void write_to(spdlog::logger& log, const access_line& line)
{
    // Formatted on the stack: a kept-alive request's line costs no allocation.
    fmt::memory_buffer buf;
    append_access_line(buf, line);
    log.info("{}", std::string_view(buf.data(), buf.size()));
}

} // namespace

void write_access_line(const access_line& line)
{
    if (auto log = access_logger()) write_to(*log, line);
}

session_core::session_core(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                           session_registry& registry)
    : socket_(c.loop, std::move(c.fd)), deadline_(c.loop), forward_(std::move(forward)),
      slot_(forward_->stats, limit), registry_(registry), peer_(c.peer), local_(c.local),
      client_text_(endpoint_text(c.peer))
{
}

void session_core::start()
{
    registry_.add(shared_from_this());
    boost::asio::dispatch(socket_.executor(), [self = shared_from_this()] { self->on_start(); });
}

void session_core::drain()
{
    boost::asio::dispatch(socket_.executor(), [self = shared_from_this()] {
        self->draining_ = true;
        if (!self->closed_ && self->idle()) self->close("shutdown");
    });
}

void session_core::arm_timer(std::chrono::milliseconds after, const char* reason)
{
    timer_reason_ = reason;
    deadline_.set(after, shared_from_this());
}

void session_core::on_deadline()
{
    if (closed_) return;
    on_timeout(timer_reason_);
}

session_core::block_read session_core::read_block(std::size_t room)
{
    static thread_local std::unique_ptr<char[]> block(new char[read_block_size]);
    room = std::min(room, read_block_size);
    // Never blocks: readiness can be stale, and the loop must never wait.
    const ssize_t n = socket_.receive(block.get(), room);
    if (n < 0) return {{}, errno == EWOULDBLOCK ? EAGAIN : errno};
    // A short read emptied the socket: later bytes come with an edge of their own, and a FIN
    // that came with these keeps the poller reporting the socket readable.
    more_to_read_ = static_cast<std::size_t>(n) == room;
    return {{block.get(), static_cast<std::size_t>(n)}, 0};
}

void session_core::wait_readable()
{
    socket_.async_wait(edge_poller::wait_for::read,
                       [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void session_core::close(std::string_view reason)
{
    if (closed_) return;
    const auto self = shared_from_this(); // pending waits dropped below may hold the last reference
    closed_ = true;
    deadline_.cancel();
    socket_.close(); // sends the FIN; a shutdown() first would only cost a system call
    registry_.remove(this);
    on_closed(reason);
    if (spdlog::should_log(spdlog::level::debug))
        spdlog::debug("forward {}: {} closed: {}", forward_->config.name, client_text_, reason);
}

void session_core::log_access(std::variant<std::monostate, tcp_access_fields, http_access_fields> own,
                              std::uint64_t in, std::uint64_t out, std::string_view result,
                              std::chrono::steady_clock::time_point since) const
{
    auto log = access_logger();
    if (!log) return; // off: not even the clock is read
    write_to(*log, {to_string(forward_->config.proto), forward_->config.name, client_text_, own, in, out, result,
                    std::chrono::steady_clock::now() - since});
}

} // namespace portunusd
