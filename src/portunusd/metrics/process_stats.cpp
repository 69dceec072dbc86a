// SPDX-License-Identifier: MPL-2.0
// Reading the process's own resource use without allocating: procfs on Linux, POSIX calls elsewhere.
#include "portunusd/metrics/process_stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace portunusd {

namespace {

/// Up to `cap` bytes of a small file; 0 when it cannot be read.
std::size_t read_file(const char* path, char* buf, std::size_t cap) noexcept
{
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return 0;
    std::size_t have = 0;
    while (have < cap) {
        const ssize_t n = ::read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return have;
}

std::optional<double> open_descriptors() noexcept
{
    // The directory lists the descriptor that reads it as well; that one is not counted.
    const char* const dirs[] = {"/proc/self/fd", "/dev/fd"};
    for (const char* path : dirs) {
        const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) continue;
        DIR* dir = ::fdopendir(fd);
        if (!dir) {
            ::close(fd);
            continue;
        }
        double count = 0;
        while (const dirent* e = ::readdir(dir)) {
            if (e->d_name[0] == '.') continue;
            int n = -1;
            const auto end = e->d_name + std::strlen(e->d_name);
            if (std::from_chars(e->d_name, end, n).ptr == end && n == fd) continue;
            ++count;
        }
        ::closedir(dir);
        return count;
    }
    return std::nullopt;
}

std::optional<double> descriptor_limit() noexcept
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
    return static_cast<double>(limit.rlim_cur);
}

#if defined(__linux__)

/// Field `n` (1-based, as proc(5) numbers them) of /proc/self/stat, from the text after the
/// command name: that name is in parentheses and may itself hold spaces and ')'.
std::optional<double> stat_field(std::string_view after_comm, int n) noexcept
{
    int field = 3;
    std::size_t pos = 0;
    while (pos < after_comm.size()) {
        while (pos < after_comm.size() && after_comm[pos] == ' ') ++pos;
        const std::size_t end = std::min(after_comm.find(' ', pos), after_comm.size());
        if (field == n) {
            double v = 0;
            if (std::from_chars(after_comm.data() + pos, after_comm.data() + end, v).ec != std::errc{})
                return std::nullopt;
            return v;
        }
        ++field;
        pos = end;
    }
    return std::nullopt;
}

/// The boot time (btime of /proc/stat), which never changes while the system runs.
std::optional<double> boot_time() noexcept
{
    // /proc/stat's per-interrupt line makes it long on big machines; btime follows it.
    char buf[1 << 16];
    const std::size_t n = read_file("/proc/stat", buf, sizeof buf);
    const std::string_view text(buf, n);
    const auto at = text.find("\nbtime ");
    if (at == std::string_view::npos) return std::nullopt;
    const char* first = buf + at + 7;
    double v = 0;
    if (std::from_chars(first, buf + n, v).ec != std::errc{}) return std::nullopt;
    return v;
}

#endif

} // namespace

process_stats read_process_stats() noexcept
{
    process_stats s;
    s.open_fds = open_descriptors();
    s.max_fds = descriptor_limit();
#if defined(__linux__)
    char buf[1024];
    const std::size_t n = read_file("/proc/self/stat", buf, sizeof buf);
    const std::string_view stat(buf, n);
    const auto comm_end = stat.rfind(')');
    if (comm_end != std::string_view::npos) {
        const auto rest = stat.substr(comm_end + 1);
        static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
        static const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
        const auto utime = stat_field(rest, 14), stime = stat_field(rest, 15);
        if (utime && stime && ticks > 0) s.cpu_seconds = (*utime + *stime) / ticks;
        s.threads = stat_field(rest, 20);
        s.virtual_memory_bytes = stat_field(rest, 23);
        if (const auto rss = stat_field(rest, 24); rss && page > 0) s.resident_memory_bytes = *rss * page;
        // Both parts are fixed for the life of the process; /proc/stat is read once.
        static const std::optional<double> boot = boot_time();
        if (const auto start = stat_field(rest, 22); start && boot && ticks > 0)
            s.start_time_unix = *boot + *start / ticks;
    }
#else
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) == 0) {
        s.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec) + static_cast<double>(usage.ru_stime.tv_sec) +
                        (static_cast<double>(usage.ru_utime.tv_usec) + static_cast<double>(usage.ru_stime.tv_usec)) / 1e6;
    }
#endif
    return s;
}

} // namespace portunusd
