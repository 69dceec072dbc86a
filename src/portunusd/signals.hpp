// SPDX-License-Identifier: MPL-2.0
// signal_handler: what SIGHUP, SIGTERM and SIGINT do to a running server (reload, drain, stop now).
#pragma once

#include <boost/asio/signal_set.hpp>

#include <string>

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
    /// `config_file` is read again on each SIGHUP; `verbosity` is the command line's -v count,
    /// which the reloaded log settings keep.
    signal_handler(server& srv, std::string config_file, int verbosity);
    signal_handler(const signal_handler&) = delete;
    signal_handler& operator=(const signal_handler&) = delete;

    /// Starts waiting for signals; they are handled while the server runs.
    void start();

private:
    void wait_running();
    void wait_draining();
    void reload();

    server& server_;
    std::string config_file_;
    int verbosity_;
    boost::asio::signal_set signals_;
};

} // namespace portunusd
