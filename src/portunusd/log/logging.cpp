// SPDX-License-Identifier: MPL-2.0
// spdlog sinks for the daemon and access logs.
#include "portunusd/log/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace portunusd {
namespace {

std::mutex access_mutex;
std::shared_ptr<spdlog::logger> access; // guarded by access_mutex
// Read on every request: with the access log off (the default) no lock is taken at all.
std::atomic<bool> access_enabled{false};

spdlog::level::level_enum level_from(const std::string& name, int extra_verbosity)
{
    auto level = spdlog::level::from_str(name);
    if (name == "warn") level = spdlog::level::warn;
    for (int i = 0; i < extra_verbosity && level > spdlog::level::trace; ++i)
        level = static_cast<spdlog::level::level_enum>(level - 1);
    return level;
}

// The access log is written from the event loops: a FIFO (blocked until a reader comes, then
// whenever it is full) or a device there would stall every connection. Only a regular file is
// taken, checked without blocking before spdlog opens it.
std::string check_log_file(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0) return path + ": " + (errno == ENXIO ? "not a regular file" : std::strerror(errno));
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ::close(fd);
    return regular ? std::string{} : path + ": not a regular file";
}

// Why syslog(3) would drop every line, or empty when a syslog daemon listens. glibc's syslog()
// writes to /dev/log and silently discards what it cannot send, so a daemon configured with
// log = "syslog" on a machine without a syslog daemon (a container, a minimal install) would
// run without a word anywhere. On illumos syslog() goes through the log driver, always there.
std::string syslog_unreachable()
{
#if defined(__linux__)
    static constexpr const char* path = "/dev/log";
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    int error = 0;
    // Datagrams first, as glibc does (journald and rsyslog listen so), then a stream socket.
    for (const int type : {SOCK_DGRAM, SOCK_STREAM}) {
        const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0) return std::string{"cannot create a socket: "} + std::strerror(errno);
        const bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
        error = errno;
        ::close(fd);
        if (connected) return {};
        if (error != EPROTOTYPE) break;
    }
    if (error == ENOENT) return std::string{path} + " does not exist";
    return std::string{"cannot connect to "} + path + ": " + std::strerror(error);
#else
    return {};
#endif
}

// Installs the loggers `cfg` names, which syslog_unreachable() has vetted.
std::string install_loggers(const daemon_config& cfg, int extra_verbosity)
{
    try {
        spdlog::sink_ptr sink;
        if (cfg.log == "syslog")
            sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("portunusd", LOG_PID, LOG_DAEMON, false);
        else
            sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        auto main = std::make_shared<spdlog::logger>("portunusd", sink);
        // SMF and syslog stamp lines themselves; stderr under a shell wants a time.
        main->set_pattern(cfg.log == "syslog" ? "%l: %v" : "%Y-%m-%dT%H:%M:%S.%e portunusd[%P] %l: %v");
        main->set_level(level_from(cfg.log_level, extra_verbosity));
        main->flush_on(spdlog::level::info);
        spdlog::set_default_logger(main);

        std::shared_ptr<spdlog::logger> next;
        if (cfg.access_log == "stderr") {
            next = std::make_shared<spdlog::logger>("access", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        } else if (cfg.access_log == "syslog") {
            next = std::make_shared<spdlog::logger>(
                "access", std::make_shared<spdlog::sinks::syslog_sink_mt>("portunusd", LOG_PID, LOG_DAEMON, false));
        } else if (cfg.access_log != "off") {
            if (auto error = check_log_file(cfg.access_log); !error.empty()) return error;
            next = std::make_shared<spdlog::logger>(
                "access", std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.access_log, false));
        }
        if (next) {
            next->set_pattern(cfg.access_log == "syslog" ? "access %v" : "%Y-%m-%dT%H:%M:%S.%e access %v");
            next->set_level(spdlog::level::info);
            next->flush_on(spdlog::level::info);
        }
        std::lock_guard lock(access_mutex);
        access_enabled.store(next != nullptr);
        access = std::move(next);
    } catch (const spdlog::spdlog_ex& e) {
        return e.what();
    }
    return {};
}

} // namespace

std::string setup_logging(const daemon_config& cfg, int extra_verbosity)
{
    try {
        // Falling back to stderr keeps the daemon's messages somewhere an operator looks (a
        // terminal, the service manager's log) instead of nowhere; the warning below says why.
        const std::string no_syslog =
            cfg.log == "syslog" || cfg.access_log == "syslog" ? syslog_unreachable() : std::string{};
        daemon_config settings = cfg;
        if (!no_syslog.empty()) {
            if (settings.log == "syslog") settings.log = "stderr";
            if (settings.access_log == "syslog") settings.access_log = "stderr";
        }
        const std::string error = install_loggers(settings, extra_verbosity);
        if (error.empty() && !no_syslog.empty())
            spdlog::warn("syslog is not reachable ({}); logging {} to stderr instead", no_syslog,
                         cfg.log == "syslog" && cfg.access_log == "syslog" ? "the daemon log and the access log"
                         : cfg.log == "syslog"                             ? "the daemon log"
                                                                           : "the access log");
        return error;
    } catch (const spdlog::spdlog_ex& e) {
        return e.what();
    }
}

std::shared_ptr<spdlog::logger> access_logger()
{
    if (!access_enabled.load(std::memory_order_relaxed)) return nullptr;
    std::lock_guard lock(access_mutex);
    return access;
}

} // namespace portunusd
