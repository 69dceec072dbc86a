// SPDX-License-Identifier: MPL-2.0
// server_process: spawning, watching and reaping the helper door_test_server.
#include "server_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace portunus::test {
namespace {

// Writing to the release pipe of a helper that has died must fail with EPIPE, not kill the test.
[[maybe_unused]] const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

// True once the helper's main thread is inside door_server::park().
//
// Linux (uds): a parked main thread serves calls from the pool's epoll set, so it is parked once
// it sits in epoll_wait. /proc/PID/syscall starts with the number of the syscall the thread is
// blocked in; a parent may read it for its own child.
//
// illumos: a parked caller only waits while the door's own pool threads serve, and those exist
// from door_server::create() on, so calls are served whether or not the main thread has got
// there yet: nothing to wait for.
bool main_thread_parked(pid_t pid, std::chrono::milliseconds timeout)
{
#if PORTUNUS_TEST_ILLUMOS_PROC
    (void)pid;
    (void)timeout;
    return true;
#else
    const std::string file = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/syscall";
    return eventually(
        [&] {
            const unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd) return false;
            char text[32] = {};
            if (::read(fd.get(), text, sizeof text - 1) <= 0) return false;
            const long number = std::strtol(text, nullptr, 10);
            return number == SYS_epoll_wait || number == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
                   || number == SYS_epoll_pwait2
#endif
                ;
        },
        timeout);
#endif
}

} // namespace

server_process::server_process(const std::string& path, const server_options& options)
{
    std::vector<std::string> args{PORTUNUS_DOOR_TEST_SERVER, "--path", path, "--mode", options.mode};
    if (options.park) args.emplace_back("--park");
    if (options.refuse_descriptors) args.emplace_back("--refuse-descriptors");
    if (options.max_threads != 0) {
        args.emplace_back("--max-threads");
        args.push_back(std::to_string(options.max_threads));
    }
    if (options.drain_limit_ms != 0) {
        args.emplace_back("--drain-limit-ms");
        args.push_back(std::to_string(options.drain_limit_ms));
    }
    if (options.idle_timeout_ms != 0) {
        args.emplace_back("--idle-timeout-ms");
        args.push_back(std::to_string(options.idle_timeout_ms));
    }
    if (!options.client_call.empty()) {
        args.emplace_back("--client-call");
        args.push_back(options.client_call);
    }
    if (options.sleep_ms != 0) {
        args.emplace_back("--sleep-ms");
        args.push_back(std::to_string(options.sleep_ms));
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    auto [release_read, release_write] = make_pipe();
    auto [output_read, output_write] = make_pipe();

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 clears close-on-exec on 0 and 1; every other descriptor of the test is CLOEXEC.
    posix_spawn_file_actions_adddup2(&actions, release_read.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, output_write.get(), STDOUT_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // The test ignores SIGPIPE and its threads may block signals; the helper must start with the
    // default dispositions so that SIGTERM behaves as it would for a real application.
    sigset_t none;
    sigemptyset(&none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0) {
        pid_ = -1;
        throw std::runtime_error(std::string("posix_spawn failed: ") + std::strerror(rc));
    }
    release_ = std::move(release_write);
    output_ = std::move(output_read);

    // Generous: a sanitizer build on a loaded machine starts slowly.
    const auto line = next_line(15s);
    if (!line || *line != "ready") {
        stop();
        throw std::runtime_error("door_test_server did not become ready: " + line.value_or("(nothing)"));
    }
    // "ready" is printed just before park(), and park() is what counts the main thread into the
    // pool: a call that came first would find one idle thread fewer and grow the pool early.
    if (options.park && !main_thread_parked(pid_, 15s)) {
        stop();
        throw std::runtime_error("door_test_server did not park its main thread");
    }
}

server_process::~server_process() { stop(); }

void server_process::stop() noexcept
{
    release_all();
    if (pid_ > 0 && !reaped_) {
        ::kill(pid_, SIGKILL);
        // SIGKILL cannot be caught; the bound only guards against a wedged kernel.
        const auto deadline = steady::now() + 10s;
        while (!reaped_ && steady::now() < deadline) {
            int status = 0;
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_ || (r < 0 && errno != EINTR)) reaped_ = true;
            else std::this_thread::sleep_for(1ms);
        }
    }
}

std::optional<std::string> server_process::next_line(std::chrono::milliseconds timeout)
{
    const auto deadline = steady::now() + timeout;
    for (;;) {
        const auto newline = pending_.find('\n');
        if (newline != std::string::npos) {
            std::string line = pending_.substr(0, newline);
            pending_.erase(0, newline + 1);
            return line;
        }
        if (!output_ || !wait_readable(output_.get(), deadline)) return std::nullopt;
        char chunk[512];
        const ssize_t n = ::read(output_.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        pending_.append(chunk, static_cast<std::size_t>(n));
    }
}

bool server_process::wait_lines(std::string_view line, std::size_t count, std::chrono::milliseconds timeout)
{
    const auto deadline = steady::now() + timeout;
    std::size_t seen = 0;
    while (seen < count) {
        const auto next = next_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()));
        if (!next) return false;
        if (*next == line) ++seen;
    }
    return true;
}

void server_process::release(std::size_t count)
{
    if (!release_) return;
    write_all(release_.get(), std::string(count, 'r'));
}

void server_process::release_all() noexcept { release_.reset(); }

bool server_process::kill(int signal) noexcept
{
    if (pid_ <= 0 || reaped_) return false;
    return ::kill(pid_, signal) == 0;
}

std::optional<int> server_process::wait_exit(std::chrono::milliseconds timeout)
{
    const auto deadline = steady::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            return status;
        }
        if (r < 0 && errno != EINTR) return std::nullopt;
        if (steady::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(1ms);
    }
}

long server_process::task_count() const
{
    const long threads = count_entries(proc_threads_dir(std::to_string(pid_)));
#if PORTUNUS_TEST_ILLUMOS_PROC
    // The helper's main thread parks (or waits for its stop signal) and never serves a call on
    // illumos, so the threads that serve are every LWP but that one.
    return threads < 0 ? threads : threads - 1;
#else
    return threads;
#endif
}

long server_process::fd_count() const { return count_entries("/proc/" + std::to_string(pid_) + "/fd"); }

long server_process::tasks_in_syscall(long number) const
{
#if PORTUNUS_TEST_ILLUMOS_PROC
    // Only the uds-only tests ask (pool threads in epoll_wait or recvmsg); illumos keeps the
    // blocking call in the binary lwpstatus file, which nothing here needs.
    (void)number;
    return -1;
#else
    const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
    DIR* dir = ::opendir(tasks.c_str());
    if (dir == nullptr) return -1;
    long count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        // The first field is the number of the system call the thread is blocked in ("running"
        // when it is not in one).
        std::ifstream in(tasks + "/" + entry->d_name + "/syscall");
        long current = -1;
        if (in >> current && current == number) ++count;
    }
    ::closedir(dir);
    return count;
#endif
}

} // namespace portunus::test
