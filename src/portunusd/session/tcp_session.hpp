// SPDX-License-Identifier: MPL-2.0
// tcp_session: one client connection of a tcp forward; each chunk read is one door call.
#pragma once

#include "portunusd/net/client_socket.hpp"
#include "portunusd/session/connection_limit.hpp"
#include "portunusd/session/forward_state.hpp"
#include "portunusd/net/lazy_deadline.hpp"

#include <boost/asio.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portunusd {

/// A connection as the listener accepted it: a non-blocking descriptor that no reactor knows
/// yet, the loop that is to serve it, the peer address from accept(2) itself and the local
/// endpoint from the listening socket (its address unspecified when that is a wildcard), so a
/// session asks the kernel for neither.
struct accepted_connection {
    boost::asio::any_io_executor loop;
    portunus::unique_fd fd;
    boost::asio::ip::tcp::endpoint peer;
    boost::asio::ip::tcp::endpoint local;
};

/// What stop and drain need of any kind of connection.
class session_base {
public:
    virtual ~session_base() = default;
    /// Close now if idle, or right after the reply in flight. Any thread.
    virtual void drain() = 0;
};

/// Every open tcp or http session, so that stop and drain can reach them. Thread-safe.
class session_registry {
public:
    void add(const std::shared_ptr<session_base>& s);
    void remove(const session_base* s);
    /// Asks every session to close once its call in flight (if any) is answered.
    void drain_all();
    [[nodiscard]] std::size_t size() const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<const session_base*, std::weak_ptr<session_base>> sessions_;
};

/// Reads a chunk, calls the door with it, writes the reply, reads again; strictly one call at a
/// time, so replies keep the order of requests. All of it runs on the socket's event loop.
class tcp_session : public session_base, public std::enable_shared_from_this<tcp_session> {
public:
    tcp_session(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                session_registry& registry);

    void start();
    void drain() override;
    /// The deadline set by arm_timer() passed.
    void on_deadline();

private:
    void do_read();
    void wait_readable();
    void on_readable(const boost::system::error_code& ec);
    void on_read(std::string chunk);
    void on_reply(call_outcome outcome);
    void do_write();
    void on_write(const boost::system::error_code& ec, std::size_t n);
    void arm_timer(std::chrono::milliseconds after, const char* reason);
    void close(std::string_view reason);

    client_socket socket_;
    lazy_deadline deadline_;
    std::shared_ptr<forward_state> forward_;
    connection_slot slot_;
    session_registry& registry_;
    std::string reply_;
    std::size_t written_ = 0;    ///< of reply_
    bool write_stalled_ = false; ///< reply_ did not fit the socket: the write timeout runs, from the last progress
    bool more_to_read_ = false;  ///< the last read filled its room: read again before waiting
    const boost::asio::ip::tcp::endpoint peer_;
    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::uint64_t calls_ = 0, bytes_in_ = 0, bytes_out_ = 0;
    const char* timer_reason_ = "";
    bool calling_ = false;
    bool draining_ = false;
    bool closed_ = false;
};

} // namespace portunusd
