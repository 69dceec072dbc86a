// SPDX-License-Identifier: MPL-2.0
// Fixtures shared by the door tests: /proc counting, temporary directories, pipes and bounded waits.
#include "door_test_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace portunus::test {

std::string pattern(std::size_t size, std::uint32_t seed)
{
    std::string s(size, '\0');
    std::uint32_t x = seed | 1;
    for (std::size_t i = 0; i + 4 <= size; i += 4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        std::memcpy(s.data() + i, &x, 4);
    }
    for (std::size_t i = size & ~std::size_t{3}; i < size; ++i) s[i] = static_cast<char>(i);
    return s;
}

namespace {

int remaining_ms(steady::time_point deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string describe_open_fds()
{
    std::ostringstream out;
    out << "open descriptors:";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(proc_fd_links_dir("self"), ec)) {
        std::error_code link_ec;
        const auto target = std::filesystem::read_symlink(entry.path(), link_ec);
        out << ' ' << entry.path().filename().string() << "->" << (link_ec ? "?" : target.string());
    }
    return out.str();
}

} // namespace

bool wait_readable(int fd, steady::time_point deadline)
{
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, remaining_ms(deadline));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) return false;
    }
}

long count_entries(const std::string& directory)
{
    DIR* dir = ::opendir(directory.c_str());
    if (dir == nullptr) return -1;
    long count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) ++count;
    }
    ::closedir(dir);
    return count;
}

bool exited_cleanly(const std::optional<int>& status)
{
    return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

double elapsed_ms(steady::time_point since)
{
    return std::chrono::duration<double, std::milli>(steady::now() - since).count();
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout)
{
    const auto deadline = steady::now() + timeout;
    for (;;) {
        if (done()) return true;
        if (steady::now() >= deadline) return done();
        std::this_thread::sleep_for(1ms);
    }
}

std::string proc_threads_dir(const std::string& pid)
{
#if PORTUNUS_TEST_ILLUMOS_PROC
    return "/proc/" + pid + "/lwp";
#else
    return "/proc/" + pid + "/task";
#endif
}

std::string proc_fd_links_dir(const std::string& pid)
{
#if PORTUNUS_TEST_ILLUMOS_PROC
    // /proc/PID/path also holds cwd, root and a.out; describe_open_fds lists them too, which
    // only adds to a message printed when a leak check fails.
    return "/proc/" + pid + "/path";
#else
    return "/proc/" + pid + "/fd";
#endif
}

leak_check::leak_check() : fds_(count_entries("/proc/self/fd")), tasks_(count_entries(proc_threads_dir("self"))) {}

leak_check::~leak_check()
{
    // A REQUIRE that failed is already reported; the counts would only add noise.
    if (std::uncaught_exceptions() > 0) return;
    long fds = 0;
    long tasks = 0;
    eventually(
        [&] {
            fds = count_entries("/proc/self/fd");
            tasks = count_entries(proc_threads_dir("self"));
            return fds == fds_ && tasks == tasks_;
        },
        2s);
    INFO(describe_open_fds());
    CHECK(fds == fds_);
    CHECK(tasks == tasks_);
}

temp_dir::temp_dir()
{
    const char* base = std::getenv("TMPDIR");
    // sun_path holds 108 bytes, and attach() adds a suffix to the door path: keep it short.
    std::string pattern = std::string(base != nullptr && std::strlen(base) < 40 ? base : "/tmp") + "/pdoor-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

temp_dir::~temp_dir()
{
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

door_client open_door(const std::string& path)
{
    std::error_code ec;
    auto client = door_client::open(path, ec);
    INFO("open(" << path << "): " << ec.message());
    REQUIRE_FALSE(ec);
    REQUIRE(client.is_open());
    return client;
}

std::pair<unique_fd, unique_fd> make_pipe()
{
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    return {unique_fd(ends[0]), unique_fd(ends[1])};
}

std::string read_until_eof(int fd, std::chrono::milliseconds timeout, bool& complete)
{
    const auto deadline = steady::now() + timeout;
    std::string out;
    complete = false;
    for (;;) {
        if (!wait_readable(fd, deadline)) return out;
        char chunk[4096];
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return out;
        if (n == 0) {
            complete = true;
            return out;
        }
        out.append(chunk, static_cast<std::size_t>(n));
    }
}

std::string read_exactly(int fd, std::size_t size, std::chrono::milliseconds timeout)
{
    const auto deadline = steady::now() + timeout;
    std::string out;
    while (out.size() < size) {
        if (!wait_readable(fd, deadline)) break;
        std::string chunk(size - out.size(), '\0');
        const ssize_t n = ::read(fd, chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return out;
}

bool write_all(int fd, std::string_view bytes)
{
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace portunus::test
