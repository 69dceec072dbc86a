// SPDX-License-Identifier: MPL-2.0
// signal_handler: what SIGHUP, SIGTERM and SIGINT do to a running server (reload, drain, stop now).
#pragma once

#include <boost/asio/signal_set.hpp>


namespace portunusd {

class server;

/// The daemon's answer to signals, on the server's control strand:
///  - SIGHUP reloads the configuration file (an invalid one is reported and the running one
///    kept);
///  - SIGTERM or SIGINT begins a drain (server::begin_stop());
///  - while draining, a second SIGTERM or SIGINT stops at once, and SIGHUP is ignored (log
///    rotation, say, must not cut the drain short).
class signal_handler {
public:
    /// SIGHUP reloads the file the server was told of (server::set_config_file()).
    explicit signal_handler(server& srv);
    signal_handler(const signal_handler&) = delete;
    signal_handler& operator=(const signal_handler&) = delete;

    /// Starts waiting for signals; they are handled while the server runs.
    void start();

private:
    void wait_running();
    void wait_draining();

    server& server_;
    boost::asio::signal_set signals_;
};

} // namespace portunusd
