// SPDX-License-Identifier: MPL-2.0
// The session core: start, deadline, read step, the single close, and the one access-log format.
#include "portunusd/session/session_core.hpp"

#include "portunusd/log/logging.hpp"
#include "portunusd/net/net_text.hpp"
#include "portunusd/proxy/proxy_header.hpp"

#include <boost/asio/dispatch.hpp>
#include <sys/socket.h>
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
      slot_(forward_->stats, limit), registry_(registry), peer_(c.peer), client_(c.peer), local_(c.local),
      client_text_(endpoint_text(c.peer))
{
}

void session_core::start()
{
    registry_.add(shared_from_this());
    boost::asio::dispatch(socket_.executor(), [self = shared_from_this()] { self->begin(); });
}

namespace {

boost::asio::ip::tcp::endpoint to_endpoint(const proxy::endpoint& e)
{
    namespace ip = boost::asio::ip;
    if (e.fam == proxy::family::inet) {
        ip::address_v4::bytes_type b;
        std::copy_n(e.address.begin(), b.size(), b.begin());
        return {ip::address_v4(b), e.port};
    }
    ip::address_v6::bytes_type b;
    std::copy_n(e.address.begin(), b.size(), b.begin());
    return {ip::address_v6(b), e.port};
}

bool trusted(const forward_config& f, const boost::asio::ip::address& a)
{
    if (a.is_v4()) {
        const auto b = a.to_v4().to_bytes();
        return proxy::contains(f.proxy_protocol_from, b);
    }
    const auto b = a.to_v6().to_bytes();
    return proxy::contains(f.proxy_protocol_from, b);
}

} // namespace

void session_core::begin()
{
    if (!forward_->config.proxy_protocol) return start_protocol({});
    // Anyone else could claim any client address, so the header is taken from the balancers
    // named in the configuration only, and nobody else is served at all.
    if (!trusted(forward_->config, peer_.address()))
        return close("PROXY header refused: source not in proxy_protocol_from");
    // The header has the same deadline as an HTTP head: a connection that sends nothing, or
    // trickles, holds its slot for header_timeout at most.
    arm_timer(forward_->config.header_timeout, "PROXY header timeout");
    read_proxy_header();
}

void session_core::read_proxy_header()
{
    const auto r = read_block(proxy::max_header_length - proxy_in_.size());
    if (r.error == EAGAIN) {
        socket_.async_wait(edge_poller::wait_for::read, [self = shared_from_this()](const boost::system::error_code& ec) {
            self->on_proxy_readable(ec);
        });
        return;
    }
    if (r.error) return close(io_error("read", std::error_code(r.error, std::system_category()).message()));
    if (r.bytes.empty()) return close("client closed before the PROXY header");
    proxy_read_ += r.bytes.size();
    if (proxy_in_.empty()) return parse_proxy_header(r.bytes); // the usual case: the header in one read
    proxy_in_.append(r.bytes);
    parse_proxy_header(proxy_in_);
}

void session_core::on_proxy_readable(const boost::system::error_code& ec)
{
    if (closed_) return;
    if (ec) return close(io_error("read", ec.message()));
    read_proxy_header();
}

void session_core::parse_proxy_header(std::string_view bytes)
{
    const auto result = proxy::parse_header(bytes);
    switch (result.status) {
    case proxy::parse_status::error: return close("PROXY header refused: " + std::string(result.error));
    case proxy::parse_status::need_more:
        if (proxy_in_.empty()) proxy_in_.assign(bytes);
        // Reads are sized so that the buffer never passes the parser's bound, which refuses a
        // header before it could; more_to_read_ only means the read filled its room.
        more_to_read_ = false;
        return read_proxy_header();
    case proxy::parse_status::complete: break;
    }
    if (result.value.has_addresses) {
        client_ = to_endpoint(result.value.source);
        client_text_ = endpoint_text(client_);
    }
    start_protocol(bytes.substr(result.length));
    std::string().swap(proxy_in_);
}

void session_core::start_protocol(std::string_view first)
{
    if (!forward_->config.tls) {
        protocol_started_ = true;
        return on_start(first);
    }
    if (!forward_->tls) return close("TLS unavailable: the forward's certificate could not be loaded");
    socket_.start_tls(*forward_->tls, first);
    arm_timer(forward_->config.tls->handshake_timeout, "TLS handshake timeout");
    continue_handshake();
}

