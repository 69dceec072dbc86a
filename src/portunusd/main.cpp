// SPDX-License-Identifier: MPL-2.0
// portunusd: parse the command line and the config, bind, drop privileges, serve until told to stop.
#include "portunusd/config/config.hpp"
#include "portunusd/control/control_door.hpp"
#include "portunusd/control_bridge.hpp"
#include "portunusd/log/logging.hpp"
#include "portunusd/metrics/metrics_listener.hpp"
#include "portunusd/net/signal_mask.hpp"
#include "portunusd/privileges.hpp"
#include "portunusd/server.hpp"
#include "portunusd/service/passed_sockets.hpp"
#include "portunusd/signals.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

// SMF's exit codes, which operators' tooling already understands. Under SMF's wait model
// (startd/duration = child) only 96 puts the service into maintenance; any other status makes
// svc.startd start it again at once, so every failure an operator must fix (the file, a port in
// use, an account, privileges, the log) is 96, and 95 is left to what a new start may not meet
// again (out of memory or threads, say).
constexpr int exit_ok = 0;
constexpr int exit_operator = 96;
constexpr int exit_fatal = 95;
constexpr int exit_usage = 64;

// Where the configuration is looked for without -f: SYSCONFDIR/portunusd.toml of the prefix
// this tree was configured for. An installed daemon found under another prefix (a Debian
// package made with CPack from a tree configured for /usr/local, say) looks where that prefix
// keeps its configuration, as GNUInstallDirs would have put it: /etc for /usr, /etc/opt/X for
// /opt/X, PREFIX/etc otherwise. A path given to CMake (PORTUNUSD_DEFAULT_CONFIG) is kept.
std::string default_config_file()
{
#if PORTUNUSD_DEFAULT_CONFIG_FOLLOWS_PREFIX
    std::string exe;
#if defined(__linux__)
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf);
    if (n > 0 && static_cast<std::size_t>(n) < sizeof buf) exe.assign(buf, static_cast<std::size_t>(n));
#elif defined(__sun)
    if (const char* name = ::getexecname(); name != nullptr && name[0] == '/') exe = name;
#endif
    const std::string tail = std::string("/") + PORTUNUSD_SBINDIR + "/portunusd";
    if (exe.size() > tail.size() && exe.compare(exe.size() - tail.size(), tail.size(), tail) == 0) {
        const std::string prefix = exe.substr(0, exe.size() - tail.size());
        if (prefix != PORTUNUSD_INSTALL_PREFIX) {
            if (prefix == "/usr") return "/etc/portunusd.toml";
            if (prefix.rfind("/opt/", 0) == 0) return "/etc" + prefix + "/portunusd.toml";
            return prefix + "/etc/portunusd.toml";
        }
    }
#endif
    return PORTUNUSD_DEFAULT_CONFIG;
}

void usage(FILE* to)
{
    std::fprintf(to,
                 "usage: portunusd [-n] [-v | -d] [-f FILE]\n"
                 "       portunusd --version | -h\n"
                 "  -f FILE   configuration file (default %s)\n"
                 "  -n        check the configuration and exit: prints 'configuration OK' or every problem\n"
                 "  -v        more log output (debug); repeat for trace\n"
                 "  -d        most log output (trace)\n",
                 default_config_file().c_str());
}

struct options {
    std::string file = default_config_file();
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

// Reads the configuration as start-up needs it. On failure prints every error and warning
// and returns nothing; otherwise leaves the warnings for the log, which is not set up yet.
std::optional<portunusd::config> load(const std::string& file, std::vector<portunusd::config_error>& warnings)
{
    auto result = portunusd::load_config(file);
    if (!result.value)
        for (const auto& e : portunusd::all_problems(result)) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    warnings = std::move(result.warnings);
    return std::move(result.value);
}

// The control door is made before privileges are dropped, and handed to the account the daemon
// becomes. The default path is a convenience: a daemon that cannot create it (not root, say)
// runs without one and says how to get one; a path the operator chose must work.
bool open_control_door(const portunusd::daemon_config& d, portunusd::control_bridge& bridge,
                       std::unique_ptr<portunusd::control_door>& out)
{
    if (d.control_door.empty()) return true;
    portunusd::account who;
    // An account that cannot be resolved is reported by drop_privileges(), which comes next.
    if (!portunusd::resolve_account(d.user, d.group, who).empty()) return true;
    std::optional<uid_t> owner;
    std::optional<gid_t> group;
    if (d.user || d.group) {
        owner = who.uid;
        group = who.gid;
    }
    std::string error;
    out = portunusd::control_door::open(d.control_door, bridge.actions(), owner, group, error);
    if (out) return true;
    if (d.control_door_explicit) {
        spdlog::critical("{}", error);
        return false;
    }
    spdlog::warn("{}; running without a control door (set control_door in [daemon], or \"off\")", error);
    return true;
}

// Whether some app runs as another account than the daemon will: then the daemon keeps the
// right to change credentials after it drops root (and only that right).
bool apps_need_setid(const portunusd::config& cfg)
{
    portunusd::account daemon;
    if (!portunusd::resolve_account(cfg.daemon.user, cfg.daemon.group, daemon).empty()) return false;
    // [[app]]s and exec forwards' programs start as their accounts the same way.
    for (const auto& a : portunusd::started_accounts(cfg)) {
        portunusd::account who;
        if (!portunusd::resolve_account(a.user ? a.user : cfg.daemon.user, a.group, who).empty()) continue;
        if (who.uid != daemon.uid || who.gid != daemon.gid) return true;
    }
    return false;
}

// The time the shipped service definitions give a stop (smf/portunusd.xml's stop method,
// etc/systemd's TimeoutStopSec): a grace and drain longer than this, plus a few seconds for the
// apps to stop, end in SIGKILL (and, under SMF, maintenance).
constexpr std::chrono::seconds service_stop_timeout{60};
constexpr std::chrono::seconds stop_margin{5};

// Empty, or why the service definitions must allow a longer stop than they do.
std::string stop_timeout_warning(const portunusd::config& cfg)
{
    const auto stop = cfg.daemon.stop_grace + cfg.daemon.drain_timeout;
    if (stop + stop_margin <= service_stop_timeout) return {};
    const auto needed = std::chrono::duration_cast<std::chrono::seconds>(stop + stop_margin);
    return "stop_grace + drain_timeout leave too little of the " + std::to_string(service_stop_timeout.count()) +
           " s the shipped SMF manifest and systemd unit allow a stop: set their stop timeout "
           "(timeout_seconds of the stop method, TimeoutStopSec) to at least " +
           std::to_string(needed.count() + 1) + " s, or a drain is cut short by SIGKILL";
}

} // namespace

