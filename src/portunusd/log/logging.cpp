// SPDX-License-Identifier: MPL-2.0
// spdlog sinks for the daemon and access logs.
#include "portunusd/log/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

#include <fcntl.h>
#include <sys/stat.h>
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

} // namespace

std::string setup_logging(const daemon_config& cfg, int extra_verbosity)
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

std::shared_ptr<spdlog::logger> access_logger()
{
    if (!access_enabled.load(std::memory_order_relaxed)) return nullptr;
    std::lock_guard lock(access_mutex);
    return access;
}

} // namespace portunusd
