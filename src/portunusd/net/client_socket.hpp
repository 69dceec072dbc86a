// SPDX-License-Identifier: MPL-2.0
// client_socket: an accepted TCP connection on one event loop, outside Asio's reactor.
#pragma once

#include "portunusd/net/edge_poller.hpp"
#include "portunusd/tls/tls_channel.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <portunus/unique_fd.hpp>

#include <cstddef>
#include <memory>
#include <string_view>
#include <sys/types.h>

namespace portunusd {

/// The socket of one client connection. Non-blocking; reads and writes are plain system calls
/// made on the loop, and the loop's edge_poller watches it only from the first time it has to
/// wait: a `once` exchange whose request is already there when it is accepted costs no
/// registration at all. On a tls or https forward, reads and writes go through TLS once
/// start_tls() has run, with the same contract. Touched only by its loop's thread.
class client_socket {
public:
    /// `fd` must be non-blocking (accept4 with SOCK_NONBLOCK); `loop` is an io_context's.
    client_socket(boost::asio::any_io_executor loop, portunus::unique_fd fd) noexcept
        : loop_(std::move(loop)), fd_(std::move(fd))
    {
    }
    client_socket(const client_socket&) = delete;
    client_socket& operator=(const client_socket&) = delete;
    ~client_socket() { close(); }

    [[nodiscard]] const boost::asio::any_io_executor& executor() const noexcept { return loop_; }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }
    [[nodiscard]] bool is_open() const noexcept { return static_cast<bool>(fd_); }

    /// recv(2) that never blocks, EINTR retried: bytes read, 0 at EOF, -1 with errno set.
    ssize_t receive(char* data, std::size_t n) noexcept;
    /// Sends what the socket takes now (EINTR retried, no SIGPIPE); returns how much. Stops at
    /// EAGAIN with `ec` clear, or at an error with `ec` set.
    std::size_t send_some(const char* data, std::size_t n, boost::system::error_code& ec) noexcept;

    /// From now on receive() and send_some() carry plaintext through TLS with `ctx`; `first` is
    /// what was read before (bytes behind a PROXY header). handshake() must finish first.
    void start_tls(const tls::context& ctx, std::string_view first);
    /// Takes the TLS handshake as far as the socket allows (see tls::channel::handshake).
    tls::channel::step handshake() { return tls_->handshake(); }
    /// True when the next receive() returns at once without the socket becoming readable:
    /// TLS saw the end of the stream, or failed, behind the bytes it returned last.
    [[nodiscard]] bool has_buffered_input() const noexcept { return tls_ && tls_->done_reading(); }
    /// The connection's TLS, or nullptr on a plain connection.
    [[nodiscard]] const tls::channel* tls() const noexcept { return tls_.get(); }

    /// `done` runs on the loop once the socket may have become readable (writable): the caller
    /// wait only after receive() (send_some()) found it not ready, and tries again. Under TLS a
    /// read that needs the socket writable first (or a write that needs it readable) waits for
    /// that instead, and `done` then only means "try again".
    void async_wait(edge_poller::wait_for what, edge_poller::callback done);
    /// Pending waits complete with operation_aborted.
    void cancel() { readiness_.cancel(); }
    /// The coming close sends a reset and drops unsent bytes (a client that stopped reading).
    void reset_on_close() noexcept;
    /// Closes the socket (sending its FIN); pending waits are dropped without running.
    void close() noexcept;
    /// Gives the descriptor up, out of the poller's set (pending waits are dropped without
    /// running): for a socket handed to another process, which keeps it open after this one.
    portunus::unique_fd release() noexcept
    {
        readiness_.remove();
        tls_.reset();
        return std::move(fd_);
    }

private:
    boost::asio::any_io_executor loop_;
    portunus::unique_fd fd_;
    edge_poller::registration readiness_; ///< empty until the first wait; dropped before fd_ closes
    std::unique_ptr<tls::channel> tls_;   ///< tls and https forwards, from start_tls() on
    bool reset_ = false;                  ///< reset_on_close() ran: no close_notify
};

} // namespace portunusd
