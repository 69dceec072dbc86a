// SPDX-License-Identifier: MPL-2.0
// Non-blocking reads and writes of a client connection, and its lazy place in the edge_poller.
#include "portunusd/net/client_socket.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace portunusd {

namespace asio = boost::asio;

ssize_t client_socket::receive(char* data, std::size_t n) noexcept
{
    if (tls_) return tls_->receive(data, n);
    ssize_t got;
    do {
        got = ::recv(fd_.get(), data, n, MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    return got;
}

std::size_t client_socket::send_some(const char* data, std::size_t n, boost::system::error_code& ec) noexcept
{
    ec.clear();
    if (tls_) {
        int error = 0;
        const std::size_t took = tls_->send_some(data, n, error);
        if (error != 0) ec.assign(error, boost::system::system_category());
        return took;
    }
    std::size_t sent = 0;
    while (sent < n) {
        const ssize_t k = ::send(fd_.get(), data + sent, n - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            sent += static_cast<std::size_t>(k);
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        ec.assign(k < 0 ? errno : EPIPE, boost::system::system_category());
        break;
    }
    return sent;
}

void client_socket::start_tls(const tls::context& ctx, std::string_view first)
{
    tls_ = std::make_unique<tls::channel>(ctx, fd_.get(), first);
}

void client_socket::async_wait(edge_poller::wait_for what, edge_poller::callback done)
{
    if (tls_) {
        // OpenSSL met EAGAIN the other way: that is the edge that will come.
        if (what == edge_poller::wait_for::read && tls_->read_wants_write()) what = edge_poller::wait_for::write;
        else if (what == edge_poller::wait_for::write && tls_->write_wants_read()) what = edge_poller::wait_for::read;
    }
    if (!readiness_.registered()) {
        boost::system::error_code ec;
        auto& poller = asio::use_service<edge_poller>(asio::query(loop_, asio::execution::context));
        if (fd_)
            readiness_ = poller.add(fd_.get(), ec);
        else
            ec = asio::error::bad_descriptor;
        if (ec) {
            asio::post(loop_, [d = std::move(done), ec] { d(ec); });
            return;
        }
    }
    readiness_.async_wait(what, std::move(done));
}

void client_socket::reset_on_close() noexcept
{
    reset_ = true;
    const linger abort_now{1, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
}

void client_socket::close() noexcept
{
    if (tls_ && !reset_ && fd_) tls_->close_notify();
    tls_.reset();
    readiness_.forget(); // closing the descriptor takes it out of the kernel's epoll set
    fd_.reset();
}

} // namespace portunusd
