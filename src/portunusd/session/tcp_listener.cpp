// SPDX-License-Identifier: MPL-2.0
// Accepting tcp connections, pausing at max_connections and on descriptor exhaustion.
#include "portunusd/session/tcp_listener.hpp"

#include "portunusd/session/http_session.hpp"

#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace portunusd {

namespace asio = boost::asio;

tcp_listener::tcp_listener(event_loops& loops, asio::ip::tcp::acceptor acceptor,
                           std::shared_ptr<forward_state> forward, connection_limit& limit, session_registry& registry,
                           session_starter starter)
    : loops_(loops), acceptor_(std::move(acceptor)), retry_(acceptor_.get_executor()), forward_(std::move(forward)),
      limit_(limit), registry_(registry), starter_(starter)
{
    boost::system::error_code ignored;
    local_ = acceptor_.local_endpoint(ignored);
    // accept4() is called on the loop after a readiness wait, which may be stale.
    acceptor_.non_blocking(true, ignored);
}

void tcp_listener::start()
{
    asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
}

void tcp_listener::stop()
{
    asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] {
        self->stopped_ = true;
        boost::system::error_code ignored;
        self->retry_.cancel();
        self->acceptor_.close(ignored);
        self->waiting_.reset();
    });
}

void tcp_listener::set_forward(std::shared_ptr<forward_state> forward)
{
    std::lock_guard lock(mutex_);
    forward_ = std::move(forward);
}

std::shared_ptr<forward_state> tcp_listener::forward() const
{
    std::lock_guard lock(mutex_);
    return forward_;
}

void tcp_listener::do_accept()
{
    if (stopped_) return;
    acceptor_.async_wait(asio::ip::tcp::acceptor::wait_read,
                         [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

// accept4(2) itself rather than Asio's accept: the new socket is non-blocking at once and
// enters no reactor here; its session registers it with its own loop only if it must wait.
// A burst is taken in one wake-up, bounded so that one busy port cannot starve the others.
void tcp_listener::on_readable(const boost::system::error_code& ec)
{
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) return pause(ec.message().c_str());
    const bool nodelay = !forward()->config.once;
    for (int burst = 0; burst < 64; ++burst) {
        asio::ip::tcp::endpoint peer;
        socklen_t len = static_cast<socklen_t>(peer.capacity());
        const int fd = ::accept4(acceptor_.native_handle(), peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            // EMFILE/ENFILE, ENOBUFS, ENOMEM: back off briefly rather than spin on a full table.
            return pause(std::strerror(errno));
        }
        peer.resize(len);
        // Replies that span segments must not wait for the client's delayed ACK. A `once`
        // reply needs no option: close() pushes out whatever Nagle held back.
        if (nodelay) {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        waiting_ = portunus::unique_fd(fd);
        peer_ = peer;
        if (!admit()) return; // at max_connections: admit() resumes accepting
    }
    do_accept();
}

void tcp_listener::pause(const char* why)
{
    spdlog::warn("accept on {}: {}; pausing 100 ms", forward()->config.listen.text, why);
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
        if (!e) self->do_accept();
    });
}

bool tcp_listener::admit()
{
    if (stopped_) {
        waiting_.reset();
        return false;
    }
    // At max_connections the listener holds this one connection unserved and stops accepting:
    // further clients wait in the kernel's backlog instead of being refused, and nothing spins.
    auto self = shared_from_this();
    if (!limit_.try_open([self] {
            asio::post(self->acceptor_.get_executor(), [self] {
                if (self->admit()) self->do_accept();
            });
        }))
        return false;
    accepted_connection c{loops_.next().get_executor(), std::move(waiting_), peer_, local_};
    auto fwd = forward();
    if (starter_)
        starter_(std::move(c), std::move(fwd), limit_, registry_);
    else if (fwd->config.proto == protocol::http)
        std::make_shared<http_session>(std::move(c), std::move(fwd), limit_, registry_)->start();
    else
        std::make_shared<tcp_session>(std::move(c), std::move(fwd), limit_, registry_)->start();
    return true;
}

} // namespace portunusd
