// SPDX-License-Identifier: MPL-2.0
// portunus::serve: the whole life of a simple door application in one call.
#include <portunus/server.hpp>

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

namespace portunus {
namespace {

const char* program_name()
{
#if defined(__linux__)
    return program_invocation_short_name;
#else
    return getprogname();
#endif
}

std::string parent_directory(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// What went wrong in words about the path: the door category's "no such door" is right for a
// caller, but the author of an application that cannot attach wants to hear about directories.
std::string attach_problem(const std::string& path, const std::error_code& ec)
{
    const std::string dir = parent_directory(path);
    switch (ec.value()) {
    case ENOENT:
    case ENOTDIR: {
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) return dir + " is not a directory";
        } else if (errno == ENOENT) {
            return "directory " + dir + " does not exist";
        } else if (errno == ENOTDIR) {
            return "a component of " + dir + " is not a directory";
        }
        break;
    }
    case EACCES:
    case EPERM:
        return "permission denied: uid " + std::to_string(::geteuid()) + " cannot create a door in directory " + dir;
    case EROFS: return "directory " + dir + " is on a read-only file system";
    case EEXIST: return path + " exists and is not a door; it is never replaced";
    case ENAMETOOLONG: return "the path is too long for a door";
    default: break;
    }
    return ec.message();
}

int fail(const std::string& path, const std::string& problem)
{
    std::fprintf(stderr, "%s: cannot serve %s: %s\n", program_name(), path.c_str(), problem.c_str());
    return 96; // SMF: a failure an operator must fix, so no restart loop
}

} // namespace

int serve(const std::string& path, door_handler handler, door_options options,
          std::chrono::milliseconds drain_limit)
{
    // Block the stop signals before the pool exists so that every pool thread inherits the mask
    // and only sigwait() below ever sees them: a handler thread is never interrupted.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    // A client that goes away must not kill the application with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);

    std::error_code ec;
    door_server server = door_server::create(std::move(handler), options, ec);
    if (ec) return fail(path, ec.message());
    server.attach(path, ec);
    if (ec) return fail(path, attach_problem(path, ec));

    int signal_number = 0;
    while (sigwait(&stop_signals, &signal_number) != 0) {
    }
    server.revoke();
    // The calls in flight finish on a thread of their own, so that this one can stop waiting
    // for a handler that never returns: at drain_limit, or at a second stop signal. The state
    // is shared because that thread may outlive this function.
    struct draining {
        door_server server;
        std::atomic<bool> finished{false};
    };
    auto state = std::make_shared<draining>();
    state->server = std::move(server);
    const pthread_t waiter = ::pthread_self();
    std::thread([state, waiter] {
        state->server = door_server{}; // waits for the calls in flight
        state->finished.store(true);
        ::pthread_kill(waiter, SIGINT); // blocked here and in every pool thread: sigtimedwait takes it
    }).detach();
    const auto deadline = std::chrono::steady_clock::now() + drain_limit;
    for (;;) {
        if (state->finished.load()) return 0;
        const auto left = std::max(std::chrono::nanoseconds(0), deadline - std::chrono::steady_clock::now());
        const timespec wait{static_cast<time_t>(left.count() / 1'000'000'000), static_cast<long>(left.count() % 1'000'000'000)};
        const int got = ::sigtimedwait(&stop_signals, nullptr, &wait);
        if (state->finished.load()) return 0;
        if (got < 0 && errno == EINTR) continue;
        const bool timed_out = got < 0;
        std::fprintf(stderr, "%s: %s while calls were still running: exiting without them\n", program_name(),
                     timed_out ? "drain limit reached" : "second stop signal");
        std::fflush(nullptr);
        // Returning would run static destructors under handlers that are still running.
        ::_exit(1);
    }
}

int serve(const std::string& path, door_handler handler, door_options options)
{
    return serve(path, std::move(handler), options, serve_drain_limit);
}

} // namespace portunus
