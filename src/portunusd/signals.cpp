// SPDX-License-Identifier: MPL-2.0
// The signal state machine of the daemon: running (SIGHUP reloads), draining, stopped.
#include "portunusd/signals.hpp"

#include "portunusd/server.hpp"

#include <spdlog/spdlog.h>

#include <csignal>

namespace portunusd {

signal_handler::signal_handler(server& srv) : server_(srv), signals_(srv.control(), SIGHUP, SIGTERM, SIGINT)
{
}

void signal_handler::start()
{
    wait_running();
}

void signal_handler::wait_running()
{
    signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
        if (ec) return;
        if (signal_number == SIGHUP) {
            spdlog::info("SIGHUP: reloading");
            server_.reload_file();
            wait_running();
            return;
        }
        // A stop asked for over the control door is a drain already: this signal is the second.
        if (server_.draining()) {
            spdlog::warn("stop signal while draining: exiting without waiting");
            server_.stop_now();
            return;
        }
        server_.begin_stop(signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
        wait_draining();
    });
}

void signal_handler::wait_draining()
{
    signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
        if (ec) return;
        if (signal_number == SIGHUP) {
            spdlog::info("SIGHUP while stopping: ignored");
            wait_draining();
            return;
        }
        spdlog::warn("second stop signal: exiting without waiting");
        server_.stop_now();
    });
}

} // namespace portunusd
