// SPDX-License-Identifier: MPL-2.0
// metrics_listener: GET /metrics and /health on [daemon] metrics_listen, served on the main loop.
#pragma once

#include "portunusd/config/config.hpp"
#include "portunusd/metrics/snapshot.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace portunusd {

/// The metrics and health endpoint: accepts on one address and answers each connection's one
/// request (metrics_routes.hpp) with `Connection: close`. A request head must arrive within 5 s
/// and fit in 8 KiB; at most max_connections are open at once, and past that new connections
/// are closed as soon as they are accepted. Nothing it does blocks the loop.
///
/// Thread affinity: everything runs on `io`'s thread (the daemon's main event loop); start() and
/// stop() may also be called while `io` does not run.
class metrics_listener {
public:
    static constexpr std::size_t max_connections = 64;

    /// `snapshot` is called on `io`'s thread (the daemon's main event loop) for each request.
    metrics_listener(boost::asio::io_context& io, listen_address where, std::function<daemon_snapshot()> snapshot);
    ~metrics_listener();

    metrics_listener(const metrics_listener&) = delete;
    metrics_listener& operator=(const metrics_listener&) = delete;

    /// Binds and listens (SO_REUSEADDR; "*" is the IPv6 wildcard with IPV6_V6ONLY off, as for
    /// forwards), then accepts once `io` runs. Returns "" or the error for the operator, such as
    /// "cannot bind metrics_listen 127.0.0.1:9187: Address already in use". Does nothing while
    /// already started.
    std::string start();

    /// Closes the listener and every open metrics connection. Idempotent.
    void stop();

    /// The address bound by start() (its port chosen by the system if 0 was asked for); the
    /// default endpoint before start() and after stop().
    boost::asio::ip::tcp::endpoint local_endpoint() const;

private:
    class acceptor;

    boost::asio::io_context& io_;
    listen_address where_;
    std::function<daemon_snapshot()> snapshot_;
    std::shared_ptr<acceptor> acceptor_;
};

} // namespace portunusd
