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
//   deep         echo, after recursing through about 512 KiB of the pool thread's stack
//   many-fds     a request "N" is answered with N descriptors (of /dev/null)
//   signals      SIGHUP and SIGUSR1 are caught and counted by where they land; each call waits
//                2 ms in poll(2), counting EINTR, and replies "eintr=E pool=P other=O". With
//                --park a thread of its own takes them and the parked main thread blocks them
//
// With --client-call DATA the helper is a client instead: it opens the door at PATH, prints
// "ready", calls it with DATA and prints the reply (or the error) when the call returns.
//
// "ready" is printed on stdout once the door is attached. With --park the main thread joins the
// pool (door_server::park), so /proc/PID/task counts exactly the pool, and SIGTERM kills the
// process (default action); otherwise portunus::serve runs the door and SIGTERM revokes it and
// exits 0 after the calls in flight finish.
#include <portunus/door.hpp>
#include <portunus/server.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

// Each frame holds 8 KiB the compiler cannot drop, so 64 of them take about 512 KiB of stack.
std::size_t recurse(std::size_t depth)
{
    volatile char frame[8192];
    frame[0] = static_cast<char>(depth);
    frame[sizeof frame - 1] = static_cast<char>(depth);
    if (depth == 0) return static_cast<unsigned char>(frame[0]);
    return recurse(depth - 1) + static_cast<unsigned char>(frame[sizeof frame - 1]);
}

door_reply deep(door_request& request)
{
    if (recurse(64) == static_cast<std::size_t>(-1)) throw std::runtime_error("unreachable");
    return echo(request);
}

door_reply many_descriptors(door_request& request)
{
    const long count = std::strtol(std::string(request.data).c_str(), nullptr, 10);
    door_reply reply;
    reply.data = "sent " + std::to_string(count);
    for (long i = 0; i < count; ++i) {
        portunus::unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!fd) throw std::runtime_error("open /dev/null failed");
        reply.fds.push_back(std::move(fd));
    }
    return reply;
}

// Where caught signals ran: on a thread that has run a handler (a pool thread), or elsewhere.
thread_local bool tl_pool_thread = false;
std::atomic<long> signals_in_pool{0};
std::atomic<long> signals_elsewhere{0};
std::atomic<long> interrupted_waits{0};

void count_signal(int)
{
    (tl_pool_thread ? signals_in_pool : signals_elsewhere).fetch_add(1, std::memory_order_relaxed);
}

door_reply signals_report(door_request&)
{
    tl_pool_thread = true;
    if (::poll(nullptr, 0, 2) < 0 && errno == EINTR) interrupted_waits.fetch_add(1);
    return {"eintr=" + std::to_string(interrupted_waits.load()) + " pool=" + std::to_string(signals_in_pool.load()) +
                " other=" + std::to_string(signals_elsewhere.load()),
            {}};
}

int run_client(const std::string& path, const std::string& data)
{
    std::error_code ec;
    const auto client = portunus::door_client::open(path, ec);
    if (ec) {
        say("open failed: " + ec.message() + "\n");
        return 1;
    }
    say("ready\n");
    const auto result = client.call(data, ec);
    say(ec ? "error " + ec.message() + "\n" : "reply " + result.data.str() + "\n");
    return 0;
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
                 "usage: %s --path PATH [--mode echo|fds|block|throw|sleep|credentials|borrow|deep|many-fds|signals]\n"
                 "       [--sleep-ms N] [--refuse-descriptors] [--max-threads N] [--idle-timeout-ms N] [--park]\n"
                 "       [--drain-limit-ms N]\n"
                 "       %s --path PATH --client-call DATA\n",
                 program, program);
    std::exit(64); // EX_USAGE
}

} // namespace

int main(int argc, char** argv)
{
    std::string path;
    std::string mode = "echo";
    long sleep_ms = 0;
    bool park = false;
    std::chrono::milliseconds drain_limit = portunus::serve_drain_limit;
    std::string client_call;
    bool client = false;
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
        else if (arg == "--drain-limit-ms") drain_limit = std::chrono::milliseconds(std::strtol(value(), nullptr, 10));
        else if (arg == "--client-call") {
            client_call = value();
            client = true;
        }
        else usage(argv[0]);
    }
    if (path.empty()) usage(argv[0]);
    if (client) return run_client(path, client_call);

    portunus::door_handler handler;
    if (mode == "echo") handler = echo;
    else if (mode == "fds") handler = pass_descriptors;
    else if (mode == "block") handler = block_until_released;
    else if (mode == "throw") handler = throw_on_request;
    else if (mode == "credentials") handler = report_caller;
    else if (mode == "borrow") handler = borrow;
    else if (mode == "deep") handler = deep;
    else if (mode == "many-fds") handler = many_descriptors;
    else if (mode == "signals") {
        struct sigaction action {};
        action.sa_handler = count_signal; // no SA_RESTART: an interrupted wait must show
        sigemptyset(&action.sa_mask);
        sigaction(SIGHUP, &action, nullptr);
        sigaction(SIGUSR1, &action, nullptr);
        handler = signals_report;
    }
    else if (mode == "sleep")
        handler = [sleep_ms](door_request& request) {
            std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
            return echo(request);
        };
    else usage(argv[0]);

    // The test may stop reading stdout or close the release pipe at any moment.
    std::signal(SIGPIPE, SIG_IGN);
    // Room for a reply of 1,025 descriptors (many-fds), as far as the hard limit allows.
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 4096) {
        files.rlim_cur = std::min<rlim_t>(files.rlim_max, 4096);
        ::setrlimit(RLIMIT_NOFILE, &files);
    }

    if (park) {
        std::error_code ec;
        auto server = portunus::door_server::create(handler, options, ec);
        if (!ec) server.attach(path, ec);
        if (ec) {
            std::fprintf(stderr, "door_test_server: %s: %s\n", path.c_str(), ec.message().c_str());
            return 95;
        }
        if (mode == "signals") {
            // One thread of the application's own takes the signals; the parked main thread
            // blocks them. The pool threads were started while main still had them open, so only
            // the door library's own mask keeps the signals off them.
            std::thread([] {
                sigset_t open;
                sigemptyset(&open);
                sigaddset(&open, SIGHUP);
                sigaddset(&open, SIGUSR1);
                pthread_sigmask(SIG_UNBLOCK, &open, nullptr);
                for (;;) ::pause();
            }).detach();
            sigset_t taken;
            sigemptyset(&taken);
            sigaddset(&taken, SIGHUP);
            sigaddset(&taken, SIGUSR1);
            pthread_sigmask(SIG_BLOCK, &taken, nullptr);
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
    return portunus::serve(path, handler, options, drain_limit);
}
