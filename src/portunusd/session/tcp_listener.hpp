// SPDX-License-Identifier: MPL-2.0
// tcp_listener: accepts connections for one tcp forward, within max_connections.
#pragma once

#include "portunusd/session/connection_limit.hpp"
#include "portunusd/net/event_loops.hpp"
#include "portunusd/session/forward_state.hpp"
#include "portunusd/session/tcp_session.hpp"

#include <boost/asio.hpp>

#include <memory>
#include <mutex>

namespace portunusd {

/// Owns the listening socket of one tcp forward. The forward's settings can be swapped on
/// reload; sessions already open keep the settings they started with.
class tcp_listener : public std::enable_shared_from_this<tcp_listener> {
public:
    /// Starts the session of a protocol served outside this room (a pass forward's).
    using session_starter = void (*)(accepted_connection, std::shared_ptr<forward_state>, connection_limit&,
                                     session_registry&);

    /// The acceptor belongs to `loops.main()`; each accepted connection to the next loop, as a
    /// tcp or http session, or through `starter` when one is given.
    tcp_listener(event_loops& loops, boost::asio::ip::tcp::acceptor acceptor,
                 std::shared_ptr<forward_state> forward, connection_limit& limit, session_registry& registry,
                 session_starter starter = nullptr);

    void start();
    void stop();
    void set_forward(std::shared_ptr<forward_state> forward);
    [[nodiscard]] std::shared_ptr<forward_state> forward() const;

private:
    void do_accept();
    void on_readable(const boost::system::error_code& ec);
    void pause(const char* why);
    /// Hands waiting_ to a session, or holds it at max_connections; true when it went.
    bool admit();

    event_loops& loops_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    mutable std::mutex mutex_;
    std::shared_ptr<forward_state> forward_; // guarded by mutex_
    connection_limit& limit_;
    session_registry& registry_;
    portunus::unique_fd waiting_;          ///< accepted, waiting for room under max_connections
    boost::asio::ip::tcp::endpoint peer_;  ///< of waiting_, filled in by accept(2)
    boost::asio::ip::tcp::endpoint local_; ///< the listening address (unspecified for a wildcard)
    bool stopped_ = false;
    const session_starter starter_;
};

} // namespace portunusd