int main(int argc, char** argv)
{
    // Before anything else: a SIGHUP or SIGTERM that comes before its handler waits for it
    // instead of killing the process, and no thread started from here on takes one.
    portunusd::block_handled_signals();
    options opts;
    if (const int status = parse_args(argc, argv, opts); status >= 0) return status;

    // Before the daemon opens any file of its own (a passed descriptor number that is not open
    // would be its log by then) and before any thread starts: this edits the environment
    // (LISTEN_* go, so apps never see them). What it finds is logged once logging is set up.
    auto passed = portunusd::passed_sockets::take_from_environment();

    std::vector<portunusd::config_error> warnings;
    auto cfg = load(opts.file, warnings);
    if (!cfg) return exit_operator;
    const std::string stop_warning = stop_timeout_warning(*cfg);
    if (opts.check_only) {
        for (const auto& w : warnings) std::fprintf(stderr, "%s\n", w.to_string().c_str());
        if (!stop_warning.empty()) std::fprintf(stderr, "portunusd: warning: %s\n", stop_warning.c_str());
        std::puts("configuration OK");
        // Which credentials the apps need the daemon to keep, for whoever sets up its service.
        if (!cfg->apps.empty() || !portunusd::started_accounts(*cfg).empty()) {
            portunusd::account who;
            if (portunusd::resolve_account(cfg->daemon.user, cfg->daemon.group, who).empty())
                std::puts(portunusd::privileges_needed(*cfg, who.uid).c_str());
        }
        return exit_ok;
    }
    if (const auto error = portunusd::setup_logging(cfg->daemon, opts.verbosity); !error.empty()) {
        std::fprintf(stderr, "portunusd: cannot open log: %s\n", error.c_str());
        return exit_operator;
    }
    for (const auto& w : warnings) spdlog::warn("{}", w.log_text());
    if (!stop_warning.empty()) spdlog::warn("{}", stop_warning);
    // A client that resets its connection must not kill the daemon with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    passed.log_notes();

    try {
        portunusd::server server(std::move(*cfg));
        server.adopt(std::move(passed));
        if (const auto errors = server.bind(); !errors.empty()) {
            for (const auto& e : errors) spdlog::critical("{}", e);
            return exit_operator;
        }
        server.set_config_file(opts.file, opts.verbosity);
        const auto& d = server.current().daemon;
        // Declared after the server, so they go first: both call into it.
        std::unique_ptr<portunusd::metrics_listener> metrics;
        if (d.metrics_listen) {
            metrics = std::make_unique<portunusd::metrics_listener>(server.io(), *d.metrics_listen,
                                                                     [&server] { return server.snapshot(); });
            if (const auto error = metrics->start(); !error.empty()) {
                spdlog::critical("{}", error);
                return exit_operator;
            }
        }
        portunusd::control_bridge bridge(server);
        std::unique_ptr<portunusd::control_door> control;
        if (!open_control_door(d, bridge, control)) return exit_operator;
        if (const auto error = portunusd::drop_privileges(d.user, d.group, apps_need_setid(server.current()));
            !error.empty()) {
            spdlog::critical("cannot drop privileges: {}", error);
            return exit_operator;
        }
        if (const auto error = portunusd::drop_startup_privileges(); !error.empty())
            spdlog::warn("{}; the daemon keeps them", error);

        portunusd::signal_handler signals(server);
        signals.start();
        server.run();
        // Nothing posted to the loops runs any more: control requests still waiting end now,
        // and the control door goes before the process does, so no caller waits on it.
        bridge.close();
        control.reset();
        if (metrics) metrics->stop();
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
