// SPDX-License-Identifier: MPL-2.0
// door_test_server: a door application whose behaviour the door tests choose on its command line.
//
//   door_test_server --path PATH [--mode MODE] [--sleep-ms N] [--refuse-descriptors]
//                    [--max-threads N] [--idle-timeout-ms N] [--park]
//
// MODE is one of
//   echo         reply with the request bytes (descriptors received are closed)
//   fds          a request ["noextra "]["write:TEXT"] writes TEXT into every descriptor received;
//                the reply is "received N" with the received descriptors handed back, plus (without
//                "noextra") the read end of a pipe holding "from server PID\n"
//   block        a request "block" prints "enter" and waits for one byte (or EOF) on stdin, then
//                replies "released"; anything else is echoed
//   throw        a request starting with "throw" makes the handler throw; anything else is echoed
//   sleep        sleep --sleep-ms milliseconds, then echo
//   credentials  reply "UID GID PID" of the caller as the server saw it
//   borrow       a borrowed reply: "static" gets a static text, anything else its own bytes but
//                the first (a view into the request, not a copy)
//
// "ready" is printed on stdout once the door is attached. With --park the main thread joins the
// pool (door_server::park), so /proc/PID/task counts exactly the pool, and SIGTERM kills the
// process (default action); otherwise portunus::serve runs the door and SIGTERM revokes it and
// exits 0 after the calls in flight finish.
#include <portunus/door.hpp>
#include <portunus/server.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace {

using portunus::door_reply;
using portunus::door_request;

// write(2) rather than stdio: handler threads print concurrently and the test reads the lines as
// they come, so nothing may sit in a buffer; a short line in one write() stays whole in a pipe.
void say(std::string_view line)
{
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
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

door_reply echo(door_request& request)
{
    return {std::string(request.data), {}};
}

door_reply borrow(door_request& request)
{
    static constexpr std::string_view fixed = "a static reply, sent without a copy";
    door_reply reply;
    if (request.data == "static")
        reply.borrowed = fixed;
    else
        reply.borrowed = request.data.substr(request.data.empty() ? 0 : 1);
    return reply;
}

door_reply pass_descriptors(door_request& request)
{
    std::string_view data = request.data;
    const bool extra = !data.starts_with("noextra");
    if (!extra) data.remove_prefix(data.starts_with("noextra ") ? 8 : 7);
    if (data.starts_with("write:")) {
        for (const auto& fd : request.fds) write_all(fd.get(), data.substr(6));
    }
    door_reply reply;
    reply.data = "received " + std::to_string(request.fds.size());
    reply.fds = std::move(request.fds);
    if (extra) {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        portunus::unique_fd read_end(ends[0]);
        portunus::unique_fd write_end(ends[1]);
        write_all(write_end.get(), "from server " + std::to_string(::getpid()) + "\n");
        reply.fds.push_back(std::move(read_end));
    }
    return reply;
}

door_reply block_until_released(door_request& request)
{
    if (request.data != "block") return echo(request);
    say("enter\n");
    // Each blocked call consumes one byte, so the test can let calls go one at a time; EOF (the
    // test closed the pipe, or died) lets every call go, so nothing here can hang for ever.
    char byte;
    ssize_t n;
    do {
        n = ::read(STDIN_FILENO, &byte, 1);
    } while (n < 0 && errno == EINTR);
    return {"released", {}};
}

door_reply throw_on_request(door_request& request)
{
    if (request.data.starts_with("throw")) throw std::runtime_error("the test asked this handler to fail");
    return echo(request);
}

door_reply report_caller(door_request& request)
{
    const auto& c = request.caller;
    return {std::to_string(c.uid) + " " + std::to_string(c.gid) + " " + std::to_string(c.pid), {}};
}

// serve() offers no hook after attach, so a short-lived thread says "ready" once the path
// answers with this very process: the test must not call before the door is really there.
void announce_when_attached(const std::string& path)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        std::error_code ec;
        const auto client = portunus::door_client::open(path, ec);
        if (!ec && client.info(ec).target == ::getpid()) {
            say("ready\n");
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    say("not attached\n");
}

[[noreturn]] void usage(const char* program)
{
    std::fprintf(stderr,
                 "usage: %s --path PATH [--mode echo|fds|block|throw|sleep|credentials|borrow] [--sleep-ms N]\n"
                 "       [--refuse-descriptors] [--max-threads N] [--idle-timeout-ms N] [--park]\n",
                 program);
    std::exit(64); // EX_USAGE
}

} // namespace

int main(int argc, char** argv)
{
    std::string path;
    std::string mode = "echo";
    long sleep_ms = 0;
    bool park = false;
    portunus::door_options options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage(argv[0]);
            return argv[++i];
        };
        if (arg == "--path") path = value();
        else if (arg == "--mode") mode = value();
        else if (arg == "--sleep-ms") sleep_ms = std::strtol(value(), nullptr, 10);
        else if (arg == "--refuse-descriptors") options.refuse_descriptors = true;
        else if (arg == "--max-threads") options.max_threads = static_cast<unsigned>(std::strtoul(value(), nullptr, 10));
        else if (arg == "--idle-timeout-ms") options.idle_timeout = std::chrono::milliseconds(std::strtol(value(), nullptr, 10));
        else if (arg == "--park") park = true;
        else usage(argv[0]);
    }
    if (path.empty()) usage(argv[0]);

    portunus::door_handler handler;
    if (mode == "echo") handler = echo;
    else if (mode == "fds") handler = pass_descriptors;
    else if (mode == "block") handler = block_until_released;
    else if (mode == "throw") handler = throw_on_request;
    else if (mode == "credentials") handler = report_caller;
    else if (mode == "borrow") handler = borrow;
    else if (mode == "sleep")
        handler = [sleep_ms](door_request& request) {
            std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
            return echo(request);
        };
    else usage(argv[0]);

    // The test may stop reading stdout or close the release pipe at any moment.
    std::signal(SIGPIPE, SIG_IGN);

    if (park) {
        std::error_code ec;
        auto server = portunus::door_server::create(handler, options, ec);
        if (!ec) server.attach(path, ec);
        if (ec) {
            std::fprintf(stderr, "door_test_server: %s: %s\n", path.c_str(), ec.message().c_str());
            return 95;
        }
        say("ready\n");
        server.park();
        return 0;
    }

    // Blocked before the announcer starts so that it inherits the mask too: serve() must be the
    // only one to see SIGTERM, or the default action would kill the process mid-drain.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::thread(announce_when_attached, path).detach();
    return portunus::serve(path, handler, options);
}
