// SPDX-License-Identifier: MPL-2.0
// portunusd: parse the command line and the config, bind, drop privileges, serve until told to stop.
#include "portunusd/config/config.hpp"
#include "portunusd/log/logging.hpp"
#include "portunusd/privileges.hpp"
#include "portunusd/server.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

// SMF's exit codes, which operators' tooling already understands.
constexpr int exit_ok = 0;
constexpr int exit_config = 96;
constexpr int exit_fatal = 95;
constexpr int exit_usage = 64;

constexpr const char* default_config = PORTUNUSD_DEFAULT_CONFIG;

void usage(FILE* to)
{
    std::fprintf(to,
                 "usage: portunusd [-n] [-v | -d] [-f FILE]\n"
                 "       portunusd --version | -h\n"
                 "  -f FILE   configuration file (default %s)\n"
                 "  -n        check the configuration and exit: prints 'configuration OK' or every error\n"
                 "  -v        more log output (debug); repeat for trace\n"
                 "  -d        most log output (trace)\n",
                 default_config);
}

struct options {
    std::string file = default_config;
    bool check_only = false;
    int verbosity = 0;
};

// Returns -1 to go on, or an exit status.
int parse_args(int argc, char** argv, options& o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-h" || a == "--help") return usage(stdout), exit_ok;
        if (a == "--version") return std::puts("portunusd " PORTUNUSD_VERSION), exit_ok;
        if (a == "-n") {
            o.check_only = true;
        } else if (a == "-v") {
            ++o.verbosity;
        } else if (a == "-vv") {
            o.verbosity += 2;
        } else if (a == "-d") {
            o.verbosity = 6;
        } else if (a == "-f") {
            if (++i == argc) {
                std::fputs("portunusd: -f needs a file name\n", stderr);
                return exit_usage;
            }
            o.file = argv[i];
        } else {
            std::fprintf(stderr, "portunusd: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return exit_usage;
        }
    }
    return -1;
}

// Parses and validates the file, door directories included. Prints every error; empty on failure.
std::optional<portunusd::config> load(const std::string& file)
{
    auto result = portunusd::parse_config_file(file);
    if (result.value) {
        auto dir_errors = portunusd::check_door_paths(*result.value);
        if (!dir_errors.empty()) {
            result.errors = std::move(dir_errors);
            result.value.reset();
        }
    }
    for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return std::move(result.value);
}

} // namespace

int main(int argc, char** argv)
{
    options opts;
    if (const int status = parse_args(argc, argv, opts); status >= 0) return status;

    auto cfg = load(opts.file);
    if (!cfg) return exit_config;
    if (opts.check_only) {
        std::puts("configuration OK");
        return exit_ok;
    }
    if (const auto error = portunusd::setup_logging(cfg->daemon, opts.verbosity); !error.empty()) {
        std::fprintf(stderr, "portunusd: cannot open log: %s\n", error.c_str());
        return exit_fatal;
    }
    // A client that resets its connection must not kill the daemon with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);

    try {
        portunusd::server server(std::move(*cfg));
        if (const auto errors = server.bind(); !errors.empty()) {
            for (const auto& e : errors) spdlog::critical("{}", e);
            return exit_fatal;
        }
        const auto& d = server.current().daemon;
        if (const auto error = portunusd::drop_privileges(d.user, d.group); !error.empty()) {
            spdlog::critical("cannot drop privileges: {}", error);
            return exit_fatal;
        }

        boost::asio::signal_set signals(server.control(), SIGHUP, SIGTERM, SIGINT);
        // While draining, a second SIGTERM/SIGINT means "now"; a SIGHUP (log rotation, say)
        // must not cut the drain short.
        std::function<void(const boost::system::error_code&, int)> while_draining =
            [&](const boost::system::error_code& e, int again) {
                if (e) return;
                if (again == SIGHUP) {
                    spdlog::info("SIGHUP while stopping: ignored");
                    signals.async_wait(while_draining);
                    return;
                }
                spdlog::warn("second stop signal: exiting without waiting");
                server.stop_now();
            };
        std::function<void(const boost::system::error_code&, int)> on_signal =
            [&](const boost::system::error_code& ec, int signal_number) {
                if (ec) return;
                if (signal_number == SIGHUP) {
                    spdlog::info("SIGHUP: reloading {}", opts.file);
                    auto result = portunusd::parse_config_file(opts.file);
                    if (result.value) {
                        auto dir_errors = portunusd::check_door_paths(*result.value);
                        if (!dir_errors.empty()) {
                            result.errors = std::move(dir_errors);
                            result.value.reset();
                        }
                    }
                    if (!result.value) {
                        for (const auto& e : result.errors) spdlog::error("{}", e.to_string());
                        spdlog::error("reload: configuration has {} error(s); still running the previous one",
                                      result.errors.size());
                    } else {
                        if (const auto error = portunusd::setup_logging(result.value->daemon, opts.verbosity);
                            !error.empty())
                            spdlog::error("reload: cannot open log: {}; keeping the old one", error);
                        server.reload(std::move(*result.value));
                    }
                    signals.async_wait(on_signal);
                    return;
                }
                server.begin_stop(signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
                signals.async_wait(while_draining);
            };
        signals.async_wait(on_signal);
        server.run();
        if (const auto left = server.calls_in_flight(); left > 0) {
            // Door calls cannot be interrupted; waiting for them would ignore drain_timeout.
            spdlog::warn("abandoning {} door call(s) still in flight", left);
            spdlog::shutdown();
            std::fflush(nullptr);
            ::_exit(exit_ok);
        }
    } catch (const std::exception& e) {
        spdlog::critical("fatal: {}", e.what());
        return exit_fatal;
    }
    spdlog::info("stopped");
    spdlog::shutdown();
    return exit_ok;
}