void session_core::continue_handshake()
{
    using step = tls::channel::step;
    const step s = socket_.handshake();
    if (s == step::failed) {
        if (!socket_.tls()->heard_from_client()) {
            // A connection opened and closed without a byte (a balancer's TCP check, a port
            // probe) is no failed handshake, and gets no line, as on plain forwards.
            log_unstarted_ = false;
            return close("client closed before the TLS handshake");
        }
        forward_->stats->tls_handshake_failed();
        if (forward_->config.proto == protocol::http && socket_.tls()->plain_http()) answer_plain_http();
        return close("TLS handshake failed: " + socket_.tls()->failure());
    }
    if (s != step::done) {
        const auto what = s == step::want_write ? edge_poller::wait_for::write : edge_poller::wait_for::read;
        socket_.async_wait(what, [self = shared_from_this()](const boost::system::error_code& ec) {
            if (self->closed_) return;
            if (ec) return self->close(self->io_error("read", ec.message()));
            self->continue_handshake();
        });
        return;
    }
    protocol_started_ = true;
    // The client's first request may have come in with its last handshake message: read what
    // is there now, since no new readiness edge will announce bytes OpenSSL already holds.
    const auto r = read_block(read_block_size);
    if (r.error == EAGAIN) return on_start({});
    if (r.error) return close(io_error("read", std::error_code(r.error, std::system_category()).message()));
    if (r.bytes.empty()) return close("client closed after the TLS handshake");
    on_start(r.bytes);
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
    if (!protocol_started_) {
        if (socket_.tls()) forward_->stats->tls_handshake_failed();
        return close(timer_reason_);
    }
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
    more_to_read_ = static_cast<std::size_t>(n) == room || socket_.has_buffered_input();
    return {{block.get(), static_cast<std::size_t>(n)}, 0};
}

void session_core::wait_readable()
{
    socket_.async_wait(edge_poller::wait_for::read,
                       [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void session_core::close_queue_full(std::string_view running)
{
    forward_->stats->failed(failure_kind::queue_full);
    std::uint64_t suppressed = 0;
    if (forward_->overflow_log.allow(suppressed))
        spdlog::warn("forward {}: queue full ({} {}, {} queued), closing {} ({} more since last warning)",
                     forward_->config.name, forward_->config.max_concurrency, running, forward_->config.queue,
                     client_text_, suppressed);
    close("queue full");
}

void session_core::close_door_error(const std::error_code& ec)
{
    std::uint64_t suppressed = 0;
    if (forward_->failure_log.allow(suppressed))
        spdlog::warn("forward {}: door {}: {} ({} more since last warning)", forward_->config.name,
                     forward_->config.door, ec.message(), suppressed);
    close("door error: " + ec.message());
}

void session_core::close(std::string_view reason)
{
    if (closed_) return;
    const auto self = shared_from_this(); // pending waits dropped below may hold the last reference
    closed_ = true;
    deadline_.cancel();
    socket_.close(); // sends the FIN; a shutdown() first would only cost a system call
    registry_.remove(this);
    if (protocol_started_) on_closed(reason);
    else if (log_unstarted_)
        // The protocol never saw the connection: the line is written here, with what that
        // protocol's line would hold for a request that never arrived (http's says 400, as for
        // a request cut short).
        log_access(forward_->config.proto == protocol::http   ? decltype(access_line::own){http_access_fields{{}, {}, 400}}
                   : forward_->config.proto == protocol::pass ? decltype(access_line::own){}
                                                              : decltype(access_line::own){tcp_access_fields{0}},
                   proxy_read_, core_out_, reason, started_);
    if (spdlog::should_log(spdlog::level::debug))
        spdlog::debug("forward {}: {} closed: {}", forward_->config.name, client_text_, reason);
}

void session_core::answer_plain_http()
{
    // Someone typed http:// for an https port: a browser would otherwise show only a reset.
    static const std::string answer = [] {
        constexpr std::string_view body = "400 Bad Request: this port speaks HTTPS; use an https URL\n";
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
    }();
    const int fd = socket_.native_handle();
    // What is left of the request goes first: closing with unread bytes would send a reset,
    // which can destroy the answer at the client before it is read. Bounded: 64 KiB at most.
    char sink[4096];
    for (int i = 0; i < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    const ssize_t n = ::send(fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) return;
    core_out_ = static_cast<std::uint64_t>(n);
    forward_->stats->sent(core_out_);
    forward_->stats->daemon_response(400);
}

std::string session_core::io_error(std::string_view what, std::string message) const
{
    if (const tls::channel* t = socket_.tls(); t && !t->failure().empty()) message = "TLS: " + t->failure();
    return std::string(what) + " error: " + message;
}

void session_core::log_access(std::variant<std::monostate, tcp_access_fields, http_access_fields> own,
                              std::uint64_t in, std::uint64_t out, std::string_view result,
                              std::chrono::steady_clock::time_point since) const
{
    auto log = access_logger();
    if (!log) return; // off: not even the clock is read
    write_to(*log, {protocol_name(forward_->config), forward_->config.name, client_text_, own, in, out, result,
                    std::chrono::steady_clock::now() - since});
}

} // namespace portunusd
