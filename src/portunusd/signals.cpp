// SPDX-License-Identifier: MPL-2.0
// The signal state machine of the daemon: running (SIGHUP reloads), draining, stopped.
#include "portunusd/signals.hpp"

#include "portunusd/config/config.hpp"
#include "portunusd/log/logging.hpp"
#include "portunusd/server.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <utility>

namespace portunusd {

signal_handler::signal_handler(server& srv, std::string config_file, int verbosity)
    : server_(srv), config_file_(std::move(config_file)), verbosity_(verbosity),
      signals_(srv.control(), SIGHUP, SIGTERM, SIGINT)
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
            reload();
            wait_running();
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

void signal_handler::reload()
{
    spdlog::info("SIGHUP: reloading {}", config_file_);
    auto result = load_config(config_file_);
    if (!result.value) {
        for (const auto& e : result.errors) spdlog::error("{}", e.to_string());
        spdlog::error("reload: configuration has {} error(s); still running the previous one", result.errors.size());
        return;
    }
    if (const auto error = setup_logging(result.value->daemon, verbosity_); !error.empty())
        spdlog::error("reload: cannot open log: {}; keeping the old one", error);
    server_.reload(std::move(*result.value));
}

} // namespace portunusd
